"""Single-query search latency of a catalog, as a live user sees it, in ONE run.

    python benchmarks/search_latency.py [--catalog demo] [--db URL] [--embedder aligned] [--n 100]
        [--threads 2] [--faiss-threads N] [--blas-threads N] [--k 10] [--warmup 5] [--filter-attribute style]
        [--seed 0] [--json OUT]

It opens the catalog's search the way the app does (``CatalogSearch.open``: the cached index, or
a build on the first open, timed apart as "index build/load"), then times one query per call,
p50 and p95 in milliseconds, for four kinds of query:

* text: ``--n`` short texts made from the catalog's own titles and attribute values ("red
  worried face", "cat in 3d") mixed with a few free phrases ("a red heart", "sleepy cat in 3d");
* image: ``--n`` item pictures of the catalog, passed by path (decoding the file is part of the
  query, as for an upload);
* composed: another ``--n`` item pictures, each with a text modifier ("but in blue", "in 3d");
* filtered: the text queries with ``where={--filter-attribute: value}``, values in turn.

Each kind is timed three ways, in separate passes over the same queries:

* incl. encoding: the whole ``CatalogSearch.search`` call (what the app pays per message);
* encoding only: ``CatalogSearch.query`` (the text/image models);
* excl. encoding: ``CatalogSearch.search_query`` on the query encoded beforehand (filters,
  FAISS, exact rescoring, store lookups of the hits).

Where the excl.-encoding time goes is timed too, in one more pass, stage by stage as
``search_query`` runs them: the filter's SQL (``allowed_item_ids``), the index search
(``MultimodalIndex.search``: FAISS + fused rescoring) and the store lookups of the hits
(``CatalogSearch.hits``: titles, attributes, image paths).

Before timing, ``--warmup`` queries of each kind run untimed per pass (model loading, lazy
FAISS/numpy setup and SQLite's page cache would otherwise land in p95); the very first text
and image queries are timed apart as "cold first query". Threads are set explicitly:
``torch.set_num_threads(--threads)``, ``faiss.omp_set_num_threads(--faiss-threads or
--threads)`` (and the BLAS bundled with faiss alike) and numpy's BLAS (``--blas-threads`` or
``--threads``; threadpoolctl, when installed), and printed. The 1/5/15 minute
load averages before and after, and the share of the machine other processes used during the
run, are printed too: on a shared 2-core machine other jobs move these numbers more than
anything measured here.

Threads, measured on the demo (2 cores, quiet machine): one FAISS and one numpy-BLAS thread
(``--faiss-threads 1 --blas-threads 1``) beat two. A single query is one thread's work there,
and the idle workers of three pools (torch's OpenMP, FAISS's OpenMP + its OpenBLAS, numpy's
OpenBLAS) spin on the two cores between calls: composed queries went from ~120 to ~50 ms p50.

Targets (PASS/FAIL, including encoding): text p50 < 15 ms, image p50 < 40 ms.

Long on purpose: one script is the whole benchmark (queries of every kind, thread settings, report), so it runs and reads on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import random
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

KINDS = ("text", "image", "composed", "filtered")
MODES = ("incl_encoding", "encoding_only", "excl_encoding")
STAGES = ("filter_sql", "index_search", "store_lookups")
TARGETS_MS = {"text": 15.0, "image": 40.0}  # p50, including encoding
FREE_PHRASES = (
    "a red heart", "sleepy cat in 3d", "happy face", "a slice of pizza", "christmas tree",
    "blue car", "line drawing of a house", "thumbs up", "rainy weather", "birthday cake",
    "a dog with a ball", "smiling sun", "green leaf", "coffee cup", "rocket in space",
)
FREE_MODIFIERS = ("but in blue", "in 3d", "but red", "as a line drawing", "more colourful", "but smaller",
                  "in cartoon style", "without a face")
MAX_WORDS = 6


@dataclass(frozen=True)
class Case:
    """One query: what ``CatalogSearch.search`` is given."""

    text: str | None = None
    image: str | None = None
    where: dict[str, str] | None = None

    def describe(self) -> str:
        parts = [f"text={self.text!r}" if self.text else "", f"image={Path(self.image).name}" if self.image else "",
                 f"where={self.where}" if self.where else ""]
        return " ".join(p for p in parts if p)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- threads ----------------------------------------------------------------------------------


@contextlib.contextmanager
def thread_settings(threads: int, faiss_threads: int, blas_threads: int | None = None) -> Iterator[dict[str, Any]]:
    """torch intra-op threads, FAISS's OpenMP threads and BLAS threads, for the run; yields what
    was set (read back), and restores the previous settings afterwards.

    The faiss-cpu wheel bundles its own OpenMP OpenBLAS, which a single query reaches too (the
    module lowers faiss's BLAS threshold to 16, so even one query is a sgemm): it gets
    ``faiss_threads`` like FAISS's OpenMP pool; numpy's own OpenBLAS (the exact rescoring) gets
    ``blas_threads`` (default ``threads``). Both through threadpoolctl, when installed."""
    import faiss

    saved_faiss = faiss.omp_get_max_threads()
    faiss.omp_set_num_threads(faiss_threads)
    setting: dict[str, Any] = {"requested": threads, "faiss": faiss.omp_get_max_threads()}
    saved_torch = None
    try:
        import torch
    except ImportError:
        setting["torch"] = None
    else:
        saved_torch = torch.get_num_threads()
        torch.set_num_threads(threads)
        setting["torch"] = torch.get_num_threads()
    try:
        with contextlib.ExitStack() as stack:
            try:
                from threadpoolctl import ThreadpoolController
            except ImportError:
                setting["faiss_blas"] = setting["numpy_blas"] = "default (no threadpoolctl)"
            else:
                controller = ThreadpoolController()
                blas = [lib.filepath for lib in controller.lib_controllers if lib.user_api == "blas"]
                for key, paths, n in (("faiss_blas", [p for p in blas if "faiss" in p], faiss_threads),
                                      ("numpy_blas", [p for p in blas if "faiss" not in p], blas_threads or threads)):
                    if paths:
                        stack.enter_context(controller.select(filepath=paths).limit(limits=n))
                    setting[key] = n if paths else "none loaded"
            yield setting
    finally:
        faiss.omp_set_num_threads(saved_faiss)
        if saved_torch is not None:
            import torch

            torch.set_num_threads(saved_torch)


# -- queries from the catalog -------------------------------------------------------------------


def _short(value: Any) -> str | None:
    """An attribute value usable in a query text: a string of at most 3 words."""
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value if value and len(value.split()) <= 3 else None


def _values(attributes: dict[str, Any], skip: Sequence[str] = ("tags",)) -> list[str]:
    out = []
    for name, value in attributes.items():
        if name in skip:
            continue
        for v in value if isinstance(value, list) else [value]:
            if (s := _short(v)) is not None:
                out.append(s)
    return out


def _clip(text: str) -> str:
    return " ".join(text.split()[:MAX_WORDS])


@dataclass(frozen=True)
class CatalogSample:
    titles: list[str]  # of sampled items
    values: list[list[str]]  # their short attribute values (colour, style, ...), per item
    images: list[str]  # local image paths of other sampled items
    modifier_values: list[str]  # closed-vocabulary values, for "in <value>" modifiers
    filter_attribute: str | None
    filter_values: list[str]


def sample_catalog(store: Any, catalog: Any, n: int, rng: random.Random, filter_attribute: str) -> CatalogSample:
    """Titles, attribute values and image paths of random items, and the filter's values."""
    from sqlalchemy import select

    from crs.catalog.browse import attribute_values, item_attributes
    from crs.catalog.ingest import item_image_path
    from crs.store.models import Attribute, Item

    with store.session() as session:
        ids = list(session.scalars(select(Item.id).where(Item.catalog_id == catalog.id).order_by(Item.id)))
        attributes = {a.name: a for a in session.scalars(select(Attribute).where(Attribute.catalog_id == catalog.id))}
        text_ids = rng.sample(ids, min(n, len(ids)))
        items = {i.id: i for i in session.scalars(select(Item).where(Item.id.in_(text_ids)))}
        values = item_attributes(session, text_ids)
        titles = [" ".join(items[i].title.split()).lower() for i in text_ids]
        per_item = [_values(values[i]) for i in text_ids]
        images: list[str] = []
        for item_id in rng.sample(ids, len(ids)):  # every id, shuffled: take the first 2n with a picture
            item = session.get(Item, item_id)
            path = item_image_path(catalog, item) if item is not None else None
            if path is not None and path.is_file():
                images.append(str(path))
                if len(images) >= 2 * n:
                    break
    closed = [a for a in attributes.values() if a.kind in ("categorical", "tags") and a.allowed_values and a.askable]
    modifier_values = sorted({s for a in closed for v in a.allowed_values or [] if (s := _short(v)) is not None})
    name = filter_attribute if filter_attribute in attributes else next(
        (a.name for a in attributes.values() if a.kind == "categorical"), None)
    filter_values = [v for v in attribute_values(store, catalog, name) if v] if name else []
    return CatalogSample(titles, per_item, images, modifier_values, name if filter_values else None, filter_values)


def text_cases(sample: CatalogSample, n: int, rng: random.Random) -> list[str]:
    """``n`` short texts: titles alone, with one of their values before or after, value pairs,
    and free phrases, in a fixed (seeded) mix."""
    out = []
    for i in range(n):
        title = sample.titles[i % len(sample.titles)] if sample.titles else ""
        values = sample.values[i % len(sample.values)] if sample.values else []
        value = rng.choice(values) if values else ""
        form = i % 5
        if form == 0 or not title:
            text = FREE_PHRASES[(i // 5) % len(FREE_PHRASES)]
        elif form == 1:
            text = title
        elif form == 2:
            text = f"{value} {title}"
        elif form == 3:
            text = f"{title} in {value}" if value else title
        else:
            other = rng.choice(values) if values else ""
            text = f"{value} {other}" if value and other and other != value else f"{title} {value}"
        out.append(_clip(text.strip()) or FREE_PHRASES[0])
    return out


def build_cases(sample: CatalogSample, n: int, seed: int) -> dict[str, list[Case]]:
    rng = random.Random(seed + 1)
    texts = text_cases(sample, n, rng)
    if len(sample.images) < 2:
        raise SystemExit("the catalog has fewer than 2 items with a local image: cannot time image queries")
    image_paths = sample.images[:n] if len(sample.images) >= 2 * n else sample.images[: len(sample.images) // 2]
    composed_paths = sample.images[len(image_paths):][:n]
    modifiers = list(FREE_MODIFIERS) + [f"in {v}" for v in sample.modifier_values] + [
        f"but {v}" for v in sample.modifier_values]
    cases = {
        "text": [Case(text=t) for t in texts],
        "image": [Case(image=image_paths[i % len(image_paths)]) for i in range(n)],
        "composed": [Case(text=rng.choice(modifiers), image=composed_paths[i % len(composed_paths)]) for i in range(n)],
        "filtered": [],
    }
    if sample.filter_attribute is not None:
        rotated = texts[n // 2:] + texts[: n // 2]  # not the text pass's order
        name, values = sample.filter_attribute, sample.filter_values
        cases["filtered"] = [Case(text=t, where={name: values[i % len(values)]}) for i, t in enumerate(rotated)]
    return cases


# -- timing ---------------------------------------------------------------------------------


class CpuMeter:
    """How busy the machine was while the benchmark ran: this process's CPU time, and everyone
    else's (all CPUs' busy time from /proc/stat minus ours), as shares of (wall time x CPUs).
    Other jobs on a small machine move latencies more than anything measured here, so the run
    says how much of the machine it had. Linux only; elsewhere the shares are None."""

    def __init__(self) -> None:
        self.start = self._sample()

    @staticmethod
    def _sample() -> tuple[float, float, float, float] | None:
        try:
            with open("/proc/stat", encoding="ascii") as f:
                fields = [int(v) for v in f.readline().split()[1:]]
        except (OSError, ValueError):
            return None
        hz = os.sysconf("SC_CLK_TCK")
        idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
        steal = fields[7] if len(fields) > 7 else 0
        own = os.times()
        return time.monotonic(), (sum(fields[:8]) - idle - steal) / hz, steal / hz, own.user + own.system

    def shares(self) -> dict[str, float | None]:
        end = self._sample()
        if self.start is None or end is None:
            return {"own_cpu_share": None, "other_cpu_share": None, "steal_share": None}
        capacity = max(end[0] - self.start[0], 1e-9) * (os.cpu_count() or 1)
        busy, steal, own = (end[i] - self.start[i] for i in (1, 2, 3))
        return {"own_cpu_share": round(own / capacity, 3), "other_cpu_share": round(max(busy - own, 0.0) / capacity, 3),
                "steal_share": round(steal / capacity, 3)}


def stats(times_s: Sequence[float]) -> dict[str, float]:
    ms = np.asarray(times_s, dtype=np.float64) * 1e3
    return {"p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "min_ms": float(ms.min()), "max_ms": float(ms.max())}


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def measure(cases: Sequence[Case], call: Callable[[Case], Any], warmup: int) -> tuple[list[float], list[Any]]:
    """Warm up on the first ``warmup`` cases (untimed), then time every case once, in order."""
    for case in cases[:warmup]:
        call(case)
    times, results = [], []
    for case in cases:
        result, seconds = timed(lambda case=case: call(case))
        times.append(seconds)
        results.append(result)
    return times, results


def run_benchmark(store: Any, catalog: Any, embedder: str = "aligned", n: int = 100, threads: int = 2, *,
                  faiss_threads: int | None = None, blas_threads: int | None = None, k: int = 10,
                  warmup: int = 5, seed: int = 0, filter_attribute: str = "style",
                  progress: Callable[[str], None] = say) -> dict[str, Any]:
    """Every figure of the benchmark for one catalog and embedder spec, as a JSON-ready dict.

    ``threads`` sets torch's threads and, unless ``faiss_threads`` / ``blas_threads`` say
    otherwise, FAISS's and numpy's BLAS threads; all are restored when it returns."""
    from crs.filters import allowed_item_ids, parse_where
    from crs.search import CatalogSearch
    from retrieval.embedder import load_embedder

    if n < 1 or k < 1 or threads < 1:
        raise ValueError("n, k and threads must be positive")
    started = time.perf_counter()
    load_before = os.getloadavg()
    meter = CpuMeter()
    with thread_settings(threads, faiss_threads or threads, blas_threads) as thread_setting:
        progress(f"threads: {thread_setting}")
        model, load_s = timed(lambda: load_embedder(embedder))
        progress(f"opening the index of {catalog.name!r} with {model.name} (a first open builds it)")
        searcher, open_s = timed(lambda: CatalogSearch.open(store, catalog, model, progress=progress))
        status = searcher.status
        progress(f"index {'built' if status.built else 'loaded'} in {open_s:.2f} s ({status.reason}), "
                 f"{status.items} items")

        sample = sample_catalog(store, catalog, n, random.Random(seed), filter_attribute)
        cases = build_cases(sample, n, seed)
        # The very first queries load the models (MiniLM, EfficientNet): timed apart, never in p50/p95.
        _, cold_text = timed(lambda: searcher.search(cases["text"][0].text, k=k))
        _, cold_image = timed(lambda: searcher.search(images=[cases["image"][0].image], k=k))

        def full(case: Case) -> Any:
            return searcher.search(case.text, [case.image] if case.image else (), where=case.where, k=k)

        def encode(case: Case) -> Any:
            return searcher.query(case.text, [case.image] if case.image else ())

        rows: list[dict[str, Any]] = []
        stages: list[dict[str, Any]] = []
        checks: dict[str, Any] = {}
        for kind in KINDS:
            kind_cases = cases[kind]
            if not kind_cases:
                progress(f"{kind}: skipped (no categorical attribute to filter on)")
                continue
            progress(f"{kind}: {len(kind_cases)} queries x 3 passes (+ {warmup} warm-up each)")
            incl, _ = measure(kind_cases, full, warmup)
            enc, queries = measure(kind_cases, encode, warmup)
            encoded = {id(c): (q, parse_where(c.where)) for c, q in zip(kind_cases, queries, strict=True)}

            def search_only(case: Case) -> Any:
                query, conditions = encoded[id(case)]
                return searcher.search_query(query, conditions, k=k)

            excl, results = measure(kind_cases, search_only, warmup)
            for mode, times in zip(MODES, (incl, enc, excl), strict=True):
                rows.append({"kind": kind, "mode": mode, "queries": len(times), **stats(times)})

            # Where search_query's time goes: its three stages, timed one by one, same queries.
            stage_times: dict[str, list[float]] = {s: [] for s in STAGES}
            for i, case in enumerate(kind_cases[:warmup] + list(kind_cases)):
                query, conditions = encoded[id(case)]
                allowed, t_filter = timed(lambda: allowed_item_ids(store, catalog, conditions))
                scored, t_index = timed(lambda: searcher.index.search(query, k, allowed_ids=allowed))
                _, t_hits = timed(lambda: searcher.hits(scored))
                if i >= min(warmup, len(kind_cases)):
                    for stage, t in zip(STAGES, (t_filter, t_index, t_hits), strict=True):
                        stage_times[stage].append(t)
            for stage in STAGES:
                stages.append({"kind": kind, "stage": stage, **stats(stage_times[stage])})

            checks[kind] = {"short_results": sum(len(r) < k for r in results)}
            if kind == "filtered":
                checks[kind]["filter_respected"] = all(
                    _matches(h.attributes.get(name), value)
                    for c, r in zip(kind_cases, results, strict=True) for name, value in (c.where or {}).items()
                    for h in r)
                checks[kind]["where"] = {"attribute": sample.filter_attribute, "values": sample.filter_values}
        text_encoders = compare_query_text_encoders(model, [c.text for c in cases["text"]], warmup)
    load_after = os.getloadavg()
    cpu = meter.shares()

    index_kinds = sorted({space.kind for space in searcher.index.spaces.values()})
    result = {
        "catalog": catalog.name,
        "items": status.items,
        "embedder": {"spec": embedder, "name": model.name, "dim": model.dim, "has_visual": model.has_visual},
        "index": {**status.to_json(), "kind": "/".join(index_kinds), "spaces": sorted(searcher.index.spaces)},
        "index_open_s": open_s,
        "embedder_load_s": load_s,
        "cold_first_query_ms": {"text": cold_text * 1e3, "image": cold_image * 1e3},
        "threads": thread_setting,
        "config": {"n": n, "k": k, "warmup": warmup, "seed": seed, "filter_attribute": sample.filter_attribute},
        "examples": {kind: [c.describe() for c in cases[kind][:3]] for kind in KINDS},
        "rows": rows,
        "stages": stages,
        "query_text_encoders": text_encoders,
        "checks": checks,
        "targets": targets(rows),
        "load_avg": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
        "cpus": os.cpu_count(),
        "cpu_during_run": cpu,
        "wall_s": time.perf_counter() - started,
    }
    return result


def compare_query_text_encoders(model: Any, texts: Sequence[str], warmup: int) -> dict[str, Any] | None:
    """The query text encoder against the item text encoder on the same texts, same run: what the
    int8 copy saves per query and how close its vectors stay (None when both are the same)."""
    if model.query_text is model.text:
        return None
    served, _ = measure(texts, model.encode_query_text, warmup)
    exact, _ = measure(texts, lambda t: model.encode_texts([t])[0], warmup)
    cosine = [float(model.encode_query_text(t) @ model.encode_texts([t])[0]) for t in texts]
    return {"served": {"name": model.query_text.base.name if hasattr(model.query_text, "base")
                       else model.query_text.name, **stats(served)},
            "item_encoder": {"name": model.text.base.name if hasattr(model.text, "base") else model.text.name,
                             **stats(exact)},
            "speedup_p50": stats(exact)["p50_ms"] / stats(served)["p50_ms"],
            "mean_cosine": float(np.mean(cosine)), "min_cosine": float(np.min(cosine))}


def _matches(value: Any, wanted: str) -> bool:
    return wanted in value if isinstance(value, list) else value == wanted


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for kind, limit in TARGETS_MS.items():
        row = next((r for r in rows if r["kind"] == kind and r["mode"] == "incl_encoding"), None)
        if row is not None:
            out[kind] = {"p50_ms": row["p50_ms"], "p50_max_ms": limit, "pass": row["p50_ms"] < limit}
    out["pass"] = bool(out) and all(v["pass"] for v in out.values() if isinstance(v, dict))
    return out


# -- report -----------------------------------------------------------------------------------

LABELS = {"text": "text", "image": "image (by path)", "composed": "composed (image + text)",
          "filtered": "filtered text"}


def format_table(result: dict[str, Any]) -> str:
    idx, th, cfg = result["index"], result["threads"], result["config"]
    lines = [
        f"search latency on {result['catalog']!r}: {result['items']} items, embedder {result['embedder']['spec']!r} "
        f"({result['embedder']['name']}), index {idx['kind']} over {'+'.join(idx['spaces'])}, k={cfg['k']}, "
        f"{cfg['n']} queries per kind, {cfg['warmup']} warm-up",
        f"threads: torch {th['torch']}, faiss OpenMP {th['faiss']} (its BLAS {th['faiss_blas']}), "
        f"numpy BLAS {th['numpy_blas']} "
        f"(--threads {th['requested']}); {result['cpus']} CPUs; load average before "
        f"{' '.join(map(str, result['load_avg']['before']))}, after {' '.join(map(str, result['load_avg']['after']))}",
        _cpu_line(result["cpu_during_run"]),
        f"index build/load: {result['index_open_s']:.2f} s ({'built' if idx['built'] else 'loaded from cache'}"
        f"{': ' + idx['short_reason'] if idx['built'] else ''}); embedder load {result['embedder_load_s']:.2f} s; "
        f"cold first query (model load): text {result['cold_first_query_ms']['text']:.0f} ms, "
        f"image {result['cold_first_query_ms']['image']:.0f} ms",
        "",
        f"{'query (ms)':<30} {'incl. encoding':>17} {'encoding only':>17} {'excl. encoding':>17}",
        f"{'':<30} {'p50':>8} {'p95':>8} {'p50':>8} {'p95':>8} {'p50':>8} {'p95':>8}",
    ]
    by = {(r["kind"], r["mode"]): r for r in result["rows"]}
    for kind in KINDS:
        if (kind, "incl_encoding") not in by:
            continue
        label = LABELS[kind] + (f" ({cfg['filter_attribute']}=...)" if kind == "filtered" else "")
        cells = " ".join(f"{by[kind, m]['p50_ms']:>8.2f} {by[kind, m]['p95_ms']:>8.2f}" for m in MODES)
        lines.append(f"{label:<30} {cells}")
    lines += ["",
              f"{'excl. encoding, by stage (ms)':<30} {'filter SQL':>17} {'index search':>17} {'store lookups':>17}",
              f"{'':<30} {'p50':>8} {'p95':>8} {'p50':>8} {'p95':>8} {'p50':>8} {'p95':>8}"]
    st = {(s["kind"], s["stage"]): s for s in result["stages"]}
    for kind in KINDS:
        if (kind, STAGES[0]) not in st:
            continue
        cells = " ".join(f"{st[kind, s]['p50_ms']:>8.2f} {st[kind, s]['p95_ms']:>8.2f}" for s in STAGES)
        lines.append(f"{LABELS[kind]:<30} {cells}")
    enc = result.get("query_text_encoders")
    if enc:
        lines += ["", f"query text encoding, same texts: {enc['served']['name']} p50 {enc['served']['p50_ms']:.2f} ms "
                      f"vs {enc['item_encoder']['name']} (items' encoder) p50 {enc['item_encoder']['p50_ms']:.2f} ms: "
                      f"{enc['speedup_p50']:.2f}x faster; cosine to it mean {enc['mean_cosine']:.3f}, "
                      f"min {enc['min_cosine']:.3f}"]
    notes = []
    for kind, check in result["checks"].items():
        if check["short_results"]:
            notes.append(f"{kind}: {check['short_results']} queries returned fewer than k hits")
        if check.get("filter_respected") is False:
            notes.append(f"{kind}: SOME HITS BREAK THE FILTER")
    lines += [""] + notes
    lines.append("targets (p50 including encoding):")
    for kind, limit in TARGETS_MS.items():
        t = result["targets"].get(kind)
        if t is not None:
            lines.append(f"  {kind:<6} p50 {t['p50_ms']:7.2f} ms < {limit:g} ms: {'PASS' if t['pass'] else 'FAIL'}")
    lines.append(f"wall time {result['wall_s']:.1f} s")
    return "\n".join(lines)


def _cpu_line(cpu: dict[str, float | None]) -> str:
    if cpu["own_cpu_share"] is None:
        return "machine use during the run: unknown (no /proc/stat)"
    return (f"machine use during the run: this benchmark {cpu['own_cpu_share']:.0%}, other processes "
            f"{cpu['other_cpu_share']:.0%}, steal {cpu['steal_share']:.0%} (of wall time x CPUs)")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", default="demo")
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: $CRS_DB or $CRS_HOME/crs.db)")
    parser.add_argument("--embedder", default="aligned", help="embedder spec (default: aligned; 'fake' for tests)")
    parser.add_argument("--n", type=int, default=100, help="queries per kind (default 100)")
    parser.add_argument("--threads", type=int, default=2, help="torch, FAISS and numpy BLAS threads (default 2)")
    parser.add_argument("--faiss-threads", type=int, default=None,
                        help="FAISS OpenMP (and its bundled BLAS) threads only (default: --threads)")
    parser.add_argument("--blas-threads", type=int, default=None,
                        help="numpy's BLAS threads (exact rescoring) only (default: --threads)")
    parser.add_argument("--k", type=int, default=10, help="hits per query (default 10)")
    parser.add_argument("--warmup", type=int, default=5, help="untimed queries per kind and pass (default 5)")
    parser.add_argument("--filter-attribute", default="style", help="categorical attribute of the filtered queries")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", help="write every figure to this JSON file")
    args = parser.parse_args(argv)

    from crs.catalog.demo import open_catalog
    from crs.config import default_db_url
    from crs.store import open_store

    store = open_store(args.db or default_db_url())
    catalog = open_catalog(store, args.catalog)
    result = run_benchmark(store, catalog, args.embedder, args.n, args.threads, faiss_threads=args.faiss_threads,
                           blas_threads=args.blas_threads,
                           k=args.k, warmup=args.warmup, seed=args.seed, filter_attribute=args.filter_attribute)
    print(format_table(result))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
