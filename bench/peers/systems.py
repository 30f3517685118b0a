"""How each system is run on a workload, and how its own report is read back.

Every system returns the same figure names, so the driver can put them side by side:
  prefill_tok_s_128, prefill_tok_s_512, decode_tok_s   (text workloads)
  vision_ms_<size>, ttft_ms_<size>                     (image workloads, size 448 / 1024x768)
  peak_rss_bytes                                       (of the process that ran the workload)
Peak RSS is the child's ru_maxrss from wait4(), so it is that one process, not the harness.
"""

import json
import os
import re
import subprocess
import time

from workloads import IMAGE_SIZES


def run_measured(cmd, log_path):
    """Run cmd, saving its stdout/stderr to log_path; returns a dict with rc, wall_s,
    peak_rss_bytes, stdout, stderr."""
    start = time.monotonic()
    with open(log_path + ".stdout", "w+b") as out, open(log_path + ".stderr", "w+b") as err:
        proc = subprocess.Popen(cmd, stdout=out, stderr=err, stdin=subprocess.DEVNULL)
        _, status, usage = os.wait4(proc.pid, 0)
        proc.returncode = os.waitstatus_to_exitcode(status)
        wall = time.monotonic() - start
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read().decode(errors="replace"), err.read().decode(errors="replace")
    with open(log_path + ".cmd", "w") as f:
        f.write(" ".join(cmd) + "\n")
    return {"rc": proc.returncode, "wall_s": wall, "peak_rss_bytes": usage.ru_maxrss * 1024,
            "stdout": stdout, "stderr": stderr}


class Q3vl:
    """`q3vl bench --output json` on a package: the same instrument users run.

    Text: prefill of exactly 128 and 512 random token ids (no chat template, as llama-bench's
    pp128 / pp512) and 128 decode steps after a 128-token prompt (llama-bench's tg128 starts
    from an empty cache), after one warm-up run as llama-bench does. Image: one cold run (no
    warm-up, as the llama-mtmd-cli process is cold) of a synthetic image of the same size
    through q3vl's decode + preprocessing + vision graph, and the prompt to its first token.
    """

    name = "q3vl"

    def __init__(self, binary, package, threads, extra_args):
        self.binary, self.package, self.threads, self.extra = binary, package, threads, extra_args

    def _bench(self, args, log):
        cmd = [self.binary, "bench", "--model", self.package, "--threads", str(self.threads),
               "-r", "1", "--output", "json", "--quiet"] + self.extra + args
        res = run_measured(cmd, log)
        if res["rc"] != 0:
            return res, None
        return res, json.loads(res["stdout"])

    def text(self, log):
        res, out = self._bench(["-p", "128,512", "-n", "128", "-d", "128", "--warmup", "1", "--image", "none"], log)
        if out is None:
            return {"error": f"q3vl bench exited {res['rc']}: {res['stderr'][-400:]}"}
        figures = {f"prefill_tok_s_{p['prompt_tokens']}": p["tokens_per_s"]["mean"] for p in out["prefill"]}
        decode = out["decode"][0]
        figures["decode_tok_s"] = decode["tokens_per_s"]["mean"]
        figures["decode_tokens"] = decode["tokens"]
        figures["peak_rss_bytes"] = res["peak_rss_bytes"]
        figures["raw"] = {"bench": out, "wall_s": res["wall_s"]}
        return figures

    def image(self, size, image_path, prompt, log):
        del image_path, prompt  # q3vl bench makes its own image of the size, with the same prompt
        width, height = IMAGE_SIZES[size]
        res, out = self._bench(["-p", "0", "-n", "0", "--warmup", "0", "--image", f"{width}x{height}"], log)
        if out is None:
            return {"error": f"q3vl bench exited {res['rc']}: {res['stderr'][-400:]}"}
        image = out["images"][0]
        return {f"vision_ms_{size}": image["vision_ms"]["mean"], f"ttft_ms_{size}": image["ttft_ms"]["mean"],
                f"image_tokens_{size}": image["image_tokens"],
                "peak_rss_bytes": res["peak_rss_bytes"],
                "raw": {"bench": out, "wall_s": res["wall_s"]}}


