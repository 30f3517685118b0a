#!/usr/bin/env python3
"""Checks that Hugging Face transformers accepts a `q3vl make-checkpoint` directory.

A developer tool (not a CI test: it needs the reference venv and reads the
official Qwen3-VL chat template at run time). Run with the venv's python:

    /work/refvenv/bin/python tests/reference/check_checkpoint.py DIR \
        [--official-template PATH/qwen3-vl-instruct.chat_template.jinja]

It fails (non-zero exit, a line naming what differs) unless:
  1. Qwen3VLForConditionalGeneration.from_pretrained(DIR, float32, eager) loads with
     no missing, unexpected or mismatched keys;
  2. lm_head is tied to the token embedding exactly when config.json says so;
  3. every parameter is finite and the embedding / one matrix have roughly the
     intended standard deviation (0.4 and 2/sqrt(fan_in), src/checkpoint/weight_layout.h);
  4. AutoProcessor.from_pretrained(DIR) gives the Qwen3-VL processor values;
  5. the checkpoint's chat template renders the same text as the official
     Qwen3-VL Instruct template on a set of conversations (images, video, system,
     multi-turn, tools and tool calls, add_vision_id, no generation prompt);
  6. one forward pass on an image prompt gives finite logits.
"""

import argparse
import os
import json
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from transformers import AutoProcessor, Qwen3VLForConditionalGeneration

# Qwen's published Qwen3-VL Instruct chat template is not committed (it is not ours):
# pass its path, or set Q3VL_OFFICIAL_TEMPLATE (tests/reference/README.md).
DEFAULT_OFFICIAL = Path(os.environ.get("Q3VL_OFFICIAL_TEMPLATE", "qwen3-vl-instruct.chat_template.jinja"))

TOOLS = [{
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}]

