#!/usr/bin/env python3
"""llama.cpp's quants against its F16 GGUF on the same text, in one table with q3vl's results.

Runs `llama-perplexity -c CONTEXT --kl-divergence-base BASE` on the F16 GGUF once (it saves
the F16 logits of the text), then `llama-perplexity --kl-divergence` for each quantized GGUF,
and reads "Mean KLD", "99.0% KLD", "Maximum KLD" and "Same top p" from its log. Bytes per
weight count the same layers `q3vl eval-kl` counts: the decoder's linear layers
(blk.N.attn_{q,k,v,output}, blk.N.ffn_{gate,up,down}) and the output projection (output.weight,
or token_embd.weight when the model ties them), every byte of their GGUF tensors over their
element count, read with llama.cpp's gguf-py (PYTHONPATH=LLAMA/gguf-py, or --gguf-py).

  python3 bench/quality/llama_kl.py --llama-bin LLAMA/build/bin --f16 4b-f16.gguf \\
      --quant Q4_0=4b-Q4_0.gguf --quant Q4_K_M=4b-Q4_K_M.gguf --text bench/quality/text.txt \\
      --q3vl-json int4-gptq=kl-gptq.json --threads 2 --out OUT
writes OUT/quality.md, OUT/quality.json and the logs in OUT/logs/.
"""

import argparse
import json
import os
import re
import subprocess
import sys

LINEAR = re.compile(r"^blk\.\d+\.(attn_q|attn_k|attn_v|attn_output|ffn_gate|ffn_up|ffn_down)\.weight$")


def linear_bytes_per_weight(path):
    import gguf  # llama.cpp's gguf-py
    reader = gguf.GGUFReader(path)
    tensors = {t.name: t for t in reader.tensors}
    chosen = [t for name, t in tensors.items() if LINEAR.match(name)]
    chosen.append(tensors["output.weight"] if "output.weight" in tensors else tensors["token_embd.weight"])
    total_bytes = sum(int(t.n_bytes) for t in chosen)
    total_weights = sum(int(t.n_elements) for t in chosen)
    return total_bytes / total_weights, total_bytes, total_weights


def run(cmd, log):
    with open(log, "w") as f:
        f.write(" ".join(cmd) + "\n")
        f.flush()
        proc = subprocess.run(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        f.write(proc.stdout)
    if proc.returncode != 0:
        sys.exit(f"{cmd[0]} exited {proc.returncode}; see {log}")
    return proc.stdout


def parse_kl(text):
    def number(pattern):
        m = re.search(pattern, text)
        if not m:
            sys.exit(f"llama-perplexity log has no line matching {pattern!r}")
        return [float(g) for g in m.groups()]
    mean, stderr = number(r"Mean\s+KLD:\s+([-\d.]+)\s+±\s+([-\d.]+)")
    tokens = re.search(r"computing over (\d+) chunks, n_ctx=(\d+)", text)
    chunks, ctx = (int(tokens.group(1)), int(tokens.group(2))) if tokens else (0, 0)
    return {"tokens": chunks * (ctx - 1 - ctx // 2), "mean_kl": mean, "kl_stderr": stderr,
            "p99_kl": number(r"99\.0%\s+KLD:\s+([-\d.]+)")[0], "max_kl": number(r"Maximum KLD:\s+([-\d.]+)")[0],
            "top1_agreement": number(r"Same top p:\s+([-\d.]+)")[0] / 100.0}


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--llama-bin", required=True, help="directory with llama-perplexity")
    p.add_argument("--f16", required=True, help="the F16 GGUF (reference logits)")
    p.add_argument("--quant", action="append", default=[], help="NAME=GGUF (repeatable)")
    p.add_argument("--q3vl-json", action="append", default=[], help="NAME=FILE from q3vl eval-kl --output json")
    p.add_argument("--text", required=True)
    p.add_argument("--context", type=int, default=512)
    p.add_argument("--chunks", type=int, default=0, help="most chunks scored (0 = the whole text), as eval-kl --chunks")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--reuse", action="store_true",
                   help="reuse OUT/f16.kld and OUT/logs/NAME.log of an earlier run into the same OUT "
                        "(add q3vl rows without recomputing llama.cpp's)")
    p.add_argument("--gguf-py", help="llama.cpp's gguf-py directory (default: LLAMA_BIN/../../gguf-py)")
    p.add_argument("--out", required=True)
    args = p.parse_args()
    sys.path.insert(0, args.gguf_py or os.path.join(args.llama_bin, "..", "..", "gguf-py"))
    os.makedirs(os.path.join(args.out, "logs"), exist_ok=True)
    perplexity = os.path.join(args.llama_bin, "llama-perplexity")
    base = os.path.join(args.out, "f16.kld")
    common = ["-c", str(args.context), "-t", str(args.threads), "-b", str(args.context)]
    if args.chunks > 0:
        common += ["--chunks", str(args.chunks)]

    if not (args.reuse and os.path.exists(base)):
        run([perplexity, "-m", args.f16, "-f", args.text, "--kl-divergence-base", base] + common,
            os.path.join(args.out, "logs", "f16.log"))
    rows = []
    for item in args.quant:
        name, path = item.split("=", 1)
        log = os.path.join(args.out, "logs", f"{name}.log")
        if args.reuse and os.path.exists(log):
            with open(log) as f:
                text = f.read()
        else:
            text = run([perplexity, "-m", path, "--kl-divergence-base", base, "--kl-divergence"] + common, log)
        bpw, nbytes, weights = linear_bytes_per_weight(path)
        rows.append({"system": "llama.cpp", "name": name, "reference": "F16 GGUF", "bytes_per_weight": bpw,
                     "linear_bytes": nbytes, "linear_weights": weights, "text": parse_kl(text)})
    for item in args.q3vl_json:
        name, path = item.split("=", 1)
        with open(path) as f:
            j = json.load(f)
        rows.append({"system": "q3vl", "name": name, "reference": "FP32 package",
                     "bytes_per_weight": j["test"]["linear_bytes_per_weight"],
                     "linear_bytes": j["test"]["linear_weight_bytes"], "linear_weights": j["test"]["linear_weights"],
                     "text": j["text"], "images": j["images"]})

    lines = [f"Quality at equal bytes: text `{os.path.basename(args.text)}`, chunks of {args.context} tokens, "
             "second half of each scored; KL(reference ‖ quantized) in nats.", "",
             "| system | format | reference | byte/weight (linear) | text tokens | mean KL ± se | p99 KL | max KL | "
             "top-1 | image mean KL | image top-1 |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        t, i = r["text"], r.get("images")
        image = (f"{i['mean_kl']:.6f} | {100 * i['top1_agreement']:.2f} %" if i and i["tokens"] else "— | —")
        lines.append(f"| {r['system']} | {r['name']} | {r['reference']} | {r['bytes_per_weight']:.4f} | {t['tokens']} | "
                     f"{t['mean_kl']:.6f} ± {t['kl_stderr']:.6f} | {t['p99_kl']:.6f} | {t['max_kl']:.6f} | "
                     f"{100 * t['top1_agreement']:.2f} % | {image} |")
    with open(os.path.join(args.out, "quality.json"), "w") as f:
        json.dump(rows, f, indent=1)
    with open(os.path.join(args.out, "quality.md"), "w") as f:
        f.write("\n".join(lines) + "\n")
    print("\n".join(lines))
    return 0


if __name__ == "__main__":
    sys.exit(main())
