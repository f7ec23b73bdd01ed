"""One progress bar on stderr for whatever a command builds (ingest, encoding, index).

Builds call their ``progress`` callback with a :class:`~retrieval.progress.BuildProgress` after
each chunk of work, or with a sentence (a build not yet converted, a notice such as "index
loaded from cache"). :class:`BuildBar` is that callback for the command line:

* at a terminal, one tqdm bar whose description is the stage; a new stage resets it (a build has
  several: reading rows, encoding texts, encoding pictures, writing the index) and the finished
  stage is kept as a line above it. Sentences are written above the bar;
* elsewhere (a pipe, a log file, CI), plain lines: one when a stage starts and ends and at most
  one every ``every_s`` seconds between, so a 40-minute build leaves a readable log, not
  thousands of carriage returns.

The libraries' own bars (transformers' "Loading weights") are turned off by
:func:`quiet_library_bars`: they said nothing about the build, and two bars on one terminal
overwrite each other.
"""
from __future__ import annotations

import os
import sys
import time
from types import TracebackType
from typing import Any, TextIO

from retrieval.progress import BuildProgress

__all__ = ["BuildBar", "quiet_library_bars"]


def quiet_library_bars() -> None:
    """Turn off the model libraries' per-load bars before any model loads (stderr is ours)."""
    # Read by huggingface_hub when imported, and by transformers through it. A value the user set
    # wins (HF_HUB_DISABLE_PROGRESS_BARS=0 brings the bars back).
    if os.environ.setdefault("HF_HUB_DISABLE_PROGRESS_BARS", "1") != "1":
        return
    if "transformers" in sys.modules:  # imported already: the variable came too late for it
        from transformers.utils import logging as transformers_logging

        transformers_logging.disable_progress_bar()


class BuildBar:
    """A build's ``progress`` callback that shows one bar (or throttled lines) on ``file``."""

    def __init__(self, file: TextIO | None = None, *, interactive: bool | None = None, every_s: float = 10.0) -> None:
        self.file = file if file is not None else sys.stderr
        self.interactive = self.file.isatty() if interactive is None else interactive
        self.every_s = every_s
        self._bar: Any = None  # tqdm, created on the first report
        self._stage: str | None = None  # the stage now shown
        self._ended: str | None = None  # the last stage whose end was written (once)
        self._last_line = 0.0

    def __call__(self, progress: BuildProgress | str) -> None:
        if not isinstance(progress, BuildProgress):
            self._write(str(progress))
            return
        # A total of 0 is not known yet (a file still being read), not a stage already over.
        ended = progress.total > 0 and progress.done >= progress.total
        if ended and self._ended == progress.stage:  # a repeated last report
            return
        if self.interactive:
            self._update_bar(progress, ended)
        else:
            self._maybe_line(progress, ended)
        self._stage = progress.stage
        if ended:
            self._ended = progress.stage

    # -- a terminal: one tqdm bar --------------------------------------------------------------------

    def _update_bar(self, progress: BuildProgress, ended: bool) -> None:
        from tqdm import tqdm

        total = progress.total or None  # tqdm: None draws a counter without a bar
        if self._bar is None:
            self._bar = tqdm(total=total, desc=progress.stage, unit=progress.unit, file=self.file,
                             dynamic_ncols=True, leave=False)
        elif progress.stage != self._stage:  # named first: reset() redraws the bar
            self._bar.set_description(progress.stage, refresh=False)
            self._bar.unit = progress.unit
            self._bar.reset(total=total)
        elif total != self._bar.total:  # the stage learnt its total
            self._bar.total = total
        self._bar.update(progress.done - self._bar.n)
        if ended:  # keep a line of the finished stage above the bar, which goes on with the next
            self._write(f"{progress.stage}: {progress.done}/{progress.total} {progress.unit} "
                        f"in {progress.elapsed_s:.1f} s")

    # -- a pipe or a log: lines, now and then ------------------------------------------------------------

    def _maybe_line(self, progress: BuildProgress, ended: bool) -> None:
        now = time.monotonic()
        if progress.stage != self._stage or ended or now - self._last_line >= self.every_s:
            self._last_line = now
            self._write(str(progress))

    def _write(self, line: str) -> None:
        if self._bar is not None:
            from tqdm import tqdm

            tqdm.write(line, file=self.file)  # above the bar, which is redrawn below
        else:
            print(line, file=self.file, flush=True)

    # -- the bar leaves the terminal as it found it ------------------------------------------------------

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    def __enter__(self) -> BuildBar:
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        self.close()
