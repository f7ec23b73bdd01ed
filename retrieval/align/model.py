"""The aligned joint space itself: its config, its modules, and its weight files.

No image-text model with bundled weights exists offline (shared RESEARCH notes), so the joint
space is built: a small MLP head (:class:`ImageHead`) maps EfficientNet-Lite0 image features
(1280-d) into the MiniLM text space (384-d), and a residual linear adapter (:class:`TextAdapter`),
initialised to the identity, lets the text side move a little too. :class:`AlignConfig` holds
their shapes together with the training recipe, since a file of weights must say both.

:class:`AlignedProjection` is the trained space ready for inference on numpy features, with any
Matryoshka prefix of the output. Weights are stored with safetensors in float16 (the model is
rebuilt from the rounded numbers, so what is evaluated is exactly what ships), with the config in
the file's metadata; an ``align.json`` beside it records the run. :func:`content_hash` names
weights by their tensors and config, not the file's bytes, and :func:`load_alignment` checks it
against that record. Everything a loader of shipped weights needs lives here, so loading does
not import the training code.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

__all__ = [
    "AlignConfig",
    "AlignModel",
    "ImageHead",
    "TextAdapter",
    "AlignedProjection",
    "AlignWeightsError",
    "AlignWeightsMissing",
    "FORMAT",
    "WEIGHTS_FILE",
    "META_FILE",
    "save_alignment",
    "content_hash",
    "load_alignment",
]

FORMAT = 1
WEIGHTS_FILE = "head.safetensors"
META_FILE = "align.json"


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
