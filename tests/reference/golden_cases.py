"""The golden cases: which media each uses and the conversation, in OpenAI chat shape.

Sizes are chosen to hit one preprocessing path each while keeping pixel_values near
the 65,536-pixel minimum, and the multi-image cases reuse the single-image media, whose
pixel codes are stored once (the committed goldens must stay under 20 MB). Grid sizes in
the comments follow HF's smart_resize (factor 32, min 65,536 / max 16,777,216 pixels).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from golden_media import VideoSpec, write_png_palette, write_png_rgb, write_png_rgba, write_video


@dataclass(frozen=True)
class Media:
    file: str  # relative to the goldens directory
    kind: str  # "rgb", "rgba", "palette", "video"
    width: int
    height: int
    seed: int
    frames: int = 0
    fps: int = 0

    def write(self, root: Path) -> None:
        path = root / self.file
        path.parent.mkdir(parents=True, exist_ok=True)
        if self.kind == "rgb":
            write_png_rgb(path, self.width, self.height, self.seed)
        elif self.kind == "rgba":
            write_png_rgba(path, self.width, self.height, self.seed)
        elif self.kind == "palette":
            write_png_palette(path, self.width, self.height, self.seed)
        elif self.kind == "video":
            write_video(path, VideoSpec(self.width, self.height, self.frames, self.fps, self.seed))
        else:
            raise ValueError(f"unknown media kind {self.kind}")


MEDIA = {
    # 120x64 = 7,680 px < min: scaled up by sqrt(min/area) with ceil -> 192x352, grid 12x22.
    "small": Media("media/small_120x64.png", "rgb", 120, 64, seed=1),
    # 400x208: 12.5 and 6.5 patches-of-32 round half to even -> 384x192 (std::round gives 416x224).
    "half_even": Media("media/half_even_400x208.png", "rgb", 400, 208, seed=2),
    # 640x60 (aspect 10.7): 64x640 is below min, so scaled up -> 96x864, grid 6x54.
    "wide": Media("media/wide_640x60.png", "rgb", 640, 60, seed=3),
    # 333x251: plain rounding to 256x320, grid 16x20.
    "odd": Media("media/odd_333x251.png", "rgb", 333, 251, seed=4),
    # RGBA with alpha 0 over stored colour (HF drops alpha, keeps RGB) -> 256x256.
    "rgba": Media("media/rgba_260x250.png", "rgba", 260, 250, seed=9),
    # 16-colour palette PNG with a transparent index -> 288x256.
    "palette": Media("media/palette_230x290.png", "palette", 230, 290, seed=10),
    # 25 frames at 10 fps = 2.5 s: fps-2 sampling takes int(5.0) = 5 frames (odd, so HF
    # pads with the last one -> 3 temporal patches); 96x72 frames -> 64x96, grid 3x4x6.
    "clip": Media("media/clip_96x72_25f.mov", "video", 96, 72, seed=11, frames=25, fps=10),
}


def _image(key: str) -> dict:
    return {"type": "image_url", "image_url": {"url": MEDIA[key].file}}


def _video(key: str) -> dict:
    return {"type": "video_url", "video_url": {"url": MEDIA[key].file}}


def _text(text: str) -> dict:
    return {"type": "text", "text": text}


def _user(*parts: dict) -> dict:
    return {"role": "user", "content": list(parts)}


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    messages: list = field(default_factory=list)  # OpenAI chat shape, media URLs relative

    def media_keys(self) -> list[str]:
        keys = []
        for message in self.messages:
            if isinstance(message["content"], str):
                continue
            for part in message["content"]:
                kind = part["type"]
                if kind in ("image_url", "video_url"):
                    url = part[kind]["url"]
                    keys.append(next(k for k, m in MEDIA.items() if m.file == url))
        return keys


# The assistant's turn-1 reply in the two-turn case is fixed text, not model output, so
# the prompt (and every processor output) is the same for all presets.
TURN1_REPLY = "A dark disc sits on a soft colour gradient, with a row of small marks below."

CASES = [
    Case("image_small", "one image below the minimum pixel count (scaled up)",
         [_user(_image("small"), _text("Describe this image."))]),
    Case("image_half_even", "400x208 image whose smart_resize rounds half to even (384x192)",
         [_user(_image("half_even"), _text("What shapes do you see?"))]),
    Case("image_wide", "very wide 640x60 image (aspect 10.7)",
         [_user(_text("Read the text in this banner:"), _image("wide"))]),
    Case("image_odd", "mid-size image with odd dimensions 333x251",
         [{"role": "system", "content": "You are a careful visual assistant."},
          _user(_image("odd"), _text("Describe this image in one sentence."))]),
    Case("two_images", "two images of different sizes in one prompt",
         [_user(_text("Compare the two pictures."), _image("small"), _image("odd"),
                _text("Which one is brighter?"))]),
    Case("video", "short lossless RGB video, 5 sampled frames (odd, padded to 6)",
         [_user(_video("clip"), _text("What moves in this video?"))]),
    Case("text_only", "text only, no media",
         [_user(_text("Write a haiku about the number seven."))]),
    Case("two_turn", "two-turn conversation with an image in each user turn",
         [_user(_image("half_even"), _text("What is in this picture?")),
          {"role": "assistant", "content": TURN1_REPLY},
          _user(_image("palette"), _text("And in this one? How does it differ?"))]),
    Case("image_rgba", "RGBA PNG with real transparency (alpha dropped, stored RGB kept)",
         [_user(_image("rgba"), _text("Describe the colours."))]),
    Case("image_palette", "palette PNG with a transparent index (alpha dropped)",
         [_user(_image("palette"), _text("How many colours are there?"))]),
]
