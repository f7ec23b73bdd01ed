"""Writing ``.npz`` files so that a crash never leaves a half-written one (feature caches, seeds)."""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

__all__ = ["save_npz_atomically"]


def save_npz_atomically(path: Path, arrays: dict[str, np.ndarray], *, compressed: bool = False) -> None:
    """``np.savez`` to ``path``, written beside it then renamed: a reader sees the old file or the
    whole new one, never a torn one it would have to detect."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=path.name, suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as fh:
            (np.savez_compressed if compressed else np.savez)(fh, **arrays)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
