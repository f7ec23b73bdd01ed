"""Training the joint space: the losses, the held-out split and the training loop.

Both sides of :class:`~retrieval.align.model.AlignModel` are trained with a symmetric InfoNCE
loss (image->text and text->image, in-batch negatives) and a learnable temperature.

Matryoshka: the loss is summed over nested prefixes of the output (64, 128 and 384 by default),
each re-normalised, so the first 64 numbers of a vector are a usable embedding on their own: a
fast first pass over a large index, refined with the full vector.

Two pairs whose texts are identical (two drawings both titled "star") are not negatives of each
other: their logits are masked out of the loss rather than pushed apart.

A second, supervised-contrastive term pulls together the images of one GROUP (the same emoji
drawn in several styles: the catalog's ``concept``), so that image-to-image search in the joint
space finds an emoji across styles (cross-style Recall@10 on held-out concepts 0.82 -> 0.91,
see benchmarks/retrieval_quality.py). Items with no group take no part in it.

Training is seeded and reproducible (same seed, same inputs, same thread count -> same
weights). "Same inputs" means bit-identical feature arrays: features of the same items computed
in other batches or with another thread count differ in their last bits, which gives other
weights (another hash) with the same figures. The result is float16-rounded
(:meth:`AlignedProjection.from_model`), so the figures describe exactly what is shipped.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch.nn import functional as F

from retrieval.align.model import AlignConfig, AlignedProjection, AlignModel

__all__ = [
    "Progress",
    "TrainResult",
    "group_split",
    "train_alignment",
    "matryoshka_infonce",
    "matryoshka_group_loss",
]

Progress = Callable[[str], None]


# -- losses ----------------------------------------------------------------------------------


def matryoshka_infonce(
    image: torch.Tensor,
    text: torch.Tensor,
    log_scale: torch.Tensor,
    dims: Sequence[int],
    same_text: torch.Tensor | None = None,
) -> torch.Tensor:
    """Symmetric InfoNCE summed over the nested prefixes ``dims``.

    ``same_text[i, j]`` True (i != j) marks pairs whose texts are identical: removed from the
    softmax in both directions instead of counted as negatives.
    """
    scale = log_scale.clamp(max=math.log(100.0)).exp()
    labels = torch.arange(image.shape[0], device=image.device)
    total = image.new_zeros(())
    for d in dims:
        a = F.normalize(image[:, :d], dim=1)
        b = F.normalize(text[:, :d], dim=1)
        logits = scale * (a @ b.T)
        if same_text is not None:
            logits = logits.masked_fill(same_text, float("-inf"))
        total = total + 0.5 * (F.cross_entropy(logits, labels) + F.cross_entropy(logits.T, labels))
    return total


def matryoshka_group_loss(
    image: torch.Tensor, log_scale: torch.Tensor, dims: Sequence[int], groups: torch.Tensor
) -> torch.Tensor:
    """Supervised contrastive loss among images: for each image with other members of its group
    in the batch (``groups >= 0``; a negative code is a group of one), pull those members above
    every other image. Summed over the Matryoshka prefixes like the InfoNCE term."""
    n = image.shape[0]
    eye = torch.eye(n, dtype=torch.bool, device=image.device)
    positive = (groups[:, None] == groups[None, :]) & (groups[:, None] >= 0) & ~eye
    anchors = positive.any(dim=1)
    if not bool(anchors.any()):
        return image.new_zeros(())
    scale = log_scale.clamp(max=math.log(100.0)).exp()
    total = image.new_zeros(())
    for d in dims:
        a = F.normalize(image[:, :d], dim=1)
        logits = (scale * (a @ a.T)).masked_fill(eye, float("-inf"))
        log_prob = logits.log_softmax(dim=1).masked_fill(~positive, 0.0)
        per_anchor = -log_prob.sum(dim=1) / positive.sum(dim=1).clamp(min=1)
        total = total + per_anchor[anchors].mean()
    return total


# -- training --------------------------------------------------------------------------------


@dataclass
class TrainResult:
    projection: AlignedProjection
    seconds: float
    history: list[dict[str, float]] = field(default_factory=list)  # per epoch: loss, temperature


def group_split(
    groups: Sequence[str], fraction: float = 0.1, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Item indices ``(train, held_out)``: whole groups go to one side, about ``fraction`` of the
    ITEMS held out. Groups are drawn in a seeded order of their sorted names, so the split does
    not depend on the item order."""
    if not 0 < fraction < 1:
        raise ValueError(f"fraction must be in (0, 1), got {fraction}")
    groups = list(groups)
    members: dict[str, list[int]] = {}
    for index, group in enumerate(groups):
        members.setdefault(group, []).append(index)
    names = sorted(members)
    order = np.random.default_rng(seed).permutation(len(names))
    want = fraction * len(groups)
    held: list[int] = []
    for position in order:
        if len(held) >= want:
            break
        held.extend(members[names[position]])
    held_mask = np.zeros(len(groups), dtype=bool)
    held_mask[held] = True
    return np.flatnonzero(~held_mask), np.flatnonzero(held_mask)


