#!/usr/bin/env python3
"""Soak test of `q3vl serve`: --clients streaming clients for --minutes, plus a stream of malformed
requests and abrupt disconnects, on loopback. Reports per minute: valid requests answered, server
errors on valid requests, invalid requests answered with their expected 4xx (and any that were not),
disconnects, p95 inter-token latency, the server's RSS and open file descriptors. Passes when valid
requests saw no error, every invalid request got its expected status, RSS after the warm-up minute
stays within 5 % of its first reading, and the descriptor count ends where the warm-up left it.

  python3 bench/soak/soak.py --q3vl build/q3vl --package PKG --minutes 10 --out DIR

Exit status 0 when it passes, 1 when not (the table says which figure failed).
"""

import argparse
import datetime
import http.client
import json
import os
import random
import signal
import socket
import subprocess
import sys
import threading
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "peers"))
from compare import load_average, machine  # noqa: E402

WORDS = "alpha bravo cedar delta ember fjord grove harbor island juniper kelp lumen meadow".split()
MAX_BODY = 1 << 20


def hostile_requests(model):
    """(name, method, path, body bytes, expected status)."""
    ok = {"model": model, "messages": [{"role": "user", "content": "hi"}], "max_tokens": 4}
    deep = "[" * 100000 + "]" * 100000
    return [
        ("truncated json", "POST", "/v1/chat/completions", json.dumps(ok)[:-7].encode(), 400),
        ("not json", "POST", "/v1/chat/completions", b"\x00\xff garbage", 400),
        ("messages wrong type", "POST", "/v1/chat/completions", json.dumps({**ok, "messages": "hi"}).encode(), 400),
        ("max_tokens negative", "POST", "/v1/chat/completions", json.dumps({**ok, "max_tokens": -3}).encode(), 400),
        ("temperature string", "POST", "/v1/chat/completions", json.dumps({**ok, "temperature": "hot"}).encode(), 400),
        ("unknown model", "POST", "/v1/chat/completions", json.dumps({**ok, "model": "no-such-model"}).encode(), 404),
        ("deep nesting", "POST", "/v1/chat/completions", ('{"model":"%s","messages":%s}' % (model, deep)).encode(), 400),
        ("bad base64 image", "POST", "/v1/chat/completions", json.dumps({**ok, "messages": [{"role": "user", "content": [
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,@@@not-base64@@@"}}]}]}).encode(), 400),
        ("body over limit", "POST", "/v1/chat/completions", json.dumps({**ok, "messages": [
            {"role": "user", "content": "x" * (MAX_BODY + 1000)}]}).encode(), 413),
        ("unknown route", "POST", "/v1/nothing-here", json.dumps(ok).encode(), 404),
        ("empty messages", "POST", "/v1/chat/completions", json.dumps({**ok, "messages": []}).encode(), 400),
    ]


class Stats:
    def __init__(self):
        self.lock = threading.Lock()
        self.minutes = {}

    def add(self, key, value=1, gap=None):
        minute = int((time.monotonic() - START) // 60)
        with self.lock:
            m = self.minutes.setdefault(minute, {"valid_ok": 0, "valid_error": 0, "invalid_ok": 0, "invalid_wrong": 0,
                                                 "disconnects": 0, "gaps": [], "samples": [], "errors": []})
            if gap is not None:
                m["gaps"].append(gap)
            elif key == "sample":
                m["samples"].append(value)
            elif key == "error":
                m["errors"].append(value)
            else:
                m[key] += value


START = time.monotonic()


def streaming_client(port, model, stats, stop, seed):
    rng = random.Random(seed)
    while not stop.is_set():
        body = {"model": model, "stream": True, "max_tokens": rng.randint(16, 64), "temperature": 0.7, "seed": rng.randint(0, 1 << 30),
                "messages": [{"role": "user", "content": " ".join(rng.choice(WORDS) for _ in range(rng.randint(5, 80)))}]}
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=300)
            conn.request("POST", "/v1/chat/completions", json.dumps(body), {"Content-Type": "application/json"})
            resp = conn.getresponse()
            if resp.status != 200:
                raise RuntimeError(f"status {resp.status}: {resp.read()[:200]!r}")
            last, done = None, False
            while True:
                line = resp.readline()
                if not line:
                    break
                if line.startswith(b"data: [DONE]"):
                    done = True
                    break
                if line.startswith(b"data:"):
                    event = json.loads(line[5:])
                    if "error" in event:
                        raise RuntimeError(f"error event {event['error']}")
                    now = time.perf_counter()
                    if last is not None:
                        stats.add(None, gap=now - last)
                    last = now
            conn.close()
            if not done:
                raise RuntimeError("stream ended without [DONE]")
            stats.add("valid_ok")
        except Exception as e:  # noqa: BLE001 - a soak counts every failure
            stats.add("valid_error")
            stats.add("error", f"{type(e).__name__}: {e}")


def hostile_client(port, model, stats, stop):
    cases = hostile_requests(model)
    i = 0
    while not stop.is_set():
        name, method, path, body, expected = cases[i % len(cases)]
        i += 1
        try:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
            conn.request(method, path, body, {"Content-Type": "application/json"})
            resp = conn.getresponse()
            payload = resp.read()
            conn.close()
            if resp.status == expected:
                stats.add("invalid_ok")
            else:
                stats.add("invalid_wrong")
                stats.add("error", f"{name}: got {resp.status}, expected {expected}: {payload[:160]!r}")
        except Exception as e:  # noqa: BLE001
            stats.add("invalid_wrong")
            stats.add("error", f"{name}: {type(e).__name__}: {e}")
        time.sleep(0.2)


def disconnecting_client(port, model, stats, stop, seed):
    """Starts a streamed request, reads a few events, then drops the connection without a word."""
    rng = random.Random(seed)
    while not stop.is_set():
        body = json.dumps({"model": model, "stream": rng.random() < 0.7, "max_tokens": 200,
                           "messages": [{"role": "user", "content": "tell me " + rng.choice(WORDS)}]}).encode()
        s = socket.create_connection(("127.0.0.1", port), timeout=60)
        s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                  b"Content-Length: %d\r\n\r\n" % len(body) + body)
        try:
            s.recv(rng.choice([1, 200, 2000]))
        except OSError:
            pass
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()
        stats.add("disconnects")
        time.sleep(rng.uniform(1, 4))


def sampler(pid, stats, stop):
    while not stop.is_set():
        with open(f"/proc/{pid}/status") as f:
            rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
        fds = len(os.listdir(f"/proc/{pid}/fd"))
        stats.add("sample", (rss, fds))
        stop.wait(5)


def p95(values):
    values = sorted(values)
    return values[min(len(values) - 1, int(0.95 * len(values)))] if values else None


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--q3vl", required=True)
    p.add_argument("--package", required=True)
    p.add_argument("--minutes", type=float, default=10)
    p.add_argument("--clients", type=int, default=8)
    p.add_argument("--warmup-minutes", type=int, default=1, help="minutes before the RSS baseline is taken")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--port", type=int, default=18590)
    p.add_argument("--out", required=True)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    cmd = [args.q3vl, "serve", "--model", args.package, "--port", str(args.port), "--parallel", str(args.clients),
           "--ctx-per-slot", "1024", "--threads", str(args.threads), "--max-body-bytes", str(MAX_BODY),
           "--max-queue", "64"]
    log = open(os.path.join(args.out, "server.log"), "wb")
    server = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
    model = None
    for _ in range(600):
        try:
            conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=2)
            conn.request("GET", "/health")
            health = conn.getresponse()
            health.read()
            if health.status == 200:  # /v1/models answers while loading; requests get 503 until /health is 200
                conn.request("GET", "/v1/models")
                model = json.loads(conn.getresponse().read())["data"][0]["id"]
                break
        except (OSError, http.client.HTTPException, KeyError, ValueError):
            pass
        if server.poll() is not None:
            raise SystemExit(f"server exited {server.returncode}")
        time.sleep(1)
    global START
    START = time.monotonic()
    stats, stop = Stats(), threading.Event()
    threads = [threading.Thread(target=streaming_client, args=(args.port, model, stats, stop, i)) for i in range(args.clients)]
    threads.append(threading.Thread(target=hostile_client, args=(args.port, model, stats, stop)))
    threads.append(threading.Thread(target=disconnecting_client, args=(args.port, model, stats, stop, 99)))
    threads.append(threading.Thread(target=sampler, args=(server.pid, stats, stop)))
    load_start = load_average()
    for t in threads:
        t.start()
    time.sleep(args.minutes * 60)
    stop.set()
    for t in threads:
        t.join(timeout=400)
    time.sleep(3)
    with open(f"/proc/{server.pid}/status") as f:
        final_rss = next(int(line.split()[1]) * 1024 for line in f if line.startswith("VmRSS:"))
    final_fds = len(os.listdir(f"/proc/{server.pid}/fd"))
    conn = http.client.HTTPConnection("127.0.0.1", args.port, timeout=10)
    conn.request("GET", "/health")
    health = conn.getresponse().status
    conn.close()
    server.send_signal(signal.SIGTERM)
    exit_code = server.wait(timeout=60)
    log.close()

    minutes = sorted(stats.minutes)
    rows = ["| minute | valid ok | valid errors | invalid → expected 4xx | invalid wrong | disconnects | p95 inter-token ms | RSS MB (max) | fds (max) |",
            "|---|---|---|---|---|---|---|---|---|"]
    for m in minutes:
        s = stats.minutes[m]
        rss = max((x[0] for x in s["samples"]), default=0) / 1e6
        fds = max((x[1] for x in s["samples"]), default=0)
        gap = p95(s["gaps"])
        rows.append(f"| {m + 1} | {s['valid_ok']} | {s['valid_error']} | {s['invalid_ok']} | {s['invalid_wrong']} | "
                    f"{s['disconnects']} | {gap * 1e3 if gap else 0:.1f} | {rss:.0f} | {fds} |")
    total = {k: sum(stats.minutes[m][k] for m in minutes) for k in ("valid_ok", "valid_error", "invalid_ok", "invalid_wrong", "disconnects")}
    after_warmup = [x for m in minutes[args.warmup_minutes:] for x in stats.minutes[m]["samples"]]
    first = after_warmup[0] if after_warmup else (final_rss, final_fds)
    rss_growth = max(x[0] for x in after_warmup) / first[0] - 1 if after_warmup else 0
    checks = {"no server error on valid requests": total["valid_error"] == 0,
              "every invalid request got its expected 4xx": total["invalid_wrong"] == 0,
              "RSS after warm-up within 5 %": rss_growth <= 0.05,
              "no descriptor leaked (end <= after warm-up)": final_fds <= first[1],
              "/health 200 at the end": health == 200, "exit 0 on SIGTERM": exit_code == 0}
    errors = [e for m in minutes for e in stats.minutes[m]["errors"]]
    commit = subprocess.run(["git", "-C", os.path.dirname(os.path.abspath(__file__)), "rev-parse", "--short", "HEAD"],
                            capture_output=True, text=True).stdout.strip()
    text = "\n".join([
        f"# Soak: `q3vl serve`, {args.clients} streaming clients + malformed requests + disconnects, {args.minutes:g} min",
        "", f"- {datetime.datetime.now(datetime.timezone.utc).isoformat(timespec='seconds')}, commit {commit}",
        f"- machine: {machine()}; 1-minute load at start {load_start[0]:.1f}",
        f"- server: `{' '.join(cmd)}`",
        f"- totals: {total}; RSS after warm-up {first[0] / 1e6:.0f} MB → max {max((x[0] for x in after_warmup), default=0) / 1e6:.0f} MB "
        f"({rss_growth * 100:+.1f} %), end {final_rss / 1e6:.0f} MB; fds after warm-up {first[1]}, end {final_fds}", "",
        *rows, "", "| check | result |", "|---|---|",
        *[f"| {k} | {'pass' if v else 'FAIL'} |" for k, v in checks.items()], "",
        "First errors (if any):", *[f"- {e}" for e in errors[:20]], ""])
    with open(os.path.join(args.out, "results.md"), "w") as f:
        f.write(text)
    print(text)
    return 0 if all(checks.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
