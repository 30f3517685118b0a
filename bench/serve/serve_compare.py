#!/usr/bin/env python3
"""`q3vl serve` against `llama-server`, side by side: one server at a time on the same port range, the
same OpenAI chat-completions requests, streaming, at 1, 2, 4 and 8 concurrent clients.

Workloads (each client sends --requests-per-client requests back to back; every request has its own
prompt text and, for images, its own random image, so no cache of either server can serve it):
  text:  a ~60-token user message, `max_tokens` --max-tokens, greedy;
  image: the same plus one 448x448 PNG as a data URL.
Per level it records requests/s, aggregate completion tokens/s (tokens from each response's `usage`,
over the level's wall time), p50/p95 time to first token and p50/p95 inter-token latency (gaps
between streamed content chunks), and the server's peak RSS (VmHWM from /proc, read at the end).
Servers run in alternating order over --rounds; the median of the rounds is reported with each
round's value, and the ratio first/second.

  python3 bench/serve/serve_compare.py --q3vl build/q3vl --package PKG \
      --llama-server DIR/llama-server --gguf Q4_0.gguf --mmproj mmproj.gguf --out DIR
"""

import argparse
import base64
import datetime
import http.client
import json
import os
import random
import signal
import statistics
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
from compare import load_average, machine  # noqa: E402

WORDS = ("river stone garden window silver quiet morning engine paper lantern orbit harbor meadow "
         "signal copper forest thunder violet bridge canyon marble ember glacier compass").split()


def png_data_url(width, height, seed):
    """A random RGB PNG, written with zlib (no imaging library needed)."""
    import struct
    import zlib

    rng = random.Random(seed)
    raw = b"".join(b"\x00" + bytes(rng.getrandbits(8) for _ in range(width * 3)) for _ in range(height))

    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)

    png = (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)) +
           chunk(b"IDAT", zlib.compress(raw, 1)) + chunk(b"IEND", b""))
    return "data:image/png;base64," + base64.b64encode(png).decode()


def prompt_text(seed):
    rng = random.Random(seed)
    return "Tell a story about " + " ".join(rng.choice(WORDS) for _ in range(50)) + "."


class Server:
    def __init__(self, name, cmd, port, env=None):
        self.name, self.cmd, self.port, self.env = name, cmd, port, env
        self.proc = None
        self.model = None

    def start(self, log_path, timeout=600):
        self.log = open(log_path, "wb")
        self.proc = subprocess.Popen(self.cmd, stdout=self.log, stderr=subprocess.STDOUT, env=self.env)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise SystemExit(f"{self.name} exited with {self.proc.returncode}; see {log_path}")
            try:
                conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=2)
                conn.request("GET", "/health")
                health = conn.getresponse()
                health.read()
                if health.status == 200:
                    conn.request("GET", "/v1/models")
                    self.model = json.loads(conn.getresponse().read())["data"][0]["id"]
                    return
            except (OSError, http.client.HTTPException, KeyError, ValueError):
                pass
            time.sleep(1)
        raise SystemExit(f"{self.name} did not become healthy in {timeout} s")

    def peak_rss(self):
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1]) * 1024
        return None

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        self.log.close()


def stream_request(port, body):
    """One streamed chat completion; returns (ttft_s, [gaps_s], completion_tokens, total_s)."""
    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=600)
    start = time.perf_counter()
    conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
    resp = conn.getresponse()
    if resp.status != 200:
        raise RuntimeError(f"HTTP {resp.status}: {resp.read()[:300]!r}")
    stamps, usage = [], None
    while True:
        line = resp.readline()
        if not line:
            break
        line = line.strip()
        if not line.startswith(b"data:"):
            continue
        data = line[5:].strip()
        if data == b"[DONE]":
            break
        event = json.loads(data)
        if event.get("usage"):
            usage = event["usage"]
        for choice in event.get("choices", []):
            if choice.get("delta", {}).get("content"):
                stamps.append(time.perf_counter())
    total = time.perf_counter() - start
    conn.close()
    if not stamps or usage is None:
        raise RuntimeError("stream without content or usage")
    gaps = [b - a for a, b in zip(stamps, stamps[1:])]
    return stamps[0] - start, gaps, usage["completion_tokens"], total


def run_level(server, workload, clients, args, seed_base):
    bodies = []
    for c in range(clients):
        per_client = []
        for r in range(args.requests_per_client):
            seed = seed_base + 1000 * c + r
            content = [{"type": "text", "text": prompt_text(seed)}]
            if workload == "image":
                content.insert(0, {"type": "image_url", "image_url": {"url": png_data_url(448, 448, seed)}})
            per_client.append({"model": server.model, "messages": [{"role": "user", "content": content}],
                               "max_tokens": args.max_tokens, "temperature": 0, "stream": True,
                               "stream_options": {"include_usage": True}})
        bodies.append(per_client)
    results, errors = [], []

    def client(i):
        for body in bodies[i]:
            try:
                results.append(stream_request(server.port, body))
            except Exception as e:  # noqa: BLE001 - reported, counted, and the run continues
                errors.append(str(e))

    threads = [threading.Thread(target=client, args=(i,)) for i in range(clients)]
    start = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    wall = time.perf_counter() - start
    ttfts = sorted(r[0] for r in results)
    gaps = sorted(g for r in results for g in r[1])

    def pct(values, q):
        return values[min(len(values) - 1, int(q * len(values)))] if values else None

    return {"requests": len(results), "errors": errors, "wall_s": wall,
            "requests_per_s": len(results) / wall, "tokens_per_s": sum(r[2] for r in results) / wall,
            "completion_tokens": sum(r[2] for r in results),
            "ttft_p50_ms": pct(ttfts, 0.5) * 1e3, "ttft_p95_ms": pct(ttfts, 0.95) * 1e3,
            "itl_p50_ms": pct(gaps, 0.5) * 1e3 if gaps else None, "itl_p95_ms": pct(gaps, 0.95) * 1e3 if gaps else None}


