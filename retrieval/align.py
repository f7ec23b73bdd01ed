"""The aligned joint image-text space, trained here on the catalog's own (image, text) pairs.

No image-text model with bundled weights exists offline (shared RESEARCH notes), so the joint
space is built: a small MLP head maps EfficientNet-Lite0 image features (1280-d) into the
MiniLM text space (384-d), and a residual linear adapter, initialised to the identity, lets the
text side move a little too. Both are trained with a symmetric InfoNCE loss (image->text and
text->image, in-batch negatives) and a learnable temperature.

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
weights). Weights are stored with safetensors in float16 (the model is evaluated after that
rounding, so the metrics describe exactly what is shipped), with the config in the file's
metadata; a JSON beside it records the run (seed, catalog hash, metrics, train time).

This module takes arrays; reading a catalog is the caller's job (``crs train-align``).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

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

FORMAT = 1
WEIGHTS_FILE = "head.safetensors"
META_FILE = "align.json"
Progress = Callable[[str], None]


class AlignWeightsError(ValueError):
    """The aligned-space weights cannot be used: corrupt, or not matching their config/encoders."""


class AlignWeightsMissing(AlignWeightsError, FileNotFoundError):
    """No weights where they were expected."""


# -- config ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlignConfig:
    """Shape and training recipe of the joint space. Unknown keys in JSON are rejected.

    The defaults were chosen on the demo catalog with a validation split carved out of the
    TRAINING 90% (never the held-out 10%): lr 2e-3 over 1e-3, initial temperature 0.03 over
    0.05, dropout 0.2 over 0.1 and 0.3, hidden 1024 over 512 (worse) and 2048 (no better,
    twice the file), 40 epochs over 10/20, group_weight 1 over 0 (cross-style R@10 0.81 ->
    0.92) and 2, batch 512 over 1024.
    """

    image_dim: int = 1280
    text_dim: int = 384
    hidden: int = 1024
    dims: tuple[int, ...] = (64, 128, 384)  # Matryoshka prefixes; the last is the full size
    dropout: float = 0.2
    input_dropout: float = 0.2  # on the image features: cheap augmentation for 12k pairs
    temperature: float = 0.03  # initial; learned when learn_temperature
    learn_temperature: bool = True
    epochs: int = 40
    batch_size: int = 512
    lr: float = 2e-3
    adapter_lr: float = 2e-4  # the text side moves slower: held-out texts must still fit
    weight_decay: float = 0.01
    warmup: float = 0.05  # fraction of steps with a linear warm-up, then cosine decay
    # Items of one group (the same emoji drawn in several styles) are image-image positives of
    # each other, in a supervised-contrastive term of this weight; 0 switches it off. Batches
    # then keep a group's items together so that every such item meets its positives.
    group_weight: float = 1.0
    # The encoders the features came from: spec to build them, name to check them.
    image_spec: str = "efficientnet-lite0"
    image_name: str = "efficientnet-lite0-max"
    text_spec: str = "minilm"
    text_name: str = "minilm-l6-v2"

    def __post_init__(self) -> None:
        object.__setattr__(self, "dims", tuple(int(d) for d in self.dims))
        problems = []
        if min(self.image_dim, self.text_dim, self.hidden) < 1:
            problems.append("image_dim, text_dim and hidden must be >= 1")
        if not self.dims or list(self.dims) != sorted(set(self.dims)) or self.dims[0] < 1:
            problems.append(f"dims must be increasing and positive, got {self.dims}")
        elif self.dims[-1] != self.text_dim:
            problems.append(f"the last of dims {self.dims} must be text_dim {self.text_dim}")
        if not 0 <= self.dropout < 1 or not 0 <= self.input_dropout < 1:
            problems.append("dropouts must be in [0, 1)")
        if self.group_weight < 0:
            problems.append("group_weight must be >= 0")
        if not self.temperature > 0:
            problems.append("temperature must be > 0")
        if self.epochs < 1 or self.batch_size < 2:
            problems.append("epochs must be >= 1 and batch_size >= 2")
        if problems:
            raise ValueError("bad AlignConfig: " + "; ".join(problems))

    def to_json(self) -> dict[str, Any]:
        out = dataclasses.asdict(self)
        out["dims"] = list(self.dims)
        return out

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> AlignConfig:
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown AlignConfig keys: {unknown}")
        return cls(**data)

    def replace(self, **changes: Any) -> AlignConfig:
        return dataclasses.replace(self, **changes)


# -- the model -------------------------------------------------------------------------------


class ImageHead(nn.Module):
    """LayerNorm -> dropout -> Linear -> GELU -> dropout -> Linear. The input LayerNorm puts the
    unit-norm 1280-d features (entries ~0.03) on a scale the first layer can learn from."""

    def __init__(self, config: AlignConfig) -> None:
        super().__init__()
        self.norm = nn.LayerNorm(config.image_dim)
        self.drop_in = nn.Dropout(config.input_dropout)
        self.fc1 = nn.Linear(config.image_dim, config.hidden)
        self.drop = nn.Dropout(config.dropout)
        self.fc2 = nn.Linear(config.hidden, config.text_dim)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc2(self.drop(F.gelu(self.fc1(self.drop_in(self.norm(x))))))


class TextAdapter(nn.Module):
    """``x + W x + b`` with W and b starting at zero: the identity, so training starts from the
    plain text space and only moves it as far as the images ask."""

    def __init__(self, config: AlignConfig) -> None:
        super().__init__()
        self.linear = nn.Linear(config.text_dim, config.text_dim)
        nn.init.zeros_(self.linear.weight)
        nn.init.zeros_(self.linear.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.linear(x)


class AlignModel(nn.Module):
    def __init__(self, config: AlignConfig) -> None:
        super().__init__()
        self.config = config
        self.image_head = ImageHead(config)
        self.text_adapter = TextAdapter(config)
        self.log_scale = nn.Parameter(
            torch.tensor(math.log(1.0 / config.temperature)),
            requires_grad=config.learn_temperature,
        )

    def encode_image(self, x: torch.Tensor) -> torch.Tensor:
        return self.image_head(x)

    def encode_text(self, x: torch.Tensor) -> torch.Tensor:
        return self.text_adapter(x)

    @property
    def temperature(self) -> float:
        return float(torch.exp(-self.log_scale.detach()))


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


# -- inference, saving, loading ----------------------------------------------------------------


class AlignedProjection:
    """The trained joint space, ready to project numpy features (float32, unit rows)."""

    def __init__(self, config: AlignConfig, state: dict[str, torch.Tensor], sha256: str) -> None:
        self.config = config
        self.sha256 = sha256
        self.model = _blank_model(config)
        self.model.load_state_dict({k: v.float() for k, v in state.items()}, strict=True)
        self.model.eval()

    @classmethod
    def from_model(cls, model: AlignModel) -> AlignedProjection:
        state = _storable_state(model)
        return cls(model.config, state, content_hash(model.config, state))

    @property
    def short_hash(self) -> str:
        return self.sha256[:10]

    @property
    def temperature(self) -> float:
        return self.model.temperature

    def check_dims(self, dims: int | None) -> int:
        full = self.config.text_dim
        if dims is None:
            return full
        if dims not in self.config.dims:
            raise ValueError(f"dims must be one of the trained prefixes {self.config.dims}, got {dims}")
        return int(dims)

    def project_images(self, features: np.ndarray, dims: int | None = None) -> np.ndarray:
        return self._project(self.model.encode_image, features, self.config.image_dim, dims)

    def project_texts(self, embeddings: np.ndarray, dims: int | None = None) -> np.ndarray:
        return self._project(self.model.encode_text, embeddings, self.config.text_dim, dims)

    def _project(self, fn, x: np.ndarray, in_dim: int, dims: int | None) -> np.ndarray:
        d = self.check_dims(dims)
        arr = np.ascontiguousarray(x, dtype=np.float32)
        if arr.ndim != 2 or arr.shape[1] != in_dim:
            raise ValueError(f"expected features of shape (n, {in_dim}), got {arr.shape}")
        out = np.empty((len(arr), d), dtype=np.float32)
        with torch.inference_mode():
            for start in range(0, len(arr), 4096):
                y = fn(torch.from_numpy(arr[start : start + 4096]))[:, :d]
                out[start : start + len(y)] = F.normalize(y, dim=1).numpy()
        return out

    def to_bytes(self) -> bytes:
        return _serialize(self.config, _storable_state(self.model))


def _blank_model(config: AlignConfig) -> AlignModel:
    # The weights are about to be overwritten: their random init must not draw from the
    # caller's global RNG (loading weights would otherwise change what their program samples).
    with torch.random.fork_rng(devices=[]):
        return AlignModel(config)


def _storable_state(model: AlignModel) -> dict[str, torch.Tensor]:
    # float16 halves the file; the model is rebuilt from these very numbers, so what is
    # evaluated after training is what ships.
    return {k: v.detach().to(torch.float16).contiguous() for k, v in model.state_dict().items()}


def content_hash(config: AlignConfig, state: dict[str, torch.Tensor]) -> str:
    """sha256 of the config and the float16 tensors. Not of the file's bytes: safetensors writes
    its metadata in an arbitrary order, so equal weights can give different files."""
    digest = hashlib.sha256(json.dumps(config.to_json(), sort_keys=True).encode("utf-8"))
    for name in sorted(state):
        tensor = state[name].detach().to(torch.float16).contiguous()
        digest.update(f"\0{name}\0{tuple(tensor.shape)}\0".encode())
        digest.update(tensor.numpy().tobytes())
    return digest.hexdigest()


def _serialize(config: AlignConfig, state: dict[str, torch.Tensor]) -> bytes:
    from safetensors.torch import save

    meta = {"format": str(FORMAT), "config": json.dumps(config.to_json(), sort_keys=True)}
    return save(dict(sorted(state.items())), metadata=meta)


def save_alignment(
    projection: AlignedProjection, out_dir: str | os.PathLike, run: dict[str, Any] | None = None
) -> Path:
    """Write ``head.safetensors`` and ``align.json`` (config, hash, ``run``) into ``out_dir``."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    data = projection.to_bytes()
    sha = projection.sha256
    meta = {
        "format": FORMAT,
        "weights_file": WEIGHTS_FILE,
        "weights_sha256": sha,
        "weights_bytes": len(data),
        "config": projection.config.to_json(),
        **(run or {}),
    }
    _atomic_write(out / WEIGHTS_FILE, data)
    _atomic_write(out / META_FILE, (json.dumps(meta, indent=2) + "\n").encode("utf-8"))
    return out


