"""Fixtures for the ONNX Runtime GenAI tests: packages built by `q3vl build`, the HF
goldens, and a small driver over onnxruntime-genai's own Python API (its processor,
tokenizer and generator loop).

CTest (tests/CMakeLists.txt, test `genai.python`) sets Q3VL_EXE, Q3VL_TEST_WORK_DIR and
Q3VL_GOLDEN_DIR and provides the `checkpoint-tiny` fixture checkpoint.
"""
import json
import os
import pathlib
import shutil
import struct
import subprocess
import zlib

import numpy as np
import onnxruntime_genai as og
import pytest

Q3VL = os.environ.get("Q3VL_EXE", "")
WORK = pathlib.Path(os.environ.get("Q3VL_TEST_WORK_DIR", "build/testdata"))
GOLDENS = pathlib.Path(os.environ.get("Q3VL_GOLDEN_DIR", "tests/goldens"))
# Checkpoints with HF goldens: the `tiny` preset and `custom` (not a preset: MQA with one KV
# head, head_dim 24, an uneven mrope_section, one DeepStack tap; tests/reference/README.md).
CHECKPOINTS = ("tiny", "custom")


def run_q3vl(*args):
    result = subprocess.run([Q3VL, *map(str, args)], capture_output=True, text=True)
    if result.returncode != 0:
        raise AssertionError(f"q3vl {' '.join(map(str, args))} failed:\n{result.stderr}")
    return result.stdout


def read_safetensors(path):
    """name -> numpy array (F32/I64/U8), read without the safetensors package."""
    data = pathlib.Path(path).read_bytes()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8 : 8 + n])
    types = {"F32": np.float32, "I64": np.int64, "U8": np.uint8, "F16": np.float16}
    out = {}
    for name, v in header.items():
        if name == "__metadata__":
            continue
        begin, end = v["data_offsets"]
        out[name] = np.frombuffer(data[8 + n + begin : 8 + n + end], dtype=types[v["dtype"]]).reshape(v["shape"])
    return out


def write_png(path, rgb):
    """An 8-bit RGB PNG of `rgb` [h, w, 3] uint8 (zlib only: no imaging library in the venv)."""
    h, w, _ = rgb.shape
    raw = b"".join(b"\x00" + rgb[y].tobytes() for y in range(h))

    def chunk(kind, body):
        return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body) & 0xFFFFFFFF)

    png = b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
    png += chunk(b"IDAT", zlib.compress(raw, 9)) + chunk(b"IEND", b"")
    pathlib.Path(path).write_bytes(png)


class Golden:
    """One case of tests/goldens/model (tests/reference/README.md describes the files)."""

    def __init__(self, name, checkpoint="tiny"):
        self.dir = GOLDENS / "model" / "cases" / name
        self.case = json.loads((self.dir / "case.json").read_text())
        self.values = read_safetensors(self.dir / f"{checkpoint}.safetensors")
        self.prompt = self.case["prompt"]
        self.images = [str(GOLDENS / "model" / f) for f in self.case["image_files"]]


class GenaiRun:
    """Greedy generation through onnxruntime-genai: tokens, the first step's logits and
    the prefill position_ids, as GenAI computed them."""

    def __init__(self, model, prompt, images, steps):
        processor = model.create_multimodal_processor()
        inputs = processor(prompt, images=og.Images.open(*images)) if images else processor(prompt)
        self.input_ids = inputs["input_ids"].as_numpy().reshape(-1)
        self.pixel_values = inputs["pixel_values"].as_numpy() if images else None
        params = og.GeneratorParams(model)
        params.set_search_options(do_sample=False, max_length=int(self.input_ids.size + steps))
        generator = og.Generator(model, params)
        generator.set_inputs(inputs)
        self.tokens = []
        self.first_logits = None
        self.position_ids = None
        while not generator.is_done() and len(self.tokens) < steps:
            generator.generate_next_token()
            if self.first_logits is None:
                self.first_logits = np.array(generator.get_output("logits")).reshape(-1)
                self.position_ids = np.array(generator.get_input("position_ids"))
            self.tokens.append(int(generator.get_next_tokens()[0]))


def cosine(a, b):
    a = np.asarray(a, dtype=np.float64).reshape(-1)
    b = np.asarray(b, dtype=np.float64).reshape(-1)
    return float(a @ b / (np.linalg.norm(a) * np.linalg.norm(b)))


def same_up_to_near_ties(got, want, margins, tie=1e-3):
    """True if `got` equals `want` until a step whose reference top-1/top-2 margin is
    below `tie` (a near-tie, where float rounding may pick either token); from there on
    the sequences continue from different contexts and are not compared."""
    for i, (g, w) in enumerate(zip(got, want)):
        if g != w:
            return margins[i] < tie
    return len(got) == len(want)


def checkpoint_path(name):
    path = WORK / f"checkpoint-{name}"
    assert (path / "config.json").exists(), f"{path}: the CTest fixture checkpoint (fixture.checkpoint.{name})"
    return path


class Packages:
    """Packages of one checkpoint, built once per session under WORK/genai-<checkpoint>/."""

    def __init__(self, name):
        self.checkpoint = checkpoint_path(name)
        self.root = WORK / f"genai-{name}"
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True)
        self.models = {}

    def path(self, name, *flags):
        out = self.root / name
        if not out.exists():
            run_q3vl("build", "--model", self.checkpoint, "--out", out, "--quiet", *flags)
        return out

    def model(self, name, *flags):
        if name not in self.models:
            self.models[name] = og.Model(str(self.path(name, *flags)))
        return self.models[name]


_packages = {}


def packages_of(name):
    if name not in _packages:
        _packages[name] = Packages(name)
    return _packages[name]


@pytest.fixture(scope="session")
def packages():
    return packages_of("tiny")
