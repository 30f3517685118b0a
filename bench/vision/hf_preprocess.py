#!/usr/bin/env python3
"""HF side of the front-end benchmark: the default (torchvision) Qwen2VLImageProcessor with
Qwen3-VL's config, given the image path as the chat path does (decode + resize + normalise
+ patchify). Also writes the 12-megapixel test JPEG when asked.

    /work/refvenv/bin/python bench/vision/hf_preprocess.py --make /tmp/photo_4000x3000.jpg
    /work/refvenv/bin/python bench/vision/hf_preprocess.py /tmp/photo_4000x3000.jpg [--runs 10]

Prints the median and minimum wall time in ms over the runs (after one warm-up run) and the
median process CPU time (all threads), which is less sensitive to a loaded machine.
"""
import argparse
import json
import os
import statistics
import sys
import tempfile
import time

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
CONFIG = os.path.join(HERE, "..", "..", "tests", "goldens", "processor", "config")


def make_photo(path, width=4000, height=3000):
    """A deterministic photo-like 12-MP JPEG: smooth shading, edges and sensor-like noise."""
    from PIL import Image
    rng = np.random.default_rng(42)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    planes = []
    for c in range(3):
        base = 128 + 70 * np.sin(x / (180 + 40 * c)) * np.cos(y / (230 - 30 * c))
        edges = 40 * (np.sin(np.hypot(x - width * 0.4, y - height * 0.6) / 25.0) > 0.6)
        planes.append(base + edges + rng.normal(0, 6, (height, width)).astype(np.float32))
    rgb = np.clip(np.stack(planes, -1), 0, 255).astype(np.uint8)
    Image.fromarray(rgb).save(path, quality=90)


def main():
    parser = argparse.ArgumentParser()
    parser.add_argument("image", nargs="?")
    parser.add_argument("--make", help="write the 4000x3000 test JPEG here and exit")
    parser.add_argument("--runs", type=int, default=10)
    args = parser.parse_args()
    if args.make:
        make_photo(args.make)
        print(f"wrote {args.make}")
        return
    if not args.image:
        parser.error("give an image path or --make PATH")

    import torch
    from transformers import AutoImageProcessor
    processor = AutoImageProcessor.from_pretrained(CONFIG)
    processor(images=[args.image], return_tensors="pt")  # warm-up
    times, cpu = [], []
    for _ in range(args.runs):
        start, start_cpu = time.perf_counter(), time.process_time()
        out = processor(images=[args.image], return_tensors="pt")
        times.append((time.perf_counter() - start) * 1000)
        cpu.append((time.process_time() - start_cpu) * 1000)
    print(json.dumps({"ms_median": round(statistics.median(times), 1), "ms_min": round(min(times), 1),
                      "cpu_ms_median": round(statistics.median(cpu), 1),
                      "runs": args.runs, "torch_threads": torch.get_num_threads(),
                      "grid_thw": out["image_grid_thw"].tolist()}))


if __name__ == "__main__":
    main()
