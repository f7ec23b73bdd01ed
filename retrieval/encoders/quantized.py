"""An int8 copy of a sentence-transformers text encoder, for single queries.

A person's query is one short text, encoded while they wait: on 2 CPU cores MiniLM-L6 spends
~10 ms on it in float32 and ~4 ms with its Linear layers quantized to int8 (dynamic, per output
channel). Item texts are still encoded in float32 (batched, cached, off the serving path), so the
index does not change; the int8 query vector is an approximation of the float32 one (cosine
~0.98 on short texts), and benchmarks/retrieval_quality.py reports the recall it costs.

Per-channel weights matter: per-tensor int8 drifted to cosine ~0.95 in the same measurement.
"""

from __future__ import annotations

import copy
import threading
from typing import Any

import numpy as np

from retrieval.encoders.base import TextEncoder
from retrieval.encoders.minilm import SentenceTransformerTextEncoder

__all__ = ["Int8TextEncoder"]

INT8_SUFFIX = "-int8"


class Int8TextEncoder(TextEncoder):
    """``base`` with every ``torch.nn.Linear`` quantized to int8 weights (activations stay float).

    ``quantized_from`` names the float encoder it approximates: a projection trained on that
    encoder's features accepts this one as its base (see ``retrieval.encoders.aligned``).
    """

    def __init__(self, base: SentenceTransformerTextEncoder) -> None:
        self.base = base
        self.quantized_from = base.name
        self.name = base.name + INT8_SUFFIX
        self._dim = getattr(base, "_dim", None)
        self._model: Any = None
        self._lock = threading.Lock()

    @property
    def dim(self) -> int:
        if self._dim is None:
            self._dim = self.base.dim
        return self._dim

    @property
    def model(self) -> Any:
        with self._lock:  # two first queries at once must not quantize twice
            if self._model is None:
                self._model = _quantized_copy(self.base.model)
            return self._model

    def encode_batch(self, batch: list[str]) -> np.ndarray:
        # One text at a time: dynamic quantization scales activations per forward pass, so a
        # text's vector would otherwise depend on the other texts (and padding) in its batch.
        model = self.model
        return np.concatenate([model.encode([text], convert_to_numpy=True, normalize_embeddings=False,
                                            show_progress_bar=False) for text in batch])


def _quantized_copy(model: Any) -> Any:
    import warnings

    import torch

    # A copy: the float model stays as it was for item encoding in the same process. The swap is
    # recursive over the whole module tree, whatever the backend calls its transformer.
    with warnings.catch_warnings():
        # torch 2.10+ warns that torch.ao.quantization and its quantized tensor constructors will
        # move to torchao; they work in every torch this project allows (<2.14), and the warnings
        # would repeat for every user and every test run. (Moving to torchao is the fix once the
        # pin moves past 2.14.)
        warnings.filterwarnings("ignore", message=".*quantized tensor creation functions.*")
        warnings.filterwarnings("ignore", message=".*torch.ao.quantization is deprecated.*",
                                category=DeprecationWarning)
        from torch.ao.quantization import per_channel_dynamic_qconfig, quantize_dynamic

        return quantize_dynamic(copy.deepcopy(model), {torch.nn.Linear: per_channel_dynamic_qconfig}).eval()
