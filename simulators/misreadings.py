"""Where the system misunderstands simulated users: the understanding rate by kind of phrase.

Each turn of a conversation with an agenda user carries the kind of phrase it sent (an answer,
"like the second but ...", a vague critique, ...) and how it said its values (exact, a variant,
a synonym, with a typo, with filler words; :mod:`simulators.wording`), and whether the system
understood it as meant (:class:`simulators.base.Intent`). Grouping those shows which phrasings
the system reads and which it does not, the input to work on understanding.
"""
from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from .results import ConversationResult


def _groups(label: str) -> tuple[str, list[str]]:
    kind, _, forms = label.partition(": ")
    return kind, [f for f in forms.split(", ") if f] or ["exact"]


def understanding_by_phrase(results: Iterable[ConversationResult]) -> dict[str, dict[str, dict[str, Any]]]:
    """``{"by_kind": {kind: {n, understood}}, "by_form": {form: {n, understood}}}`` over the turns
    that recorded an intent; ``understood`` is the share understood exactly. A turn counts once
    per form it used (a synonym with a typo counts under both)."""
    tallies: dict[str, dict[str, list[int]]] = {"by_kind": {}, "by_form": {}}
    for result in results:
        for turn in result.turns:
            if turn.understood is None or not turn.phrase:
                continue
            kind, forms = _groups(turn.phrase)
            for group, key in [("by_kind", kind), *(("by_form", f) for f in forms)]:
                tally = tallies[group].setdefault(key, [0, 0])
                tally[0] += 1
                tally[1] += bool(turn.understood)
    return {group: {key: {"n": n, "understood": round(hits / n, 4)}
                    for key, (n, hits) in sorted(counts.items(), key=lambda kv: -kv[1][0])}
            for group, counts in tallies.items()}


GROUPS = (("by_kind", "kind of phrase"), ("by_form", "how values were said"))


def _worst_first(figures: dict[str, dict[str, dict[str, Any]]], group: str) -> list[tuple[str, dict[str, Any]]]:
    return sorted(figures.get(group, {}).items(), key=lambda kv: kv[1]["understood"])


def format_misreadings(figures: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The two tables as aligned text, worst understood first."""
    lines: list[str] = []
    for group, title in GROUPS:
        rows = _worst_first(figures, group)
        if not rows:
            continue
        width = max(len(title), *(len(k) for k, _ in rows))
        lines += [f"{title:<{width}}  turns  understood", *(f"{k:<{width}}  {v['n']:>5}  {v['understood']:>10.1%}"
                                                         for k, v in rows), ""]
    return "\n".join(lines).rstrip()


def markdown_misreadings(figures: dict[str, dict[str, dict[str, Any]]]) -> str:
    """The two tables in Markdown, worst understood first."""
    parts = []
    for group, title in GROUPS:
        if rows := _worst_first(figures, group):
            parts.append("\n".join([f"| {title} | turns | understood |", "|---|---:|---:|",
                                     *(f"| {k} | {v['n']} | {v['understood']:.1%} |" for k, v in rows)]))
    return "\n\n".join(parts)
