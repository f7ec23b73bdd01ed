"""What an evaluation prints and writes: the metrics table (plain text or Markdown) and the
``--report DIR`` folder: ``report.md`` with the table and two PNG plots beside it (success rate by
turn, one line per policy; a histogram of the turns to success, failures apart), linked by
relative paths so the folder can be moved or committed as it is.

With ``ci95`` in the figures (``crs eval`` adds it), SR and average turns show their bootstrap 95%
interval beside them, "0.935 [0.913, 0.955]". ``crs eval --seeds`` runs one configuration once per
seed: :func:`seed_spread` gives each policy's mean, sd, min and max of SR, average turns and hDCG
over the seeds, :func:`format_spread_table` / :func:`markdown_spread_table` show them, and
:func:`write_seeds_report` writes each seed's usual report in ``DIR/seed-S/`` with ``DIR/report.md``
holding the spread and every seed's table.

Figures that carry ``by_start`` (``crs eval --compare`` adds it: :func:`simulators.metrics.by_start`)
also get the per-opening table, one row per policy and opening kind (text, similar-image,
other-style-image): SR, SR@5/10/15, average turns, hDCG, questions and understanding rate, each
with its bootstrap 95% interval (:func:`format_by_start_table`, :func:`markdown_by_start_table`;
:func:`format_table` and the report append it). :func:`format_agreement` /
:func:`write_agreement_report` show ``crs eval --agreement`` (:mod:`simulators.agreement`).

Figures of a run whose user's lines were checked (the LLM user: ``user_line_checks``) also get
the table of those lines (:func:`format_lines_table`, :func:`markdown_lines_table`): line length
(mean / max characters), leak, role-break, false-accept, wrong-answer and repetition rates, and
the lines trimmed, regenerated and replaced, of the turns checked.

Plots use matplotlib's object API (``Figure`` + the Agg canvas), never pyplot, so nothing
process-wide (the backend, open figures) changes and no display is needed.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from .misreadings import format_misreadings, markdown_misreadings
from .results import ConversationResult
from .stats import spread

SUCCESS_PLOT = "success_by_turn.png"
TURNS_PLOT = "turns_histogram.png"


def _number(digits: int) -> Callable[[Any], str]:
    return lambda value: "n/a" if value is None else f"{value:.{digits}f}"


def _with_ci(name: str, digits: int) -> Callable[[dict[str, Any]], str]:
    """The figure, then its ``ci95`` interval when the figures carry one: "0.935 [0.913, 0.955]"."""
    show = _number(digits)

    def cell(figure: dict[str, Any]) -> str:
        interval = (figure.get("ci95") or {}).get(name)
        text = show(figure[name])
        return text if interval is None or figure[name] is None else (
            f"{text} [{interval[0]:.{digits}f}, {interval[1]:.{digits}f}]")

    return cell


def _latency(figure: dict[str, Any]) -> str:
    latency = figure.get("turn_latency_ms") or {}
    if latency.get("p50") is None:
        return "n/a"
    return f"{latency['p50']:.1f} / {latency['p95']:.1f}"


# (column header, how to show it from one policy's figures)
COLUMNS: list[tuple[str, Callable[[dict[str, Any]], str]]] = [
    ("policy", lambda f: str(f["policy"])),
    ("SR", _with_ci("success_rate", 3)),
    ("SR@5", lambda f: _number(3)(f.get("sr_at_5"))),
    ("SR@10", lambda f: _number(3)(f.get("sr_at_10"))),
    ("SR@15", lambda f: _number(3)(f.get("sr_at_15"))),
    ("avg turns", _with_ci("avg_turns", 2)),
    ("hDCG", lambda f: _number(3)(f["hdcg"])),
    ("Recall@k", lambda f: _number(3)(f["recall_at_k"])),
    ("questions", lambda f: _number(2)(f["questions_per_conversation"])),
    ("understood", lambda f: _number(3)(f.get("understanding_rate"))),
    ("leak rate", lambda f: _number(3)(f["leak_rate"])),
    ("conv/s", lambda f: _number(2)(f["conversations_per_second"])),
    ("turn ms p50 / p95", _latency),
]


def _rows(figures: Sequence[dict[str, Any]]) -> list[list[str]]:
    return [[show(f) for _, show in COLUMNS] for f in figures]


def describe_run(figures: Sequence[dict[str, Any]], config: dict[str, Any] | None = None) -> str:
    """One line on what was run: simulator, n, T, k, seed, run id (and catalog, embedder when known)."""
    first = figures[0]
    line = (f"simulator {first['simulator']} ({first.get('profile', 'critiquing')} profile), {first['n']} conversations per policy of at most {first['max_turns']} "
            f"turns, k={first['k']}, seed {first['seed']}, run {first['run_id']}")
    if config:
        line += f"; catalog {config['catalog']!r}, embedder {config['embedder']!r}"
        if config.get("llm"):
            line += f", LLM {config['llm']}"
    return line


def _aligned(headers: list[str], rows: list[list[str]], left: int = 1) -> list[str]:
    """Columns padded to their widest cell: the first ``left`` ones left-aligned, the rest right-aligned."""
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(headers)]
    line = lambda cells: "  ".join(c.ljust(w) if i < left else c.rjust(w)  # noqa: E731
                                   for i, (c, w) in enumerate(zip(cells, widths)))
    return [line(headers), line(["-" * w for w in widths]), *(line(r) for r in rows)]


def _markdown(headers: list[str], rows: list[list[str]], left: int = 1) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join("---" if i < left else "---:"
                                                             for i in range(len(headers))) + "|"]
    lines += ["| " + " | ".join(r) + " |" for r in rows]
    return "\n".join(lines)


def format_table(figures: Sequence[dict[str, Any]]) -> str:
    """The metrics as an aligned plain-text table, one row per policy; then, when the figures carry
    ``by_start``, the per-opening table (:func:`format_by_start_table`) after a blank line."""
    headers = [name for name, _ in COLUMNS]
    lines = [describe_run(figures), "", *_aligned(headers, _rows(figures))]
    if any(f.get("by_start") for f in figures):
        lines += ["", format_by_start_table(figures)]
    if any(f.get("user_line_checks") for f in figures):
        lines += ["", f"The simulated user's lines: {LINES_NOTE}.", "", *_aligned(*_lines_table(figures))]
    if figures and figures[0].get("understanding_by_phrase"):
        lines += ["", f"What the system understood of the simulated user ({figures[0]['policy']}), worst first:",
                  format_misreadings(figures[0]["understanding_by_phrase"])]
    return "\n".join(lines)


# -- the simulated user's lines (the LLM user's checks) -----------------------------------------------------

LINES_NOTE = ("rates over the turns whose line was checked, of the model's first try (the harness then asks once "
              "more, and sends the agenda user's line when that fails too); chars over the lines sent")


def _line_chars(figure: dict[str, Any]) -> str:
    chars = figure.get("line_chars") or {}
    return "n/a" if chars.get("mean") is None else f"{chars['mean']:.0f} / {chars['max']}"


def _lines_table(figures: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    headers = ["policy", "turns", "chars mean / max", "leak", "role break", "false accept", "wrong answer",
               "repetition", "trimmed", "regenerated", "replaced"]
    rows = []
    for f in figures:
        counts = f.get("user_line_checks")
        if not counts:
            continue
        rate = _number(3)
        rows.append([str(f["policy"]), str(counts["turns"]), _line_chars(f), rate(f.get("leak_rate")),
                     rate(f.get("role_break_rate")), rate(f.get("false_accept_rate")),
                     rate(f.get("wrong_answer_rate")), rate(f.get("repetition_rate")),
                     *(str(counts[key]) for key in ("trimmed", "regenerated", "replaced"))])
    return headers, rows


def format_lines_table(figures: Sequence[dict[str, Any]]) -> str:
    """The simulated user's line figures per policy; empty when no figure has checked lines."""
    headers, rows = _lines_table(figures)
    return "\n".join(_aligned(headers, rows)) if rows else ""