FIGURES = [("tokens_per_s", "aggregate tok/s", True), ("requests_per_s", "requests/s", True),
           ("ttft_p50_ms", "TTFT p50 ms", False), ("ttft_p95_ms", "TTFT p95 ms", False),
           ("itl_p50_ms", "inter-token p50 ms", False), ("itl_p95_ms", "inter-token p95 ms", False)]


def render(args, results, info, names):
    if len(names) == 1:
        names = names * 2  # one system: its figures twice, ratio 1
    a, b = names
    lines = [f"# `q3vl serve` vs `llama-server` ({info['time']})", "",
             f"- machine: {info['machine']}", f"- q3vl commit: {info['commit']}",
             f"- {a}: `{' '.join(info['cmd'][a])}`", f"- {b}: `{' '.join(info['cmd'][b])}`",
             f"- {args.requests_per_client} requests per client, max_tokens {args.max_tokens}, greedy, streamed; "
             f"rounds {args.rounds} alternating; 1-minute load at each server start: {info['loads']}",
             f"- peak RSS (VmHWM, whole run): " + ", ".join(f"{n} {info['rss'][n]}" for n in names), "",
             "Median over rounds (each round in brackets); ratio = q3vl / llama-server.", ""]
    for workload in args.workloads:
        lines += [f"## {workload}", "", "| clients | figure | " + " | ".join(names) + " | ratio |", "|---|---|---|---|---|"]
        for c in args.clients:
            for key, label, _ in FIGURES:
                cells, meds = [], []
                for n in names:
                    vals = [r[workload][str(c)][key] for r in results[n] if r[workload][str(c)][key] is not None]
                    med = statistics.median(vals) if vals else None
                    meds.append(med)
                    cells.append("—" if med is None else f"{med:.1f} ({', '.join(f'{v:.1f}' for v in vals)})")
                ratio = f"{meds[0] / meds[1]:.2f}×" if meds[0] and meds[1] else "—"
                lines.append(f"| {c} | {label} | " + " | ".join(cells) + f" | {ratio} |")
            errs = {n: sum(len(r[workload][str(c)]["errors"]) for r in results[n]) for n in names}
            if any(errs.values()):
                lines.append(f"| {c} | errors | " + " | ".join(str(errs[n]) for n in names) + " | |")
        lines.append("")
    return "\n".join(lines)


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--q3vl", required=True)
    p.add_argument("--package", required=True)
    p.add_argument("--llama-server", required=True)
    p.add_argument("--gguf", required=True)
    p.add_argument("--mmproj", required=True)
    p.add_argument("--parallel", type=int, default=8)
    p.add_argument("--ctx-per-slot", type=int, default=1024)
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--clients", default="1,2,4,8")
    p.add_argument("--workloads", default="text,image")
    p.add_argument("--requests-per-client", type=int, default=2)
    p.add_argument("--max-tokens", type=int, default=64)
    p.add_argument("--rounds", type=int, default=1)
    p.add_argument("--port", type=int, default=18480)
    p.add_argument("--q3vl-arg", action="append", default=[], help="extra flag for q3vl serve (repeat; use --q3vl-arg=--flag)")
    p.add_argument("--systems", default="q3vl,llama-server", help="which servers to run")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    args.clients = [int(x) for x in args.clients.split(",")]
    args.workloads = args.workloads.split(",")
    os.makedirs(args.out, exist_ok=True)
    cmds = {
        "q3vl": [args.q3vl, "serve", "--model", args.package, "--port", str(args.port), "--parallel",
                 str(args.parallel), "--ctx-per-slot", str(args.ctx_per_slot), "--threads", str(args.threads)] + args.q3vl_arg,
        "llama-server": [args.llama_server, "--model", args.gguf, "--mmproj", args.mmproj, "--port",
                         str(args.port + 1), "-np", str(args.parallel), "-c", str(args.parallel * args.ctx_per_slot),
                         "-t", str(args.threads), "-tb", str(args.threads), "--no-webui"],
    }
    ports = {"q3vl": args.port, "llama-server": args.port + 1}
    names = args.systems.split(",")
    results = {n: [] for n in names}
    loads, rss = [], {}
    for r in range(args.rounds):
        for name in (names if r % 2 == 0 else names[::-1]):
            server = Server(name, cmds[name], ports[name])
            loads.append(f"{name} r{r}: {load_average()[0]:.1f}")
            server.start(os.path.join(args.out, f"{name}-{r}.log"))
            figures = {}
            for workload in args.workloads:
                figures[workload] = {}
                for c in args.clients:
                    level = run_level(server, workload, c, args, seed_base=100000 * r + 10000 * c)
                    figures[workload][str(c)] = level
                    print(f"[serve_compare] r{r} {name} {workload} c={c}: "
                          f"{level['tokens_per_s']:.1f} tok/s, ttft p50 {level['ttft_p50_ms']:.0f} ms, "
                          f"errors {len(level['errors'])}", flush=True)
            rss[name] = f"{server.peak_rss() / 1e9:.2f} GB"
            server.stop()
            results[name].append(figures)
    info = {"time": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
            "machine": machine(), "loads": ", ".join(loads), "rss": rss, "cmd": cmds,
            "commit": subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short",
                                      "HEAD"], capture_output=True, text=True).stdout.strip()}
    with open(os.path.join(args.out, "results.json"), "w") as f:
        json.dump({"info": info, "results": results}, f, indent=1)
    text = render(args, results, info, names)
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    print(text)


if __name__ == "__main__":
    main()
