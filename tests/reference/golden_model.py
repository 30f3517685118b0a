"""The preset-dependent half of a golden: what Qwen3VLForConditionalGeneration computes.

Everything is captured from HF's own forward pass (hooks on the vision tower and the
language model), not re-derived, so the goldens are what HF feeds each stage:
  - vision: the merged tokens and every DeepStack feature of one get_*_features call
    per modality, exactly as the request's forward computes them;
  - inputs_embeds after the visual scatter (the language model's input);
  - position ids [3, 1, T] and rope delta from HF's get_rope_index;
  - prefill logits of the last position and a 32-step greedy continuation made by
    model.generate (raw logits, before any logits processor).
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from transformers import GenerationConfig, Qwen3VLForConditionalGeneration, Qwen3VLMoeForConditionalGeneration
from transformers.models.qwen3_vl_moe.modeling_qwen3_vl_moe import Qwen3VLMoeTextTopKRouter

GREEDY_STEPS = 32


def load_model(checkpoint_dir: str) -> Qwen3VLForConditionalGeneration:
    """The dense or the Mixture-of-Experts model, as config.json's model_type says. MoE
    experts run HF's eager per-expert loop (5.23 would default to grouped_mm)."""
    model_type = json.loads((Path(checkpoint_dir) / "config.json").read_text())["model_type"]
    extra = {}
    cls = Qwen3VLForConditionalGeneration
    if model_type == "qwen3_vl_moe":
        cls = Qwen3VLMoeForConditionalGeneration
        extra["experts_implementation"] = "eager"
    model, info = cls.from_pretrained(
        checkpoint_dir, dtype=torch.float32, attn_implementation="eager", output_loading_info=True, **extra)
    bad = {k: v for k, v in info.items() if v and k in ("missing_keys", "unexpected_keys", "mismatched_keys")}
    assert not bad, f"{checkpoint_dir}: HF loading reported {bad}"
    model.eval()
    # Greedy for exactly GREEDY_STEPS tokens: no eos, so generation never stops early
    # (eos_token_id None disables the stopping criterion; no logits processors are
    # active, so output_logits are the raw logits the argmax is taken over).
    model.generation_config = GenerationConfig(
        do_sample=False, num_beams=1, max_new_tokens=GREEDY_STEPS, min_new_tokens=0,
        eos_token_id=None, pad_token_id=None, bos_token_id=None, use_cache=True)
    return model


class _Capture:
    """Records the inputs of the first language-model call (the prefill) and the
    outputs of each vision-tower call (images first, then videos, as HF runs them)."""

    def __init__(self, model: Qwen3VLForConditionalGeneration):
        self.language_inputs = None
        self.vision_outputs = []
        # MoE: per router (sparse layer, in layer order), the raw logits [tokens, E] of each call.
        self.router_logits = []
        inner = model.model
        self._handles = [
            inner.language_model.register_forward_pre_hook(self._on_language, with_kwargs=True),
            inner.visual.register_forward_hook(self._on_visual),
        ]
        for module in inner.language_model.modules():
            if isinstance(module, Qwen3VLMoeTextTopKRouter):
                calls = []
                self.router_logits.append(calls)
                self._handles.append(module.register_forward_hook(
                    lambda m, a, out, calls=calls: calls.append(out[0].detach().clone())))

    def _on_language(self, module, args, kwargs):
        if self.language_inputs is None:
            self.language_inputs = {
                "inputs_embeds": kwargs["inputs_embeds"].detach().clone(),
                "position_ids": kwargs["position_ids"].detach().clone(),
            }

    def _on_visual(self, module, args, output):
        # get_image_features re-splits pooler_output after this hook: copy now.
        self.vision_outputs.append({
            "merged": output.pooler_output.detach().clone(),
            "deepstack": torch.stack([f.detach().clone() for f in output.deepstack_features]),
        })

    def close(self):
        for handle in self._handles:
            handle.remove()


def _model_inputs(features) -> dict:
    keys = ("input_ids", "attention_mask", "mm_token_type_ids", "pixel_values", "image_grid_thw",
            "pixel_values_videos", "video_grid_thw")
    return {k: features[k] for k in keys if k in features}


