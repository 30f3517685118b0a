"""The inputs the peers get: synthetic images of fixed sizes.

Images are written as PNG with the standard library only (zlib + struct), from a formula, so
every run sees the same pixels. q3vl's side (`q3vl bench`) makes its own synthetic image of the
same size and feeds the same prompt; the vision encoders' work depends on the size, not on the
pixels. Text workloads need no input: llama-bench and q3vl bench both feed exactly 128 / 512
token ids with no chat template.
"""

import os
import struct
import zlib

IMAGE_SIZES = {"448": (448, 448), "1024x768": (1024, 768)}
IMAGE_PROMPT = "Describe this image in one sentence."


def write_png(path, width, height, pixel):
    """Write an 8-bit RGB PNG; pixel(x, y) -> (r, g, b) ints in 0..255."""
    rows = bytearray()
    for y in range(height):
        rows.append(0)  # filter type None
        for x in range(width):
            rows.extend(pixel(x, y))
    def chunk(kind, data):
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body) & 0xFFFFFFFF)
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    with open(path, "wb") as f:
        f.write(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", header) +
                chunk(b"IDAT", zlib.compress(bytes(rows), 6)) + chunk(b"IEND", b""))


def _scene(width, height):
    """Gradients, a checkerboard quadrant and a disc: structure at several scales."""
    cx, cy, r2 = width * 0.6, height * 0.4, (min(width, height) * 0.2) ** 2
    def pixel(x, y):
        if (x - cx) ** 2 + (y - cy) ** 2 < r2:
            return (230, 40 + (x % 64), 60)
        if x < width // 3 and y > height // 2:
            v = 220 if ((x // 16) + (y // 16)) % 2 else 30
            return (v, v, v)
        return ((255 * x) // width, (255 * y) // height, (x * y) % 256)
    return pixel


def make_images(out_dir):
    """Write the benchmark images into out_dir; returns {name: path}."""
    paths = {}
    for name, (width, height) in IMAGE_SIZES.items():
        path = os.path.join(out_dir, f"image_{name}.png")
        if not os.path.exists(path):
            write_png(path, width, height, _scene(width, height))
        paths[name] = path
    return paths
