"""`crs train-align`: train the aligned image-text space on a catalog from the store.

The crs side of :mod:`retrieval.align`: reads the catalog's items, turns each into an (image,
text) pair and a split group, computes (cached) features, then trains twice with one seed:

1. on 90% of the items, holding out 10% BY GROUP (an emoji's concept, so no held-out emoji is
   seen in any style; otherwise the item itself), and measures the held-out figures;
2. on every item, for the weights that ship (unless ``--held-out-only``).

The held-out figures in ``align.json`` always come from run 1, and the file says which run
made the weights.
"""
from __future__ import annotations

import argparse
import json
import platform
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import select

from crs.catalog.browse import item_attributes
from crs.catalog.demo import open_catalog
from crs.catalog.ingest import item_image_path
from crs.catalog.item_text import item_text
from crs.config import DEMO_CATALOG, feature_cache_dir
from crs.errors import UserError
from crs.store import Store, open_store
from crs.store.models import Catalog, Item

HELD_OUT_FRACTION = 0.1


@dataclass(frozen=True)
class AlignItem:
    key: str  # the item's external id
    image: Path
    text: str
    group: str  # split unit: an emoji's concept, else the item
    concept: str | None
    style: str | None


def catalog_items(store: Store, catalog: Catalog) -> tuple[list[AlignItem], int]:
    """The catalog's items with a local image, in external-id order, and how many had none."""
    with store.session() as session:
        items = session.scalars(select(Item).where(Item.catalog_id == catalog.id).order_by(Item.external_id)).all()
        attributes = item_attributes(session, [i.id for i in items])
    out, skipped = [], 0
    for item in items:
        path = item_image_path(catalog, item)
        if path is None or not path.is_file():
            skipped += 1
            continue
        attrs = attributes[item.id]
        concept = attrs.get("concept") or None
        out.append(AlignItem(key=item.external_id, image=path, text=item_text(item.title, item.description,
                                                                              attrs.get("tags")),
                             group=f"concept:{concept}" if concept else f"item:{item.external_id}",
                             concept=concept, style=attrs.get("style")))
    return out, skipped


def load_features(items: list[AlignItem], cache_dir: Path, progress=None):  # type: ignore[no-untyped-def]
    """Image features and text embeddings of `items` with the encoders the joint space uses."""
    from retrieval.align import AlignConfig
    from retrieval.encoders import load_image_encoder, load_text_encoder
    from retrieval.features import FeatureItem, compute_item_features

    config = AlignConfig()
    return compute_item_features([FeatureItem(i.key, i.image, i.text) for i in items],
                                 load_image_encoder(config.image_spec), load_text_encoder(config.text_spec),
                                 cache_dir, progress=progress)