def train_alignment(
    image: np.ndarray,
    text: np.ndarray,
    config: AlignConfig,
    *,
    seed: int = 0,
    text_keys: Sequence[str] | None = None,
    groups: Sequence[str | None] | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train the joint space on pairs ``(image[i], text[i])``; ``text_keys[i]`` equal for equal
    texts (default: compare the text vectors). ``groups[i]`` (None: none) names items that show
    the same thing, used when ``config.group_weight > 0``. Returns the float16-rounded
    projection."""
    image = _as_matrix(image, config.image_dim, "image")
    text = _as_matrix(text, config.text_dim, "text")
    if len(image) != len(text):
        raise ValueError(f"{len(image)} image rows but {len(text)} text rows")
    if len(image) < 2:
        raise ValueError("need at least 2 pairs to train")
    codes = _text_codes(text, text_keys)
    use_groups = config.group_weight > 0
    if use_groups and (groups is None or len(groups) != len(image)):
        raise ValueError("config.group_weight > 0 needs one group (or None) per pair")
    group_codes = _group_codes(groups) if use_groups else None
    started = time.perf_counter()
    n = len(image)
    batch = min(config.batch_size, n)
    steps_per_epoch = max(1, n // batch)  # the ragged tail is dropped: a new shuffle each epoch
    total_steps = steps_per_epoch * config.epochs
    warmup = max(1, int(config.warmup * total_steps))

    with torch.random.fork_rng(devices=[]):  # seeds dropout and init without touching the caller
        torch.manual_seed(seed)
        model = AlignModel(config)
        generator = torch.Generator().manual_seed(seed)
        x_all, t_all = torch.from_numpy(image), torch.from_numpy(text)
        c_all = torch.from_numpy(codes)
        g_all = torch.from_numpy(group_codes) if group_codes is not None else None
        groups = [
            {"params": model.image_head.parameters(), "lr": config.lr},
            {"params": model.text_adapter.parameters(), "lr": config.adapter_lr},
            {"params": [model.log_scale], "lr": config.lr, "weight_decay": 0.0},
        ]
        optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
        base_lrs = [g["lr"] for g in optimizer.param_groups]
        history: list[dict[str, float]] = []
        step = 0
        model.train()
        for epoch in range(config.epochs):
            order = (
                _grouped_order(group_codes, generator)
                if group_codes is not None
                else torch.randperm(n, generator=generator)
            )
            losses = []
            for s in range(steps_per_epoch):
                idx = order[s * batch : (s + 1) * batch]
                factor = _lr_factor(step, warmup, total_steps)
                for group, base in zip(optimizer.param_groups, base_lrs, strict=True):
                    group["lr"] = base * factor
                c = c_all[idx]
                same = (c[:, None] == c[None, :]) & ~torch.eye(len(idx), dtype=torch.bool)
                image_out = model.encode_image(x_all[idx])
                loss = matryoshka_infonce(
                    image_out,
                    model.encode_text(t_all[idx]),
                    model.log_scale,
                    config.dims,
                    same if bool(same.any()) else None,
                )
                if g_all is not None:
                    loss = loss + config.group_weight * matryoshka_group_loss(
                        image_out, model.log_scale, config.dims, g_all[idx]
                    )
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                losses.append(float(loss.detach()))
                step += 1
            history.append(
                {"epoch": epoch + 1, "loss": float(np.mean(losses)), "temperature": model.temperature}
            )
            if progress:
                progress(
                    f"epoch {epoch + 1}/{config.epochs}: loss {history[-1]['loss']:.4f}, "
                    f"temperature {model.temperature:.4f}"
                )
    projection = AlignedProjection.from_model(model)
    return TrainResult(projection, time.perf_counter() - started, history)


def _lr_factor(step: int, warmup: int, total: int) -> float:
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress)))


def _as_matrix(x: np.ndarray, dim: int, what: str) -> np.ndarray:
    arr = np.ascontiguousarray(x, dtype=np.float32)
    if arr.ndim != 2 or arr.shape[1] != dim:
        raise ValueError(f"{what} features must have shape (n, {dim}), got {arr.shape}")
    if not np.isfinite(arr).all():
        raise ValueError(f"{what} features contain NaN or infinity")
    return arr


def _group_codes(groups: Sequence[str | None]) -> np.ndarray:
    """Codes >= 0 for groups with two or more items; -1 for the rest (nothing to pull)."""
    counts: dict[str, int] = {}
    for g in groups:
        if g is not None:
            counts[g] = counts.get(g, 0) + 1
    index: dict[str, int] = {}
    return np.array(
        [index.setdefault(g, len(index)) if g is not None and counts[g] > 1 else -1 for g in groups],
        dtype=np.int64,
    )


def _grouped_order(codes: np.ndarray, generator: torch.Generator) -> torch.Tensor:
    """A random order in which the members of a group are adjacent (so they share a batch,
    except where a batch boundary splits one)."""
    units: list[list[int]] = []
    members: dict[int, list[int]] = {}
    for i, code in enumerate(codes.tolist()):
        if code < 0:
            units.append([i])
        else:
            if code not in members:
                members[code] = []
                units.append(members[code])
            members[code].append(i)
    shuffled = torch.randperm(len(units), generator=generator).tolist()
    return torch.tensor([i for u in shuffled for i in units[u]], dtype=torch.long)


def _text_codes(text: np.ndarray, keys: Sequence[str] | None) -> np.ndarray:
    if keys is None:
        keys = [row.tobytes() for row in text]
    elif len(keys) != len(text):
        raise ValueError(f"{len(keys)} text keys for {len(text)} texts")
    index: dict[Any, int] = {}
    return np.array([index.setdefault(k, len(index)) for k in keys], dtype=np.int64)
