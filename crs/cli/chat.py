"""`crs chat`: a conversation with the recommender in the terminal, or over a pipe.

It talks through :meth:`crs.dialogue.DialogueManager.respond`, like the web app and the simulated
users, so what you see here is what they measure.

At a terminal it is a prompt loop: the reply, the question's options numbered (type the number
to pick one) or the items as ``1. title (reason) [image path]``. With stdin not a terminal it
reads one message per line and prints every reply, as plain text or, with ``--json``, one JSON
object per turn: :meth:`crs.turn.Reply.to_json` plus ``session_id`` and ``turn``. Blank lines are
ignored (or send the attached images alone). In both modes:

* ``/image PATH`` attaches a picture to the next message (repeatable; a line of its own);
* a number picks that option of the pending question;
* ``/like N``, ``/dislike N``: feedback on the Nth item last shown;
* ``/new`` starts a new session, ``/quit`` (or end of input) ends the chat, exit status 0.

Notices (attached images, feedback noted, a new session's id) go to stderr when stdin is not a
terminal, so that stdout carries the replies only. A line that cannot be used (a missing image
file, an unknown command, a number out of range) is reported on stderr and skipped; the
conversation goes on. ``--session ID`` resumes a stored session, turn numbers continuing; an
unknown id is an error (exit status 1).
"""
from __future__ import annotations

import argparse
import json
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from crs import assemble
from crs.cli.args import add_stage_options, int_between
from crs.cli.progress import BuildBar, quiet_library_bars
from crs.dialogue import DialogueManager
from crs.errors import UserError
from crs.policy import POLICY_NAMES
from crs.search import MAX_K
from crs.settings import Settings
from crs.store import Store, redact_url
from crs.store.models import Catalog, ChatSession
from crs.turn import Message, Reply

HELP = ("type a message; /image PATH attaches a picture to your next message; a number picks an option of "
        "the question; /like N, /dislike N rate the Nth item shown; /new starts over; /quit ends")
_NUMBER = re.compile(r"\d{1,3}")


def add_parsers(commands: argparse._SubParsersAction, common) -> None:  # type: ignore[type-arg, no-untyped-def]
    chat = commands.add_parser(
        "chat", help="talk to the recommender (a prompt at a terminal; one message per line from a pipe)",
        description="Talk to the recommender: a prompt at a terminal, one message per line from a pipe. "
                    f"In a chat: {HELP}.")
    common(chat)
    chat.add_argument("--embedder", default=None,
                      help="aligned (default, offline), aligned:WEIGHTS, clip:PATH_OR_NAME (or $CRS_EMBEDDER)")
    chat.add_argument("--policy", default=None, help=f"ask-or-recommend policy: {', '.join(POLICY_NAMES)} "
                                                     "(default $CRS_POLICY or eig)")
    chat.add_argument("--llm", metavar="SPEC", help="the LLM for --policy llm, e.g. ollama:qwen2.5:7b")
    chat.add_argument("--session", metavar="ID", help="resume a stored session (its id)")
    chat.add_argument("--json", action="store_true",
                      help="print each reply as one JSON line: the reply, action, question, items, session_id, turn")
    chat.add_argument("-k", type=int_between(1, MAX_K), default=5,
                      help=f"items per recommendation (default 5, at most {MAX_K})")
    add_stage_options(chat)
    chat.set_defaults(run=cmd_chat)


def chat_settings(args: argparse.Namespace) -> Settings:
    """The chat's settings: its flags over the ``CRS_*`` environment (see crs.settings)."""
    return Settings.from_env(db_url=args.db, catalog=args.catalog, embedder=args.embedder, llm=args.llm,
                             policy=args.policy, k=args.k, parser=args.parser, reader=args.reader,
                             writer=args.writer)


