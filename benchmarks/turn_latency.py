"""Turn latency of the dialogue manager (``DialogueManager.respond``), as a chatting user sees it, in ONE run.

    python benchmarks/turn_latency.py [--catalog demo] [--db URL] [--embedder aligned] [--policy eig]
        [--n 40] [--turns 4] [--threads 2] [--faiss-threads N] [--blas-threads N] [--k 5] [--warmup 2]
        [--seed 0] [--profile auto|always|never] [--json OUT]

One turn is everything ``respond`` does: decode and read the images, parse the critique, update the
belief, retrieve and score the candidates, let the policy ask or recommend, build the reply and
store the turn and the belief in the database. Two kinds of conversation, ``--n`` of each, of up
to ``--turns`` turns:

* text: the first message is a short text (a free phrase, an item's title, a value and a title,
  all different, so the text encoder is never spared by the dialogue manager's cache);
* image: the first message is an item's picture, by path (decoding the file is part of the turn,
  as for an upload), alone or with a modifier ("but in 3D").

Every later turn answers the pending question with its first option, or, after a recommendation,
sends one of the critiques "in 3d", "not black", "like the second one", "none of these" (in a
rotating order). The figures: p50 / p95 / mean in ms of (a) text-only turns (every turn of the
text conversations) and (b) turns with an image (the first turns of the image conversations),
with the follow-up turns of image conversations (text, but the belief holds the picture) and
each role (first message, answer, critique) apart. Target: p95 < 150 ms for (a) and (b).

Excluded from the figures and reported apart: preparing the store, loading the embedder, opening
the index, building the dialogue manager (the catalog's facts) and the first turn of each kind
(the models' lazy loading: "cold first turn"); ``--warmup`` conversations per kind then run
untimed.

The store: by default a new SQLite file in a temporary folder, into which the demo catalog is
loaded (a few seconds), so the benchmark's sessions never pile up in your store; it is deleted
afterwards. ``--db URL`` uses that store instead (and leaves its sessions there). The index and
feature caches are those of ``$CRS_HOME`` (shared with ``crs search`` and the app): the index's
fingerprint is the catalog's item ids and row hashes, which a fresh store loaded from the same
demo files reproduces, so a cached index is reused ("index: loaded from cache" in the report).

Threads: ``torch.set_num_threads(--threads)``, ``faiss.omp_set_num_threads(--faiss-threads or
--threads)``, numpy's BLAS ``--blas-threads or --threads`` (threadpoolctl, when installed).

When a target fails (``--profile auto``, the default) the slowest turn of that kind is replayed
(its whole conversation, in a new session, the text-encoding cache cleared first) under cProfile,
and the top functions by cumulative time are printed.

Long on purpose: one script is the whole benchmark (scripted conversations, timing, report), so it runs and reads on its own.
"""

from __future__ import annotations

import argparse
import contextlib
import cProfile
import io
import json
import os
import pstats
import random
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")

KINDS = ("text", "image")
TARGET_P95_MS = 150.0
CRITIQUES = ("in 3d", "not black", "like the second one", "none of these")
FREE_PHRASES = (
    "a red heart", "sleepy cat in 3d", "happy face", "a slice of pizza", "christmas tree", "blue car",
    "line drawing of a house", "thumbs up", "rainy weather", "birthday cake", "a dog with a ball",
    "smiling sun", "green leaf", "coffee cup", "rocket in space", "a crying face", "pink flower",
    "something for a football fan", "a black and white cat", "music notes",
)
IMAGE_TEXTS = ("", "but in 3D", "", "but in blue", "", "as a line drawing", "", "but cartoon")
MAX_WORDS = 6
# Rows of the report: (key, label, which turns), the first two with the target.
GROUPS = (
    ("text", "(a) text-only turns", lambda t: t["kind"] == "text"),
    ("image", "(b) turns with an image", lambda t: t["kind"] == "image" and t["has_image"]),
    ("image_followups", "    follow-ups after an image", lambda t: t["kind"] == "image" and not t["has_image"]),
    ("text_first", "    text: first messages", lambda t: t["kind"] == "text" and t["role"] == "first"),
    ("answers", "    answers (first option)", lambda t: t["role"] == "answer"),
    ("critiques", "    critiques", lambda t: t["role"] == "critique"),
    ("all", "all turns", lambda t: True),
)
TARGETED = ("text", "image")


@dataclass(frozen=True)
class Script:
    """One conversation: its first message and the critiques it sends after recommendations."""

    kind: str
    text: str
    image: str | None
    critiques: tuple[str, ...]

    def describe(self) -> str:
        return " + ".join(p for p in (f"image={Path(self.image).name}" if self.image else "",
                                      f"{self.text!r}" if self.text else "") if p)


