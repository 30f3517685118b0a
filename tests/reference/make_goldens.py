"""Writes the Hugging Face golden outputs q3vl is tested against (tests/goldens/model/).

    /work/refvenv/bin/python tests/reference/make_goldens.py --q3vl build/q3vl

builds the `tiny` and `tiny-untied` checkpoints with `q3vl make-checkpoint --preset P
--seed 0`, and the `custom` checkpoint (not a preset: other widths, MQA, one DeepStack
tap, transformers 5.x config layout) with `q3vl make-checkpoint --config
tests/reference/configs/custom.json --seed 0`, into a temporary directory (or takes
them from --checkpoint NAME=DIR), writes the synthetic media, runs the HF processor
once per case (it does not depend on the checkpoint) and the model once per case and
checkpoint, in float32 with eager attention. The format is described in
tests/reference/README.md. Same inputs -> same bytes.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(HERE))

import av  # noqa: E402
import numpy as np  # noqa: E402
import PIL  # noqa: E402
import safetensors  # noqa: E402
import tokenizers  # noqa: E402
import torch  # noqa: E402
import torchvision  # noqa: E402
import transformers  # noqa: E402
from PIL import Image  # noqa: E402
from transformers import AutoProcessor  # noqa: E402

from golden_cases import CASES, MEDIA, TURN1_REPLY  # noqa: E402
from golden_model import GREEDY_STEPS, load_model, router_topk_margin, run_each_image, run_model  # noqa: E402
from golden_processor import encode_pixels, run_processor  # noqa: E402
from golden_store import sha256_file, sha256_tree, write_json, write_tensors  # noqa: E402

FORMAT = "q3vl-hf-goldens/1"
PRESETS = ("tiny", "tiny-untied")
# Checkpoints made from a committed config.json rather than a preset: name -> file.
CONFIGS = {"custom": HERE / "configs" / "custom.json"}
# Mixture-of-Experts checkpoints: name -> extra make-checkpoint arguments. Both are the
# `tiny-moe` preset, in the Hub's expert layout and in transformers 5.x's
# (--moe-layout hf5); they hold the same model, so HF's outputs must be bit-identical
# and only MOE_STORED's are written. tiny-moe shares tiny-untied's vision tower and
# embedding table (same tensor names and shapes, so the same seeded values): its
# inputs_embeds, visual tokens, DeepStack features and position ids are asserted equal
# to tiny-untied's. Stored (compact): the decoder inputs (position_ids, rope_deltas,
# inputs_embeds, image_/video_deepstack; not the merged tokens, which are inside
# inputs_embeds), greedy_*, router_logits [L, T, E] (prefill) / router_logits_decode
# [L, 31, E] (the greedy steps) over the sparse layers in order, and prefill_logits on
# MOE_LOGITS_CASES only (600 KB each: text, image, two images, video, multi-turn).
MOE = {"tiny-moe": [], "tiny-moe-hf5": ["--moe-layout", "hf5"]}
MOE_STORED = "tiny-moe"
MOE_INPUTS_FROM = "tiny-untied"
MOE_SHARED_KEYS = ("position_ids", "rope_deltas", "inputs_embeds", "image_embeds", "image_deepstack",
                   "video_embeds", "video_deepstack")
MOE_DROPPED_KEYS = ("image_embeds", "video_embeds")
MOE_LOGITS_CASES = ("text_only", "image_odd", "two_images", "video", "two_turn")
CHECKPOINTS = PRESETS + tuple(CONFIGS) + tuple(MOE)
# A config checkpoint's goldens are kept compact (tests/goldens/model must stay small):
# no inputs_embeds (it is the embedding rows with the merged visual tokens scattered
# in, both derivable), and vision outputs only for these cases.
CONFIG_VISION_CASES = ("image_odd", "two_images", "video")
TEMPLATE_SHA256 = "3636d0f0bd6bef02654cdffdc447b79cb2cef8ab02cc75267345946291a489e4"
# Qwen's published template is not committed: --template PATH or Q3VL_OFFICIAL_TEMPLATE.
DEFAULT_TEMPLATE = os.environ.get("Q3VL_OFFICIAL_TEMPLATE", "qwen3-vl-instruct.chat_template.jinja")


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--q3vl", help="q3vl executable: build every checkpoint with make-checkpoint --seed 0")
    source.add_argument("--checkpoint", action="append", metavar="NAME=DIR",
                        help=f"use an existing checkpoint (give all of {', '.join(CHECKPOINTS)})")
    parser.add_argument("--template", default=str(DEFAULT_TEMPLATE), help="the official Qwen3-VL chat template")
    parser.add_argument("--out", default=str(REPO / "tests" / "goldens" / "model"), help="output directory")
    return parser.parse_args()


def make_checkpoints(args: argparse.Namespace, scratch: Path) -> dict:
    if args.checkpoint:
        dirs = dict(item.split("=", 1) for item in args.checkpoint)
        if sorted(dirs) != sorted(CHECKPOINTS):
            raise SystemExit(f"--checkpoint: expected {CHECKPOINTS}, got {sorted(dirs)}")
        return {name: Path(dirs[name]) for name in CHECKPOINTS}
    dirs = {}
    for name in CHECKPOINTS:
        out = scratch / name
        subprocess.run([args.q3vl, "make-checkpoint", *make_checkpoint_source(name), "--seed", "0",
                        "--out", str(out), "--quiet"], check=True)
        dirs[name] = out
    return dirs


def make_checkpoint_source(name: str) -> list:
    """The make-checkpoint arguments that choose the model (paths relative to the repo)."""
    if name in CONFIGS:
        return ["--config", str(CONFIGS[name].relative_to(REPO))]
    if name in MOE:
        return ["--preset", "tiny-moe", *MOE[name]]
    return ["--preset", name]


def compact_config_result(case_name: str, result: dict) -> dict:
    """What a config checkpoint keeps of run_model's output (see CONFIG_VISION_CASES)."""
    keep_vision = case_name in CONFIG_VISION_CASES
    return {k: v for k, v in result.items()
            if k != "inputs_embeds" and (keep_vision or not k.startswith(("image", "video")))}


