"""The inputs every system gets: synthetic images and text prompts of a fixed token count.

Images are written as PNG with the standard library only (zlib + struct), from a formula, so
every run and every system sees the same pixels. Prompts are words from a fixed list; their
length is calibrated with q3vl's own tokenizer and chat template (`q3vl template` +
`q3vl tokenize`) so that the rendered prompt is exactly the requested number of tokens, which
is what llama-bench's pp128 / pp512 measure (llama-bench feeds that many tokens, no template).
"""

import json
import os
import struct
import subprocess
import tempfile
import zlib

IMAGE_SIZES = {"448": (448, 448), "1024x768": (1024, 768)}
IMAGE_PROMPT = "Describe this image in one sentence."

# Common English words; with a leading space each is one token in the Qwen vocabulary, so the
# calibration below converges in one or two steps.
WORDS = ("the of and to in is that for it as with was on be by at this from or an are which "
         "one all were when there can more if has their what so out about up into than them "
         "some could time these two may then do first any like now my such make over did "
         "only other new years way most people water long little very after words called just "
         "where through back much before line right too means old same tell boy follow came "
         "want show also around form three small set put end does another well large must big "
         "even such because turn here why ask went men read need land different home us move "
         "try kind hand picture again change off play spell air away animal house point page "
         "letter mother answer found study still learn should world high every near add food "
         "between own below country plant last school father keep tree never start city earth "
         "eye light thought head under story saw left few while along might close something "
         "seem next hard open example begin life always those both paper together got group "
         "often run important until children side feet car mile night walk white sea began "
         "grow took river four carry state once book hear stop without second later miss idea "
         "enough eat face watch far real almost let above girl sometimes mountain cut young "
         "talk soon list song being leave family").split()


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


def _prompt_tokens(q3vl, package, text):
    """Tokens in the rendered one-turn chat prompt (template + generation header) for text."""
    with tempfile.TemporaryDirectory() as tmp:
        messages = os.path.join(tmp, "m.json")
        with open(messages, "w") as f:
            json.dump([{"role": "user", "content": text}], f)
        rendered = subprocess.run([q3vl, "template", "--model", package, "--messages", messages],
                                  check=True, capture_output=True).stdout
        prompt = os.path.join(tmp, "p.txt")
        with open(prompt, "wb") as f:
            f.write(rendered)
        ids = subprocess.run([q3vl, "tokenize", "--model", package, "--file", prompt, "--json"],
                             check=True, capture_output=True, text=True).stdout
    return len(json.loads(ids)["ids"])


def make_prompt(q3vl, package, n_tokens):
    """A text whose rendered chat prompt is exactly n_tokens tokens (raises if none is)."""
    n_words = n_tokens
    for _ in range(8):
        text = " ".join(WORDS[i % len(WORDS)] for i in range(n_words)).capitalize() + "."
        count = _prompt_tokens(q3vl, package, text)
        if count == n_tokens:
            return text
        n_words += n_tokens - count
    raise RuntimeError(f"could not calibrate a {n_tokens}-token prompt (last: {count} tokens)")
