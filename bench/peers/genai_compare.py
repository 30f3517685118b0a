#!/usr/bin/env python3
"""Side by side under ONNX Runtime GenAI: a package q3vl built (`--target ort-genai`) against the
package ONNX Runtime GenAI's own model builder made from the same checkpoint.

Both are run by the same `onnxruntime_genai` wheel, in alternating rounds, each measurement in a
fresh process (so its peak RSS is that process's alone and no cache carries over):
  prefill: `append_tokens` of exactly P random token ids (no chat template) on an empty cache,
           tokens per second over the call (GenAI runs the whole prompt in it);
  decode:  N `generate_next_token` steps after a 128-token prompt, greedy; tokens per second over
           steps 2..N (step 1 is the prompt's own token);
  ttft:    wall time from the processor call to the first token for a chat prompt with one image of
           the given size (only packages with a vision graph: the builder's makes none).
One warm-up prefill per process precedes the timed calls. The decoder's threads are pinned to
--threads in every package (GenAI's config overlay). The KV buffer is allocated at --max-length in
both packages (GenAI shares past/present at max_length; the builder's config says 262144).

  .venv/bin/python bench/peers/genai_compare.py --package q3vl=PKG_A --package builder=PKG_B \
      --rounds 2 --out DIR
"""

import argparse
import datetime
import json
import os
import subprocess
import sys
import time

from compare import load_average, machine, dir_bytes


def worker(args):
    import numpy as np
    import onnxruntime_genai as og

    config = og.Config(args.worker)
    with open(os.path.join(args.worker, "genai_config.json")) as f:
        model_section = json.load(f)["model"]
    sections = [k for k in ("decoder", "embedding", "vision") if k in model_section]
    threads = {"session_options": {"intra_op_num_threads": args.threads, "inter_op_num_threads": 1}}
    config.overlay(json.dumps({"model": {k: threads for k in sections}}))
    model = og.Model(config)
    tokenizer = og.Tokenizer(model)
    rng = np.random.default_rng(7)
    vocab = 150000  # ordinary tokens only: Qwen's special tokens start at 151643

    def fresh():
        params = og.GeneratorParams(model)
        params.set_search_options(max_length=args.max_length, do_sample=False)
        return og.Generator(model, params)

    def prefill(tokens):
        gen = fresh()
        ids = rng.integers(1000, vocab, size=tokens, dtype=np.int32)
        start = time.perf_counter()
        gen.append_tokens(ids)
        return gen, time.perf_counter() - start

    out = {"prefill": {}, "decode": None, "ttft_ms": {}}
    prefill(64)  # warm-up: first-call allocations and kernel selection
    for p in args.prompt_tokens:
        _, seconds = prefill(p)
        out["prefill"][p] = p / seconds
    gen, _ = prefill(128)
    stamps = []
    for _ in range(args.new_tokens):
        gen.generate_next_token()
        gen.get_next_tokens()
        stamps.append(time.perf_counter())
    out["decode"] = (len(stamps) - 1) / (stamps[-1] - stamps[0])
    if "vision" in sections:
        from PIL import Image

        processor = model.create_multimodal_processor()
        for size in args.image:
            w, h = (int(x) for x in size.split("x"))
            path = os.path.join(args.tmp, f"img-{w}x{h}.png")
            pixels = np.random.default_rng(w * h).integers(0, 256, size=(h, w, 3), dtype=np.uint8)
            Image.fromarray(pixels).save(path)
            messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image."}]}]
            prompt = tokenizer.apply_chat_template(json.dumps(messages), add_generation_prompt=True)
            start = time.perf_counter()
            inputs = processor(prompt, images=og.Images.open(path))
            gen = fresh()
            gen.set_inputs(inputs)
            gen.generate_next_token()
            gen.get_next_tokens()
            out["ttft_ms"][size] = (time.perf_counter() - start) * 1e3
    print(json.dumps(out))


def measure(name, package, args, log_dir, round_index):
    cmd = [sys.executable, os.path.abspath(__file__), "--worker", package, "--threads", str(args.threads),
           "--max-length", str(args.max_length), "--new-tokens", str(args.new_tokens), "--tmp", log_dir,
           "--prompt-tokens", ",".join(map(str, args.prompt_tokens))]
    if args.image:
        cmd += ["--image", ",".join(args.image)]
    load = load_average()
    with open(os.path.join(log_dir, f"{name}-{round_index}.stderr"), "w+b") as err:
        proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=err)
        stdout = proc.stdout.read()
        _, status, usage = os.wait4(proc.pid, 0)
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"{name}: worker failed, see {err.name}")
    result = json.loads(stdout)
    result["peak_rss_bytes"] = usage.ru_maxrss * 1024
    result["load_at_start"] = load
    return result


