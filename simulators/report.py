"""What an evaluation prints and writes: the metrics table (plain text or Markdown) and the
``--report DIR`` folder: ``report.md`` with the table and two PNG plots beside it (success rate by
turn, one line per policy; a histogram of the turns to success, failures apart), linked by
relative paths so the folder can be moved or committed as it is.

Plots use matplotlib's object API (``Figure`` + the Agg canvas), never pyplot, so nothing
process-wide (the backend, open figures) changes and no display is needed.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .results import ConversationResult

SUCCESS_PLOT = "success_by_turn.png"
TURNS_PLOT = "turns_histogram.png"


def _number(digits: int) -> Callable[[Any], str]:
    return lambda value: "n/a" if value is None else f"{value:.{digits}f}"


def _latency(figure: dict[str, Any]) -> str:
    latency = figure.get("turn_latency_ms") or {}
    if latency.get("p50") is None:
        return "n/a"
    return f"{latency['p50']:.1f} / {latency['p95']:.1f}"


# (column header, how to show it from one policy's figures)
COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("policy", lambda f: str(f["policy"])),
    ("SR", lambda f: _number(3)(f["success_rate"])),
    ("SR@5", lambda f: _number(3)(f.get("sr_at_5"))),
    ("SR@10", lambda f: _number(3)(f.get("sr_at_10"))),
    ("SR@15", lambda f: _number(3)(f.get("sr_at_15"))),
    ("avg turns", lambda f: _number(2)(f["avg_turns"])),
    ("hDCG", lambda f: _number(3)(f["hdcg"])),
    ("Recall@k", lambda f: _number(3)(f["recall_at_k"])),
    ("questions", lambda f: _number(2)(f["questions_per_conversation"])),
    ("leak rate", lambda f: _number(3)(f["leak_rate"])),
    ("conv/s", lambda f: _number(2)(f["conversations_per_second"])),
    ("turn ms p50 / p95", _latency),
]


def _rows(figures: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [[show(f) for _, show in COLUMNS] for f in figures]


def describe_run(figures: Sequence[dict[str, Any]], config: dict[str, Any] | None = None) -> str:
    """One line on what was run: simulator, n, T, k, seed, run id (and catalog, embedder when known)."""
    first = figures[0]
    line = (f"simulator {first['simulator']}, {first['n']} conversations per policy of at most {first['max_turns']} "
            f"turns, k={first['k']}, seed {first['seed']}, run {first['run_id']}")
    if config:
        line += f"; catalog {config['catalog']!r}, embedder {config['embedder']!r}"
        if config.get("llm"):
            line += f", LLM {config['llm']}"
    return line


def format_table(figures: Sequence[dict[str, Any]]) -> str:
    """The metrics as an aligned plain-text table, one row per policy."""
    headers = [name for name, _ in COLUMNS]
    rows = _rows(figures)
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) if i == 0 else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return "\n".join([describe_run(figures), "", line(headers), line(["-" * w for w in widths]),
                      *(line(r) for r in rows)])


def markdown_table(figures: Sequence[dict[str, Any]]) -> str:
    headers = [name for name, _ in COLUMNS]
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i == 0 else "---:"
                                                             for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in _rows(figures)]
    return "\n".join(lines)


def write_report(folder: Path, figures: Sequence[dict[str, Any]], results: dict[str, list[ConversationResult]],
                 config: dict[str, Any]) -> Path:
    """Write report.md and its plots into ``folder`` (created); returns the report's path."""
    folder.mkdir(parents=True, exist_ok=True)
    max_turns = int(figures[0]["max_turns"])
    plot_success_by_turn(figures, folder / SUCCESS_PLOT)
    plot_turns_histogram(results, max_turns, folder / TURNS_PLOT)
    simulator = json.dumps(config.get("simulator", {}), sort_keys=True)
    text = "\n".join([
        f"# Evaluation {figures[0]['run_id']}",
        "",
        describe_run(figures, config) + f"; written {datetime.utcnow():%Y-%m-%d %H:%M} UTC.",
        "",
        markdown_table(figures),
        "",
        f"Success: the target is among the k items shown within the turns counted (SR = within T = {max_turns}; "
        "SR@5/10/15 within 5, 10, 15 turns, capped at T). Average turns counts a failure as T+1. hDCG rewards an "
        "early success; Recall@k is that of the system's top k at each turn. Questions: ask turns per conversation. "
        "Leak rate: turns where the simulated user named the target (redacted before the system saw it). "
        "Conversations per second and turn latency measure the machine, not the policy.",
        "",
        f"Simulator settings: `{simulator}`",
        "",
        "Openings (weights): " + (", ".join(f"{kind} {weight:g}" for kind, weight in config["starts"].items())
                                  if config.get("starts") else "the default mix"),
        "",
        "## Success rate by turn",
        "",
        f"![Success rate by turn, one line per policy]({SUCCESS_PLOT})",
        "",
        "## Turns to success",
        "",
        f"![Histogram of the turns to success per policy; failures in the last bar]({TURNS_PLOT})",
        "",
    ])
    path = folder / "report.md"
    path.write_text(text, encoding="utf-8")
    return path


def _figure(width: float = 7.0, height: float = 4.2):  # type: ignore[no-untyped-def]
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=100)
    FigureCanvasAgg(figure)
    return figure


def plot_success_by_turn(figures: Sequence[dict[str, Any]], path: Path) -> None:
    figure = _figure()
    axes = figure.add_subplot()
    for f in figures:
        curve = list(f["success_by_turn"])
        axes.plot(range(1, len(curve) + 1), curve, marker="o", markersize=3, label=str(f["policy"]))
    axes.set_xlabel("turn")
    axes.set_ylabel("success rate within the turn")
    axes.set_ylim(-0.02, 1.02)
    axes.grid(alpha=0.3)
    axes.legend(loc="lower right", fontsize="small")
    axes.set_title(f"Success by turn (n={figures[0]['n']}, k={figures[0]['k']})")
    figure.tight_layout()
    figure.savefig(path, format="png")


def plot_turns_histogram(results: dict[str, list[ConversationResult]], max_turns: int, path: Path) -> None:
    """Bars per turn 1..T (conversations whose first success came then) and a last bar for failures."""
    figure = _figure()
    axes = figure.add_subplot()
    policies = list(results)
    width = 0.8 / max(1, len(policies))
    slots = list(range(1, max_turns + 2))
    for number, policy in enumerate(policies):
        counts = [0] * len(slots)
        for result in results[policy]:
            turn = result.success_turn if result.success and result.success_turn else max_turns + 1
            counts[min(turn, max_turns + 1) - 1] += 1
        offset = (number - (len(policies) - 1) / 2) * width
        axes.bar([s + offset for s in slots], counts, width=width, label=policy)
    axes.set_xticks(slots, [str(s) for s in slots[:-1]] + ["failed"])
    axes.set_xlabel("turn of the first success")
    axes.set_ylabel("conversations")
    axes.legend(fontsize="small")
    axes.set_title("Turns to success")
    figure.tight_layout()
    figure.savefig(path, format="png")
