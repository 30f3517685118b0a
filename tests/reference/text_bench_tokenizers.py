#!/usr/bin/env python3
"""Python side of bench/text/encode_bench.cpp: times HF `tokenizers` (and the
transformers tokenizer) encoding the same 1 MiB mixed-script text.

    /work/refvenv/bin/python tests/reference/text_bench_tokenizers.py [--check-text FILE] [--repeat N]

--check-text: a file written by `bench_text_encode --write-text FILE`; the script
fails unless it built the identical bytes. Prints figures; asserts nothing else.
"""
import argparse
import json
import os
import statistics
import time
from pathlib import Path

import tokenizers
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[2]
TARGET_BYTES = 1 << 20


def build_text():
    corpus = json.loads((ROOT / "tests/reference/text_corpus.json").read_text(encoding="utf-8"))
    fragments = [f for group in sorted(corpus) if not group.startswith("_") for f in corpus[group]]
    out, size, i = [], 0, 0
    while True:
        nxt = fragments[i % len(fragments)].encode("utf-8")
        if size + len(nxt) + 1 > TARGET_BYTES:
            break
        out.append(nxt + b"\n")
        size += len(nxt) + 1
        i += 1
    return b"".join(out)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--tokenizer", default=str(ROOT / "third_party/qwen3-tokenizer"))
    ap.add_argument("--check-text")
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    data = build_text()
    if args.check_text and Path(args.check_text).read_bytes() != data:
        raise SystemExit("the C++ bench built a different text")
    text = data.decode("utf-8")
    start = time.perf_counter()
    tok = Tokenizer.from_file(os.path.join(args.tokenizer, "tokenizer.json"))
    load = time.perf_counter() - start
    times, n = [], 0
    for _ in range(args.repeat):
        start = time.perf_counter()
        n = len(tok.encode(text).ids)
        times.append(time.perf_counter() - start)
    med = statistics.median(times)
    print(f"python tokenizers {tokenizers.__version__}: text {len(data)} bytes, {n} tokens, load {load:.3f} s")
    print(f"encode: median {med:.4f} s of {args.repeat} (min {min(times):.4f}, max {max(times):.4f}) "
          f"-> {n / med:.0f} tokens/s, {len(data) / med / 1e6:.2f} MB/s")


if __name__ == "__main__":
    main()
