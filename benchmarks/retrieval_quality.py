"""Retrieval quality of the trained joint space against untrained baselines, in ONE run.

    python benchmarks/retrieval_quality.py [--catalog demo] [--weights assets/align] [--json OUT]

What it measures, on the catalog the weights were trained on (default: the demo):

(a) text-to-image, held-out: query = a held-out item's text (title + description + tags),
    gallery = the images of ALL items, target = that item. Recall@1 and @10.
(b) cross-style: query = an emoji image in one style, gallery = every item of the OTHER styles
    (clip-art included), target = any item with the same concept (the same emoji drawn by
    another artist). Recall@1 and @10. Queries: held-out concepts only, for every method.

Methods, all on the same queries:

* joint space (trained): the weights are re-trained here on the 90% split with the recipe and
  seed recorded in ``align.json`` (training is reproducible, and the hash is checked against the
  record), because the shipped weights saw every item and cannot be evaluated on held-out ones;
* joint 64-d / 128-d: Matryoshka prefixes of the same model;
* fusion (cross-style only): ``w * cos(raw) + (1 - w) * cos(joint)``, ``w`` tuned on TRAINING
  concepts, never on the held-out ones;
* baseline "ImageNet labels": each image's top-5 ImageNet labels as text ("goldfish, tench, ...")
  embedded with MiniLM; text queries embedded with MiniLM; images compared by their label texts;
* baseline "untrained head" (image features alone, projected by a random-init head of the same
  shape); for cross-style also the raw EfficientNet features themselves.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

KS = (1, 10)


def label_texts(label_ids: np.ndarray) -> list[str]:
    from retrieval.encoders.efficientnet import imagenet_labels

    names = imagenet_labels()
    return [", ".join(names[int(i)] for i in row) for row in label_ids]


def fused(raw: np.ndarray, joint: np.ndarray, w: float) -> np.ndarray:
    """Rows whose inner product is ``w * raw.raw' + (1 - w) * joint.joint'``."""
    return np.ascontiguousarray(np.hstack([np.sqrt(w) * raw, np.sqrt(1.0 - w) * joint]), dtype=np.float32)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", default="demo")
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: $CRS_HOME)")
    parser.add_argument("--weights", default=None, help="folder with align.json (default: assets/align)")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    import torch

    torch.set_num_threads(2)
    from crs.cli.align import HELD_OUT_FRACTION, catalog_items, feature_cache_dir, load_features
    from crs.catalog.demo import open_catalog
    from crs.store import open_store
    from retrieval.align import (
        AlignConfig,
        AlignedProjection,
        AlignModel,
        concept_codes,
        cross_style_queries,
        group_split,
        recall_at_k,
        style_codes,
        train_alignment,
    )
    from retrieval.encoders import load_text_encoder
    from retrieval.encoders.aligned import DEFAULT_ALIGN_WEIGHTS
    from retrieval.features import cache_file, cached_encode, text_hash

    started = time.perf_counter()
    weights_dir = Path(args.weights) if args.weights else DEFAULT_ALIGN_WEIGHTS
    record = json.loads((weights_dir / "align.json").read_text(encoding="utf-8"))
    config = AlignConfig.from_json(record["config"])
    seed = int(record["seed"])

    def say(message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    store = open_store(args.db)
    catalog = open_catalog(store, args.catalog)
    items, _ = catalog_items(store, catalog)
    cache = feature_cache_dir(catalog.name)
    features = load_features(items, cache, say)
    n = len(items)
    ids = np.arange(n)
    concepts = [i.concept for i in items]
    styles = [i.style for i in items]
    train_idx, held_idx = group_split([i.group for i in items], HELD_OUT_FRACTION, seed)

    # -- the trained model: the held-out run, re-made ---------------------------------------
    say(f"re-training the held-out run ({len(train_idx)} items, {config.epochs} epochs, seed {seed})")
    run = train_alignment(features.image[train_idx], features.text[train_idx], config, seed=seed,
                          text_keys=[features.text_hashes[i] for i in train_idx],
                          groups=[concepts[i] for i in train_idx])
    trained = run.projection
    recorded = record.get("held_out_run", {}).get("weights_sha256")
    same_inputs = record.get("inputs_sha256") == features.inputs_digest()

    # -- baselines ------------------------------------------------------------------------
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        untrained = AlignedProjection.from_model(AlignModel(config))
    minilm = load_text_encoder("minilm")
    labels = label_texts(features.label_ids)
    label_vecs = cached_encode(minilm, labels, [text_hash(t) for t in labels],
                               cache_file(cache, minilm.name, "-imagenet-labels"), progress=say).vectors
    raw = features.image  # unit-norm EfficientNet-Lite0 max-pooled features
    text = features.text  # unit-norm MiniLM

    rows: list[dict] = []

    def add(figure: str, method: str, result: dict, note: str = "") -> None:
        rows.append({"figure": figure, "method": method, **{f"recall@{k}": result[f"recall@{k}"] for k in KS},
                     "queries": result["queries"], "note": note})

    # (a) text -> image on held-out items
    fig_a = "text->image (held-out)"
    q = held_idx
    for d in reversed(config.dims):
        joint_img, joint_txt = trained.project_images(raw, d), trained.project_texts(text, d)
        add(fig_a, f"joint space {d}-d (trained)", recall_at_k(joint_txt[q], joint_img, ids[q], ids, KS))
    # What serving single queries with the int8 copy of MiniLM (the default for queries) costs.
    from retrieval.encoders.quantized import Int8TextEncoder

    int8_text = Int8TextEncoder(minilm).encode([items[i].text for i in q], batch_size=64)
    d = max(config.dims)
    add(fig_a, f"joint space {d}-d (trained), int8 query encoder",
        recall_at_k(trained.project_texts(int8_text, d), trained.project_images(raw, d), ids[q], ids, KS),
        f"mean cosine to float32 MiniLM {float((int8_text * text[q]).sum(1).mean()):.3f}")
    add(fig_a, "baseline: ImageNet labels -> MiniLM", recall_at_k(text[q], label_vecs, ids[q], ids, KS))
    add(fig_a, "baseline: untrained head (image features alone)",
        recall_at_k(untrained.project_texts(text[q]), untrained.project_images(raw), ids[q], ids, KS))
    add(fig_a, "chance", {"recall@1": 1 / n, "recall@10": 10 / n, "queries": len(q)})

    # (b) cross-style, image -> image
    fig_b = "cross-style image->image (held-out concepts)"
    held_mask = np.zeros(n, dtype=bool)
    held_mask[held_idx] = True
    queries = cross_style_queries(concepts, styles, held_mask)
    concept, style = concept_codes(concepts), style_codes(styles)

    def cross(vectors: np.ndarray, qi: np.ndarray = queries) -> dict:
        return recall_at_k(vectors[qi], vectors, concept[qi], concept, KS,
                           query_exclude=style[qi], gallery_exclude=style)

    joint_full = trained.project_images(raw)
    for d in reversed(config.dims):
        add(fig_b, f"joint space {d}-d (trained)", cross(trained.project_images(raw, d)))
    # the fusion weight is chosen on TRAINING concepts: the held-out ones only measure it
    train_mask = np.zeros(n, dtype=bool)
    train_mask[train_idx] = True
    tune_queries = cross_style_queries(concepts, styles, train_mask)
    grid = [round(w, 2) for w in np.arange(0.0, 1.01, 0.1)]
    tuning = {w: cross(fused(raw, joint_full, w), tune_queries)["recall@10"] for w in grid}
    best_w = max(grid, key=lambda w: (tuning[w], -abs(w - 0.5)))
    add(fig_b, f"fusion raw+joint (w_raw={best_w}, tuned on training concepts)", cross(fused(raw, joint_full, best_w)))
    add(fig_b, "baseline: raw EfficientNet features (image features alone)", cross(raw))
    add(fig_b, "baseline: ImageNet labels -> MiniLM", cross(label_vecs))
    add(fig_b, "baseline: untrained head", cross(untrained.project_images(raw)))
    all_queries = cross_style_queries(concepts, styles)
    add(fig_b + " [context]", "raw EfficientNet features, ALL emoji as queries", cross(raw, all_queries),
        "baseline on every emoji, not only held-out ones")

    result = {
        "catalog": catalog.name,
        "items": n,
        "held_out_items": int(len(held_idx)),
        "cross_style_queries": int(len(queries)),
        "seed": seed,
        "config": config.to_json(),
        "held_out_run_sha256": trained.sha256,
        "matches_recorded_run": recorded == trained.sha256,
        "same_inputs_as_recorded_run": same_inputs,
        "train_seconds": round(run.seconds, 1),
        "fusion_tuning_recall@10": {str(w): r for w, r in tuning.items()},
        "rows": rows,
        "seconds": round(time.perf_counter() - started, 1),
    }
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


def format_table(result: dict) -> str:
    lines = [f"retrieval quality on {result['catalog']!r}: {result['items']} items, "
             f"{result['held_out_items']} held out, {result['cross_style_queries']} cross-style queries; "
             f"held-out run re-trained in {result['train_seconds']} s "
             f"({'matches' if result['matches_recorded_run'] else 'DIFFERS FROM'} the recorded run)"]
    figure = None
    for row in result["rows"]:
        if row["figure"] != figure:
            figure = row["figure"]
            lines += ["", f"{figure:<70} {'R@1':>6} {'R@10':>6} {'queries':>8}"]
        lines.append(f"  {row['method']:<68} {row['recall@1']:>6.3f} {row['recall@10']:>6.3f} {row['queries']:>8}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
