"""Atomic file writes: a reader sees the old file or the new one, never half of either.

Everything the kit writes that a later step trusts (JSON summaries, logs, cache indices, checksum
stores, checkpoints) goes through a temporary file in the same folder and ``os.replace``. Temporary
files are named ``.<name>.<random>.tmp``; :func:`remove_stale_temp_files` clears those a killed
process left behind.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import IO, Any

TEMP_SUFFIX = ".tmp"


def atomic_write(path: str | Path, write: Callable[[IO[bytes]], Any]) -> Path:
    """Call ``write(f)`` on a temporary binary file next to ``path``, fsync it, then rename it to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            write(f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    return path


def atomic_write_text(path: str | Path, text: str) -> Path:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    return atomic_write(path, lambda f: f.write(text.encode("utf-8")))


def atomic_write_json(path: str | Path, data: Any, indent: int | None = 2) -> Path:
    """Write ``data`` as JSON (with a final newline) to ``path`` atomically."""
    return atomic_write_text(path, json.dumps(data, indent=indent) + "\n")


def remove_stale_temp_files(folder: str | Path) -> list[Path]:
    """Delete the ``.<name>.*.tmp`` files that an interrupted atomic write left in ``folder``."""
    folder = Path(folder)
    if not folder.is_dir():
        return []
    stale = [p for p in folder.iterdir() if p.name.startswith(".") and p.name.endswith(TEMP_SUFFIX) and p.is_file()]
    for p in stale:
        p.unlink(missing_ok=True)
    return stale
