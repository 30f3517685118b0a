#!/usr/bin/env python3
"""results.json -> markdown: medians over rounds, per-round q3vl / peer ratios, bandwidth.

Ratios are taken within a round (the systems ran minutes apart, in alternating order) and the
median of those per-round ratios is reported: this cancels most of the machine's drift, which
the absolute figures keep. Also runnable alone: `python3 report.py results.json`.
"""

import json
import statistics
import sys

# (figure key, label, unit, higher is better, target ratio q3vl / peer: the ones bench/peers/targets.md
# lists as raised 2026-12-05, which issue 15 sets)
FIGURES = [
    ("decode_tok_s", "decode tok/s (128 new)", "tok/s", True, 1.10),
    ("prefill_tok_s_128", "prefill tok/s, 128-token prompt", "tok/s", True, 1.75),
    ("prefill_tok_s_512", "prefill tok/s, 512-token prompt", "tok/s", True, 1.75),
    ("vision_ms_448", "vision encode 448x448", "ms", False, 0.4),
    ("vision_ms_1024x768", "vision encode 1024x768", "ms", False, 0.4),
    ("ttft_ms_448", "time to first token, 448x448 + prompt", "ms", False, 0.5),
    ("ttft_ms_1024x768", "time to first token, 1024x768 + prompt", "ms", False, 0.5),
    ("peak_rss_text", "peak RSS, text run", "GiB", False, 0.75),
    ("peak_rss_image", "peak RSS, image run (VLM)", "GiB", False, 0.65),
    ("decode_bw_fraction", "decode: bytes read (weights + K/V rows) x tok/s / probed bandwidth", "%", True, None),
    ("decode_weight_bw_fraction", "decode: weight bytes x tok/s / probed bandwidth", "%", True, None),
]


def round_figures(rnd):
    """{system: {figure: value}} for one round; peak RSS split into text / image runs."""
    out = {}
    for m in rnd["measurements"]:
        figs = out.setdefault(m["system"], {})
        for key, value in m["figures"].items():
            if key == "peak_rss_bytes":
                rss_key = f"peak_rss_{m['workload']}"
                figs[rss_key] = max(figs.get(rss_key, 0), value / 2**30)
            elif isinstance(value, (int, float)) and key != "raw":
                figs[key] = value
    return out


def decode_weight_bytes(results, system):
    """Weight bytes read per decoded token: the decoder graph's data (q3vl), the GGUF (llama)."""
    weights = results["weights_bytes"]
    return weights.get("q3vl_decoder") if system == "q3vl" else weights.get("llama_text_gguf")


def decode_read_bytes(results, system):
    """Bytes a decode step reads on average: the weights and the K/V rows it attends over
    (q3vl bench's read_bytes_per_token; llama: the GGUF and its f16 cache over tg128's
    contexts). None for results written before compare.py recorded them."""
    read = results.get("read_bytes", {})
    if system == "q3vl":
        return read.get("q3vl")
    weights = decode_weight_bytes(results, system)
    return weights + read["llama_kv"] if weights and "llama_kv" in read else None


def fmt(value, unit):
    if value is None:
        return "—"
    if unit == "%":
        return f"{100 * value:.0f} %"
    if unit == "GiB":
        return f"{value:.2f}"
    return f"{value:.1f}" if value < 100 else f"{value:.0f}"


def spread(values, unit):
    if not values:
        return "—"
    med = statistics.median(values)
    if len(values) == 1:
        return fmt(med, unit)
    return f"{fmt(med, unit)} ({fmt(min(values), unit)}–{fmt(max(values), unit)})"


def render(results):
    rounds = results["rounds"]
    per_round = []
    for rnd in rounds:
        figs = round_figures(rnd)
        bw = statistics.mean([rnd["probe_before"]["median_gbps"], rnd["probe_after"]["median_gbps"]])
        for system, f in figs.items():
            if "decode_tok_s" not in f:
                continue
            for key, per_token in (("decode_bw_fraction", decode_read_bytes(results, system)),
                                   ("decode_weight_bw_fraction", decode_weight_bytes(results, system))):
                if per_token:
                    f[key] = f["decode_tok_s"] * per_token / (bw * 1e9)
        per_round.append(figs)
    systems = []
    for figs in per_round:
        systems += [s for s in figs if s not in systems]
    peers = [s for s in systems if s != "q3vl"]

    m = results["machine"]
    lines = [f"# q3vl vs peers, side by side ({results['started']})", "",
             f"{m['cpu']}, {m['cpus']} CPUs, {m['mem_gib']} GiB; {len(rounds)} rounds, systems alternated, "
             f"threads {results['args']['threads']}; load gate 1-min < {results['args']['max_load']} "
             f"(waited at most {results['args']['max_wait']:.0f} s).", "",
             "Medians over rounds (min–max); ratio = median of per-round q3vl / peer (target from bench/peers/targets.md).", ""]
    header = "| figure | q3vl |" + "".join(f" {p} | q3vl / {p} | target |" for p in peers)
    lines += [header, "|" + "---|" * (2 + 3 * len(peers))]
    for key, label, unit, higher, target in FIGURES:
        row = [f"{label} ({unit})", spread([f["q3vl"][key] for f in per_round if key in f.get("q3vl", {})], unit)]
        for p in peers:
            row.append(spread([f[p][key] for f in per_round if key in f.get(p, {})], unit))
            ratios = [f["q3vl"][key] / f[p][key] for f in per_round
                      if key in f.get("q3vl", {}) and key in f.get(p, {}) and f[p][key]]
            ratio = f"{statistics.median(ratios):.2f}×" if ratios else "—"
            goal = "—" if target is None else (f"≥ {target}×" if higher else f"≤ {target}×")
            row += [ratio, goal]
        if any(cell != "—" for cell in row[1:] if not cell.startswith(("≥", "≤"))):
            lines.append("| " + " | ".join(row) + " |")

    lines += ["", "| round | order | bandwidth before → after (GB/s, 2-thread read, median of passes) | 1-min load at each measurement |",
              "|---|---|---|---|"]
    for rnd in rounds:
        loads = ", ".join(f"{x['gate']['load_at_start'][0]:.1f}{'' if x['gate']['gate_passed'] else '*'}"
                          for x in rnd["measurements"])
        lines.append(f"| {rnd['index']} | {' → '.join(rnd['order'])} | {rnd['probe_before']['median_gbps']:.1f} → "
                     f"{rnd['probe_after']['median_gbps']:.1f} | {loads} |")
    lines += ["", "`*`: the load gate timed out and the measurement ran on a busy machine.",
              "Weights: " + ", ".join(f"{k} {v / 1e9:.2f} GB" for k, v in results["weights_bytes"].items())]
    read = {s: decode_read_bytes(results, s) for s in ["q3vl"] + peers}
    if any(read.values()):
        lines.append("Read per decode step (weights + K/V rows attended): " +
                     ", ".join(f"{s} {v / 1e9:.3f} GB" for s, v in read.items() if v))
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    with open(sys.argv[1]) as f:
        print(render(json.load(f)))
