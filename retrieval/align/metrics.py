"""Held-out figures of a trained joint space: Recall@k, text-to-image, image-to-text and
cross-style image-to-image.

Kept apart from training because the benchmark (benchmarks/retrieval_quality.py) scores the
baselines with the same functions: :func:`recall_at_k` and the code helpers work on any unit
vectors, only :func:`evaluate_alignment` needs an :class:`AlignedProjection`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from retrieval.align.model import AlignedProjection

__all__ = [
    "recall_at_k",
    "cross_style_queries",
    "concept_codes",
    "style_codes",
    "evaluate_alignment",
]


def recall_at_k(
    queries: np.ndarray,
    gallery: np.ndarray,
    query_targets: np.ndarray,
    gallery_targets: np.ndarray,
    ks: Sequence[int] = (1, 10),
    *,
    query_exclude: np.ndarray | None = None,
    gallery_exclude: np.ndarray | None = None,
    chunk: int = 512,
) -> dict[str, Any]:
    """Recall@k by inner product: a query hits when a gallery row with the same target code is
    in its top k. Gallery rows whose exclude code equals the query's are removed for that query
    (e.g. its own style). Queries with no target left are not counted (``queries`` says how many
    were; recall is None when none was). Rank = number of non-target rows scoring strictly higher than the best target."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    g = np.ascontiguousarray(gallery, dtype=np.float32)
    qt, gt = np.asarray(query_targets), np.asarray(gallery_targets)
    if len(q) != len(qt) or len(g) != len(gt):
        raise ValueError("one target code per query and per gallery row")
    hits = {k: 0 for k in ks}
    counted = 0
    for start in range(0, len(q), chunk):
        scores = q[start : start + chunk] @ g.T
        target = qt[start : start + chunk, None] == gt[None, :]
        if query_exclude is not None:
            excluded = query_exclude[start : start + chunk, None] == gallery_exclude[None, :]
            scores[excluded] = -np.inf
            target &= ~excluded
        has = target.any(axis=1)
        best = np.where(target, scores, -np.inf).max(axis=1)
        rank = ((scores > best[:, None]) & ~target).sum(axis=1)
        counted += int(has.sum())
        for k in ks:
            hits[k] += int(((rank < k) & has).sum())
    out: dict[str, Any] = {f"recall@{k}": (hits[k] / counted if counted else None) for k in ks}
    out["queries"] = counted
    return out


def cross_style_queries(
    concepts: Sequence[str | None], styles: Sequence[str], allowed: Sequence[bool] | None = None
) -> np.ndarray:
    """Indices of items usable as cross-style queries: they have a concept that exists in at
    least one OTHER style (and ``allowed[i]``, e.g. held out)."""
    styles_of: dict[str, set[str]] = {}
    for concept, style in zip(concepts, styles, strict=True):
        if concept:
            styles_of.setdefault(concept, set()).add(style)
    return np.array(
        [
            i
            for i, (c, s) in enumerate(zip(concepts, styles, strict=True))
            if c and styles_of[c] - {s} and (allowed is None or allowed[i])
        ],
        dtype=np.int64,
    )


def concept_codes(concepts: Sequence[str | None]) -> np.ndarray:
    """Integer target codes: equal for items sharing a concept, unique for items with none."""
    index: dict[str, int] = {}
    codes = np.empty(len(concepts), dtype=np.int64)
    for i, concept in enumerate(concepts):
        codes[i] = index.setdefault(concept, len(index)) if concept else -1 - i
    return codes


def style_codes(styles: Sequence[str | None]) -> np.ndarray:
    index: dict[str | None, int] = {}
    return np.array([index.setdefault(s, len(index)) for s in styles], dtype=np.int64)


def evaluate_alignment(
    projection: AlignedProjection,
    image: np.ndarray,
    text: np.ndarray,
    held_out: np.ndarray,
    *,
    concepts: Sequence[str | None] | None = None,
    styles: Sequence[str | None] | None = None,
    ks: Sequence[int] = (1, 10),
) -> dict[str, Any]:
    """Held-out retrieval figures of ``projection`` at every Matryoshka prefix.

    * ``text_to_image``: query = a held-out item's text, gallery = ALL items' images (training
      items included: they are the distractors a shopper's query meets), target = that item;
    * ``image_to_text``: the reverse;
    * ``cross_style`` (when ``concepts`` and ``styles`` are given): query = a held-out item's
      image, gallery = every item of the other styles, target = any item of the same concept,
      image-to-image in the joint space.
    """
    held_out = np.asarray(held_out, dtype=np.int64)
    n = len(image)
    ids = np.arange(n)
    out: dict[str, Any] = {"text_to_image": {}, "image_to_text": {}}
    cross = None
    if concepts is not None and styles is not None:
        allowed = np.zeros(n, dtype=bool)
        allowed[held_out] = True
        cross = (cross_style_queries(concepts, styles, allowed), concept_codes(concepts),
                 style_codes(styles))
        out["cross_style"] = {}
    for d in projection.config.dims:
        img = projection.project_images(image, d)
        txt = projection.project_texts(text, d)
        out["text_to_image"][str(d)] = recall_at_k(txt[held_out], img, ids[held_out], ids, ks)
        out["image_to_text"][str(d)] = recall_at_k(img[held_out], txt, ids[held_out], ids, ks)
        if cross is not None:
            queries, concept, style = cross
            out["cross_style"][str(d)] = recall_at_k(
                img[queries], img, concept[queries], concept, ks,
                query_exclude=style[queries], gallery_exclude=style,
            )
    return out
