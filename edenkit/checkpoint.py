"""Checkpoints: atomic save, safe load, encoder export.

Checkpoints hold plain data only (tensors, numbers, strings, lists, dicts) so that they load with
``torch.load(weights_only=True)``. A file is written to a temporary name in the same folder and then
renamed, so a kill never leaves a half-written checkpoint under the final name.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path
from typing import Any

import torch


class CheckpointError(RuntimeError):
    """A checkpoint that is missing, unreadable or not of the expected layout."""


def atomic_save(obj: Any, path: str | Path) -> Path:
    """``torch.save`` to ``path`` via a temporary file and an atomic rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            torch.save(obj, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> Any:
    """``torch.load(weights_only=True)`` with errors that name the file."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except Exception as e:  # pickle errors, truncated files, non-plain objects
        raise CheckpointError(f"cannot read checkpoint {path}: {type(e).__name__}: {e}") from e


def export_encoder(backbone_state_dict: dict[str, torch.Tensor], path: str | Path) -> Path:
    """Write a plain torchvision ResNet ``state_dict`` without ``fc`` (the kit's exchange format)."""
    state = {k: v.detach().cpu().clone() for k, v in backbone_state_dict.items() if not k.startswith("fc.")}
    return atomic_save(state, path)
