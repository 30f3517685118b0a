#!/usr/bin/env python3
"""Goldens for the vision front end (issue 6): media + Hugging Face processor outputs.

    /work/refvenv/bin/python tests/reference/make_processor_goldens.py   # or tests/reference/.venv

Writes tests/goldens/processor/ deterministically (same bytes on every run):
  config/                      Qwen3-VL processor configs (Hub layout) + the 5.x processor_config.json
  media/                       the synthetic inputs (odd sizes, extreme aspect ratios, alpha, palette
                               with tRNS, grayscale, 16-bit, EXIF orientation, WebP, GIF, BMP, videos)
  decoded/<case>.png           the RGB uint8 image the reference decodes from each input
  decoded/pillow_<case>.png    PIL's Image.resize(BICUBIC) of it to the processor's size (a few cases)
  pixels/<case>.png            pixel_values as uint8 codes, one 8-bit gray row per pixel_values row
                               (values are (u8 - 127.5) / 127.5; the script asserts that exactly)
  cases.json                   grid_thw, token counts, frame indices, timestamps, per case

The reference is transformers' default (torchvision, "fast") image processor given image *paths*
(as the chat path does: torchvision.io.decode_image with EXIF orientation), and the Qwen3-VL video
processor given frames decoded by PyAV (load_video(backend="pyav")) plus their metadata, so frame
sampling runs inside the processor. BMP and 16-bit PNG are decoded by PIL (transformers' load_image):
torchvision refuses BMP and returns uint16 tensors for 16-bit PNGs, which the processor would
normalise as if they were 8-bit.
"""
import io
import json
import os
import shutil
import struct
import sys
import tempfile
import zlib

import numpy as np
import torch
from PIL import Image

import av
import torchvision
import transformers
from transformers import AutoImageProcessor, AutoVideoProcessor
from transformers.image_utils import load_image
from transformers.video_utils import load_video
from transformers.models.qwen3_vl.processing_qwen3_vl import Qwen3VLProcessor

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "goldens", "processor")

IMAGE_CONFIG = {
    "size": {"longest_edge": 16777216, "shortest_edge": 65536},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "image_processor_type": "Qwen2VLImageProcessorFast",
}
VIDEO_CONFIG = {
    "size": {"longest_edge": 25165824, "shortest_edge": 4096},
    "patch_size": 16,
    "temporal_patch_size": 2,
    "merge_size": 2,
    "image_mean": [0.5, 0.5, 0.5],
    "image_std": [0.5, 0.5, 0.5],
    "processor_class": "Qwen3VLProcessor",
    "video_processor_type": "Qwen3VLVideoProcessor",
}


# Cases whose Pillow Image.resize(BICUBIC) result is also stored (decoded/pillow_<case>.png).
PILLOW_CASES = ("odd_jpeg", "tie", "wide", "tiny")


