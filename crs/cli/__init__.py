"""The `crs` command line: catalogs, ingest, training the aligned space, index, search, chat and eval.

Errors the user can fix (a bad row, a missing file, a locked database) print one clear message
and exit with status 1; anything else is a bug and keeps its traceback.
"""
from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from crs.config import ASSETS_DIR, DEMO_CATALOG, DEMO_DIR
from . import chat as chat_cli, eval as eval_cli, search as search_cli
from crs.catalog.demo import open_catalog
from crs.catalog.info import catalog_info
from crs.catalog.ingest import READERS, IngestOptions, ingest
from crs.cli.progress import BuildBar
from crs.errors import UserError
from crs.store import open_store


def _common(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--db", help="SQLAlchemy database URL (default: SQLite under $CRS_HOME, ~/.crs)")
    parser.add_argument("--catalog", help=f"catalog name (default: {DEMO_CATALOG!r}, the bundled demo)")


def cmd_catalog_info(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    catalog = open_catalog(store, args.catalog or DEMO_CATALOG)
    info = catalog_info(store, catalog, verify_images=args.verify_images)
    if args.json:
        print(json.dumps(info, indent=2, ensure_ascii=False))
        return 0
    images = info["images"]
    print(f"{info['catalog']}: {info['title']}\n{info['items']} items; images present {images['present']} "
          f"(coverage {images['coverage']:.1%})" + (f", readable {images['readable']}" if images["readable"] is not None else ""))
    for attribute in info["attributes"]:
        if attribute["kind"] == "numeric":
            detail = f"{attribute['min']} .. {attribute['max']}"
        else:
            top = ", ".join(f"{value} ({count})" for value, count in attribute["top_values"][:5])
            detail = f"{attribute['distinct_values']} values: {top}"
        print(f"  {attribute['name']:<14} {attribute['kind']:<12} {attribute['items_with_value']:>6} items  {detail}")
    return 0


def cmd_export_vectors(args: argparse.Namespace) -> int:
    from crs.catalog_index import SEED_DIR, export_seed  # the logic, and its tests, live there
    from retrieval.embedder import load_embedder

    store = open_store(args.db)
    manifest = export_seed(store, open_catalog(store, args.catalog or DEMO_CATALOG), load_embedder(),
                           Path(args.out) if args.out else SEED_DIR)
    print(json.dumps(manifest, indent=2))
    return 0


def cmd_build_demo(args: argparse.Namespace) -> int:
    from demo_build import build as demo_build  # heavy and network-bound: only imported when asked for
    from demo_build.sources import default_cache_dir

    return demo_build.main(Path(args.out), Path(args.cache).expanduser() if args.cache else default_cache_dir())


def cmd_build_movies(args: argparse.Namespace) -> int:
    from demo_build import movies  # a build tool: only imported when asked for

    return movies.main(Path(args.out).expanduser(), Path(args.source).expanduser() if args.source else None,
                       args.limit)


def cmd_ingest(args: argparse.Namespace) -> int:
    store = open_store(args.db)
    options = IngestOptions(
        format=args.format, catalog=args.catalog, schema_path=Path(args.schema) if args.schema else None,
        images_dir=Path(args.images) if args.images else None, fetch_images=not args.no_fetch_images,
        replace=args.replace, skip_invalid=args.skip_invalid,
    )
    with BuildBar() as bar:
        report = ingest(store, Path(args.path), options, progress=bar)
    if args.json:
        print(json.dumps(report.to_json(), indent=2))
    else:
        print(f"catalog {report.catalog!r}: {report.rows} rows: {report.added} added, {report.updated} updated, "
              f"{report.unchanged} unchanged, {report.removed} removed, {len(report.skipped)} skipped "
              f"({report.seconds:.1f} s)")
        for error in report.skipped[:20]:
            print(f"  skipped: {error}", file=sys.stderr)
    return 0


def cmd_train_align(args: argparse.Namespace) -> int:
    from crs.cli.align import train_align  # imports torch: only when asked for

    return train_align(args)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="crs", description="Conversational multimodal recommender")
    commands = parser.add_subparsers(dest="command", required=True)

    catalog = commands.add_parser("catalog", help="inspect or rebuild catalogs").add_subparsers(
        dest="catalog_command", required=True)
    info = catalog.add_parser("info", help="items, attributes and image coverage of a catalog")
    _common(info)
    info.add_argument("--json", action="store_true", help="print JSON")
    info.add_argument("--verify-images", action="store_true", help="decode every image file")
    info.set_defaults(run=cmd_catalog_info)
    build = catalog.add_parser("build-demo", help="rebuild assets/demo from the npm and Debian packages")
    build.add_argument("--out", default=str(DEMO_DIR))
    build.add_argument("--cache", help="where downloaded packages are kept (default: $CRS_DEMO_CACHE or "
                       "~/.cache/crs/demo-sources)")
    build.set_defaults(run=cmd_build_demo)
    export = catalog.add_parser("export-vectors", help="write the catalog's cached encodings, quantised, as the "
                                "seed a fresh install starts from (default: assets/demo/vectors)")
    _common(export)
    export.add_argument("--out", default=None, help="folder to write (default: assets/demo/vectors)")
    export.set_defaults(run=cmd_export_vectors)
    movies = catalog.add_parser("build-movies", help="write the films catalog (items.jsonl + schema.json) from "
                                "bokeh_sampledata's movies.db (pip install -e '.[films]')")
    movies.add_argument("--out", default="films", help="output folder (default: ./films)")
    movies.add_argument("--limit", type=int, help="keep N films spread over decades and genres (default: all 17,472)")
    movies.add_argument("--source", help="a movies.db to read (default: the one in the bokeh_sampledata package)")
    movies.set_defaults(run=cmd_build_movies)

    ingest_parser = commands.add_parser("ingest", help="load a catalog file into the store")
    _common(ingest_parser)
    ingest_parser.add_argument("path")
    ingest_parser.add_argument("--format", required=True, choices=sorted(READERS))
    ingest_parser.add_argument("--images", help="folder that relative image paths resolve against")
    ingest_parser.add_argument("--schema", help="attribute schema JSON (default: schema.json beside the file)")
    ingest_parser.add_argument("--replace", action="store_true", help="remove items that are not in this file")
    ingest_parser.add_argument("--skip-invalid", action="store_true", help="ingest the good rows, report the bad")
    ingest_parser.add_argument("--no-fetch-images", action="store_true", help="keep image URLs without fetching")
    ingest_parser.add_argument("--json", action="store_true")
    ingest_parser.set_defaults(run=cmd_ingest)

    align = commands.add_parser("train-align", help="train the aligned image-text space on a catalog")
    _common(align)
    align.add_argument("--out", default=str(ASSETS_DIR / "align"), help="folder for head.safetensors + align.json")
    align.add_argument("--seed", type=int, default=0)
    align.add_argument("--epochs", type=int, help="training epochs (default: the recipe's)")
    align.add_argument("--cache", help="feature cache folder (default: $CRS_HOME/features/CATALOG)")
    align.add_argument("--held-out-only", action="store_true",
                       help="ship the weights trained without the held-out 10%% (skips the all-items run)")
    align.add_argument("--json", action="store_true", help="print align.json")
    align.set_defaults(run=cmd_train_align)

    search_cli.add_parsers(commands, _common)
    chat_cli.add_parsers(commands, _common)
    eval_cli.add_parsers(commands, _common)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    # `crs ... | head` should stop quietly, not with a traceback: a closed pipe ends the command.
    # Only for the command's own duration: main() also runs inside other processes (tests, a
    # notebook), where a process-wide default SIGPIPE would later kill them on any closed socket.
    previous = signal.signal(signal.SIGPIPE, signal.SIG_DFL) if hasattr(signal, "SIGPIPE") else None
    try:
        args = build_parser().parse_args(argv)
        run: Callable[[argparse.Namespace], int] = args.run
        try:
            return run(args)
        except UserError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 1
    finally:
        if previous is not None:
            signal.signal(signal.SIGPIPE, previous)


if __name__ == "__main__":
    sys.exit(main())