def train(items: list[AlignItem], features, config, *, seed: int, held_out_only: bool = False,  # type: ignore[no-untyped-def]
          catalog_name: str = "", catalog_hash: str = "", progress=None) -> tuple[Any, dict[str, Any]]:
    """Run 1 (held-out split) and run 2 (all items); returns the weights to ship and the run record."""
    import numpy as np
    import torch

    from retrieval.align import evaluate_alignment, group_split, train_alignment

    concepts = [i.concept for i in items]
    styles = [i.style for i in items]
    train_idx, held_idx = group_split([i.group for i in items], HELD_OUT_FRACTION, seed)
    say = progress or (lambda message: None)
    say(f"run 1: training on {len(train_idx)} items, holding out {len(held_idx)}")
    held_run = train_alignment(features.image[train_idx], features.text[train_idx], config, seed=seed,
                               text_keys=[features.text_hashes[i] for i in train_idx],
                               groups=[concepts[i] for i in train_idx], progress=progress)
    metrics = evaluate_alignment(held_run.projection, features.image, features.text, held_idx,
                                 concepts=concepts, styles=styles)
    shipped, final_seconds, final_history = held_run.projection, held_run.seconds, held_run.history
    if not held_out_only:
        say(f"run 2: training on all {len(items)} items (the shipped weights)")
        final = train_alignment(features.image, features.text, config, seed=seed,
                                text_keys=features.text_hashes, groups=concepts, progress=progress)
        shipped, final_seconds, final_history = final.projection, final.seconds, final.history
    held_groups = len({items[i].group for i in held_idx})
    record = {
        "catalog": catalog_name,
        "catalog_hash": catalog_hash,
        "inputs_sha256": features.inputs_digest(),
        "items": len(items),
        "features": {"image_encoder": features.image_encoder, "text_encoder": features.text_encoder,
                     "computed_images": features.computed_images, "computed_texts": features.computed_texts},
        "seed": seed,
        "trained_on": "train split (90%)" if held_out_only else "all items",
        "split": {"fraction": HELD_OUT_FRACTION, "seed": seed, "by": "concept for emoji, else the item",
                  "train_items": int(len(train_idx)), "held_out_items": int(len(held_idx)),
                  "held_out_groups": held_groups},
        "held_out_metrics": metrics,
        "held_out_run": {"weights_sha256": held_run.projection.sha256, "train_seconds": round(held_run.seconds, 2),
                         "final_loss": held_run.history[-1]["loss"], "temperature": held_run.projection.temperature},
        "train_seconds": round(final_seconds, 2),
        "final_loss": final_history[-1]["loss"],
        "temperature": shipped.temperature,
        "environment": {"torch": torch.__version__, "numpy": np.__version__, "python": platform.python_version(),
                        "torch_threads": torch.get_num_threads()},
    }
    return shipped, record


def format_metrics(metrics: dict[str, Any]) -> str:
    lines = [f"{'held-out figure':<16} {'dims':>5} {'R@1':>7} {'R@10':>7} {'queries':>8}"]
    for task in ("text_to_image", "image_to_text", "cross_style"):
        for dims, row in metrics.get(task, {}).items():
            r1, r10 = (f"{row[k]:>7.3f}" if row[k] is not None else f"{'-':>7}" for k in ("recall@1", "recall@10"))
            lines.append(f"{task:<16} {dims:>5} {r1} {r10} {row['queries']:>8}")
    return "\n".join(lines)


def train_align(args: argparse.Namespace) -> int:
    """The `crs train-align` command (its options are defined in crs.cli)."""
    import torch

    from retrieval.align import AlignConfig, save_alignment
    from retrieval.images import ImageLoadError

    torch.set_num_threads(2)  # the project's machines have 2 cores; set here, never in library code
    started = time.perf_counter()
    store = open_store(args.db)
    catalog = open_catalog(store, args.catalog or DEMO_CATALOG)
    items, no_image = catalog_items(store, catalog)
    if len(items) < 3:  # two to train on (in-batch negatives), one to hold out
        raise UserError(f"catalog {catalog.name!r} has {len(items)} items with a local image; "
                        "training the aligned space needs at least 3")

    def progress(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    progress(f"catalog {catalog.name!r}: {len(items)} items with images ({no_image} without, skipped)")
    cache = Path(args.cache) if args.cache else feature_cache_dir(catalog.name)
    try:
        features = load_features(items, cache, progress)
    except ImageLoadError as exc:
        raise UserError(f"cannot train on catalog {catalog.name!r}: {exc}") from None
    config = AlignConfig()
    if args.epochs is not None:
        if args.epochs < 1:
            raise UserError("--epochs must be >= 1")
        config = config.replace(epochs=args.epochs)
    shipped, record = train(items, features, config, seed=args.seed, held_out_only=args.held_out_only,
                            catalog_name=catalog.name, catalog_hash=catalog.content_hash, progress=progress)
    record["total_seconds"] = round(time.perf_counter() - started, 1)
    out = save_alignment(shipped, Path(args.out), record)
    if args.json:
        print(json.dumps(json.loads((out / "align.json").read_text()), indent=2))
        return 0
    print(format_metrics(record["held_out_metrics"]))
    print(f"weights {shipped.short_hash} ({record['trained_on']}) -> {out}; "
          f"train {record['train_seconds']:.1f} s, total {record['total_seconds']:.1f} s")
    return 0
