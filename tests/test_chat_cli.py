"""`crs chat` end to end on the shapes catalog: scripted stdin, JSON and plain replies, resuming, bad lines.

The chat subcommand is built here from :func:`crs.cli.chat.add_parsers` with the CLI's own common
options, and run the way ``crs.cli.main`` runs a command (a UserError is exit status 1 and one line).
"""
from __future__ import annotations

import argparse
import io
import json
import sys
from pathlib import Path

import pytest

from crs.cli import chat as chat_cli
from crs.cli import _common
from crs.dialogue import DialogueManager
from crs.errors import UserError
from crs.search import CatalogSearch

ACTIONS = {"ask", "recommend", "answer"}


def parser() -> argparse.ArgumentParser:
    top = argparse.ArgumentParser(prog="crs")
    chat_cli.add_parsers(top.add_subparsers(dest="command", required=True), _common)
    return top


def chat(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], store, stdin: str | io.StringIO,
         *argv: str) -> tuple[int, str, str]:
    """Run `crs chat --catalog shapes --db URL --embedder fake ARGV` with ``stdin``, as crs.cli.main would."""
    monkeypatch.setattr("sys.stdin", io.StringIO(stdin) if isinstance(stdin, str) else stdin)
    args = parser().parse_args(["chat", "--catalog", "shapes", "--db", store.url, "--embedder", "fake", *argv])
    try:
        code = args.run(args)
    except UserError as exc:
        print(f"error: {exc}", file=sys.stderr)
        code = 1
    out, err = capsys.readouterr()
    return code, out, err


def image_of(store, catalog, external_id: str) -> str:
    from retrieval.multimodal import ScoredItem

    searcher = CatalogSearch.open(store, catalog, "fake")
    return searcher.hits([ScoredItem(searcher.item_ids([external_id])[0], 0.0)])[0].image


def test_parser_defaults(monkeypatch) -> None:
    args = parser().parse_args(["chat"])
    assert (args.embedder, args.policy, args.llm, args.session, args.json, args.k) == (None, None, None, None,
                                                                                         False, 5)
    assert args.run is chat_cli.cmd_chat and args.db is None and args.catalog is None
    # Unset flags take the environment's settings, then the defaults (one Settings for every interface).
    for name in ("CRS_EMBEDDER", "CRS_POLICY", "CRS_CATALOG", "CRS_LLM"):
        monkeypatch.delenv(name, raising=False)
    settings = chat_cli.chat_settings(args)
    assert (settings.embedder, settings.policy, settings.catalog, settings.llm, settings.k) == (
        "aligned", "eig", "demo", None, 5)
    monkeypatch.setenv("CRS_POLICY", "ask-3")
    assert chat_cli.chat_settings(args).policy == "ask-3"
    assert chat_cli.chat_settings(parser().parse_args(["chat", "--policy", "eig"])).policy == "eig"


def test_scripted_json_conversation_with_an_image_then_resume(shapes_catalog, monkeypatch, capsys) -> None:
    store, catalog = shapes_catalog
    image = image_of(store, catalog, "blue-square-flat")
    assert Path(image).is_file()
    script = "\n".join(["a sticker", "1", f"/image {image}", "but as an outline"]) + "\n"
    code, out, err = chat(monkeypatch, capsys, store, script, "--json", "-k", "3")
    assert code == 0, err
    replies = [json.loads(line) for line in out.splitlines()]
    assert len(replies) == 3  # /image is not a turn: it rides with the next message
    assert [r["turn"] for r in replies] == [1, 2, 3]
    session = replies[0]["session_id"]
    assert session and all(r["session_id"] == session for r in replies)
    for reply in replies:
        assert {"reply", "action", "question", "items", "fallbacks", "session_id", "turn"} == set(reply)
        assert reply["action"] in ACTIONS and reply["reply"]
    assert replies[0]["action"] == "ask" and replies[0]["question"]["options"][-1] == "any"
    assert "attached" in err and session in err  # notices on stderr: stdout is replies only
    # The number picked the first option: it is the second turn's message, understood as the answer.
    dm = DialogueManager(store, CatalogSearch.open(store, catalog, "fake"))
    history = dm.history(session)
    first_option = replies[0]["question"]["options"][0]
    assert [t["message"] for t in history] == ["a sticker", first_option, "but as an outline"]
    attribute = replies[0]["question"]["attribute"]
    assert history[1]["understanding"]["critique"]["require"].get(attribute) == [first_option] or \
        first_option == "any"
    assert history[2]["images"] and history[2]["understanding"]["readings"]  # the image came with turn 3
    assert replies[2]["reply"].startswith("I see")

    # Resume: the turn count goes on, the same session.
    code, out, err = chat(monkeypatch, capsys, store, "none of these\n", "--json", "--session", session)
    assert code == 0, err
    (reply,) = [json.loads(line) for line in out.splitlines()]
    assert reply["turn"] == 4 and reply["session_id"] == session and reply["action"] in ACTIONS
    assert "resumed after 3 turns" in err
    assert len(dm.history(session)) == 4


def test_unknown_session_exits_1_with_a_message(shapes_catalog, monkeypatch, capsys) -> None:
    store, _ = shapes_catalog
    code, out, err = chat(monkeypatch, capsys, store, "hello\n", "--json", "--session", "no-such-session")
    assert code == 1 and out == ""
    assert "--session no-such-session: no such session" in err and err.count("\n") == 1


def test_missing_image_is_reported_and_skipped(shapes_catalog, monkeypatch, capsys, tmp_path: Path) -> None:
    store, _ = shapes_catalog
    missing = tmp_path / "nowhere.png"
    code, out, err = chat(monkeypatch, capsys, store, f"/image {missing}\na red star\n", "--json")
    assert code == 0
    assert f"/image {missing}: no such file" in err
    (reply,) = [json.loads(line) for line in out.splitlines()]
    assert reply["turn"] == 1 and reply["action"] in ACTIONS
    assert "could not read image" not in reply["reply"]  # the message went without the missing image