class LlamaCpp:
    """llama.cpp: llama-bench (text, one GGUF) and llama-mtmd-cli (image, GGUF + mmproj)."""

    name = "llama.cpp"

    def __init__(self, bin_dir, text_gguf, vlm_gguf, mmproj, threads):
        self.bin_dir, self.threads = bin_dir, threads
        self.text_gguf, self.vlm_gguf, self.mmproj = text_gguf, vlm_gguf, mmproj

    def text(self, log):
        cmd = [os.path.join(self.bin_dir, "llama-bench"), "-m", self.text_gguf, "-t", str(self.threads),
               "-p", "128,512", "-n", "128", "-r", "1", "-o", "json"]
        res = run_measured(cmd, log)
        if res["rc"] != 0:
            return {"error": f"llama-bench exited {res['rc']}: {res['stderr'][-400:]}"}
        figures = {"peak_rss_bytes": res["peak_rss_bytes"], "raw": []}
        for test in json.loads(res["stdout"]):
            if test["n_gen"] == 0:
                figures[f"prefill_tok_s_{test['n_prompt']}"] = test["avg_ts"]
            else:
                figures["decode_tok_s"] = test["avg_ts"]
                figures["decode_tokens"] = test["n_gen"]
            figures["raw"].append({k: test[k] for k in ("n_prompt", "n_gen", "avg_ts", "samples_ns")})
        return figures

    def image(self, size, image_path, prompt, log):
        cmd = [os.path.join(self.bin_dir, "llama-mtmd-cli"), "-m", self.vlm_gguf, "--mmproj", self.mmproj,
               "--image", image_path, "-p", prompt, "-n", "8", "-t", str(self.threads), "--temp", "0",
               # llama.cpp sizes the KV cache to the model's full 256K context by default
               # (~36 GB for 4B): give it what the workload needs, as q3vl sizes its own.
               "-c", "4096",
               # libllama's own timings ("prompt eval time") are printed only with --perf at a
               # raised log verbosity in newer builds.
               "--perf", "-lv", "4"]
        res = run_measured(cmd, log)
        if res["rc"] != 0:
            return {"error": f"llama-mtmd-cli exited {res['rc']}: {res['stderr'][-400:]}"}
        log_text = res["stdout"] + res["stderr"]
        # Older llama.cpp logs each slice ("slice encoded in N ms"), newer logs the whole
        # image batch ("mtmd batch encoding done in N ms").
        encode_ms = sum(int(m) for m in re.findall(r"slice encoded in (\d+) ms", log_text)) or \
            sum(int(m) for m in re.findall(r"mtmd batch encoding done in (\d+) ms", log_text))
        prompt_eval = re.search(r"prompt eval time =\s*([\d.]+) ms /\s*(\d+) tokens", log_text)
        image_tokens = sum(int(n) for n in re.findall(r"n_tokens_batch = (\d+)", log_text))
        if not encode_ms or not prompt_eval:
            return {"error": "llama-mtmd-cli log has no 'slice encoded' / 'prompt eval time' line"}
        # Time to first token as the CLI can report it: its "prompt eval time" covers the whole
        # prompt including the image (measured: it is >= image encode + "image decoded in" time),
        # so it is the TTFT; model and mmproj loading are excluded, as they are for q3vl's ttft_ms.
        return {f"vision_ms_{size}": float(encode_ms),
                f"ttft_ms_{size}": float(prompt_eval.group(1)),
                f"prompt_tokens_{size}": int(prompt_eval.group(2)),
                f"image_tokens_{size}": image_tokens,
                "peak_rss_bytes": res["peak_rss_bytes"], "raw": {"wall_s": res["wall_s"]}}
