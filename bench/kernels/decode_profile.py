#!/usr/bin/env python3
"""Where a decode step's time goes, from the ONNX Runtime traces `q3vl bench --profile` writes.

    q3vl bench --model PKG -p 0 -n 32 -d 512 -r 1 --warmup 0 --image none --profile /tmp/p
    bench/kernels/decode_profile.py /tmp/p.decoder_*.json [--embed /tmp/p.embed_*.json]

A decode step is a decoder run whose attention query (GroupQueryAttention, or q3vl.KvAttention
with a float16 KV cache) has sequence length 1 (the
prefill runs of the same trace are left out). For those steps it prints, as markdown:
  - step time (model_run), the time inside nodes and the rest (executor + profiler
    overhead between nodes), nodes executed per step;
  - per op type: time per step, share of the step, nodes per step, mean us per node;
  - per node class (the node name with the layer number removed, e.g.
    "layers.*/self_attn/qkv_proj/QuantLinear"): the same, plus GB/s for q3vl.QuantLinear
    and MatMulNBits nodes (their weight inputs' bytes / node time);
  - with --embed, the embed graph's time per step.
Times are the profiler's (microseconds, wall clock of the thread that runs the node). The
standard library only; the trace format is ORT's Chrome-trace JSON (one event per node run,
args.op_name, args.input_type_shape).
"""
import argparse
import json
import re
import statistics
from collections import defaultdict

LAYER = re.compile(r"layers\.\d+")
WEIGHT_OPS = {"QuantLinear", "QuantSwiGLU", "MatMulNBits"}


def load(path):
    with open(path) as f:
        return json.load(f)


def runs_with_nodes(events):
    """[(model_run event, [node events inside it])] in time order."""
    runs = sorted((e for e in events if e.get("cat") == "Session" and e["name"] == "model_run"),
                  key=lambda e: e["ts"])
    nodes = sorted((e for e in events if e.get("cat") == "Node"), key=lambda e: e["ts"])
    out, i = [], 0
    for run in runs:
        end = run["ts"] + run["dur"]
        inside = []
        while i < len(nodes) and nodes[i]["ts"] < run["ts"]:
            i += 1
        while i < len(nodes) and nodes[i]["ts"] <= end:
            inside.append(nodes[i])
            i += 1
        out.append((run, inside))
    return out


def shapes(node, key):
    return [next(iter(t.values())) for t in node["args"].get(key, [])]


ATTENTION_OPS = {"GroupQueryAttention", "KvAttention"}


def is_decode(nodes):
    for n in nodes:
        if n["args"].get("op_name") in ATTENTION_OPS:
            return shapes(n, "input_type_shape")[0][1] == 1
    raise SystemExit("decode_profile: no GroupQueryAttention / KvAttention node in a run: not a q3vl decoder trace")


def weight_bytes(node):
    """Bytes of a quantized linear's weight + scales (+ zero points) inputs."""
    total = 0
    for t in node["args"].get("input_type_shape", [])[1:]:
        (dtype, dims), = t.items()
        if dtype in ("uint8", "float16", "MLFloat16"):
            size = 1 if dtype == "uint8" else 2
            count = 1
            for d in dims:
                count *= d
            total += size * count
        elif dtype == "float" and len(dims) == 2:  # MatMulNBits' fp32 scales [N, k_blocks]
            total += 4 * dims[0] * dims[1]
    return total


def node_class(node):
    name = node["name"].removesuffix("_kernel_time")
    return LAYER.sub("layers.*", name)


def summarize(decoder_path, embed_path, top):
    steps = [(run, nodes) for run, nodes in runs_with_nodes(load(decoder_path)) if is_decode(nodes)]
    if not steps:
        raise SystemExit("decode_profile: no decode step (a run with one query token) in " + decoder_path)
    n = len(steps)
    step_us = [run["dur"] for run, _ in steps]
    node_us = [sum(x["dur"] for x in nodes) for _, nodes in steps]
    counts = [len(nodes) for _, nodes in steps]
    mean_step = statistics.mean(step_us)

    by_op = defaultdict(lambda: [0.0, 0])
    by_class = defaultdict(lambda: [0.0, 0, "", 0])
    for _, nodes in steps:
        for x in nodes:
            op = x["args"].get("op_name", "?")
            by_op[op][0] += x["dur"]
            by_op[op][1] += 1
            c = by_class[node_class(x)]
            c[0] += x["dur"]
            c[1] += 1
            c[2] = op
            if op in WEIGHT_OPS:
                c[3] = weight_bytes(x)

    lines = []
    lines.append(f"decode steps: {n} (of {len(runs_with_nodes(load(decoder_path)))} decoder runs in the trace)\n")
    lines.append("| figure | mean per step | share of step |")
    lines.append("|---|---:|---:|")
    lines.append(f"| decoder run (model_run) | {mean_step / 1000:.2f} ms | 100.0 % |")
    inside = statistics.mean(node_us)
    lines.append(f"| inside nodes | {inside / 1000:.2f} ms | {100 * inside / mean_step:.1f} % |")
    lines.append(f"| between nodes (executor + profiler) | {(mean_step - inside) / 1000:.2f} ms | "
                 f"{100 * (mean_step - inside) / mean_step:.1f} % |")
    lines.append(f"| nodes executed | {statistics.mean(counts):.0f} | |")
    lines.append(f"| between-node time per node | {(mean_step - inside) / statistics.mean(counts):.1f} us | |")
    if embed_path:
        embed_runs = runs_with_nodes(load(embed_path))
        decode_embeds = [r["dur"] for r, nodes in embed_runs
                         if nodes and shapes(nodes[0], "output_type_shape")[0][-2] == 1]
        if decode_embeds:
            e = statistics.mean(decode_embeds[-n:])
            lines.append(f"| embed run (separate graph) | {e / 1000:.3f} ms | {100 * e / mean_step:.2f} % of the decoder run |")
    lines.append("")
    lines.append("Per op type (sum over one step):\n")
    lines.append("| op | ms per step | share of step | nodes per step | us per node |")
    lines.append("|---|---:|---:|---:|---:|")
    for op, (us, cnt) in sorted(by_op.items(), key=lambda kv: -kv[1][0]):
        lines.append(f"| {op} | {us / n / 1000:.3f} | {100 * us / n / mean_step:.1f} % | {cnt / n:.0f} | {us / cnt:.1f} |")
    lines.append("")
    lines.append(f"Per node class (layer number folded; top {top} by time):\n")
    lines.append("| node class | op | ms per step | share | nodes per step | us per node | weight GB/s |")
    lines.append("|---|---|---:|---:|---:|---:|---:|")
    for name, (us, cnt, op, wbytes) in sorted(by_class.items(), key=lambda kv: -kv[1][0])[:top]:
        per_node = us / cnt
        gbs = f"{wbytes / per_node / 1000:.1f}" if wbytes else ""
        lines.append(f"| {name} | {op} | {us / n / 1000:.3f} | {100 * us / n / mean_step:.1f} % | {cnt / n:.0f} | "
                     f"{per_node:.1f} | {gbs} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("decoder_trace")
    parser.add_argument("--embed", help="the embed graph's trace of the same run")
    parser.add_argument("--top", type=int, default=25, help="node classes listed")
    args = parser.parse_args()
    print(summarize(args.decoder_trace, args.embed, args.top), end="")


if __name__ == "__main__":
    main()