def test_plain_text_feedback_new_session_and_bad_lines(shapes_catalog, monkeypatch, capsys) -> None:
    store, catalog = shapes_catalog
    script = "\n".join(["/like 1", "7", "a red star", "/like 2", "/dislike 9", "/frobnicate", "",
                        "/new", "green", "/quit", "never read"]) + "\n"
    code, out, err = chat(monkeypatch, capsys, store, script, "--policy", "always-recommend", "-k", "3")
    assert code == 0, err
    # items as "N. title (reason) [path]", one block per turn, numbered turns
    assert out.count("[1] ") == 2 and "[2] " not in out and "never read" not in out
    item_lines = [line.strip() for line in out.splitlines() if line.startswith("  ")]
    assert len(item_lines) == 6 and item_lines[0].startswith("1. ") and item_lines[2].startswith("3. ")
    title, rest = item_lines[0][3:].split(" (", 1)
    path = rest.rsplit(" [", 1)[1].rstrip("]")
    assert title and Path(path).is_file()
    assert "/like: no items shown yet" in err
    assert "7: there is no question to answer" in err
    assert "noted: you like" in err
    assert "/dislike N: N is an item's number, 1 to 3" in err
    assert "unknown command /frobnicate" in err
    # /like 2 reached the first session's belief; /new started another one
    sessions = [line.split()[1] for line in err.splitlines() if line.startswith("session ")]
    assert len(sessions) == 2 and sessions[0] != sessions[1]
    dm = DialogueManager(store, CatalogSearch.open(store, catalog, "fake"))
    first = dm.belief(sessions[0])
    assert len(first.liked) == 1 and first.liked[0] == first.last_shown[1]
    assert dm.belief(sessions[1]).turns == 1


def test_end_of_input_sends_a_last_attached_image(shapes_catalog, monkeypatch, capsys) -> None:
    store, catalog = shapes_catalog
    image = image_of(store, catalog, "green-star-outline")
    code, out, _ = chat(monkeypatch, capsys, store, f"/image {image}", "--json")
    (reply,) = [json.loads(line) for line in out.splitlines()]
    assert code == 0 and reply["reply"].startswith("I see a green")


class Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


def test_terminal_prompt_numbers_options_and_a_number_picks_one(shapes_catalog, monkeypatch, capsys) -> None:
    store, _ = shapes_catalog
    code, out, err = chat(monkeypatch, capsys, store, Terminal("a sticker\n2\n"), "-k", "3")
    assert code == 0, err
    assert out.count("you> ") == 3 and "talking to catalog 'shapes'" in out and "session " in out
    first = out.split("[1] ", 1)[1].split("[2] ", 1)[0]
    options = [line.strip().split(". ", 1)[1] for line in first.splitlines() if line.startswith("  ")]
    assert len(options) >= 2 and options[-1] == "any"
    assert "[2] " in out  # the number was sent as the second option, a second turn


def test_bad_options_are_user_errors(shapes_catalog, monkeypatch, capsys) -> None:
    store, _ = shapes_catalog
    code, _, err = chat(monkeypatch, capsys, store, "", "--policy", "nonsense")
    assert code == 1 and "unknown policy 'nonsense'" in err
    code, _, err = chat(monkeypatch, capsys, store, "", "--policy", "llm")
    assert code == 1 and "needs an LLM" in err
    for k in ("0", "100000000"):  # bounded while parsing: argparse's status 2, before any model loads
        with pytest.raises(SystemExit) as exited:
            chat(monkeypatch, capsys, store, "", "-k", k)
        assert exited.value.code == 2 and f"argument -k: must be between 1 and 1000, got {k}" in capsys.readouterr().err
    code, out, err = chat(monkeypatch, capsys, store, "")  # empty input: a session, no turns, exit 0
    assert code == 0 and out == ""


def test_stages_are_chosen_by_name_with_fakes_for_an_exact_path(shapes_catalog, monkeypatch, capsys,
                                                                tmp_path: Path) -> None:
    """--parser fake:SCRIPT.json and --reply-writer fake:TEXT select the registered fakes like any
    other stage: the conversation follows the script exactly (ask, then a page of flat stars)."""
    store, _ = shapes_catalog
    script = tmp_path / "script.json"
    script.write_text(json.dumps([{"require": {"shape": ["star"]}}, {"require": {"style": ["flat"]}}]))
    code, out, err = chat(monkeypatch, capsys, store, "anything\nwhatever\n", "--json", "-k", "3",
                          "--policy", "ask-1", "--parser", f"fake:{script}", "--reply-writer", "fake:OK")
    assert code == 0, err
    first, second = (json.loads(line) for line in out.splitlines())
    assert first["action"] == "ask" and second["action"] == "recommend"
    assert first["reply"] == second["reply"] == "OK"
    assert second["items"] and all(i["id"].endswith("star-flat") for i in second["items"])
    code, _, err = chat(monkeypatch, capsys, store, "hi\n", "--parser", "regex")
    assert code == 1 and "unknown critique parser 'regex'" in err


def test_main_leaves_the_sigpipe_handler_as_it_found_it(capsys) -> None:
    """crs.cli.main makes a closed pipe end the command quietly, but only while it runs: called
    in-process (tests, notebooks), a lasting default SIGPIPE would kill the host process later."""
    import signal

    from crs.cli import main

    before = signal.getsignal(signal.SIGPIPE)
    assert main(["catalog", "info", "--catalog", "nope", "--db", "sqlite://"]) == 1
    assert signal.getsignal(signal.SIGPIPE) == before
