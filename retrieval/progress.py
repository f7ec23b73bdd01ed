"""How far a long build is: one small value that every place a build can happen reports, and
every place a person waits on shows (the page's banner, ``/api/v1/health``, the CLI's bar).

A build (loading a catalog into the store, encoding its texts and pictures, writing the vector
and lexical indexes) calls its ``progress`` callback with a :class:`BuildProgress` after each
chunk of work. ``str(progress)`` is a one-line message, so callbacks that only print or log
need nothing else.
"""
from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

__all__ = ["BuildProgress", "ProgressFn", "ProgressClock"]


@dataclass(frozen=True)
class BuildProgress:
    """``done`` of ``total`` units (items, usually) of one ``stage`` of a build."""

    stage: str  # what is being done, in words a person reads: "encoding pictures"
    done: int
    total: int
    elapsed_s: float = 0.0  # since this stage started
    unit: str = "items"

    @property
    def fraction(self) -> float:
        return 1.0 if self.total <= 0 else min(1.0, self.done / self.total)

    @property
    def eta_s(self) -> float | None:
        """Seconds left at this stage's rate so far; None until there is a rate to go by."""
        if self.done <= 0 or self.elapsed_s <= 0:
            return None
        return max(0.0, (self.total - self.done) * self.elapsed_s / self.done)

    def as_dict(self) -> dict[str, object]:
        eta = self.eta_s
        return {"stage": self.stage, "done": self.done, "total": self.total, "unit": self.unit,
                "elapsed_s": round(self.elapsed_s, 1), "eta_s": None if eta is None else round(eta, 1)}

    def __str__(self) -> str:
        eta = self.eta_s
        left = f", about {eta:.0f} s left" if eta is not None and self.done < self.total else ""
        return f"{self.stage}: {self.done}/{self.total} {self.unit}{left}"


ProgressFn = Callable[[BuildProgress], None]


@dataclass
class ProgressClock:
    """Times one stage: ``clock.report(done)`` builds the :class:`BuildProgress` and calls ``fn``."""

    fn: ProgressFn | None
    stage: str
    total: int
    unit: str = "items"
    started: float = field(default_factory=time.perf_counter)

    def report(self, done: int) -> None:
        if self.fn is not None:
            self.fn(BuildProgress(self.stage, done, self.total, time.perf_counter() - self.started, self.unit))
