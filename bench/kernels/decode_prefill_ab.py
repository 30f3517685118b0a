"""Alternating A/B of two q3vl packages (e.g. --kernels q3vl vs --kernels ort --accuracy-level 4).

  python3 bench/kernels/decode_prefill_ab.py --q3vl build/q3vl --probe build/bench/peers/bandwidth_probe \
      --package q3vl=/tmp/pkg-4b-q3vl --package ort-l4=/tmp/pkg-4b-ort [--rounds 2] [--new-tokens 64]

Per round and package (odd rounds in reverse order): the bandwidth probe, the 1-minute load
average, `q3vl run --json --threads 2 --no-spin` on a 128-token prompt (decode, prefill 128) and a
512-token prompt (prefill 512), peak RSS from /usr/bin/time. One JSON line per run on stdout.
"""
import argparse
import json
import os
import subprocess
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
import workloads  # noqa: E402


def main():
    p = argparse.ArgumentParser()
    p.add_argument("--q3vl", required=True)
    p.add_argument("--probe", required=True)
    p.add_argument("--package", action="append", required=True, help="LABEL=DIR (repeat)")
    p.add_argument("--rounds", type=int, default=2)
    p.add_argument("--new-tokens", type=int, default=64)
    args = p.parse_args()
    pkgs = dict(item.split("=", 1) for item in args.package)
    first = next(iter(pkgs.values()))
    prompts = {n: workloads.make_prompt(args.q3vl, first, n) for n in (128, 512)}

    def run(pkg, prompt, new):
        cmd = ["/usr/bin/time", "-f", "%M", args.q3vl, "run", "--model", pkg, "--prompt", prompt,
               "--max-new-tokens", str(new), "--threads", "2", "--json", "--temperature", "0", "--no-spin"]
        r = subprocess.run(cmd, capture_output=True, text=True, check=True)
        return json.loads(r.stdout), int(r.stderr.strip().splitlines()[-1])

    for rnd in range(args.rounds):
        order = list(pkgs) if rnd % 2 == 0 else list(reversed(pkgs))
        for name in order:
            probe = json.loads(subprocess.run([args.probe, "--threads", "2"], capture_output=True, text=True,
                                              check=True).stdout)["median_gbps"]
            load1 = open("/proc/loadavg").read().split()[0]
            d, rss1 = run(pkgs[name], prompts[128], args.new_tokens)
            f, rss2 = run(pkgs[name], prompts[512], 4)
            print(json.dumps(dict(round=rnd, kernels=name, load1=load1, probe_gbps=probe,
                                  decode_tok_s=d["timings"]["decode_tokens_per_s"],
                                  decode_tokens=d["usage"]["completion_tokens"],
                                  prefill128_tok_s=d["timings"]["prefill_tokens_per_s"],
                                  prefill512_tok_s=f["timings"]["prefill_tokens_per_s"],
                                  prompt_tokens=f["usage"]["prompt_tokens"],
                                  peak_rss_mb=max(rss1, rss2) // 1024)), flush=True)


if __name__ == "__main__":
    main()
