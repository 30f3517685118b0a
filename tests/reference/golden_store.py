"""Writes goldens deterministically: tensors as .safetensors, everything else as JSON.

Byte-identical output for identical input is what lets `make_goldens.py` prove its
own reproducibility with `cmp`, so nothing here may depend on time, paths outside
the goldens directory, or dict iteration order that is not fixed by the code.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import save_file


def write_tensors(path: Path, tensors: dict) -> None:
    """Saves {name: torch.Tensor | np.ndarray} contiguously; float tensors must be float32."""
    prepared = {}
    for name, value in tensors.items():
        tensor = torch.from_numpy(np.ascontiguousarray(value)) if isinstance(value, np.ndarray) else value
        tensor = tensor.detach().cpu().contiguous()
        assert tensor.dtype in (torch.float32, torch.int64, torch.uint8), f"{name}: dtype {tensor.dtype}"
        prepared[name] = tensor
    save_file(prepared, str(path), metadata={"format": "pt"})


def write_json(path: Path, value) -> None:
    path.write_text(json.dumps(value, indent=1, ensure_ascii=False) + "\n", encoding="utf-8")


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(root: Path) -> dict:
    """{relative path: sha256} of every file under root, sorted by path."""
    return {str(p.relative_to(root)): sha256_file(p) for p in sorted(root.rglob("*")) if p.is_file()}