def check_moe_result(case_name: str, name: str, result: dict, results: dict) -> dict:
    """A MoE checkpoint's compact result, after checking what it shares with
    MOE_INPUTS_FROM's (and, for the hf5 layout, that it equals the Hub layout's)."""
    shared = results[MOE_INPUTS_FROM]
    for key in MOE_SHARED_KEYS:
        assert (key in result) == (key in shared), f"{case_name}: {name} {key} presence differs"
        if key in result:
            assert torch.equal(result[key], shared[key]), f"{case_name}: {name} {key} differs from {MOE_INPUTS_FROM}"
    compact = {k: v for k, v in result.items() if k not in MOE_DROPPED_KEYS}
    if case_name not in MOE_LOGITS_CASES:
        del compact["prefill_logits"]
    if name != MOE_STORED:
        assert same_tensors(compact, results[MOE_STORED]), f"{case_name}: {name} differs from {MOE_STORED}"
    return compact


def library_versions() -> dict:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torchvision": torchvision.__version__,
        "transformers": transformers.__version__,
        "tokenizers": tokenizers.__version__,
        "numpy": np.__version__,
        "av": av.__version__,
        "pillow": PIL.__version__,
        "safetensors": safetensors.__version__,
    }


def command_line() -> str:
    """The command as run from the repository root. Paths inside the repo are made
    relative; the q3vl executable and checkpoint directories are named generically
    (the checkpoint hashes pin what they produced), so reruns record the same text."""
    words = []
    previous = ""
    for word in sys.argv:
        if previous == "--q3vl":
            word = "Q3VL"
        elif previous == "--checkpoint":
            word = word.split("=", 1)[0] + "=DIR"
        else:
            path = Path(word)
            if path.is_absolute() and path.resolve().is_relative_to(REPO):
                word = str(path.resolve().relative_to(REPO))
        words.append(word)
        previous = word
    return "python " + " ".join(words)


def processor_tensors(features) -> dict:
    """The per-case processor outputs; pixels are split off into the shared pixel store."""
    tensors = {k: features[k].to(torch.int64) for k in ("input_ids", "attention_mask", "mm_token_type_ids")}
    for grid in ("image_grid_thw", "video_grid_thw"):
        if grid in features:
            tensors[grid] = features[grid].to(torch.int64)
    return tensors


def add_pixels(store: dict, case, features) -> None:
    """Splits the request's pixel_values per media item (HF preprocesses each image on
    its own, so the request's rows are the concatenation of its items' rows) and keeps
    each item's uint8 codes once; a medium seen before must give the same codes."""
    streams = {"image": ("pixel_values", "image_grid_thw"), "video": ("pixel_values_videos", "video_grid_thw")}
    keys = {"image": [k for k in case.media_keys() if MEDIA[k].kind != "video"],
            "video": [k for k in case.media_keys() if MEDIA[k].kind == "video"]}
    for kind, (values_key, grid_key) in streams.items():
        if values_key not in features:
            assert not keys[kind], f"{case.name}: {kind} media but no {values_key}"
            continue
        codes = encode_pixels(features[values_key])
        grids = features[grid_key].to(torch.int64)
        assert grids.shape[0] == len(keys[kind]), f"{case.name}: {grids.shape[0]} {kind} grids"
        start = 0
        for key, grid in zip(keys[kind], grids):
            rows = int(grid.prod())
            item = {"pixel_codes": codes[start:start + rows], "grid_thw": grid.reshape(1, 3).numpy()}
            start += rows
            if key in store:
                assert all(np.array_equal(store[key][n], item[n]) for n in item), f"{case.name}: {key} differs"
            store[key] = item
        assert start == codes.shape[0], f"{case.name}: pixel rows do not match the grids"