def cmd_chat(args: argparse.Namespace) -> int:
    from retrieval.threads import serve_single_queries

    settings = chat_settings(args)
    interactive = sys.stdin.isatty()
    store = assemble.open_settings_store(settings)
    catalog = assemble.open_settings_catalog(store, settings)
    if args.session:
        _check_session(store, catalog, args.session)  # before loading any model: a typo fails fast
    policy = assemble.build_policy(settings)
    serve_single_queries()
    if interactive:
        print(f"loading the models and the index of {catalog.name!r} ...", file=sys.stderr, flush=True)
    quiet_library_bars()
    with BuildBar() as bar:
        searcher = assemble.open_searcher(store, catalog, settings, progress=bar)
    dm = assemble.build_dialogue_manager(store, searcher, settings, policy=policy)
    chat = Chat(dm, json_lines=args.json, interactive=interactive)
    if settings.llm:  # which stages the model serves, said once (a text-only model: no image reader)
        from crs.llm.startup import check_llm_stages  # imports LangChain: only with an LLM

        for line in check_llm_stages(dm):
            chat.notice(f"LLM {line}")
    if args.session:
        chat.resume(args.session)
    else:
        chat.new_session()
    return chat.run_terminal() if interactive else chat.run_lines(sys.stdin)


def _check_session(store: Store, catalog: Catalog, session_id: str) -> None:
    with store.session() as db:
        row = db.get(ChatSession, session_id)
        if row is None or row.catalog_id != catalog.id:
            raise UserError(f"--session {session_id}: no such session for catalog {catalog.name!r} in "
                            f"{redact_url(store.url)} "
                            "(leave --session out to start a new one)")


@dataclass
class Shown:
    item_id: int  # store id, for dm.feedback
    title: str


