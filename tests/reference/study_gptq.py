"""Can a data-aware INT4 quantizer reach cosine 0.99 where round-to-nearest cannot?

The study behind `q3vl build --quant-method gptq` (src/builder/gptq.h), in HF float32 on
the committed golden inputs. For each checkpoint directory it quantizes every text
linear and lm_head to INT4 block 32 on the builder's symmetric grid, either by
round-to-nearest or by GPTQ (column-by-column error compensation weighted by
H = sum x x^T of each linear's inputs), and prints the worst and mean logit cosine to
float32 on golden cases that were NOT used for calibration:

  - calibrate on split A (small, wide, video, text-only, rgba), score on split B's cases;
  - calibrate on split B (half-even, odd, palette, two-turn), score on split A's cases;
  - calibrate on 16 prompts of random vocabulary ids (unlike any chat prompt).

Inputs come from the float32 model (the builder records them the same way, through a
float32 decoder). A simulation for choosing the method: tests/builder/test_precision.cpp
measures the real graphs the builder writes.

    /work/refvenv/bin/python tests/reference/study_gptq.py DIR [DIR ...]
"""

from __future__ import annotations

import argparse
import copy

import torch
from transformers import Qwen3VLForConditionalGeneration

from study_weights import golden_inputs, last_logits

SPLIT_A = ["image_small", "image_wide", "video", "text_only", "image_rgba"]
SPLIT_B = ["image_half_even", "image_odd", "image_palette", "two_turn"]
HALF = 8  # INT4 symmetric: levels -8 .. 7
BLOCK = 32


def grid(x: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    return torch.clamp(torch.round(x / scale), -HALF, HALF - 1) * scale


def full_grid_scale(x: torch.Tensor) -> torch.Tensor:
    """The block's largest-magnitude weight on the extra negative level ([..., 1])."""
    extreme = torch.gather(x, -1, x.abs().argmax(-1, keepdim=True))
    scale = -extreme / HALF
    return torch.where(scale == 0, torch.ones_like(scale), scale)


def rtn(w: torch.Tensor) -> torch.Tensor:
    n, k = w.shape
    x = w.reshape(n, -1, BLOCK)
    return grid(x, full_grid_scale(x)).reshape(n, k)


def gptq(w: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
    """GPTQ with static 32-column groups (scale chosen as the walk enters each group)."""
    w = w.double().clone()
    h = h.double().clone()
    h += 0.01 * h.diagonal().mean() * torch.eye(h.shape[0], dtype=h.dtype)
    u = torch.linalg.cholesky(torch.cholesky_inverse(torch.linalg.cholesky(h)), upper=True)
    q = torch.zeros_like(w)
    for g in range(0, w.shape[1], BLOCK):
        scale = full_grid_scale(w[:, g:g + BLOCK])
        for j in range(g, g + BLOCK):
            q[:, j:j + 1] = grid(w[:, j:j + 1], scale)
            err = (w[:, j] - q[:, j]) / u[j, j]
            w[:, j:] -= err.unsqueeze(1) * u[j, j:].unsqueeze(0)
    return q.float()


def text_linears(model) -> dict[str, torch.nn.Linear]:
    found = {n: m for n, m in model.model.language_model.named_modules() if isinstance(m, torch.nn.Linear)}
    found["lm_head"] = model.lm_head
    return found


@torch.no_grad()
def input_statistics(model, prompts: list[dict]) -> dict[str, torch.Tensor]:
    stats: dict[str, torch.Tensor] = {}

    def hook(name):
        def record(module, inputs, output):
            x = inputs[0].reshape(-1, inputs[0].shape[-1]).double()
            stats[name] = stats.get(name, 0) + x.T @ x
        return record

    handles = [m.register_forward_hook(hook(n)) for n, m in text_linears(model).items()]
    for inputs in prompts:
        model.model.rope_deltas = None
        model(**inputs)
    for handle in handles:
        handle.remove()
    return stats


@torch.no_grad()
def quantized(model, stats: dict[str, torch.Tensor] | None):
    q = copy.deepcopy(model)
    q.lm_head.weight = torch.nn.Parameter(q.lm_head.weight.detach().clone())  # untie from the embedding
    for name, module in text_linears(q).items():
        w = module.weight.detach()
        module.weight.copy_(rtn(w) if stats is None else gptq(w, stats[name]))
    return q


def score(model, quant, cases: dict[str, dict], names: list[str]) -> str:
    cos = [float(torch.nn.functional.cosine_similarity(last_logits(quant, cases[n]), last_logits(model, cases[n]),
                                                       dim=0)) for n in names]
    return f"worst {min(cos):.4f} mean {sum(cos) / len(cos):.4f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("checkpoints", nargs="+")
    args = parser.parse_args()
    torch.set_num_threads(1)
    cases = golden_inputs()
    generator = torch.Generator().manual_seed(7)
    random_text = [{"input_ids": torch.randint(0, 151643, (1, 96), generator=generator),
                    "attention_mask": torch.ones(1, 96, dtype=torch.long)} for _ in range(16)]
    for directory in args.checkpoints:
        model = Qwen3VLForConditionalGeneration.from_pretrained(directory, dtype=torch.float32,
                                                                attn_implementation="eager").eval()
        for label, calibration, held_out in (("A", SPLIT_A, SPLIT_B), ("B", SPLIT_B, SPLIT_A)):
            stats = input_statistics(model, [cases[n] for n in calibration])
            print(f"{directory} held-out split {'B' if label == 'A' else 'A'}: "
                  f"rtn {score(model, quantized(model, None), cases, held_out)}, "
                  f"gptq calibrated on {label} {score(model, quantized(model, stats), cases, held_out)}", flush=True)
        stats = input_statistics(model, random_text)
        print(f"{directory} all cases: gptq calibrated on random ids "
              f"{score(model, quantized(model, stats), cases, list(cases))}", flush=True)


if __name__ == "__main__":
    main()