def check_transparency_dropped(processor, store: dict, root: Path) -> None:
    """Path inputs: HF decodes with torchvision in RGB mode, dropping alpha and palette
    transparency but keeping the stored colour. Check that independently: the stored
    RGB planes (PIL, no compositing) must preprocess to the same codes."""
    for key, media in MEDIA.items():
        if media.kind not in ("rgba", "palette"):
            continue
        with Image.open(root / media.file) as img:
            rgba = np.asarray(img.convert("RGBA"))
        assert (rgba[..., 3] == 0).any(), f"{media.file}: has no transparent pixel"
        rgb = rgba[..., :3]
        tensor = torch.from_numpy(np.ascontiguousarray(rgb)).permute(2, 0, 1).contiguous()
        values = processor.image_processor(images=[tensor], return_tensors="pt")["pixel_values"]
        assert np.array_equal(encode_pixels(values), store[key]["pixel_codes"]), f"{media.file}: alpha not dropped"


def expanded_prompt(tokenizer, input_ids: torch.Tensor) -> str:
    """The text the processor tokenized: placeholders expanded per grid and, for video,
    the `<t seconds>` frame markers. Asserted to tokenize back to input_ids."""
    ids = input_ids[0].tolist()
    text = tokenizer.decode(ids, skip_special_tokens=False, clean_up_tokenization_spaces=False)
    again = tokenizer(text, add_special_tokens=False)["input_ids"]
    assert again == ids, "expanded prompt does not tokenize back to input_ids"
    return text