# (messages, extra apply_chat_template kwargs)
CONVERSATIONS = [
    ([{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe this image."}]}], {}),
    ([{"role": "system", "content": "You are a helpful assistant."},
      {"role": "user", "content": [{"type": "text", "text": "Compare"}, {"type": "image"}, {"type": "image"},
                                   {"type": "video"}, {"type": "text", "text": "ok?"}]},
      {"role": "assistant", "content": "Sure."},
      {"role": "user", "content": "More."}], {}),
    ([{"role": "system", "content": [{"type": "text", "text": "Be brief."}]},
      {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "What is it?"}]},
      {"role": "assistant", "content": [{"type": "text", "text": "A cat."}]},
      {"role": "user", "content": [{"type": "video"}, {"type": "text", "text": "And this?"}]}],
     {"add_vision_id": True}),
    ([{"role": "user", "content": "Weather in Paris?"},
      {"role": "assistant", "content": "",
       "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}}]},
      {"role": "tool", "content": "{\"temp\": 21}"},
      {"role": "tool", "content": "sunny"},
      {"role": "assistant", "content": "Let me check again.",
       "tool_calls": [{"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Lyon\"}"}},
                      {"name": "get_weather", "arguments": {"city": "Nice"}}]},
      {"role": "tool", "content": [{"type": "text", "text": "see "}, {"type": "image"}]}],
     {"tools": TOOLS}),
    ([{"role": "system", "content": "Sys"}, {"role": "user", "content": "Hi"}], {"tools": TOOLS}),
    ([{"role": "user", "content": "Hi"}, {"role": "assistant", "content": "Hello"}],
     {"add_generation_prompt": False}),
]


def fail(message):
    print(f"check_checkpoint: FAIL: {message}")
    sys.exit(1)


def check_model(directory, config):
    start = time.time()
    model, info = Qwen3VLForConditionalGeneration.from_pretrained(
        directory, dtype=torch.float32, attn_implementation="eager", output_loading_info=True)
    print(f"loaded model in {time.time() - start:.1f} s")
    for kind in ("missing_keys", "unexpected_keys", "mismatched_keys", "error_msgs"):
        if info.get(kind):
            fail(f"{kind}: {sorted(info[kind])[:10]}")
    embed = model.model.language_model.embed_tokens.weight
    lm_head = model.lm_head.weight
    tied = lm_head.data_ptr() == embed.data_ptr()
    if tied != bool(config["tie_word_embeddings"]):
        fail(f"lm_head tied={tied} but config tie_word_embeddings={config['tie_word_embeddings']}")
    if not tied and torch.equal(lm_head, embed):
        fail("untied lm_head equals the embedding")
    for name, param in model.named_parameters():
        if not torch.isfinite(param).all():
            fail(f"{name} has non-finite values")
    checks = [(embed, 0.4, "embed_tokens")]
    down = model.model.language_model.layers[0].mlp.down_proj.weight
    checks.append((down, 2 / math.sqrt(down.shape[1]), "layers.0.mlp.down_proj"))
    for tensor, want, name in checks:
        got = tensor.float().std().item()
        if abs(got / want - 1) > 0.05:
            fail(f"{name} std {got:.4f}, intended {want:.4f}")
    print(f"model: {sum(p.numel() for p in model.parameters()):,} parameters, tied={tied}; keys OK")
    return model


def check_processor(directory):
    processor = AutoProcessor.from_pretrained(directory)
    image = processor.image_processor
    video = processor.video_processor
    want = {
        "processor": ("Qwen3VLProcessor", type(processor).__name__),
        "image.patch_size": (16, image.patch_size), "image.merge_size": (2, image.merge_size),
        "image.temporal_patch_size": (2, image.temporal_patch_size),
        "image.size": ({"shortest_edge": 65536, "longest_edge": 16777216}, dict(image.size)),
        "image.mean": ([0.5] * 3, list(image.image_mean)), "image.std": ([0.5] * 3, list(image.image_std)),
        "video.class": ("Qwen3VLVideoProcessor", type(video).__name__),
        "video.size": ({"shortest_edge": 4096, "longest_edge": 25165824}, dict(video.size)),
        "video.patch_size": (16, video.patch_size),
        "tokenizer.vocab": (151669, len(processor.tokenizer)),
    }
    for key, (expected, got) in want.items():
        if expected != got:
            fail(f"processor {key}: expected {expected}, got {got}")
    print(f"processor: {type(processor).__name__} + {type(image).__name__} + {type(video).__name__}; values OK")
    return processor


def check_template(processor, official_path):
    official = official_path.read_text()
    ours = processor.chat_template
    if not ours or ours == official:
        fail("the checkpoint's chat template is missing or is the official file itself")
    if "Qwen3 text" in (processor.tokenizer.chat_template or "") or processor.tokenizer.chat_template not in (None, ours):
        fail("tokenizer carries a different chat template than the processor")
    for i, (messages, kwargs) in enumerate(CONVERSATIONS):
        kwargs = {"add_generation_prompt": True, **kwargs}
        got = processor.apply_chat_template(messages, tokenize=False, **kwargs)
        expected = processor.apply_chat_template(messages, tokenize=False, chat_template=official, **kwargs)
        if got != expected:
            fail(f"conversation {i}: template renders\n{got!r}\nofficial renders\n{expected!r}")
    print(f"chat template: {len(CONVERSATIONS)} conversations render identically to the official template")


def check_forward(model, processor):
    pixels = (np.arange(64 * 96 * 3, dtype=np.uint32) * 2654435761 % 251).astype(np.uint8).reshape(64, 96, 3)
    messages = [{"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Describe."}]}]
    text = processor.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
    inputs = processor(text=[text], images=[Image.fromarray(pixels)], return_tensors="pt")
    with torch.no_grad():
        logits = model(**inputs).logits
    if not torch.isfinite(logits).all():
        fail("non-finite logits")
    top2 = logits[0, -1].topk(2).values
    print(f"forward: {inputs['input_ids'].shape[1]} tokens, grid {inputs['image_grid_thw'].tolist()}, "
          f"last top-1 logit {top2[0]:.2f} (margin {top2[0] - top2[1]:.3f})")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("directory", type=Path)
    parser.add_argument("--official-template", type=Path, default=DEFAULT_OFFICIAL)
    parser.add_argument("--skip-forward", action="store_true", help="skip the forward pass (large presets)")
    args = parser.parse_args()
    torch.manual_seed(0)
    start = time.time()
    config = json.loads((args.directory / "config.json").read_text())
    model = check_model(args.directory, config)
    processor = check_processor(args.directory)
    check_template(processor, args.official_template)
    if not args.skip_forward:
        check_forward(model, processor)
    print(f"check_checkpoint: OK ({args.directory}, {time.time() - start:.1f} s)")


if __name__ == "__main__":
    main()
