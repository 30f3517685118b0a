#!/usr/bin/env python3
"""Side-by-side benchmark: q3vl against peer runtimes, alternating, on one machine.

Memory bandwidth on the shared VMs this project runs on swings 33-70 GB/s from minute to
minute (bench/peers/targets.md), so figures from different times cannot be compared. This driver runs
the systems alternately, N rounds, on the same workloads; before every measurement it waits
until the 1-minute load average is below --max-load (for at most --max-wait seconds, then it
measures anyway and records that it did); it runs bandwidth_probe before and after every round.
It writes results.json (every figure, load, probe, command log) and results.md (medians and
q3vl / peer ratios) into --out. See README.md here for the peers and how to build them.

  python3 bench/peers/compare.py --q3vl build/q3vl --package PKG \
      --llama-bin DIR --llama-text-gguf Q4_0.gguf --llama-vlm-gguf Q4_K_M.gguf \
      --llama-mmproj mmproj.gguf --probe build/bench/peers/bandwidth_probe --rounds 3 --out DIR
"""

import argparse
import datetime
import json
import os
import platform
import subprocess
import sys
import time

import report
import systems
import workloads


def load_average():
    with open("/proc/loadavg") as f:
        return [float(x) for x in f.read().split()[:3]]


def wait_for_quiet(max_load, max_wait):
    """Poll until the 1-minute load is below max_load or max_wait seconds pass."""
    start = time.monotonic()
    while load_average()[0] >= max_load and time.monotonic() - start < max_wait:
        time.sleep(5)
    load = load_average()
    return {"load_at_start": load, "waited_s": round(time.monotonic() - start, 1),
            "gate_passed": load[0] < max_load}