@torch.no_grad()
def run_model(model: Qwen3VLForConditionalGeneration, features) -> dict:
    """Returns float32 / int64 tensors (torch) keyed by their golden names."""
    inputs = _model_inputs(features)
    input_ids = inputs["input_ids"]
    seq_len = input_ids.shape[1]
    model.model.rope_deltas = None  # HF caches this across calls; each case starts clean

    position_ids, rope_deltas = model.model.get_rope_index(
        input_ids, inputs["mm_token_type_ids"], inputs.get("image_grid_thw"), inputs.get("video_grid_thw"),
        attention_mask=inputs["attention_mask"])

    capture = _Capture(model)
    try:
        generated = model.generate(**inputs, return_dict_in_generate=True, output_logits=True)
    finally:
        capture.close()

    new_tokens = generated.sequences[0, seq_len:]
    assert new_tokens.numel() == GREEDY_STEPS, f"generate stopped after {new_tokens.numel()} tokens"
    step_logits = torch.stack([l[0] for l in generated.logits])  # [steps, vocab]
    assert step_logits.dtype == torch.float32
    top2 = step_logits.topk(2, dim=-1)
    assert torch.equal(top2.indices[:, 0], new_tokens), "greedy token is not the argmax of its raw logits"
    assert torch.equal(step_logits.argmax(-1), new_tokens)

    # HF's prefill position ids are [text; t; h; w] = 4 rows; the last three must be get_rope_index's.
    captured_pos = capture.language_inputs["position_ids"]
    if captured_pos.shape[0] == 4:
        captured_pos = captured_pos[1:]
    assert torch.equal(captured_pos, position_ids), "generate's prefill positions differ from get_rope_index"

    out = {
        "position_ids": position_ids.to(torch.int64),          # [3, 1, T]
        "rope_deltas": rope_deltas.to(torch.int64),             # [1, 1]
        "inputs_embeds": capture.language_inputs["inputs_embeds"],  # [1, T, D]
        "prefill_logits": step_logits[0].clone(),               # [vocab], last prompt position
        "greedy_ids": new_tokens.to(torch.int64),               # [32]
        "greedy_margin": (top2.values[:, 0] - top2.values[:, 1]).contiguous(),  # [32] top1 - top2 raw logit
        "greedy_max_abs_logit": step_logits.abs().amax(-1).contiguous(),        # [32]
    }
    vision = list(capture.vision_outputs)
    if "pixel_values" in inputs:
        v = vision.pop(0)
        out["image_embeds"] = v["merged"]          # [sum(t*h*w)/4, D]
        out["image_deepstack"] = v["deepstack"]    # [K, sum(t*h*w)/4, D]
    if "pixel_values_videos" in inputs:
        v = vision.pop(0)
        out["video_embeds"] = v["merged"]
        out["video_deepstack"] = v["deepstack"]
    assert not vision, "unexpected extra vision-tower calls"
    if capture.router_logits:
        # Prefill: [L, T, E] over the sparse layers; the greedy steps after it: [L, 31, E].
        assert all(len(calls) == GREEDY_STEPS for calls in capture.router_logits)
        out["router_logits"] = torch.stack([calls[0] for calls in capture.router_logits]).contiguous()
        out["router_logits_decode"] = torch.stack(
            [torch.cat(calls[1:]) for calls in capture.router_logits]).contiguous()
    return out


def router_topk_margin(router_logits: torch.Tensor, k: int) -> float:
    """Smallest gap between the k-th and (k+1)-th largest router logit over every token
    and layer of [..., E]: how far each top-k set is from flipping (softmax is monotonic,
    so the logit order is the probability order)."""
    top = router_logits.reshape(-1, router_logits.shape[-1]).topk(k + 1, dim=-1).values
    return float((top[:, k - 1] - top[:, k]).min())


@torch.no_grad()
def run_each_image(model: Qwen3VLForConditionalGeneration, features) -> dict:
    """Vision outputs of each image of the request run alone (one get_image_features per image)."""
    grids = features["image_grid_thw"]
    rows = grids.prod(-1).tolist()
    out = {}
    start = 0
    for i, n in enumerate(rows):
        result = model.model.get_image_features(features["pixel_values"][start:start + n], grids[i:i + 1],
                                                return_dict=True)
        out[f"image.{i}.embeds"] = result.pooler_output[0].detach().clone()
        out[f"image.{i}.deepstack"] = torch.stack([f[0].detach().clone() for f in result.deepstack_features])
        start += n
    return out
