"""Dense-only against hybrid (dense + BM25) search, at several lexical weights, in ONE run.

    python benchmarks/hybrid_retrieval.py [--catalog films] [--db URL] [--n 200] [--seed 0]
        [--weights 0,0.1,0.25,0.5] [--json OUT]

Queries, made from ``--n`` random items of the catalog (the same items for every weight):

* title: the item's title as typed ("e.t. the extra-terrestrial"); a hit is an item of that
  title in the top 10 (known-item search);
* name: ``with <person>`` for a person in a tag attribute named ``director`` or ``cast`` whom
  the item's title and description do not name (catalogs with such attributes: the films); a
  hit is an item carrying that person in the top 10;
* values: two of the item's askable categorical/tag values ("crime drama", "red sticker"); the
  figure is the share of the top 10 carrying both (precision@10): the concept queries the
  dialogue sends, where words must not pull in the wrong items.

Weight 0 is the dense spaces alone (``FusionWeights(text_to_lexical=0)``). Filters are not used.
"""
from __future__ import annotations

import argparse
import json
import os
import random
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

PEOPLE = ("director", "cast")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", default="films")
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: $CRS_HOME)")
    parser.add_argument("--embedder", default="aligned")
    parser.add_argument("--n", type=int, default=200)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--weights", default="0,0.1,0.25,0.5")
    parser.add_argument("--json", help="write the figures to this JSON file")
    args = parser.parse_args(argv)

    from sqlalchemy import select

    from crs.catalog.browse import item_attributes
    from crs.catalog.demo import open_catalog
    from crs.config import default_db_url
    from crs.search import CatalogSearch
    from crs.store import open_store
    from crs.store.models import Attribute, Item
    from retrieval.multimodal import FusionWeights
    from retrieval.threads import serve_single_queries

    serve_single_queries()
    store = open_store(args.db or default_db_url())
    catalog = open_catalog(store, args.catalog)
    started = time.perf_counter()
    searcher = CatalogSearch.open(store, catalog, args.embedder)
    opened = time.perf_counter() - started
    with store.session() as session:
        items = {i.id: i for i in session.scalars(select(Item).where(Item.catalog_id == catalog.id))}
        attributes = item_attributes(session, list(items))
        kinds = {a.name: (a.kind, a.askable) for a in session.scalars(
            select(Attribute).where(Attribute.catalog_id == catalog.id))}
    askable = [name for name, (kind, ask) in kinds.items() if kind in ("categorical", "tags") and ask]
    titles: dict[str, set[int]] = {}
    for item in items.values():
        titles.setdefault(item.title.lower(), set()).add(item.id)

    def values(item_id: int, name: str) -> list[str]:
        value = attributes[item_id].get(name)
        return value if isinstance(value, list) else [] if value is None else [value]

    rng = random.Random(args.seed)
    sample = rng.sample(sorted(items), min(args.n, len(items)))
    cases: list[tuple[str, str, object]] = []  # (kind, text, what counts)
    for item_id in sample:
        item = items[item_id]
        cases.append(("title", item.title, titles[item.title.lower()]))
        named = f"{item.title} {item.description}".lower()
        people = [(name, p) for name in PEOPLE if name in kinds for p in values(item_id, name) if p.lower() not in named]
        if people:
            name, person = rng.choice(people)
            cases.append(("name", f"with {person}", (name, person)))
        pairs = [(name, v) for name in askable for v in values(item_id, name)]
        if len(pairs) >= 2:
            chosen = rng.sample(pairs, 2)
            cases.append(("values", " ".join(v for _, v in chosen), chosen))
    queries = [(kind, searcher.query(text), want) for kind, text, want in cases]

    def score(kind: str, ids: list[int], want) -> float:  # type: ignore[no-untyped-def]
        if kind == "title":
            return float(any(i in want for i in ids))
        if kind == "name":
            name, person = want
            return float(any(person in values(i, name) for i in ids))
        return sum(all(v in values(i, n) for n, v in want) for i in ids) / max(len(ids), 1)

    weights = [float(w) for w in args.weights.split(",")]
    result: dict[str, dict[str, float]] = {}
    for w in weights:
        fusion = FusionWeights(text_to_lexical=w)
        sums: dict[str, list[float]] = {}
        t0 = time.perf_counter()
        for kind, query, want in queries:
            ids = [s.id for s in searcher.index.search(query, 10, weights=fusion)]
            sums.setdefault(kind, []).append(score(kind, ids, want))
        per_query_ms = 1000 * (time.perf_counter() - t0) / len(queries)
        result[f"{w:g}"] = {**{k: round(sum(v) / len(v), 3) for k, v in sums.items()},
                            "index_search_ms": round(per_query_ms, 2)}
    counts = {kind: sum(1 for k, _, _ in cases if k == kind) for kind in ("title", "name", "values")}
    report = {"catalog": catalog.name, "items": len(items), "n": args.n, "seed": args.seed, "queries": counts,
              "open_seconds": round(opened, 1), "by_lexical_weight": result}
    print(f"{catalog.name}: {len(items)} items, queries {counts}; title/name = hit@10, values = precision@10")
    print(f"{'lexical weight':>15} {'title':>7} {'name':>7} {'values':>7} {'ms/query':>9}")
    for w, row in result.items():
        print(f"{w:>15} {row.get('title', float('nan')):>7.3f} {row.get('name', float('nan')):>7.3f} "
              f"{row.get('values', float('nan')):>7.3f} {row['index_search_ms']:>9.2f}")
    if args.json:
        Path(args.json).parent.mkdir(parents=True, exist_ok=True)
        Path(args.json).write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