def pattern(h, w, seed, channels=3):
    """Smooth gradients + rings + fine noise: exercises every tap of the resampling kernel."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:h, 0:w].astype(np.float64)
    planes = []
    for c in range(channels):
        fx, fy = 0.03 + 0.02 * c, 0.05 - 0.01 * c
        base = 127.5 + 90 * np.sin(fx * x + 0.7 * c) * np.cos(fy * y)
        rings = 40 * np.sin(np.hypot(x - w / 3, y - h / 2) * (0.25 + 0.1 * c))
        planes.append(base + rings + rng.normal(0, 12, (h, w)))
    return np.clip(np.rint(np.stack(planes, -1)), 0, 255).astype(np.uint8)


def png_chunk(kind, data):
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF)


def write_png16(path, rgb16):
    """16-bit RGB PNG (PIL cannot write one)."""
    h, w, _ = rgb16.shape
    raw = b"".join(b"\x00" + rgb16[r].astype(">u2").tobytes() for r in range(h))
    data = (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + png_chunk(b"IDAT", zlib.compress(raw, 9)) + png_chunk(b"IEND", b""))
    with open(path, "wb") as f:
        f.write(data)


def exif_with_orientation(value):
    exif = Image.Exif()
    exif[0x0112] = value
    return exif.tobytes()


def make_media(media):
    """Every input file; returns {case name: (file name, decoder used by the reference)}."""
    files = {}

    def save(name, img, **kw):
        img.save(os.path.join(media, name), **kw)

    save("odd_337x251.jpg", Image.fromarray(pattern(251, 337, 1)), quality=90)
    save("tie_400x208.png", Image.fromarray(pattern(208, 400, 2)))  # 6.5 and 12.5 -> even
    save("wide_5000x30.png", Image.fromarray(pattern(30, 5000, 3)))  # aspect 166.7
    save("tall_24x3000.png", Image.fromarray(pattern(3000, 24, 4)))  # aspect 125, below factor
    save("tiny_20x13.png", Image.fromarray(pattern(13, 20, 5)))      # below min_pixels
    rgba = np.concatenate([pattern(131, 173, 6), pattern(131, 173, 7, 1)], -1)
    rgba[::7, :, 3] = 0                                               # fully transparent rows
    save("rgba_173x131.png", Image.fromarray(rgba, "RGBA"))
    pal = Image.fromarray(pattern(120, 150, 8)).quantize(64, method=Image.Quantize.MEDIANCUT, dither=0)
    pal.info["transparency"] = bytes([0, 128] + [255] * 62)           # tRNS for the first entries
    save("palette_150x120.png", pal, transparency=bytes([0, 128] + [255] * 62))
    save("gray_201x157.png", Image.fromarray(pattern(157, 201, 9, 1)[..., 0], "L"))
    rgb16 = pattern(83, 297, 10).astype(np.uint16) * 257 + np.random.default_rng(11).integers(
        0, 257, (83, 297, 3)).astype(np.uint16)
    write_png16(os.path.join(media, "rgb16_297x83.png"), rgb16)
    # Stored 160 wide x 120 high, EXIF says "rotate 90 CW to display" -> upright 120x160.
    save("exif6_160x120.jpg", Image.fromarray(pattern(120, 160, 12)), quality=92,
         exif=exif_with_orientation(6))
    save("lossless_211x149.webp", Image.fromarray(pattern(149, 211, 13)), lossless=True)
    save("lossy_211x149.webp", Image.fromarray(pattern(149, 211, 14)), quality=80, method=4)
    frames = [Image.fromarray(pattern(97, 143, 15 + k)).quantize(128, method=Image.Quantize.MEDIANCUT, dither=0)
              for k in range(2)]
    frames[0].save(os.path.join(media, "anim_143x97.gif"), save_all=True, append_images=frames[1:],
                   duration=100, loop=0)
    save("bgr_123x77.bmp", Image.fromarray(pattern(77, 123, 17)))

    write_video(os.path.join(media, "rgb_100x75_10fps.mov"), "png", "rgb24", 100, 75, 10, 30, 20)
    write_video(os.path.join(media, "h264_160x90_25fps.mp4"), "libx264", "yuv420p", 160, 90, 25, 65, 21)
    for k in range(5):
        save(f"frame{k}_96x80.png", Image.fromarray(pattern(80, 96, 30 + k)))


def write_video(path, codec, pix_fmt, w, h, fps, count, seed):
    with av.open(path, "w") as container:
        stream = container.add_stream(codec, rate=fps)
        stream.width, stream.height, stream.pix_fmt = w, h, pix_fmt
        if codec == "libx264":
            stream.options = {"crf": "18", "preset": "medium", "threads": "1"}
            stream.codec_context.thread_count = 1
        for i in range(count):
            rgb = np.roll(pattern(h, w, seed), shift=(i * 3, i * 2), axis=(0, 1))
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            for packet in stream.encode(frame):
                container.mux(packet)
        for packet in stream.encode():
            container.mux(packet)


def write_gray_png(path, codes):
    Image.fromarray(np.ascontiguousarray(codes), "L").save(path, optimize=True)


def to_codes(pixel_values):
    """pixel_values are (u8 - 127.5) / 127.5 in float32; recover u8 and prove the round trip exact."""
    pv = pixel_values.numpy()
    codes = np.rint(pv.astype(np.float64) * 127.5 + 127.5)
    assert codes.min() >= 0 and codes.max() <= 255
    codes = codes.astype(np.uint8)
    back = (codes.astype(np.float32) - np.float32(127.5)) / np.float32(127.5)
    assert np.array_equal(back, pv), "pixel_values are not (u8 - 127.5) / 127.5 exactly"
    return codes


def decode_reference(path, pil):
    if pil:
        return np.asarray(load_image(path))
    from torchvision.io import ImageReadMode, decode_image
    t = decode_image(path, mode=ImageReadMode.RGB, apply_exif_orientation=True)
    if t.ndim == 4:  # animated GIF: all frames; the chat path would batch them, we keep frame 0
        t = t[0]
    return t.permute(1, 2, 0).numpy()


def main():
    if os.path.isdir(OUT):
        for sub in ("media", "decoded", "pixels", "config"):
            shutil.rmtree(os.path.join(OUT, sub), ignore_errors=True)
    for sub in ("media", "decoded", "pixels", "config"):
        os.makedirs(os.path.join(OUT, sub), exist_ok=True)
    media = os.path.join(OUT, "media")
    cfg_dir = os.path.join(OUT, "config")
    with open(os.path.join(cfg_dir, "preprocessor_config.json"), "w") as f:
        json.dump(IMAGE_CONFIG, f, indent=2)
        f.write("\n")
    with open(os.path.join(cfg_dir, "video_preprocessor_config.json"), "w") as f:
        json.dump(VIDEO_CONFIG, f, indent=2)
        f.write("\n")
    make_media(media)

    image_processor = AutoImageProcessor.from_pretrained(cfg_dir)
    video_processor = AutoVideoProcessor.from_pretrained(cfg_dir)
    assert type(image_processor).__name__ == "Qwen2VLImageProcessor", type(image_processor)
    assert image_processor.backend == "torchvision"
    save_processor_config(cfg_dir, image_processor, video_processor)

    text_processor = make_text_processor(image_processor, video_processor)
    cases = []
    image_cases = [
        # name, file, PIL decode (see module doc), size override
        ("odd_jpeg", "odd_337x251.jpg", False, None),
        ("tie", "tie_400x208.png", False, None),
        ("wide", "wide_5000x30.png", False, None),
        ("tall", "tall_24x3000.png", False, None),
        ("tiny", "tiny_20x13.png", False, None),
        ("rgba", "rgba_173x131.png", False, None),
        ("palette_trns", "palette_150x120.png", False, None),
        ("gray", "gray_201x157.png", False, None),
        ("rgb16", "rgb16_297x83.png", True, None),
        ("exif6", "exif6_160x120.jpg", False, None),
        ("webp_lossless", "lossless_211x149.webp", False, None),
        ("webp_lossy", "lossy_211x149.webp", False, None),
        ("gif", "anim_143x97.gif", True, None),
        ("bmp", "bgr_123x77.bmp", True, None),
        ("odd_max", "odd_337x251.jpg", False, {"shortest_edge": 4096, "longest_edge": 40000}),
        ("odd_min", "odd_337x251.jpg", False, {"shortest_edge": 150000, "longest_edge": 16777216}),
    ]
    for name, file, pil, size in image_cases:
        path = os.path.join(media, file)
        decoded = decode_reference(path, pil)
        Image.fromarray(decoded).save(os.path.join(OUT, "decoded", name + ".png"), optimize=True)
        kwargs = {"size": size} if size else {}
        # Paths go through the processor's own loader; PIL-decoded inputs go in as arrays.
        source = path if not pil else torch.from_numpy(decoded.copy()).permute(2, 0, 1)
        out = image_processor(images=[source], return_tensors="pt", **kwargs)
        codes = to_codes(out["pixel_values"])
        write_gray_png(os.path.join(OUT, "pixels", name + ".png"), codes)
        grid = out["image_grid_thw"].tolist()
        if name in PILLOW_CASES:  # the slow processor's resize, for ResampleOrder::pillow
            size_hw = (grid[0][1] * 16, grid[0][2] * 16)
            Image.fromarray(decoded).resize(size_hw[::-1], Image.Resampling.BICUBIC).save(
                os.path.join(OUT, "decoded", "pillow_" + name + ".png"), optimize=True)
        cases.append({
            "name": name, "kind": "image", "media": [file], "reference_decoder": "PIL" if pil else "torchvision",
            "size": size, "decoded_shape": list(decoded.shape), "grid_thw": grid,
            "num_tokens": int(np.prod(grid[0]) // 4), "pixel_values_shape": list(out["pixel_values"].shape),
        })

    for name, file in (("video_rgb", "rgb_100x75_10fps.mov"), ("video_h264", "h264_160x90_25fps.mp4")):
        path = os.path.join(media, file)
        frames, metadata = load_video(path, backend="pyav")  # every frame + metadata
        out = video_processor(videos=[frames], video_metadata=[metadata], return_tensors="pt",
                              return_metadata=True, cap_pixels_per_frame=False)
        md = out["video_metadata"][0]
        indices = [int(i) for i in md.frames_indices]
        grid = out["video_grid_thw"].tolist()
        stamps = Qwen3VLProcessor._calculate_timestamps(None, list(indices), md.fps, 2)
        placeholder = text_processor.replace_video_token(
            {"video_grid_thw": out["video_grid_thw"], "video_metadata": out["video_metadata"]}, 0)
        codes = to_codes(out["pixel_values_videos"])
        write_gray_png(os.path.join(OUT, "pixels", name + ".png"), codes)
        sampled = frames[indices]
        Image.fromarray(np.concatenate(list(sampled), 0)).save(
            os.path.join(OUT, "decoded", name + ".png"), optimize=True)
        cases.append({
            "name": name, "kind": "video", "media": [file], "total_num_frames": int(metadata.total_num_frames),
            "fps": float(md.fps), "frame_indices": indices, "grid_thw": grid,
            "num_tokens": int(np.prod(grid[0]) // 4), "tokens_per_group": int(grid[0][1] * grid[0][2] // 4),
            "timestamps": [f"<{t:.1f} seconds>" for t in stamps],
            "placeholder": placeholder,
            "pixel_values_shape": list(out["pixel_values_videos"].shape),
            "decoded_shape": list(sampled.shape),
        })

    # A list of image files as the frames of one video (no metadata: HF assumes 24 fps).
    names = [f"frame{k}_96x80.png" for k in range(5)]
    frames = np.stack([np.asarray(Image.open(os.path.join(media, n)).convert("RGB")) for n in names])
    out = video_processor(videos=[frames], return_tensors="pt", return_metadata=True, cap_pixels_per_frame=False)
    md = out["video_metadata"][0]
    indices = [int(i) for i in md.frames_indices]
    grid = out["video_grid_thw"].tolist()
    stamps = Qwen3VLProcessor._calculate_timestamps(None, list(indices), md.fps, 2)
    write_gray_png(os.path.join(OUT, "pixels", "video_frames.png"), to_codes(out["pixel_values_videos"]))
    cases.append({
        "name": "video_frames", "kind": "video_frames", "media": names, "total_num_frames": len(names),
        "fps": float(md.fps), "frame_indices": indices, "grid_thw": grid,
        "num_tokens": int(np.prod(grid[0]) // 4), "tokens_per_group": int(grid[0][1] * grid[0][2] // 4),
        "timestamps": [f"<{t:.1f} seconds>" for t in stamps],
        "pixel_values_shape": list(out["pixel_values_videos"].shape),
    })

    try:
        image_processor(images=[os.path.join(media, "wide_5000x30.png")], return_tensors="pt",
                        size={"shortest_edge": 65536, "longest_edge": 16777216})
        ratio_error = None
    except ValueError as e:
        ratio_error = str(e)

    doc = {
        "generator": "tests/reference/make_processor_goldens.py",
        "versions": {"transformers": transformers.__version__, "torch": torch.__version__,
                     "torchvision": torchvision.__version__, "av": av.__version__,
                     "pillow": Image.__version__, "numpy": np.__version__},
        "cases": cases,
    }
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    print(f"wrote {len(cases)} cases to {os.path.normpath(OUT)}")


def make_text_processor(image_processor, video_processor):
    """Qwen3VLProcessor (needs the Qwen3 tokenizer from scripts/setup.sh)."""
    tok_dir = os.path.join(HERE, "..", "..", "third_party", "qwen3-tokenizer")
    if not os.path.isfile(os.path.join(tok_dir, "tokenizer.json")):
        sys.exit(f"need the Qwen3 tokenizer in {tok_dir} (scripts/setup.sh)")
    from transformers import AutoTokenizer
    tokenizer = AutoTokenizer.from_pretrained(tok_dir)
    return Qwen3VLProcessor(image_processor=image_processor, tokenizer=tokenizer,
                            video_processor=video_processor, chat_template="")


def save_processor_config(cfg_dir, image_processor, video_processor):
    """The transformers 5.x layout: one processor_config.json holding both sub-processors."""
    processor = make_text_processor(image_processor, video_processor)
    with tempfile.TemporaryDirectory() as tmp:
        processor.save_pretrained(tmp)
        with open(os.path.join(tmp, "processor_config.json")) as f:
            doc = json.load(f)
    os.makedirs(os.path.join(cfg_dir, "v5"), exist_ok=True)
    with open(os.path.join(cfg_dir, "v5", "processor_config.json"), "w") as f:
        json.dump(doc, f, indent=2, sort_keys=True)
        f.write("\n")


if __name__ == "__main__":
    torch.manual_seed(0)
    main()
