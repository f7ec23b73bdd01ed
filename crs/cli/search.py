"""`crs index` and `crs search`: build the catalog's index, search it once or in batch.

Batch mode (``--batch QUERIES.jsonl``) reads one JSON query per line, ``{"text": ...,
"image": PATH or [PATHS], "where": {...}, "k": N, "liked": [IDS], "disliked": [IDS]}`` (every field
optional, ids are the catalog's own, k from 1 to MAX_K = 1000), and prints one JSON result list
per line, in order, with the models loaded once. A line that cannot be run prints ``{"error":
..., "line": N}`` in its place, so outputs stay aligned with inputs, and the exit status is 1
(stderr names the first failing line and why).
"""
from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

from retrieval.embedder import DEFAULT_EMBEDDER
from retrieval.index_kinds import check_kind

from crs import assemble
from crs.catalog.browse import get_item
from crs.cli.args import int_between
from crs.cli.progress import BuildBar, quiet_library_bars
from crs.errors import UserError
from crs.filters import allowed_item_ids, parse_where
from crs.search import MAX_K, CatalogSearch, SearchHit, check_k
from crs.settings import Settings
from crs.store import Store
from crs.store.models import Catalog


def add_parsers(commands: argparse._SubParsersAction, common) -> None:  # type: ignore[type-arg, no-untyped-def]
    index = commands.add_parser("index", help="build or refresh the catalog's search index (cached on disk)")
    common(index)
    _embedder_options(index)
    index.add_argument("--rebuild", action="store_true", help="rebuild even if the cached index matches")
    index.add_argument("--json", action="store_true")
    index.set_defaults(run=cmd_index)

    search = commands.add_parser("search", help="search the catalog by text, image, both, and filters")
    common(search)
    _embedder_options(search)
    search.add_argument("text", nargs="?", help="what to look for, e.g. 'a red heart'")
    search.add_argument("--image", action="append", default=[], metavar="PATH",
                        help="a query image (repeatable); with TEXT, a composed query: this image, modified")
    search.add_argument("-k", type=int_between(1, MAX_K), default=10,
                        help=f"how many results (default 10, at most {MAX_K})")
    search.add_argument("--where", action="append", default=[], metavar="ATTR=VALUE",
                        help="filter, repeatable: colour=blue, style!=3d, added_in>=2015")
    search.add_argument("--like", action="append", default=[], metavar="ID", help="an item you like (its id)")
    search.add_argument("--dislike", action="append", default=[], metavar="ID", help="an item you do not like")
    search.add_argument("--batch", metavar="QUERIES.jsonl", help="one JSON query per line ('-' = stdin)")
    search.add_argument("--json", action="store_true", help="print JSON")
    search.set_defaults(run=cmd_search)


def _embedder_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--embedder", default=None,
                        help=f"{DEFAULT_EMBEDDER} (default, offline, or $CRS_EMBEDDER), aligned:WEIGHTS, clip:PATH_OR_NAME")
    parser.add_argument("--index-kind", default="auto", type=_index_kind, metavar="KIND",
                        help="vector index per space: auto (default; flat, hnsw from 200k items), flat, hnsw, "
                             "ivf (FAISS), exact (numpy) or a plugin's kind; a cached index of another kind is "
                             "rebuilt")


def _index_kind(value: str) -> str:
    # A type, not `choices`: kinds come from a registry that plugins extend, and a typo still
    # fails while parsing, before any model loads.
    try:
        return check_kind(value)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(str(exc)) from None


