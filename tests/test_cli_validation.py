"""The command line checks its arguments before any model loads, and shows a build as one bar (issue 16).

`crs search --where nosuch=1 cat` spent ~17 s loading the models before it reported the bad
filter. Here the searcher is replaced by one that fails the test if it is ever opened, and the
default (model-backed) embedder is named: every bad argument must be reported without it.
"""
from __future__ import annotations

import io
import os
import re
import sys
from typing import Any

import pytest

from crs import assemble
from crs.cli import main
from crs.cli.progress import BuildBar, quiet_library_bars
from retrieval.progress import BuildProgress


@pytest.fixture
def no_models(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """``assemble.open_searcher`` that records the attempt and refuses (it would load the models)."""
    opened: list[str] = []

    def refuse(*args: Any, **kwargs: Any) -> Any:
        opened.append("searcher")
        raise AssertionError("the models were loaded before the arguments were checked")

    monkeypatch.setattr(assemble, "open_searcher", refuse)
    return opened


@pytest.mark.parametrize(("argv", "message"), [
    (["--where", "nosuch=1"], "unknown attribute 'nosuch' in filter 'nosuch=1'; catalog 'shapes' has: colour, "),
    (["--where", "colour=purple"], "colour has no value 'purple'"),
    (["--where", "colour>3"], "compare it with = or != only"),
    (["--where", "colour"], "cannot read filter 'colour'"),
    (["--like", "red-star-flat", "--dislike", "no-such-item"], "--dislike no-such-item: no item 'no-such-item'"),
    (["--image", "/nonexistent/picture.png"], "--image /nonexistent/picture.png: no such file"),
])
def test_search_arguments_fail_before_any_model_loads(shapes_catalog, no_models: list[str],
                                                      capsys: pytest.CaptureFixture[str], argv: list[str],
                                                      message: str) -> None:
    store, _ = shapes_catalog
    code = main(["search", "cat", "--db", store.url, "--catalog", "shapes", "--embedder", "aligned", *argv])
    err = capsys.readouterr().err
    assert code == 1 and message in err, err
    assert no_models == []


def test_an_unknown_catalog_fails_before_any_model_loads(shapes_catalog, no_models: list[str],
                                                         capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = shapes_catalog
    for command in (["search", "cat"], ["index"], ["chat"]):
        assert main([*command, "--db", store.url, "--catalog", "nope"]) == 1
        assert "no catalog named 'nope'" in capsys.readouterr().err
    assert no_models == []


def test_good_arguments_still_search(shapes_catalog, capsys: pytest.CaptureFixture[str]) -> None:
    """The checks accept what the search accepts (the same filters, ids known to the catalog)."""
    store, _ = shapes_catalog
    code = main(["search", "green star", "--db", store.url, "--catalog", "shapes", "--embedder", "fake", "-k", "2",
                 "--where", "style=flat", "--like", "green-star-flat", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    assert '"id": ' in out


# -- the build's bar --------------------------------------------------------------------------------------


def reports(stage: str, total: int, step: int = 1) -> list[BuildProgress]:
    return [BuildProgress(stage, done, total, elapsed_s=done * 0.01) for done in range(0, total + 1, step)]


def test_a_terminal_gets_one_bar_and_a_line_per_finished_stage() -> None:
    out = io.StringIO()
    with BuildBar(out, interactive=True) as bar:
        bar("reading the catalog")  # a sentence: written above the bar
        bar(BuildProgress("reading the file", 0, 0))  # a total not known yet: a counter, no end
        bar(BuildProgress("reading the file", 30, 30, elapsed_s=0.3))
        for progress in [*reports("encoding texts", 200), *reports("encoding pictures", 50)]:
            bar(progress)
        bar(BuildProgress("encoding pictures", 50, 50, elapsed_s=0.5))  # a repeated last report
    text = out.getvalue()
    lines = [line for line in re.split(r"[\r\n]", text) if line.strip()]
    assert "reading the catalog" in lines
    ends = [line for line in lines if " in " in line and line.endswith(" s")]
    assert ends == ["reading the file: 30/30 items in 0.3 s", "encoding texts: 200/200 items in 2.0 s",
                    "encoding pictures: 50/50 items in 0.5 s"]
    assert re.search(r"encoding pictures:\s+\d+%\|", text)  # tqdm drew the bar, its stage as the description


def test_a_pipe_gets_a_few_plain_lines_not_thousands() -> None:
    out = io.StringIO()
    with BuildBar(out, interactive=False, every_s=3600) as bar:
        bar(BuildProgress("reading the file", 0, 0))  # a total not known yet
        bar(BuildProgress("reading the file", 10, 10, elapsed_s=0.2))  # ... and then known
        for progress in [*reports("encoding texts", 5000), *reports("writing the index", 10)]:
            bar(progress)
        bar(BuildProgress("writing the index", 10, 10, elapsed_s=0.1))
        bar("index built")
    assert out.getvalue().splitlines() == [
        "reading the file: 0/0 items", "reading the file: 10/10 items",
        "encoding texts: 0/5000 items", "encoding texts: 5000/5000 items",
        "writing the index: 0/10 items", "writing the index: 10/10 items", "index built"]


def test_crs_index_reports_its_build_on_stderr(shapes_catalog, capsys: pytest.CaptureFixture[str]) -> None:
    store, _ = shapes_catalog
    assert main(["index", "--db", store.url, "--catalog", "shapes", "--embedder", "fake", "--json"]) == 0
    out, err = capsys.readouterr()
    assert out.lstrip().startswith("{")  # stdout is the JSON alone; the build's lines went to stderr
    assert "\r" not in err  # not a terminal: lines, no bar redraws


def test_library_bars_are_turned_off(monkeypatch: pytest.MonkeyPatch) -> None:
    """transformers' 'Loading weights' bar would be a second bar beside the build's."""
    import huggingface_hub.utils.tqdm  # noqa: F401  (the module; the package exports a class of that name)
    from transformers.utils import logging as transformers_logging

    # This process's switches are put back afterwards; only the call under test changes them.
    monkeypatch.setattr(transformers_logging, "_tqdm_active", True)
    monkeypatch.setattr(sys.modules["huggingface_hub.utils.tqdm"], "progress_bar_states", {})
    monkeypatch.delenv("HF_HUB_DISABLE_PROGRESS_BARS", raising=False)
    quiet_library_bars()
    assert os.environ["HF_HUB_DISABLE_PROGRESS_BARS"] == "1"  # for a process that imports them later
    assert not transformers_logging.is_progress_bar_enabled()  # imported here already: turned off directly

    transformers_logging._tqdm_active = True
    monkeypatch.setenv("HF_HUB_DISABLE_PROGRESS_BARS", "0")  # the user's own choice wins
    quiet_library_bars()
    assert transformers_logging.is_progress_bar_enabled()