@dataclass
class Chat:
    """One chat's state between lines: the session, attachments, what was shown and asked."""

    dm: DialogueManager
    json_lines: bool = False
    interactive: bool = False
    out: TextIO = field(default_factory=lambda: sys.stdout)
    session_id: str = ""
    turn: int = 0
    images: list[str] = field(default_factory=list)  # attached to the next message
    options: list[str] = field(default_factory=list)  # of the pending question
    shown: list[Shown] = field(default_factory=list)  # the items last shown, for /like N

    # -- sessions ---------------------------------------------------------------------------------------

    def new_session(self) -> None:
        self.session_id = self.dm.start({"client": "cli"})
        self.turn, self.options, self.shown = 0, [], []
        self.notice(f"session {self.session_id} (resume it with --session {self.session_id})")

    def resume(self, session_id: str) -> None:
        from retrieval.multimodal import ScoredItem

        belief = self.dm.belief(session_id)  # SessionNotFound is a UserError
        self.session_id, self.turn = session_id, belief.turns
        self.options = list(belief.question["options"]) if belief.question else []
        hits = self.dm.searcher.hits([ScoredItem(i, 0.0) for i in belief.last_shown]) if belief.last_shown else []
        self.shown = [Shown(h.item_id, h.title) for h in hits]
        self.notice(f"session {session_id} resumed after {self.turn} turn{'s' if self.turn != 1 else ''}")
        if self.interactive and self.options:
            self.notice("the pending question's options: " + ", ".join(
                f"{n}. {o}" for n, o in enumerate(self.options, start=1)))

    # -- the loops ----------------------------------------------------------------------------------------

    def run_terminal(self) -> int:
        try:
            import readline  # noqa: F401  (line editing and history for input())
        except ImportError:
            pass
        self.notice(f"talking to catalog {self.dm.catalog.name!r}: {HELP}")
        while True:
            try:
                line = input("you> ")
            except EOFError:
                print(file=self.out)
                return 0
            except KeyboardInterrupt:
                print(file=self.out)
                return 0
            if not self.handle(line):
                return 0

    def run_lines(self, source: TextIO) -> int:
        while True:
            line = source.readline()
            if not line:
                break
            if not self.handle(line):
                return 0
        if self.images:  # "/image PATH" as the last line: the picture alone is the message
            self.send("")
        return 0

    # -- one line -----------------------------------------------------------------------------------------

    def handle(self, line: str) -> bool:
        """Act on one line; False to end the chat."""
        line = line.strip()
        if not line:
            if self.images:
                self.send("")
            return True
        if line.startswith("/"):
            return self.command(line)
        if _NUMBER.fullmatch(line):
            self.pick(int(line))
            return True
        self.send(line)
        return True

    def command(self, line: str) -> bool:
        name, _, rest = line.partition(" ")
        name, rest = name.lower(), rest.strip()
        if name in ("/quit", "/exit", "/q"):
            return False
        if name == "/image":
            self.attach(rest)
        elif name in ("/like", "/dislike"):
            self.rate(rest, liked=name == "/like", command=name)
        elif name == "/new":
            self.new_session()
        elif name == "/help":
            self.notice(HELP)
        else:
            self.problem(f"unknown command {name}: {HELP}")
        return True

    def attach(self, path_text: str) -> None:
        path_text = path_text.strip().strip("'\"").replace("\\ ", " ")
        if not path_text:
            self.problem("/image needs a path: /image PATH")
            return
        path = Path(path_text).expanduser()
        if not path.is_file():
            self.problem(f"/image {path_text}: no such file (line skipped)")
            return
        self.images.append(str(path.resolve()))
        self.notice(f"attached {path.name}: it goes with your next message")

    def rate(self, number_text: str, *, liked: bool, command: str) -> None:
        if not self.shown:
            self.problem(f"{command}: no items shown yet")
            return
        if not _NUMBER.fullmatch(number_text) or not 1 <= int(number_text) <= len(self.shown):
            self.problem(f"{command} N: N is an item's number, 1 to {len(self.shown)}")
            return
        item = self.shown[int(number_text) - 1]
        self.dm.feedback(self.session_id, item.item_id, liked)
        self.notice(f"noted: you {'like' if liked else 'do not like'} \u201c{item.title}\u201d "
                    "(it counts from your next message)")

    def pick(self, number: int) -> None:
        if not self.options:
            self.problem(f"{number}: there is no question to answer; to choose item {number} say "
                         f"\u201c#{number} is perfect\u201d, or rate it with /like {number}")
            return
        if not 1 <= number <= len(self.options):
            self.problem(f"{number}: the question has options 1 to {len(self.options)}")
            return
        self.send(self.options[number - 1])

    def send(self, text: str) -> None:
        message = Message(text, tuple(self.images))
        self.images = []
        reply = self.dm.respond(self.session_id, message)
        self.turn += 1
        self.options = list(reply.question.options) if reply.action == "ask" and reply.question else []
        if reply.items:
            self.shown = [Shown(i.item_id, i.title) for i in reply.items]
        self.show(reply)

    # -- output ---------------------------------------------------------------------------------------------

    def show(self, reply: Reply) -> None:
        if self.json_lines:
            print(json.dumps({"session_id": self.session_id, "turn": self.turn, **reply.to_json()},
                             ensure_ascii=False), file=self.out, flush=True)
            return
        print(format_reply(reply, self.turn), file=self.out, flush=True)

    def notice(self, message: str) -> None:
        """News that is not a reply: on stdout at a terminal, else on stderr (stdout = replies only)."""
        print(message, file=self.out if self.interactive else sys.stderr, flush=True)

    @staticmethod
    def problem(message: str) -> None:
        print(f"error: {message}", file=sys.stderr, flush=True)


def format_reply(reply: Reply, turn: int) -> str:
    lines = [f"[{turn}] {reply.text}"]
    if reply.action == "ask" and reply.question:
        lines += [f"  {n}. {option}" for n, option in enumerate(reply.question.options, start=1)]
    lines += [f"  {n}. {item.title} ({item.reason}) [{item.image}]" for n, item in enumerate(reply.items, start=1)]
    if reply.fallbacks:
        lines.append(f"  (fell back to rules: {'; '.join(reply.fallbacks)})")
    return "\n".join(lines) + "\n"
