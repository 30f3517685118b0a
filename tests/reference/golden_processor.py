"""The preset-independent half of a golden: prompt rendering and HF preprocessing.

Images are handed to the processor as file paths, so HF decodes them the way the
facts sheet describes (torchvision decode_image, mode RGB: alpha and palette
transparency dropped, stored RGB kept). The video is decoded with PyAV through
transformers' own load_video and passed as frames + metadata (5.23 would otherwise
need torchcodec), which gives HF's fps-based frame sampling.
"""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import torch
from transformers.video_utils import load_video

PIXEL_SCALE = np.float32(127.5)


def to_hf_messages(messages: list, root: Path) -> list:
    """OpenAI parts (image_url / video_url / text) -> HF parts (image / video / text).
    The official template recognises `image_url` but not `video_url`, so the runtime
    must make the same translation before rendering."""
    out = []
    for message in messages:
        content = message["content"]
        if isinstance(content, str):
            out.append({"role": message["role"], "content": content})
            continue
        parts = []
        for part in content:
            if part["type"] == "image_url":
                parts.append({"type": "image", "path": str(root / part["image_url"]["url"])})
            elif part["type"] == "video_url":
                parts.append({"type": "video", "path": str(root / part["video_url"]["url"])})
            elif part["type"] == "text":
                parts.append({"type": "text", "text": part["text"]})
            else:
                raise ValueError(f"unknown content part {part['type']}")
        out.append({"role": message["role"], "content": parts})
    return out


def encode_pixels(pixel_values: torch.Tensor) -> np.ndarray:
    """pixel_values = (u8 - 127.5) / 127.5 in float32 -> the uint8 codes. Asserts that
    decoding the codes with the same float32 formula gives back every bit."""
    values = pixel_values.detach().cpu().numpy()
    assert values.dtype == np.float32
    codes = np.rint(values.astype(np.float64) * 127.5 + 127.5)
    assert codes.min() >= 0 and codes.max() <= 255, "pixel_values outside the uint8 range"
    codes = codes.astype(np.uint8)
    decoded = (codes.astype(np.float32) - PIXEL_SCALE) / PIXEL_SCALE
    assert np.array_equal(decoded.view(np.uint32), values.view(np.uint32)), "pixel codes do not round-trip"
    return codes


def run_processor(processor, template: str, messages: list, root: Path) -> dict:
    """Renders the conversation with the official template and preprocesses its media.
    Returns the prompt text, HF's BatchFeature and the video sampling facts."""
    hf_messages = to_hf_messages(messages, root)
    prompt = processor.apply_chat_template(hf_messages, chat_template=template, tokenize=False,
                                           add_generation_prompt=True)
    images, videos, metadata = [], [], []
    for message in hf_messages:
        if isinstance(message["content"], str):
            continue
        for part in message["content"]:
            if part["type"] == "image":
                images.append(part["path"])
            elif part["type"] == "video":
                frames, meta = load_video(part["path"], backend="pyav")
                videos.append(frames)
                metadata.append(meta)
    kwargs = {}
    if images:
        kwargs["images"] = images
    if videos:
        kwargs["videos"] = videos
        kwargs["video_metadata"] = metadata
    features = processor(text=[prompt], return_tensors="pt", **kwargs)
    # The sampled frame indices, from the same sampler the processor just ran.
    video_info = []
    for meta in metadata:
        indices = processor.video_processor.sample_frames(copy.deepcopy(meta))
        video_info.append({
            "total_num_frames": int(meta.total_num_frames),
            "fps": float(meta.fps),
            "frames_indices": [int(i) for i in indices],
        })
    return {"hf_messages": hf_messages, "prompt": prompt, "features": features, "video_info": video_info}