class Opening:
    """The command's settings, store and catalog (cheap: a database query), then the searcher
    (slow: the models, and on a first run the index build). Arguments are checked against the
    catalog between the two, so a typo fails in a second rather than after the models load."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.settings = Settings.from_env(db_url=args.db, catalog=args.catalog, embedder=args.embedder,
                                          index_kind=args.index_kind)
        self.store: Store = assemble.open_settings_store(self.settings)
        self.catalog: Catalog = assemble.open_settings_catalog(self.store, self.settings)

    def searcher(self, rebuild: bool = False) -> CatalogSearch:
        from retrieval.threads import serve_single_queries

        serve_single_queries()
        quiet_library_bars()
        with BuildBar() as bar:
            return assemble.open_searcher(self.store, self.catalog, self.settings, rebuild=rebuild, progress=bar)


def check_search_args(store: Store, catalog: Catalog, args: argparse.Namespace) -> None:
    """What `crs search` can check without a model: image files, filters (against the catalog's
    schema and values, as the search itself will) and the ids of --like/--dislike."""
    for path in args.image:
        if not Path(path).is_file():
            raise UserError(f"--image {path}: no such file")
    allowed_item_ids(store, catalog, parse_where(args.where))  # FilterError names the attribute or value
    for option, ids in (("--like", args.like), ("--dislike", args.dislike)):
        for item_id in ids:
            if get_item(store, catalog, item_id) is None:
                raise UserError(f"{option} {item_id}: no item {item_id!r} in catalog {catalog.name!r}")


def cmd_index(args: argparse.Namespace) -> int:
    started = time.perf_counter()
    searcher = Opening(args).searcher(rebuild=args.rebuild)
    status = {**searcher.status.to_json(), "catalog": searcher.catalog.name, "embedder": searcher.embedder.name,
              "spaces": {name: {"dim": index.dim, "kind": index.kind} for name, index in searcher.index.spaces.items()},
              "lexical": None if searcher.index.lexical is None else {"kind": "bm25",
                                                                      "words": len(searcher.index.lexical.retriever.vocab_dict)},
              "total_seconds": round(time.perf_counter() - started, 3)}
    if args.json:
        print(json.dumps(status, indent=2))
    else:
        what = f"built ({status['reason']})" if status["built"] else "up to date (loaded from cache)"
        print(f"index of {status['catalog']!r}: {status['items']} items, {what} in {status['seconds']:.1f} s\n"
              f"  {status['folder']}")
    return 0


def cmd_search(args: argparse.Namespace) -> int:
    if args.batch:
        if args.text or args.image or args.where or args.like or args.dislike:
            raise UserError("--batch reads every query from the file; give no TEXT, --image, --where, --like")
        return _batch(args)
    opening = Opening(args)
    check_search_args(opening.store, opening.catalog, args)
    searcher = opening.searcher()
    hits = searcher.search(args.text, [Path(p) for p in args.image], where=args.where, k=args.k,
                           liked=searcher.item_ids(args.like), disliked=searcher.item_ids(args.dislike))
    if args.json:
        print(json.dumps([h.to_json() for h in hits], indent=2, ensure_ascii=False))
    else:
        _print_table(hits)
    return 0


def _batch(args: argparse.Namespace) -> int:
    source = sys.stdin if args.batch == "-" else _open_file(args.batch)
    searcher = Opening(args).searcher()
    failed = 0
    first_error = ""
    with source:
        for number, line in enumerate(source, start=1):
            if not line.strip():
                continue
            try:
                hits = _run_line(searcher, line, args.k)
                print(json.dumps([h.to_json() for h in hits], ensure_ascii=False), flush=True)
            except UserError as exc:
                failed += 1
                first_error = first_error or f"line {number}: {exc}"
                print(json.dumps({"error": str(exc), "line": number}), flush=True)
    if failed:  # the first reason too: stdout may be a file nobody reads at once
        print(f"error: {failed} queries of {args.batch} could not be run (see the error lines; the first, "
              f"{first_error})", file=sys.stderr)
    return 1 if failed else 0


def _open_file(path: str):  # type: ignore[no-untyped-def]
    try:
        return open(path, encoding="utf-8")
    except OSError as exc:
        raise UserError(f"--batch {path}: {exc.strerror}") from None


def _run_line(searcher: CatalogSearch, line: str, default_k: int) -> list[SearchHit]:
    try:
        spec: Any = json.loads(line)
    except json.JSONDecodeError as exc:
        raise UserError(f"not JSON ({exc.msg} at column {exc.colno})") from None
    if not isinstance(spec, dict):
        raise UserError(f"a query must be a JSON object, got {type(spec).__name__}")
    unknown = set(spec) - {"text", "image", "images", "where", "k", "liked", "disliked"}
    if unknown:
        raise UserError(f"unknown query fields {sorted(unknown)}; use text, image, where, k, liked, disliked")
    images = spec.get("image", spec.get("images")) or []
    images = [images] if isinstance(images, str) else images
    k = check_k(spec.get("k", default_k))  # before any work: a huge k is a memory bomb
    text = spec.get("text")
    if text is not None and not isinstance(text, str):
        raise UserError(f"text must be a string, got {type(text).__name__}")
    where = spec.get("where")
    if where is not None and not isinstance(where, (dict, list)):
        raise UserError("where must be an object like {\"colour\": \"blue\"} or a list of 'attr=value'")
    return searcher.search(text, [Path(p) for p in images], where=where, k=k,
                           liked=searcher.item_ids([str(i) for i in spec.get("liked", [])]),
                           disliked=searcher.item_ids([str(i) for i in spec.get("disliked", [])]))


def _print_table(hits: list[SearchHit]) -> None:
    if not hits:
        print("no items match")
        return
    for rank, hit in enumerate(hits, start=1):
        attributes = ", ".join(f"{k}={'/'.join(v) if isinstance(v, list) else v}"
                               for k, v in list(hit.attributes.items())[:3])
        print(f"{rank:>3}. {hit.score:6.3f}  {hit.id:<28} {hit.title[:48]:<48} {attributes}")