def median(values):
    values = sorted(values)
    n = len(values)
    return values[n // 2] if n % 2 else (values[n // 2 - 1] + values[n // 2]) / 2


def render(args, results, info):
    names = [n for n, _ in args.package]
    base = names[-1]
    rows = [(f"prefill tok/s, {p} tokens", lambda r, p=p: r["prefill"][str(p)], True) for p in args.prompt_tokens]
    rows.append((f"decode tok/s ({args.new_tokens} steps after 128 tokens)", lambda r: r["decode"], True))
    for size in args.image:
        rows.append((f"TTFT ms, one {size} image", lambda r, s=size: r["ttft_ms"].get(s), False))
    rows.append(("peak RSS GB (process)", lambda r: r["peak_rss_bytes"] / 1e9, False))
    lines = [f"| figure | " + " | ".join(names) + f" | ratio {names[0]} / {base} |",
             "|---|" + "---|" * (len(names) + 1)]
    for label, get, _ in rows:
        meds = {}
        for n in names:
            vals = [get(r) for r in results[n]]
            vals = [v for v in vals if v is not None]
            meds[n] = median(vals) if vals else None
        cells = []
        for n in names:
            vals = [get(r) for r in results[n]]
            cells.append("—" if meds[n] is None else f"{meds[n]:.2f} ({', '.join(f'{v:.2f}' for v in vals)})")
        ratio = f"{meds[names[0]] / meds[base]:.2f}×" if meds[names[0]] and meds[base] else "—"
        lines.append(f"| {label} | " + " | ".join(cells) + f" | {ratio} |")
    head = [f"# ONNX Runtime GenAI side by side ({info['time']})", "",
            f"- machine: {info['machine']}", f"- q3vl commit: {info['commit']}",
            f"- onnxruntime-genai {info['genai']}, threads {args.threads}, max_length {args.max_length}, "
            f"rounds {args.rounds} (alternating, each measurement a fresh process)",
            f"- 1-minute load at each start: {info['loads']}",
            "- packages (decoder weight bytes = the decoder's .onnx + .onnx.data):"]
    for n, p in args.package:
        head.append(f"  - {n}: `{p}`, decoder {info['bytes'][n] / 1e9:.2f} GB")
    head += ["", "Median (each round's value in brackets).", ""]
    return "\n".join(head + lines) + "\n"


def decoder_bytes(package):
    with open(os.path.join(package, "genai_config.json")) as f:
        name = json.load(f)["model"]["decoder"]["filename"]
    return sum(os.path.getsize(os.path.join(package, f)) for f in os.listdir(package) if f.startswith(name))


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--package", action="append", default=[], help="NAME=DIR; the first is the numerator of the ratio")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--prompt-tokens", default="128,512")
    p.add_argument("--new-tokens", type=int, default=128)
    p.add_argument("--image", default="448x448")
    p.add_argument("--max-length", type=int, default=4096)
    p.add_argument("--out")
    p.add_argument("--worker", help=argparse.SUPPRESS)
    p.add_argument("--tmp", help=argparse.SUPPRESS)
    args = p.parse_args()
    args.prompt_tokens = [int(x) for x in args.prompt_tokens.split(",") if x]
    args.image = [x for x in args.image.split(",") if x and x != "none"]
    if args.worker:
        return worker(args)
    args.package = [tuple(x.split("=", 1)) for x in args.package]
    os.makedirs(args.out, exist_ok=True)
    results = {n: [] for n, _ in args.package}
    loads = []
    for r in range(args.rounds):
        order = args.package if r % 2 == 0 else list(reversed(args.package))
        for name, package in order:
            res = measure(name, package, args, args.out, r)
            loads.append(f"{name} r{r}: {res['load_at_start'][0]:.1f}")
            results[name].append(res)
            print(f"[genai_compare] round {r} {name}: {json.dumps({k: res[k] for k in ('prefill', 'decode', 'ttft_ms')})}",
                  flush=True)
    import onnxruntime_genai as og
    info = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "genai": og.__version__, "loads": ", ".join(loads),
            "commit": subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short",
                                      "HEAD"], capture_output=True, text=True).stdout.strip(),
            "bytes": {n: decoder_bytes(p) for n, p in args.package}}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"info": info, "results": results}, f, indent=1)
    text = render(args, results, info)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