def probe(binary):
    out = subprocess.run([binary, "--threads", "2"], check=True, capture_output=True, text=True).stdout
    result = json.loads(out)
    result["time"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    result["load"] = load_average()
    return result


def machine():
    model = ""
    with open("/proc/cpuinfo") as f:
        for line in f:
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    with open("/proc/meminfo") as f:
        mem_kib = int(f.readline().split()[1])
    return {"cpu": model, "cpus": os.cpu_count(), "mem_gib": round(mem_kib / 2**20, 1),
            "kernel": platform.release()}


def dir_bytes(path):
    if os.path.isfile(path):
        return os.path.getsize(path)
    return sum(os.path.getsize(os.path.join(d, f)) for d, _, fs in os.walk(path) for f in fs)


def kv_elements_per_token(package):
    """K and V elements one context token adds to the cache, all layers (q3vl.json's decoder
    shape): what llama.cpp's f16 cache holds per token for the same model."""
    with open(os.path.join(package, "q3vl.json")) as f:
        decoder = json.load(f)["decoder"]
    return 2 * decoder["num_hidden_layers"] * decoder["num_key_value_heads"] * decoder["head_dim"]


def evict_from_page_cache(paths):
    """Drops the files' clean pages from the page cache (POSIX_FADV_DONTNEED; no root needed),
    so every run maps its weights as a cold start does. Without it a package written minutes
    earlier can sit in the cache in large folios, and touching a few rows of the embedding
    table then maps whole folios: measured +160 MB of peak RSS on the 4b text run
    (bench/peers/results/2026-12-07-4b-zen4-bf16.md)."""
    for root in paths:
        files = [root] if os.path.isfile(root) else [os.path.join(d, f) for d, _, fs in os.walk(root) for f in fs]
        for path in files:
            fd = os.open(path, os.O_RDONLY)
            try:
                os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
            finally:
                os.close(fd)


def parse_args():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--q3vl", required=True, help="q3vl executable")
    p.add_argument("--package", required=True, help="q3vl package directory (q3vl build --out)")
    p.add_argument("--q3vl-arg", action="append", default=[], help="extra argument for q3vl bench (repeatable)")
    p.add_argument("--llama-bin", help="directory with llama-bench and llama-mtmd-cli")
    p.add_argument("--llama-text-gguf", help="GGUF for llama-bench (text figures)")
    p.add_argument("--llama-vlm-gguf", help="GGUF for llama-mtmd-cli (image figures)")
    p.add_argument("--llama-mmproj", help="mmproj GGUF for llama-mtmd-cli")
    p.add_argument("--probe", required=True, help="bandwidth_probe executable (bench/peers)")
    p.add_argument("--rounds", type=int, default=3)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--workloads", default="text,image", help="comma list of text, image")
    p.add_argument("--max-load", type=float, default=3.0, help="1-minute load average gate")
    p.add_argument("--max-wait", type=float, default=120.0, help="longest wait for the gate, seconds")
    p.add_argument("--out", required=True, help="results directory (created)")
    return p.parse_args()


def main():
    args = parse_args()
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    chosen = args.workloads.split(",")
    contenders = [systems.Q3vl(args.q3vl, args.package, args.threads, args.q3vl_arg)]
    if args.llama_bin:
        contenders.append(systems.LlamaCpp(args.llama_bin, args.llama_text_gguf, args.llama_vlm_gguf,
                                           args.llama_mmproj, args.threads))
    images = workloads.make_images(args.out)

    results = {"started": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
               "machine": machine(), "args": vars(args), "rounds": [],
               "weights_bytes": {"q3vl_package": dir_bytes(args.package)}, "read_bytes": {}}
    weight_paths = [args.package]
    for key in ("llama_text_gguf", "llama_vlm_gguf", "llama_mmproj"):
        if getattr(args, key):
            results["weights_bytes"][key] = dir_bytes(getattr(args, key))
            weight_paths.append(getattr(args, key))
    results["page_cache"] = "every system's weight files evicted before each run"

    for r in range(args.rounds):
        # Alternate which system goes first, so neither always meets the warmer (or the busier) minute.
        order = contenders if r % 2 == 0 else contenders[::-1]
        rnd = {"index": r, "order": [c.name for c in order], "probe_before": probe(args.probe),
               "measurements": []}
        for workload in chosen:
            cases = [("text", None)] if workload == "text" else [("image", s) for s in workloads.IMAGE_SIZES]
            for kind, size in cases:
                for system in order:
                    gate = wait_for_quiet(args.max_load, args.max_wait)
                    evict_from_page_cache(weight_paths)
                    label = f"r{r}_{system.name}_{kind}{'_' + size if size else ''}"
                    log = os.path.join(args.out, "logs", label)
                    if kind == "text":
                        figures = system.text(log)
                    else:
                        figures = system.image(size, images[size], workloads.IMAGE_PROMPT, log)
                    entry = {"system": system.name, "workload": kind, "size": size, "gate": gate,
                             "load_after": load_average(), "figures": figures}
                    rnd["measurements"].append(entry)
                    bench = figures.get("raw", {}).get("bench") if isinstance(figures.get("raw"), dict) else None
                    if bench:
                        # What q3vl bench counts as read per decode token: every decoder initializer,
                        # and with the K/V rows each step attends over (read_bytes_per_token).
                        results["weights_bytes"]["q3vl_decoder"] = bench["package"]["decoder_weight_bytes"]
                        if bench.get("decode") and "read_bytes_per_token" in bench["decode"][0]:
                            results["read_bytes"]["q3vl"] = bench["decode"][0]["read_bytes_per_token"]
                            # llama-bench's tg128 starts from an empty f16 cache of the same shape:
                            # its steps attend over 1..128 tokens, 64.5 on average.
                            results["read_bytes"]["llama_kv"] = 64.5 * 2 * kv_elements_per_token(args.package)
                    print(f"[{label}] load {gate['load_at_start'][0]:.1f} "
                          f"{ {k: v for k, v in figures.items() if k != 'raw'} }", flush=True)
        rnd["probe_after"] = probe(args.probe)
        print(f"[round {r}] bandwidth {rnd['probe_before']['median_gbps']} -> "
              f"{rnd['probe_after']['median_gbps']} GB/s", flush=True)
        results["rounds"].append(rnd)
        with open(os.path.join(args.out, "results.json"), "w") as f:
            json.dump(results, f, indent=1)

    results["finished"] = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump(results, f, indent=1)
    markdown = report.render(results)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(markdown)
    print(markdown)
    return 0


if __name__ == "__main__":
    sys.exit(main())
