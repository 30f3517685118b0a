"""How a random-weight checkpoint behaves, in HF float32, on the committed golden inputs.

The question behind src/checkpoint/weight_layout.h: do the random weights give varied,
input-dependent greedy output, and how far do quantized weights move the logits? For each
checkpoint directory and each golden case (tests/goldens/model, processor outputs reused,
so no media decoding) it prints

  - greedy: 32 steps; the most repeats of one token, the distinct count, and "collapse"
    when a token repeats more than 8 times or fewer than 12 are distinct;
  - context: how many cases start with a different 4-token prefix (all prompts end with
    the same "<|im_start|>assistant\\n", so this is the image / prompt's influence);
  - INT4 / INT8: cosine of the last-position prefill logits when every text linear and
    lm_head are replaced by their block-32 round-to-nearest copies (the builder's
    symmetric full-grid rule, src/builder/quantize.h), and INT4 with lm_head at INT8.
    A simulation for choosing weights: tests/builder/test_precision.cpp measures the
    real graphs.

    /work/refvenv/bin/python tests/reference/study_weights.py DIR [DIR ...]

DIR is a `q3vl make-checkpoint` output. About 5 s per tiny checkpoint.
"""

from __future__ import annotations

import argparse
import copy
import json
from collections import Counter
from pathlib import Path

import torch
from safetensors.torch import load_file
from transformers import Qwen3VLForConditionalGeneration

GOLDENS = Path(__file__).resolve().parents[1] / "goldens" / "model"
STEPS = 32
TEXT_LINEARS = ("q_proj", "k_proj", "v_proj", "o_proj", "gate_proj", "up_proj", "down_proj")


def golden_inputs() -> dict[str, dict]:
    manifest = json.loads((GOLDENS / "manifest.json").read_text())
    codes = load_file(GOLDENS / "pixels.safetensors")

    def pixels(files):
        return torch.cat([(codes[f + ".pixel_codes"].float() - 127.5) / 127.5 for f in files])

    cases = {}
    for name in manifest["cases"]:
        meta = json.loads((GOLDENS / "cases" / name / "case.json").read_text())
        stored = load_file(GOLDENS / "cases" / name / "inputs.safetensors")
        inputs = {k: stored[k] for k in ("input_ids", "attention_mask", "mm_token_type_ids")}
        if meta["image_files"]:
            inputs["pixel_values"] = pixels(meta["image_files"])
            inputs["image_grid_thw"] = stored["image_grid_thw"]
        if meta["video_files"]:
            inputs["pixel_values_videos"] = pixels(meta["video_files"])
            inputs["video_grid_thw"] = stored["video_grid_thw"]
        cases[name] = inputs
    return cases


def quantize_rtn(w: torch.Tensor, bits: int, block: int = 32) -> torch.Tensor:
    """Dequantized copy of w [N, K] under the builder's symmetric rtn rule."""
    n, k = w.shape
    x = torch.nn.functional.pad(w, (0, (-k) % block)).reshape(n, -1, block)
    half = 1 << (bits - 1)
    extreme = torch.gather(x, -1, x.abs().argmax(-1, keepdim=True))
    full = -extreme / half  # the largest weight lands on the extra negative level
    q_full = torch.clamp(torch.round(x / full), -half, half - 1)
    clipped = (x - q_full * full).abs().amax(-1, keepdim=True) > 0.5 * full.abs() * (1 + 1e-6)
    plain = x.abs().amax(-1, keepdim=True) / (half - 1)
    q_plain = torch.clamp(torch.round(x / plain), -(half - 1), half - 1)
    y = torch.where(clipped, q_plain * plain, q_full * full)
    return y.reshape(n, -1)[:, :k]


def quantized(model, bits: int, lm_head_bits: int):
    q = copy.deepcopy(model)
    with torch.no_grad():
        for name, module in q.model.language_model.named_modules():
            if isinstance(module, torch.nn.Linear) and name.split(".")[-1] in TEXT_LINEARS:
                module.weight.copy_(quantize_rtn(module.weight, bits))
        # A new parameter unties a tied lm_head from the (unquantized) embedding lookup.
        q.lm_head.weight = torch.nn.Parameter(quantize_rtn(q.lm_head.weight.detach().clone(), lm_head_bits))
    return q


@torch.no_grad()
def last_logits(model, inputs) -> torch.Tensor:
    model.model.rope_deltas = None
    return model(**inputs, logits_to_keep=1).logits[0, -1].double()


@torch.no_grad()
def greedy(model, inputs) -> list[int]:
    model.model.rope_deltas = None
    out = model.generate(**inputs, do_sample=False, max_new_tokens=STEPS, min_new_tokens=STEPS, eos_token_id=None,
                         pad_token_id=None)
    return out[0, inputs["input_ids"].shape[1]:].tolist()


def study(directory: str, cases: dict[str, dict]) -> None:
    model = Qwen3VLForConditionalGeneration.from_pretrained(directory, dtype=torch.float32,
                                                            attn_implementation="eager").eval()
    variants = {"int4": quantized(model, 4, 4), "int4+lm8": quantized(model, 4, 8), "int8": quantized(model, 8, 8)}
    cosines = {v: [] for v in variants}
    prefixes, collapsed = set(), 0
    print(directory)
    for name, inputs in cases.items():
        ref = last_logits(model, inputs)
        row = []
        for v, q in variants.items():
            c = torch.nn.functional.cosine_similarity(last_logits(q, inputs), ref, dim=0).item()
            cosines[v].append(c)
            row.append(f"{v} {c:.4f}")
        ids = greedy(model, inputs)
        counts = Counter(ids)
        repeats, distinct = max(counts.values()), len(counts)
        collapsed += repeats > 8 or distinct < 12
        prefixes.add(tuple(ids[:4]))
        print(f"  {name:16s} max repeats {repeats:2d}, distinct {distinct:2d}  " + "  ".join(row))
    summary = ", ".join(f"{v} worst {min(c):.4f} mean {sum(c) / len(c):.4f}" for v, c in cosines.items())
    print(f"  collapse {collapsed}/{len(cases)}, distinct 4-token openings {len(prefixes)}/{len(cases)}; {summary}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("checkpoints", nargs="+", help="q3vl make-checkpoint output directories")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = golden_inputs()
    for directory in args.checkpoints:
        study(directory, cases)


if __name__ == "__main__":
    main()