def _atomic_write(path: Path, data: bytes) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def load_alignment(path: str | os.PathLike) -> AlignedProjection:
    """Load the weights in ``path`` (a folder holding ``head.safetensors``, or the file itself).

    Raises :class:`AlignWeightsMissing` when there is no weights file,
    :class:`AlignWeightsError` when it is corrupt, its tensors do not fit its config, or the
    ``align.json`` beside it names other weights.
    """
    path = Path(path).expanduser()
    weights = path / WEIGHTS_FILE if path.is_dir() else path
    hint = "train them with `crs train-align`"
    if not weights.is_file():
        raise AlignWeightsMissing(f"no aligned-space weights at {weights}; {hint}")
    data = weights.read_bytes()
    try:
        from safetensors.torch import load

        state = load(data)
        header_len = int.from_bytes(data[:8], "little")
        meta = json.loads(data[8 : 8 + header_len]).get("__metadata__") or {}
    except Exception as exc:  # safetensors raises its own error types as well as plain ones
        raise AlignWeightsError(f"{weights} is corrupt or not a safetensors file: {exc}") from None
    if meta.get("format") != str(FORMAT) or "config" not in meta:
        raise AlignWeightsError(
            f"{weights} is not aligned-space weights of format {FORMAT} "
            f"(metadata {sorted(meta)}); {hint}"
        )
    try:
        config = AlignConfig.from_json(json.loads(meta["config"]))
    except (ValueError, TypeError) as exc:
        raise AlignWeightsError(f"{weights}: bad config in its metadata: {exc}") from None
    expected = {k: tuple(v.shape) for k, v in _blank_model(config).state_dict().items()}
    found = {k: tuple(v.shape) for k, v in state.items()}
    if expected != found:
        diff = sorted(set(expected.items()) ^ set(found.items()))[:4]
        raise AlignWeightsError(f"{weights}: tensors do not match its config: {diff}")
    if not all(torch.isfinite(v.float()).all() for v in state.values()):
        raise AlignWeightsError(f"{weights}: contains NaN or infinite weights")
    sha = content_hash(config, state)
    meta_file = weights.parent / META_FILE
    if meta_file.is_file():
        try:
            recorded = json.loads(meta_file.read_text(encoding="utf-8")).get("weights_sha256")
        except (ValueError, AttributeError) as exc:
            raise AlignWeightsError(f"{meta_file} is not valid JSON: {exc}") from None
        if recorded is not None and recorded != sha:
            raise AlignWeightsError(
                f"{weights} does not match {meta_file} (sha256 {sha[:12]} != {str(recorded)[:12]}):"
                " one of them was replaced; retrain or restore both"
            )
    return AlignedProjection(config, state, sha)


# -- metrics -----------------------------------------------------------------------------------


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