def same_tensors(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(np.array_equal(np.asarray(a[k]), np.asarray(b[k])) for k in a)


def main() -> None:
    args = parse_args()
    started = time.time()
    torch.manual_seed(0)
    torch.set_num_threads(1)  # fixed reduction order, so reruns are bit-exact
    template_path = Path(args.template)
    template = template_path.read_text(encoding="utf-8")
    template_sha = sha256_file(template_path)
    if template_sha != TEMPLATE_SHA256:
        raise SystemExit(f"{template_path}: sha256 {template_sha}, expected the official {TEMPLATE_SHA256}")

    out = Path(args.out)
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    for media in MEDIA.values():
        media.write(out)

    with tempfile.TemporaryDirectory(prefix="q3vl-goldens-") as scratch:
        checkpoints = make_checkpoints(args, Path(scratch))
        processors = {p: AutoProcessor.from_pretrained(str(d)) for p, d in checkpoints.items()}
        models = {p: load_model(str(d)) for p, d in checkpoints.items()}
        checkpoint_meta = {p: {"make_checkpoint": " ".join(["q3vl make-checkpoint",
                                                            *make_checkpoint_source(p), "--seed 0"]),
                               "config": {"text_hidden_size": models[p].config.text_config.hidden_size,
                                          "vocab_size": models[p].config.text_config.vocab_size,
                                          "deepstack_visual_indexes":
                                              list(models[p].config.vision_config.deepstack_visual_indexes),
                                          "tie_word_embeddings": bool(models[p].config.tie_word_embeddings)},
                               "files_sha256": sha256_tree(d)} for p, d in checkpoints.items()}

        summary = []
        pixel_store = {}
        for case in CASES:
            case_dir = out / "cases" / case.name
            case_dir.mkdir(parents=True)
            processed = {p: run_processor(processors[p], template, case.messages, out) for p in CHECKPOINTS}
            first = processed[PRESETS[0]]
            tensors = processor_tensors(first["features"])
            for p in CHECKPOINTS[1:]:
                assert processed[p]["prompt"] == first["prompt"], f"{case.name}: prompt differs for {p}"
                assert same_tensors(processor_tensors(processed[p]["features"]), tensors), \
                    f"{case.name}: processor outputs differ for {p}"
            write_tensors(case_dir / "inputs.safetensors", tensors)
            add_pixels(pixel_store, case, first["features"])

            presets_meta = {}
            results = {}
            for p in CHECKPOINTS:
                result = run_model(models[p], first["features"])
                if p in CONFIGS:
                    result = compact_config_result(case.name, result)
                elif p in MOE:
                    result = check_moe_result(case.name, p, result, results)
                elif case.name == "two_images":
                    result.update(run_each_image(models[p], first["features"]))
                results[p] = result
                if p in MOE and p != MOE_STORED:
                    continue
                write_tensors(case_dir / f"{p}.safetensors", result)
                ids = result["greedy_ids"].tolist()
                margin = result["greedy_margin"]
                presets_meta[p] = {
                    "greedy_text": processors[p].tokenizer.decode(ids, skip_special_tokens=False),
                    "min_greedy_margin": float(margin.min()),
                    "min_greedy_margin_step": int(margin.argmin()),
                }
                if p in MOE:
                    k = models[p].config.text_config.num_experts_per_tok
                    presets_meta[p]["min_router_topk_margin"] = min(
                        router_topk_margin(result["router_logits"], k),
                        router_topk_margin(result["router_logits_decode"], k))
                summary.append((case.name, p, float(margin.min()), int(margin.argmin()),
                                float(result["greedy_max_abs_logit"].max())))

            write_json(case_dir / "case.json", {
                "name": case.name,
                "description": case.description,
                "messages": case.messages,
                "hf_messages": [_relative_parts(m, out) for m in first["hf_messages"]],
                "add_generation_prompt": True,
                "prompt": first["prompt"],
                "prompt_expanded": expanded_prompt(processors[PRESETS[0]].tokenizer, tensors["input_ids"]),
                "image_files": [MEDIA[k].file for k in case.media_keys() if MEDIA[k].kind != "video"],
                "video_files": [MEDIA[k].file for k in case.media_keys() if MEDIA[k].kind == "video"],
                "video_sampling": first["video_info"],
                "presets": {p: presets_meta[p] for p in PRESETS},
                "configs": {p: presets_meta[p] for p in CONFIGS},
                "moe": {MOE_STORED: presets_meta[MOE_STORED]},
            })

    check_transparency_dropped(processors[PRESETS[0]], pixel_store, out)
    write_tensors(out / "pixels.safetensors",
                  {f"{MEDIA[k].file}.{n}": v for k in MEDIA for n, v in pixel_store[k].items()})
    write_json(out / "manifest.json", {
        "format": FORMAT,
        "command": command_line(),
        "libraries": library_versions(),
        "dtype": "float32",
        "attn_implementation": "eager",
        "torch_num_threads": 1,
        "template": {"source": "qwen3-vl-instruct.chat_template.jinja (Qwen)", "sha256": template_sha},
        "checkpoints": checkpoint_meta,
        "presets": list(PRESETS),
        # Checkpoints made from committed config files: cases/<case>/<name>.safetensors
        # holds position_ids, rope_deltas, prefill_logits, greedy_* and, for
        # vision_cases only, the image/video merged tokens and DeepStack features.
        "configs": {name: {"file": str(path.relative_to(REPO)), "sha256": sha256_file(path),
                           "vision_cases": list(CONFIG_VISION_CASES)}
                    for name, path in CONFIGS.items()},
        # Mixture-of-Experts checkpoints (see MOE in make_goldens.py).
        "moe": {MOE_STORED: {"checkpoints": list(MOE), "inputs_from": MOE_INPUTS_FROM,
                             "shared_with_inputs_from": list(MOE_SHARED_KEYS),
                             "prefill_logits_cases": list(MOE_LOGITS_CASES),
                             "libraries": library_versions(),
                             "router_topk_margin": "min over tokens and sparse layers of the k-th minus "
                                                   "(k+1)-th largest raw router logit"}},
        "greedy_steps": GREEDY_STEPS,
        "greedy": "model.generate, do_sample=False, eos_token_id=None (never stops early), raw logits",
        "pixel_codes": "pixel_values = (float32(code) - 127.5f) / 127.5f, bit-exact",
        "turn1_reply": TURN1_REPLY,
        "media": {m.file: sha256_file(out / m.file) for m in MEDIA.values()},
        "cases": [c.name for c in CASES],
    })

    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    for name, p, margin, step, max_logit in summary:
        print(f"{name:16s} {p:12s} min margin {margin:.6f} at step {step:2d}, max|logit| {max_logit:.2f}")
    for case_name in (c.name for c in CASES):
        meta = json.loads((out / "cases" / case_name / "case.json").read_text())["moe"][MOE_STORED]
        print(f"{case_name:16s} {MOE_STORED}: min router top-k margin {meta['min_router_topk_margin']:.4f}")
    print(f"wrote {out} ({size / 1e6:.2f} MB) in {time.time() - started:.1f} s")


def _relative_parts(message: dict, root: Path) -> dict:
    if isinstance(message["content"], str):
        return message
    parts = []
    for part in message["content"]:
        part = dict(part)
        if "path" in part:
            part["path"] = str(Path(part["path"]).relative_to(root))
        parts.append(part)
    return {"role": message["role"], "content": parts}


if __name__ == "__main__":
    main()
