"""The aligned joint image-text space, trained here on the catalog's own (image, text) pairs.

A small MLP head maps EfficientNet-Lite0 image features into the MiniLM text space and a residual
adapter lets the text side move a little; both are trained with a Matryoshka InfoNCE loss plus a
term that pulls one emoji's styles together. The package is in three parts:

* :mod:`retrieval.align.model`: the config, the modules, the inference-ready
  :class:`AlignedProjection`, and the weight files (save, load, content hash, errors);
* :mod:`retrieval.align.training`: the losses, the by-group held-out split and the training loop;
* :mod:`retrieval.align.metrics`: the held-out retrieval figures (Recall@k, cross-style).

Every public name is re-exported here, so ``from retrieval.align import X`` is the way to use
them. This package takes arrays; reading a catalog is the caller's job (``crs train-align``).
"""

from __future__ import annotations

from retrieval.align.metrics import (
    concept_codes,
    cross_style_queries,
    evaluate_alignment,
    recall_at_k,
    style_codes,
)
from retrieval.align.model import (
    FORMAT,
    META_FILE,
    WEIGHTS_FILE,
    AlignConfig,
    AlignedProjection,
    AlignModel,
    AlignWeightsError,
    AlignWeightsMissing,
    ImageHead,
    TextAdapter,
    content_hash,
    load_alignment,
    save_alignment,
)
from retrieval.align.training import (
    Progress,
    TrainResult,
    group_split,
    matryoshka_group_loss,
    matryoshka_infonce,
    train_alignment,
)

__all__ = [
    "AlignConfig",
    "AlignModel",
    "AlignedProjection",
    "AlignWeightsError",
    "AlignWeightsMissing",
    "TrainResult",
    "WEIGHTS_FILE",
    "META_FILE",
    "group_split",
    "train_alignment",
    "matryoshka_infonce",
    "matryoshka_group_loss",
    "save_alignment",
    "content_hash",
    "load_alignment",
    "recall_at_k",
    "cross_style_queries",
    "concept_codes",
    "style_codes",
    "evaluate_alignment",
]
