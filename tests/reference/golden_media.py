"""Deterministic synthetic media for the HF goldens (images as PNG, one lossless video).

Every picture has structure a resampler can get wrong: two-axis colour gradients,
hard-edged shapes, rows of thin glyph-like strokes (text-like edges) and a little
seeded noise. Pixels depend only on (width, height, seed); the files depend on the
pinned pillow / PyAV versions (tests/reference/requirements.lock), which is why the
script that writes them also records those versions.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import av
import numpy as np
from PIL import Image


def paint(width: int, height: int, seed: int, phase: float = 0.0) -> np.ndarray:
    """An RGB uint8 picture [height, width, 3]; `phase` moves the shapes (video frames)."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float64)
    u, v = x / max(width - 1, 1), y / max(height - 1, 1)
    c0, c1, c2 = rng.uniform(30, 225, size=(3, 3))
    img = c0 * u[..., None] + c1 * v[..., None] + c2 * (1 - u[..., None]) * (1 - v[..., None])
    img = img / 2.0
    # A filled disc and a rectangle with hard edges.
    cx, cy = (0.3 + 0.4 * phase) * width, 0.45 * height
    r = 0.22 * min(width, height)
    disc = (x - cx) ** 2 + (y - cy) ** 2 <= r * r
    img[disc] = rng.uniform(0, 255, size=3)
    x0, y0 = int(0.55 * width), int(0.15 * height)
    img[y0 : y0 + max(2, height // 4), x0 : x0 + max(2, width // 5)] = rng.uniform(0, 255, size=3)
    # "Text": rows of short dark strokes, 1-2 px wide, like glyph stems.
    for row in range(int(0.7 * height), height - 3, 6):
        col = 2
        while col < width - 3:
            w = int(rng.integers(1, 3))
            h = int(rng.integers(2, 5))
            img[row : row + h, col : col + w] = 15.0
            col += int(rng.integers(3, 7))
    img += rng.normal(0.0, 2.5, size=img.shape)
    return np.clip(np.rint(img), 0, 255).astype(np.uint8)


def write_png_rgb(path: Path, width: int, height: int, seed: int) -> None:
    Image.fromarray(paint(width, height, seed), "RGB").save(path, format="PNG", optimize=False)


def write_png_rgba(path: Path, width: int, height: int, seed: int) -> None:
    """RGBA with real transparency: alpha 0 over a band that still stores colour, a
    gradient of partial alpha elsewhere. HF (path input) drops alpha and keeps the
    stored RGB, so the hidden colours must survive into pixel_values."""
    rgb = paint(width, height, seed)
    x = np.arange(width)[None, :].repeat(height, 0)
    alpha = np.clip(x * 255 // max(width - 1, 1), 0, 255).astype(np.uint8)
    alpha[:, : width // 4] = 0
    alpha[height // 3 : height // 2, :] = 255
    Image.fromarray(np.dstack([rgb, alpha]), "RGBA").save(path, format="PNG", optimize=False)


def write_png_palette(path: Path, width: int, height: int, seed: int) -> None:
    """An 8-bit palette PNG (16 colours) with a tRNS entry making index 0 transparent."""
    rgb = paint(width, height, seed)
    img = Image.fromarray(rgb, "RGB").quantize(colors=16, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.info["transparency"] = 0
    img.save(path, format="PNG", optimize=False, transparency=0)


@dataclass(frozen=True)
class VideoSpec:
    width: int
    height: int
    frames: int
    fps: int
    seed: int


def write_video(path: Path, spec: VideoSpec) -> None:
    """A lossless RGB clip: PNG-coded frames (rgb24) in a QuickTime container, muxed
    bit-exactly so two runs give identical bytes. A disc slides across the frame."""
    with av.open(str(path), "w", format="mov", options={"fflags": "+bitexact"}) as out:
        stream = out.add_stream("png", rate=spec.fps)
        stream.width, stream.height, stream.pix_fmt = spec.width, spec.height, "rgb24"
        stream.codec_context.flags |= av.codec.context.Flags.bitexact
        for i in range(spec.frames):
            frame = paint(spec.width, spec.height, spec.seed, phase=i / max(spec.frames - 1, 1))
            for packet in stream.encode(av.VideoFrame.from_ndarray(frame, format="rgb24")):
                out.mux(packet)
        for packet in stream.encode():
            out.mux(packet)