def say(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


def timed(fn: Callable[[], Any]) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - start


def stats(times_ms: Sequence[float]) -> dict[str, float | int]:
    ms = np.asarray(times_ms, dtype=np.float64)
    if len(ms) == 0:
        return {"turns": 0}
    return {"turns": int(len(ms)), "p50_ms": float(np.percentile(ms, 50)), "p95_ms": float(np.percentile(ms, 95)),
            "mean_ms": float(ms.mean()), "min_ms": float(ms.min()), "max_ms": float(ms.max())}


# -- threads ----------------------------------------------------------------------------------


@contextlib.contextmanager
def thread_settings(threads: int, faiss_threads: int | None = None,
                    blas_threads: int | None = None) -> Iterator[dict[str, Any]]:
    """torch's intra-op threads, FAISS's OpenMP threads and numpy's BLAS threads for the run; yields
    what was set (read back) and restores torch and FAISS afterwards."""
    import faiss
    import torch

    saved = torch.get_num_threads(), faiss.omp_get_max_threads()
    torch.set_num_threads(threads)
    faiss.omp_set_num_threads(faiss_threads or threads)
    setting: dict[str, Any] = {"requested": threads, "torch": torch.get_num_threads(),
                               "faiss": faiss.omp_get_max_threads()}
    try:
        with contextlib.ExitStack() as stack:
            try:
                from threadpoolctl import threadpool_limits
            except ImportError:
                setting["numpy_blas"] = "default (no threadpoolctl)"
            else:
                stack.enter_context(threadpool_limits(limits=blas_threads or threads, user_api="blas"))
                setting["numpy_blas"] = blas_threads or threads
            yield setting
    finally:
        torch.set_num_threads(saved[0])
        faiss.omp_set_num_threads(saved[1])


# -- conversations from the catalog ------------------------------------------------------------


def _short(value: Any) -> str | None:
    if not isinstance(value, str):
        return None
    value = " ".join(value.split())
    return value if value and len(value.split()) <= 3 else None


def _clip(text: str) -> str:
    return " ".join(text.split()[:MAX_WORDS])


def build_scripts(store: Any, catalog: Any, n: int, seed: int) -> dict[str, list[Script]]:
    """``n`` conversations of each kind (plus spares for warm-up), from random items of the catalog."""
    from sqlalchemy import select

    from crs.catalog.browse import item_attributes
    from crs.catalog.ingest import item_image_path
    from crs.store.models import Item

    rng = random.Random(seed)
    with store.session() as session:
        ids = list(session.scalars(select(Item.id).where(Item.catalog_id == catalog.id).order_by(Item.id)))
        picked = rng.sample(ids, min(len(ids), 2 * n))
        items = {i.id: i for i in session.scalars(select(Item).where(Item.id.in_(picked)))}
        values = item_attributes(session, picked)
        images = []
        for item_id in rng.sample(ids, len(ids)):  # every id, shuffled: the first n with a local picture
            item = items.get(item_id) or session.get(Item, item_id)
            path = item_image_path(catalog, item) if item is not None else None
            if path is not None and path.is_file():
                images.append(str(path))
                if len(images) >= n:
                    break
    if not images:
        raise SystemExit(f"catalog {catalog.name!r} has no item with a local image: cannot time image turns")

    texts: list[str] = []
    seen: set[str] = set()
    for i in range(4 * n + len(FREE_PHRASES)):
        if len(texts) >= n:
            break
        item_id = picked[i % len(picked)]
        title = " ".join(items[item_id].title.split()).lower()
        item_values = [s for name, v in values[item_id].items() if name != "tags"
                       for s in (_short(x) for x in (v if isinstance(v, list) else [v])) if s]
        form = i % 3
        if form == 0:
            text = FREE_PHRASES[(i // 3) % len(FREE_PHRASES)]
        elif form == 1 or not item_values:
            text = title
        else:
            text = f"{rng.choice(item_values)} {title}"
        text = _clip(text)
        if text and text not in seen:
            seen.add(text)
            texts.append(text)
    while len(texts) < n:  # a tiny catalog: repeat, the cache then helps later ones
        texts.append(texts[len(texts) % max(len(seen), 1)] if texts else FREE_PHRASES[0])

    def critiques(i: int) -> tuple[str, ...]:
        return tuple(CRITIQUES[(i + j) % len(CRITIQUES)] for j in range(len(CRITIQUES)))

    return {
        "text": [Script("text", t, None, critiques(i)) for i, t in enumerate(texts)],
        "image": [Script("image", IMAGE_TEXTS[i % len(IMAGE_TEXTS)], images[i % len(images)], critiques(i + 1))
                  for i in range(n)],
    }


def converse(dm: Any, script: Script, turns: int, *, profile_turn: int | None = None
             ) -> tuple[list[dict[str, Any]], cProfile.Profile | None]:
    """Run one conversation in a new session; a record per turn. With ``profile_turn``, that turn
    (1-based) runs under cProfile, which is returned."""
    from crs.turn import Message

    session = dm.start({"client": "benchmark"})
    records: list[dict[str, Any]] = []
    profile = None
    reply = None
    critique = 0
    for number in range(1, turns + 1):
        if number == 1:
            message, role = Message(script.text, (script.image,) if script.image else ()), "first"
        elif reply is not None and reply.action == "ask" and reply.question and reply.question.options:
            message, role = Message(reply.question.options[0]), "answer"
        else:
            message, role = Message(script.critiques[critique % len(script.critiques)]), "critique"
            critique += 1
        if number == profile_turn:
            profile = cProfile.Profile()
            start = time.perf_counter()
            profile.enable()
            reply = dm.respond(session, message)
            profile.disable()
            seconds = time.perf_counter() - start
        else:
            reply, seconds = timed(lambda: dm.respond(session, message))
        records.append({"kind": script.kind, "turn": number, "role": role, "has_image": bool(message.images),
                        "message": message.text, "action": reply.action, "ms": seconds * 1e3})
        if reply.action == "answer":  # accepted: the conversation is over
            break
    return records, profile


# -- the benchmark ------------------------------------------------------------------------------


def run_benchmark(store: Any, catalog: Any, embedder: str = "aligned", n: int = 40, threads: int = 2, *,
                  faiss_threads: int | None = None, blas_threads: int | None = None, turns: int = 4, k: int = 5,
                  policy: str = "eig", warmup: int = 2, seed: int = 0, profile: str = "auto",
                  progress: Callable[[str], None] = say) -> dict[str, Any]:
    """Every figure of the benchmark for one catalog and embedder spec, as a JSON-ready dict.

    ``profile``: "auto" profiles the slowest turn of each kind that misses its target, "always"
    of each kind, "never" none."""
    from crs.dialogue import DialogueManager
    from crs.policy import load_policy
    from crs.search import CatalogSearch
    from retrieval.embedder import load_embedder

    if n < 1 or turns < 1 or threads < 1 or k < 1 or warmup < 0:
        raise ValueError("n, turns, threads and k must be positive, warmup not negative")
    started = time.perf_counter()
    load_before = os.getloadavg()
    cpu_before = os.times()
    with thread_settings(threads, faiss_threads, blas_threads) as thread_setting:
        progress(f"threads: {thread_setting}")
        model, load_s = timed(lambda: load_embedder(embedder))
        progress(f"opening the index of {catalog.name!r} with {model.name} (a first open builds it)")
        searcher, open_s = timed(lambda: CatalogSearch.open(store, catalog, model, progress=progress))
        status = searcher.status
        progress(f"index {'built' if status.built else 'loaded from cache'} in {open_s:.2f} s ({status.reason})")
        dm, dm_s = timed(lambda: DialogueManager(store, searcher, policy=load_policy(policy), k=k))

        scripts = build_scripts(store, catalog, n + warmup + 1, seed)
        cold: dict[str, float] = {}
        for kind in KINDS:  # the first turn of each kind loads its models: timed apart
            records, _ = converse(dm, scripts[kind][-1], 1)
            cold[kind] = records[0]["ms"]
        for kind in KINDS:
            for script in scripts[kind][n:n + warmup]:
                converse(dm, script, turns)

        timed_turns: list[dict[str, Any]] = []
        by_conversation: list[Script] = []
        for kind in KINDS:
            progress(f"{kind}: {n} conversations of up to {turns} turns (+ {warmup} warm-up)")
            for script in scripts[kind][:n]:
                records, _ = converse(dm, script, turns)
                for record in records:
                    record["conversation"] = len(by_conversation)
                by_conversation.append(script)
                timed_turns += records
        cpu_after = os.times()
        load_after = os.getloadavg()
        wall_timed = time.perf_counter() - started

        rows = [{"group": key, **stats([t["ms"] for t in timed_turns if keep(t)])} for key, _, keep in GROUPS]
        target = targets(rows)
        profiles: dict[str, Any] = {}
        for kind in TARGETED:
            if profile == "never" or (profile == "auto" and target[kind]["pass"]):
                continue
            keep = dict((key, f) for key, _, f in GROUPS)[kind]
            slowest = max((t for t in timed_turns if keep(t)), key=lambda t: t["ms"])
            script = by_conversation[slowest["conversation"]]
            progress(f"profiling the slowest {kind} turn ({slowest['ms']:.0f} ms, turn {slowest['turn']} of "
                     f"{script.describe()})")
            dm._text_cache.clear()  # as in the timed run, where every first text was new
            records, prof = converse(dm, script, slowest["turn"], profile_turn=slowest["turn"])
            profiles[kind] = {"conversation": script.describe(), "turn": slowest["turn"],
                              "message": slowest["message"], "timed_ms": slowest["ms"],
                              "profiled_ms": records[-1]["ms"], "top": top_functions(prof)}

    own_cpu = (cpu_after.user + cpu_after.system) - (cpu_before.user + cpu_before.system)
    actions: dict[str, int] = {}
    for t in timed_turns:
        actions[t["action"]] = actions.get(t["action"], 0) + 1
    return {
        "catalog": catalog.name,
        "items": status.items,
        "store": store.url,
        "embedder": {"spec": embedder, "name": model.name, "dim": model.dim, "has_visual": model.has_visual},
        "index": status.to_json(),
        "policy": getattr(dm.policy, "name", policy),
        "embedder_load_s": load_s,
        "index_open_s": open_s,
        "dialogue_manager_s": dm_s,
        "cold_first_turn_ms": cold,
        "threads": thread_setting,
        "config": {"n": n, "turns": turns, "k": k, "warmup": warmup, "seed": seed},
        "examples": {kind: [s.describe() for s in scripts[kind][:3]] for kind in KINDS},
        "rows": rows,
        "actions": actions,
        "targets": target,
        "profiles": profiles,
        "turns": timed_turns,
        "load_avg": {"before": [round(x, 2) for x in load_before], "after": [round(x, 2) for x in load_after]},
        "cpus": os.cpu_count(),
        "own_cpu_share": round(own_cpu / max(wall_timed * (os.cpu_count() or 1), 1e-9), 3),
        "wall_s": time.perf_counter() - started,
    }


def targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    by = {r["group"]: r for r in rows}
    for kind in TARGETED:
        p95 = by[kind].get("p95_ms")
        out[kind] = {"p95_ms": p95, "p95_max_ms": TARGET_P95_MS, "pass": p95 is not None and p95 < TARGET_P95_MS}
    out["pass"] = all(out[kind]["pass"] for kind in TARGETED)
    return out


def top_functions(profile: cProfile.Profile | None, limit: int = 15) -> list[dict[str, Any]]:
    """The ``limit`` functions with the most cumulative time, as JSON-ready rows."""
    if profile is None:
        return []
    st = pstats.Stats(profile, stream=io.StringIO())
    rows = []
    for (filename, line, name), (_, calls, tottime, cumtime, _) in st.stats.items():  # type: ignore[attr-defined]
        where = filename
        for marker in ("/site-packages/", str(Path(__file__).resolve().parents[1]) + "/"):
            if marker in where:
                where = where.split(marker, 1)[1]
        rows.append({"function": f"{where}:{line}({name})" if line else name, "calls": calls,
                     "tottime_ms": tottime * 1e3, "cumtime_ms": cumtime * 1e3})
    rows.sort(key=lambda r: -r["cumtime_ms"])
    return rows[:limit]


# -- report ---------------------------------------------------------------------------------------


def format_table(result: dict[str, Any]) -> str:
    idx, th, cfg = result["index"], result["threads"], result["config"]
    lines = [
        f"turn latency on {result['catalog']!r}: {result['items']} items, embedder {result['embedder']['spec']!r} "
        f"({result['embedder']['name']}), policy {result['policy']}, k={cfg['k']}; {cfg['n']} conversations per "
        f"kind of up to {cfg['turns']} turns, {cfg['warmup']} warm-up",
        f"threads: torch {th['torch']}, faiss OpenMP {th['faiss']}, numpy BLAS {th['numpy_blas']} "
        f"(--threads {th['requested']}); {result['cpus']} CPUs; load average before "
        f"{' '.join(map(str, result['load_avg']['before']))}, after {' '.join(map(str, result['load_avg']['after']))};"
        f" this benchmark used {result['own_cpu_share']:.0%} of the machine while timing",
        f"excluded: embedder load {result['embedder_load_s']:.2f} s; index open {result['index_open_s']:.2f} s "
        f"({'built: ' + idx['short_reason'] if idx['built'] else 'loaded from cache'}); dialogue manager "
        f"{result['dialogue_manager_s']:.2f} s; cold first turn (model load): text "
        f"{result['cold_first_turn_ms']['text']:.0f} ms, image {result['cold_first_turn_ms']['image']:.0f} ms",
        "",
        f"{'turns (ms)':<34} {'turns':>6} {'p50':>8} {'p95':>8} {'mean':>8} {'max':>8}   target",
    ]
    for key, label, _ in GROUPS:
        row = next(r for r in result["rows"] if r["group"] == key)
        if not row["turns"]:
            lines.append(f"{label:<34} {0:>6}")
            continue
        verdict = ""
        if key in TARGETED:
            verdict = f"p95 < {TARGET_P95_MS:g}: {'PASS' if result['targets'][key]['pass'] else 'FAIL'}"
        lines.append(f"{label:<34} {row['turns']:>6} {row['p50_ms']:>8.1f} {row['p95_ms']:>8.1f} "
                     f"{row['mean_ms']:>8.1f} {row['max_ms']:>8.1f}   {verdict}".rstrip())
    lines.append("actions: " + ", ".join(f"{a} {c}" for a, c in sorted(result["actions"].items())))
    lines.append(f"overall: {'PASS' if result['targets']['pass'] else 'FAIL'}; wall time {result['wall_s']:.1f} s")
    for kind, prof in result["profiles"].items():
        lines += ["", f"profile of the slowest {kind} turn: turn {prof['turn']} of {prof['conversation']} "
                      f"(message {prof['message']!r}; {prof['timed_ms']:.0f} ms timed, {prof['profiled_ms']:.0f} ms "
                      "under cProfile); top functions by cumulative time:",
                  f"  {'cum ms':>8} {'own ms':>8} {'calls':>7}  function"]
        lines += [f"  {r['cumtime_ms']:>8.1f} {r['tottime_ms']:>8.1f} {r['calls']:>7}  {r['function'][:110]}"
                  for r in prof["top"]]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--catalog", default="demo")
    parser.add_argument("--db", help="SQLAlchemy URL of the store (default: a new temporary SQLite file, into which "
                                     "the demo is loaded; deleted afterwards)")
    parser.add_argument("--embedder", default="aligned", help="embedder spec (default: aligned; 'fake' for tests)")
    parser.add_argument("--policy", default="eig", help="ask-or-recommend policy (default eig)")
    parser.add_argument("--n", type=int, default=40, help="conversations per kind (default 40)")
    parser.add_argument("--turns", type=int, default=4, help="turns per conversation, at most (default 4)")
    parser.add_argument("--threads", type=int, default=2, help="torch, FAISS and numpy BLAS threads (default 2)")
    parser.add_argument("--faiss-threads", type=int, default=1,
                        help="FAISS OpenMP threads (default 1, as crs chat and the app serve)")
    parser.add_argument("--blas-threads", type=int, default=1, help="numpy BLAS threads (default 1, as served)")
    parser.add_argument("--k", type=int, default=5, help="items per recommendation (default 5)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed conversations per kind (default 2)")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--profile", choices=("auto", "always", "never"), default="auto",
                        help="cProfile the slowest turn of a kind: when it misses the target (auto), always, never")
    parser.add_argument("--json", help="write every figure to this JSON file")
    args = parser.parse_args(argv)

    from crs.catalog.demo import open_catalog
    from crs.store import open_store

    with contextlib.ExitStack() as stack:
        if args.db:
            url, setup = args.db, "given"
        else:
            folder = stack.enter_context(tempfile.TemporaryDirectory(prefix="crs-turn-latency-"))
            url, setup = f"sqlite:///{Path(folder) / 'bench.db'}", "temporary"
        store = open_store(url)
        catalog, store_s = timed(lambda: open_catalog(store, args.catalog))
        say(f"store ({setup}): {url}, catalog {catalog.name!r} ready in {store_s:.1f} s")
        result = run_benchmark(store, catalog, args.embedder, args.n, args.threads, faiss_threads=args.faiss_threads,
                               blas_threads=args.blas_threads, turns=args.turns, k=args.k, policy=args.policy,
                               warmup=args.warmup, seed=args.seed, profile=args.profile)
        result["store_setup"] = {"kind": setup, "seconds": store_s}
        store.engine.dispose()  # before the temporary folder goes
    print(format_table(result))
    print(f"store: {setup} SQLite{' (' + url + ')' if setup == 'given' else ''}, catalog ready in {store_s:.1f} s "
          "(excluded)")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