def markdown_lines_table(figures: Sequence[dict[str, Any]]) -> str:
    headers, rows = _lines_table(figures)
    return _markdown(headers, rows) if rows else ""


# -- per opening kind (the figures' by_start) -----------------------------------------------------------

# (column title, figure, digits): each shown with its ci95 interval.
BY_START_COLUMNS = (("SR", "success_rate", 3), ("SR@5", "sr_at_5", 3), ("SR@10", "sr_at_10", 3),
                    ("SR@15", "sr_at_15", 3), ("avg turns", "avg_turns", 2), ("hDCG", "hdcg", 3),
                    ("questions", "questions_per_conversation", 2), ("understood", "understanding_rate", 3))
BY_START_NOTE = ("SR@t: success within t turns, n/a where t > T; a failure counts T+1 turns; brackets: the "
                 "percentile bootstrap 95% interval over that opening's conversations")


def _by_start_table(figures: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    headers = ["policy", "opening", "n", *(title for title, _, _ in BY_START_COLUMNS)]
    rows = []
    for figure in figures:
        for kind, entry in (figure.get("by_start") or {}).items():
            rows.append([str(figure["policy"]), kind, str(entry["n"]),
                         *(_with_ci(name, digits)(entry) for _, name, digits in BY_START_COLUMNS)])
    return headers, rows


def format_by_start_table(figures: Sequence[dict[str, Any]]) -> str:
    """Per policy and opening kind: SR, SR@5/10/15, average turns, hDCG, questions and understanding
    rate, each "value [lo, hi]"; empty when no figure carries ``by_start``."""
    headers, rows = _by_start_table(figures)
    if not rows:
        return ""
    return "\n".join([f"By opening. {BY_START_NOTE}.", "", *_aligned(headers, rows, left=2)])


def markdown_by_start_table(figures: Sequence[dict[str, Any]]) -> str:
    headers, rows = _by_start_table(figures)
    return _markdown(headers, rows, left=2) if rows else ""


def markdown_table(figures: Sequence[dict[str, Any]]) -> str:
    return _markdown([name for name, _ in COLUMNS], _rows(figures))


# -- the spread over seeds (crs eval --seeds) ------------------------------------------------------------

# (column title, figure, digits): the figures whose spread over seeds is reported.
SPREAD_FIELDS = (("SR", "success_rate", 3), ("avg turns", "avg_turns", 2), ("hDCG", "hdcg", 3))


def seed_spread(runs: Sequence[Sequence[dict[str, Any]]]) -> list[dict[str, Any]]:
    """Per policy, the spread of SR, average turns and hDCG over runs of one configuration with
    different seeds. ``runs``: one list of figures (one per policy, as ``RunOutcome.figures``) per seed,
    in the order the seeds were given, every run with the same policies."""
    if not runs:
        raise ValueError("seed_spread needs at least one run")
    policies = [f["policy"] for f in runs[0]]
    if any([f["policy"] for f in run] != policies for run in runs):
        raise ValueError("every run needs the same policies in the same order")
    out = []
    for i, policy in enumerate(policies):
        figures = [run[i] for run in runs]
        entry: dict[str, Any] = {"policy": policy, "n_seeds": len(figures), "seeds": [f["seed"] for f in figures],
                                 "run_ids": [f["run_id"] for f in figures]}
        for _, name, _ in SPREAD_FIELDS:
            entry[name] = spread([f[name] for f in figures]).to_json()
        out.append(entry)
    return out


def _spread_table(spreads: Sequence[dict[str, Any]]) -> tuple[list[str], list[list[str]]]:
    headers = ["policy", "seeds"]
    for title, _, _ in SPREAD_FIELDS:
        headers += [f"{title} mean ± sd", f"{title} [min, max]"]
    rows = []
    for entry in spreads:
        row = [str(entry["policy"]), str(entry["n_seeds"])]
        for _, name, digits in SPREAD_FIELDS:
            s = entry[name]
            sd = "n/a" if s["sd"] is None else f"{s['sd']:.{digits}f}"
            row += [f"{s['mean']:.{digits}f} ± {sd}", f"[{s['min']:.{digits}f}, {s['max']:.{digits}f}]"]
        rows.append(row)
    return headers, rows


def describe_seeds(spreads: Sequence[dict[str, Any]]) -> str:
    first = spreads[0]
    return (f"across {first['n_seeds']} seed{'s' if first['n_seeds'] != 1 else ''} "
            f"({', '.join(str(s) for s in first['seeds'])}; runs {', '.join(first['run_ids'])}); "
            "sd is the sample standard deviation over seeds")


def format_spread_table(spreads: Sequence[dict[str, Any]]) -> str:
    """Each policy's mean ± sd and [min, max] of SR, average turns and hDCG over the seeds."""
    return "\n".join([describe_seeds(spreads), "", *_aligned(*_spread_table(spreads))])


def markdown_spread_table(spreads: Sequence[dict[str, Any]]) -> str:
    return _markdown(*_spread_table(spreads))


def write_seeds_report(folder: Path, runs: Sequence[Sequence[dict[str, Any]]],
                       results: Sequence[dict[str, list[ConversationResult]]], configs: Sequence[dict[str, Any]],
                       spreads: Sequence[dict[str, Any]]) -> Path:
    """``crs eval --seeds --report DIR``: each seed's report (:func:`write_report`) in ``DIR/seed-S/``, and
    ``DIR/report.md`` with the spread over seeds, every seed's table and links to their reports."""
    folder.mkdir(parents=True, exist_ok=True)
    sections = []
    for figures, conversations, config in zip(runs, results, configs):
        seed = figures[0]["seed"]
        write_report(folder / f"seed-{seed}", figures, conversations, config)
        sections += [f"## Seed {seed}", "", describe_run(figures) + f" ([report, plots](seed-{seed}/report.md))", "",
                     markdown_table(figures), ""]
    text = "\n".join([
        f"# Evaluation over seeds {', '.join(str(s) for s in spreads[0]['seeds'])}",
        "",
        describe_seeds(spreads) + f"; written {datetime.utcnow():%Y-%m-%d %H:%M} UTC.",
        "",
        markdown_spread_table(spreads),
        "",
        "Each seed draws other targets, openings and simulated-user noise for the same configuration. The spread "
        "over seeds is the run-to-run variation; the bracket after SR and average turns in each seed's table is "
        "that run's bootstrap 95% interval over its conversations.",
        "",
        *sections,
    ])
    path = folder / "report.md"
    path.write_text(text, encoding="utf-8")
    return path


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
        "Conversations per second and turn latency measure the machine, not the policy."
        + (" Brackets after SR and average turns: the percentile bootstrap 95% confidence interval of the mean "
           "over the run's conversations." if figures[0].get("ci95") else ""),
        "",
        f"Simulator settings: `{simulator}`",
        "",
        describe_openings(config.get("starts"), results),
        "",
        *(["## The simulated user's lines", "", "What the harness caught in the LLM user's lines before the "
           "system saw them: a role break (the line speaks as the assistant), a false accept (it accepts a shown "
           "item that is not its target), a wrong answer (an offered option its target lacks), a repetition (an "
           f"earlier turn's line again). Each is asked for once more, then replaced by the agenda user's line. "
           f"Trimmed: cut to two sentences. Leak: the target named and redacted. Rates: {LINES_NOTE}.", "",
           lines_table, ""] if (lines_table := markdown_lines_table(figures)) else []),
        *(["## By opening", "", f"How the conversation opened: {_opening_kinds(results)}. {BY_START_NOTE}.", "",
           by_start, ""] if (by_start := markdown_by_start_table(figures)) else []),
        *(["## Understanding by kind of phrase", "", f"Turns of the {figures[0]['policy']} run whose meaning the "
           "simulated user recorded, and the share the system understood exactly, by the kind of phrase and by how "
           "its values were said (exact, a variant, a synonym, a part, a typo, with filler words).", "",
           markdown_misreadings(phrases), ""] if (phrases := figures[0].get("understanding_by_phrase")) else []),
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


OPENING_NAMES = {"text": "text only", "similar-image": "a picture of a similar item",
                 "other-style-image": "a picture of the target in another version"}


def used_openings(results: dict[str, list[ConversationResult]]) -> dict[str, int]:
    """How many conversations opened each way, in the report's order; every policy of a run meets
    the same plans, so the first policy's conversations tell."""
    from .metrics import start_kinds

    first = next(iter(results.values()), [])
    return {kind: sum(1 for r in first if r.start == kind) for kind in start_kinds(first)}


def describe_openings(starts: dict[str, float] | None, results: dict[str, list[ConversationResult]]) -> str:
    """The openings the run had, counted, and the mix it drew them from. A kind the mix weighted
    but no conversation had (a catalog without pictures, a target without another version) is
    named as such, never reported as if it had its weight."""
    used = used_openings(results)
    total = sum(used.values())
    line = "Openings: " + (", ".join(f"{kind} {count}" for kind, count in used.items()) or "none")
    line += f" of {total} conversations" if total else ""
    if starts:
        line += " (weights: " + ", ".join(f"{kind} {weight:g}" for kind, weight in starts.items()) + ")"
        missing = [kind for kind in starts if kind not in used]
        if missing and used:
            line += f"; none opened with {' or '.join(missing)}: the catalog offered none for these targets"
    return line + "."


def _opening_kinds(results: dict[str, list[ConversationResult]]) -> str:
    names = [OPENING_NAMES.get(kind, kind) for kind in used_openings(results)]
    return " or ".join(names) if len(names) < 3 else f"{', '.join(names[:-1])}, or {names[-1]}"


# -- agreement between simulated users (crs eval --agreement) --------------------------------------------


def _agreement_rows(data: dict[str, Any]) -> list[tuple[str, str]]:
    names = list(data["success_rate"])
    ci = data.get("ci95") or {}

    def with_ci(value: float | None, interval: list[float] | None) -> str:
        if value is None:
            return "n/a"
        return f"{value:.3f}" + ("" if interval is None else f" [{interval[0]:.3f}, {interval[1]:.3f}]")

    table = data["table"]
    rates = ci.get("success_rate") or {}
    rows = [(f"success rate, {name} user", with_ci(data["success_rate"][name], rates.get(name))) for name in names]
    rows += [("success agreement", with_ci(data["agreement"], ci.get("agreement"))),
             ("Cohen's kappa", "n/a" if data["kappa"] is None else f"{data['kappa']:.3f}"),
             ("conversations: both succeed / " + " / ".join(f"{name} only" for name in names) + " / neither",
              " / ".join(str(table[key]) for key in ("both", *(f"{name} only" for name in names), "neither")))]
    return rows


def describe_agreement(data: dict[str, Any]) -> str:
    names = list(data["success_rate"])
    runs = data.get("run_ids") or {}
    line = (f"policy {data.get('policy', '?')} on the same {data['n']} conversation plans (T={data['max_turns']}, "
            f"k={data.get('k', '?')}, seed {data.get('seed', '?')}) with the {names[0]} user "
            f"({data.get('profile', names[0])} profile) and the {names[1]} user")
    if runs:
        line += f"; runs {', '.join(runs[name] for name in names if name in runs)}"
    return line


def format_agreement(data: dict[str, Any]) -> str:
    """``crs eval --agreement`` as plain text: what ran, then each user's SR, the agreement and kappa."""
    rows = _agreement_rows(data)
    width = max(len(label) for label, _ in rows)
    return "\n".join([describe_agreement(data), "", *(f"{label.ljust(width)}  {value}" for label, value in rows),
                      "", "brackets: percentile bootstrap 95% interval over the conversations; kappa 1 = always "
                          "agree, 0 = chance level (defined as 1 when both users are constant and agree)"])


def write_agreement_report(folder: Path, data: dict[str, Any]) -> Path:
    """``DIR/agreement.md`` for ``crs eval --agreement --report DIR``; returns its path."""
    folder.mkdir(parents=True, exist_ok=True)
    text = "\n".join([
        "# Agreement between simulated users",
        "",
        describe_agreement(data) + f"; written {datetime.utcnow():%Y-%m-%d %H:%M} UTC.",
        "",
        _markdown(["figure", "value"], [[label, value] for label, value in _agreement_rows(data)]),
        "",
        "Success agreement: the share of conversations whose success (within T turns) is the same under both "
        "users. Cohen's kappa corrects it for the agreement two independent users with these success rates would "
        "reach by chance: 1 always agree, 0 chance level, below 0 worse than chance (defined as 1 when both users "
        "succeed on every conversation or both fail on every one). Brackets: the percentile bootstrap 95% "
        "interval over the conversations.",
        "",
    ])
    path = folder / "agreement.md"
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
