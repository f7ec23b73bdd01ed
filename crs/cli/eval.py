"""`crs eval`: simulated users talk to the recommender; success rate, turns, hDCG, Recall@k, speed.

The command line's side of the evaluation (``simulators`` is the engine): registered by
:func:`crs.cli.build_parser` through :func:`add_parsers`. This module is imported whenever the
`crs` parser is built, so it imports nothing heavy at the top: the runner, the simulators and
the models load only when `crs eval` runs.

``--compare`` runs the policy and every baseline (:data:`crs.policy.BASELINES`) on the same
conversation plans (same seeds, same targets) in one run. ``--run-id`` names the run in the
store: started again with the same id after a crash, it runs only what is missing; a finished
run is printed again without running anything.

Every result carries ``ci95``: the percentile bootstrap 95% interval of SR, average turns, hDCG
and questions per conversation over the run's conversations (:mod:`simulators.stats`), shown
beside SR and average turns in the table. ``--seeds 0,1,2`` runs the same configuration once per
seed, each its own stored run (``ID-seedS``, ID from ``--run-id`` or a fresh name), by calling
``evaluate`` once per seed (the runner's run-id and resume logic stay per run, so the same line
again resumes or reads back every seed), and adds the mean, sd, min and max over seeds.

With ``--compare`` (or ``--by-start``) each policy's figures also carry ``by_start``: the figures
per opening kind with their intervals (:func:`simulators.metrics.by_start`), printed as a second
table and written in the report.

``--agreement`` runs the policy on the same plans twice, with the agenda user (``--profile``, default
realistic) and with the LLM user (``--llm``), as two stored runs ``ID-PROFILE`` and ``ID-llm`` (each
resumes on its own), and reports both success rates, the per-conversation success agreement and
Cohen's kappa (:mod:`simulators.agreement`).

``--executor ray`` runs the conversations on Ray actors (``--workers`` of them) instead of local
processes: a local Ray started for the command, or the cluster at ``--address``
(:mod:`simulators.ray_executor`). One Ray session serves every run of the command (each seed of
``--seeds``, both sides of ``--agreement``); the figures and resume are the local workers'.
"""
from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Callable
from typing import Any

from simulators.profiles import PROFILES

SIMULATORS = ("agenda", "llm")
EXECUTORS = ("local", "ray")  # as simulators.runner.EXECUTORS, which this module must not import at the top
# Upper bounds that stop a typo (--n 1000000000) from queueing days of work or a process per
# core many times over; each is far above the runs this project makes (n=500, T=10, a few workers).
MAX_N = 100_000
MAX_TURNS = 100
MAX_WORKERS = 64
MAX_SEEDS = 100
# The bootstrap's own seed: fixed, so a run's intervals are reproducible and the same whatever --seed is.
BOOTSTRAP_SEED = 0


def seed_list(text: str) -> tuple[int, ...]:
    """``--seeds``: "0,1,2,3,4", distinct whole numbers, at most MAX_SEEDS (an argparse ``type=``)."""
    parts = [p.strip() for p in text.split(",") if p.strip()]
    try:
        seeds = tuple(int(p) for p in parts)
    except ValueError:
        raise argparse.ArgumentTypeError(f"must be whole numbers separated by commas, got {text!r}") from None
    if not seeds:
        raise argparse.ArgumentTypeError(f"must name at least one seed, got {text!r}")
    if len(set(seeds)) != len(seeds):
        raise argparse.ArgumentTypeError(f"a seed is repeated in {text!r}")
    if len(seeds) > MAX_SEEDS:
        raise argparse.ArgumentTypeError(f"at most {MAX_SEEDS} seeds, got {len(seeds)}")
    return seeds


def add_parsers(commands: argparse._SubParsersAction, common) -> None:  # type: ignore[type-arg, no-untyped-def]
    from crs.cli.args import add_stage_options, int_between
    from crs.search import MAX_K  # already imported by crs.cli, which builds this parser
    from retrieval.embedder import DEFAULT_EMBEDDER

    ev = commands.add_parser(
        "eval", help="evaluate a policy with simulated users (resumable runs stored in the database)",
        description="Simulated users, each with a hidden target item, talk to the recommender through the same "
                    "dialogue manager as the chat. Prints success rate, average turns, hDCG, Recall@k, questions, "
                    "leak rate, conversations per second and turn latency.")
    common(ev)
    ev.add_argument("--embedder", default=DEFAULT_EMBEDDER,
                    help=f"{DEFAULT_EMBEDDER} (default, offline), aligned:WEIGHTS, clip:PATH_OR_NAME")
    add_stage_options(ev)
    ev.add_argument("--policy", default="eig", help="the policy to evaluate: eig (default), always-recommend, "
                                                    "ask-N, random-ask, max-entropy[:N], llm, or a plugin's")
    ev.add_argument("--profile", choices=tuple(PROFILES), metavar="NAME",
                    help="how the simulated user behaves (part of a run's identity): "
                         + "; ".join(f"{name}: {text}" for name, text in PROFILES.items()).replace("%", "%%"))
    ev.add_argument("--simulator", default="agenda", metavar="NAME",
                    help="agenda (rule-based, offline; default) or llm (the llm profile; needs --llm)")
    ev.add_argument("--n", type=int_between(1, MAX_N), default=100,
                    help=f"conversations per policy (default 100, at most {MAX_N:,})")
    ev.add_argument("--max-turns", type=int_between(1, MAX_TURNS), default=10,
                    help=f"turns per conversation at most, T (default 10, at most {MAX_TURNS})")
    ev.add_argument("--seed", type=int, default=0, help="conversation i's target and start come from (seed, i)")
    ev.add_argument("--seeds", type=seed_list, metavar="S1,S2,...",
                    help="run once per seed instead of --seed (runs ID-seedS for --run-id ID) and report the mean, "
                         "sd, min and max of SR, avg turns and hDCG over the seeds")
    ev.add_argument("--workers", type=int_between(1, MAX_WORKERS), default=1,
                    help=f"processes running conversations (default 1, at most {MAX_WORKERS})")
    ev.add_argument("--executor", choices=EXECUTORS, default="local",
                    help="where conversations run: local (this machine's processes; default) or ray (Ray actors, "
                         "one per worker, on a local Ray or the cluster at --address; needs the ray extra)")
    ev.add_argument("--address", metavar="HOST:PORT",
                    help="with --executor ray: the Ray cluster's head (HOST:PORT, ray://HOST:PORT, or auto for "
                         "the cluster on this machine); default: start a local Ray with --workers CPUs")
    ev.add_argument("-k", type=int_between(1, MAX_K), default=5,
                    help=f"items per recommendation (default 5, at most {MAX_K})")
    ev.add_argument("--llm", metavar="SPEC", help="the LLM for --simulator llm, --policy llm and the dialogue "
                                                  "manager's stages (as crs chat --llm), e.g. ollama:qwen2.5:7b")
    ev.add_argument("--noise", type=float, metavar="P",
                    help="probability that the simulated user answers a question wrongly (default 0.1)")
    ev.add_argument("--starts", metavar="KIND=W,...",
                    help="how conversations open: weights of other-style-image, similar-image and text "
                         "(default other-style-image=0.4,similar-image=0.3,text=0.3; 'text' alone: text=1)")
    ev.add_argument("--vision", action="store_true", help="show the LLM user its target's picture")
    ev.add_argument("--run-id", metavar="ID", help="name of the run in the store; the same ID resumes it")
    ev.add_argument("--compare", action="store_true",
                    help="also run every baseline on the same conversations; adds the per-opening figures "
                         "(as --by-start)")
    ev.add_argument("--by-start", action="store_true",
                    help="also give the figures per opening kind (text, similar-image, other-style-image): SR, "
                         "SR@5/10/15, avg turns, hDCG, questions, understanding rate, each with its 95%% interval "
                         "(a second table; by_start in JSON); on with --compare")
    ev.add_argument("--agreement", action="store_true",
                    help="run --policy on the same --n plans with the agenda user (--profile, default realistic) "
                         "and with the LLM user (needs --llm), as runs ID-PROFILE and ID-llm (each resumable), and "
                         "report both success rates, the share of conversations whose success agrees and Cohen's "
                         "kappa (1 when both users are constant and agree); not with --compare or --seeds")
    ev.add_argument("--json", action="store_true", help="print JSON: one object, or a list with --compare; with "
                                                        "--seeds, {seeds, runs, seed_spread}; with --agreement, "
                                                        "{success_rate, agreement, kappa, table, ci95, runs, ...}")
    ev.add_argument("--report", metavar="DIR", help="write DIR/report.md with the table and PNG plots (with "
                                                    "--agreement: DIR/agreement.md and each run's report)")
    ev.set_defaults(run=cmd_eval)


def policies_to_run(policy: str, compare: bool) -> tuple[str, ...]:
    from crs.policy import BASELINES

    policy = policy.strip()
    return (policy, *(b for b in BASELINES if b != policy)) if compare else (policy,)


def simulator_spec(args: argparse.Namespace) -> Any:
    from crs.errors import UserError

    from simulators.conversation import SimulatorSpec

    from simulators.profiles import DEFAULT_PROFILE

    kind, profile = args.simulator, args.profile
    if "llm" in (kind, profile):  # the LLM user is a simulator and a profile at once
        if profile not in (None, "llm") or kind not in ("agenda", "llm"):
            raise UserError(f"--profile {profile} is the agenda user's; the llm simulator has only --profile llm")
        kind, profile = "llm", "llm"
        if not args.llm:
            raise UserError("the llm simulated user needs an LLM: give --llm (e.g. ollama:qwen2.5:7b)")
    settings: dict[str, Any] = {"kind": kind, "llm": args.llm if kind == "llm" else None,
                                "vision": args.vision, "profile": profile or DEFAULT_PROFILE}
    if args.noise is not None:
        if not 0.0 <= args.noise <= 1.0:
            raise UserError(f"--noise is a probability between 0 and 1, got {args.noise}")
        settings["wrong_rate"] = args.noise
    try:
        return SimulatorSpec(**settings)
    except ValueError as exc:
        raise UserError(f"--simulator {kind} --profile {settings['profile']}: {exc}") from None


def parse_starts(text: str | None) -> tuple[tuple[str, float], ...]:
    """``--starts``: "text=1" or "other-style-image=0.5,text=0.5"; a bare kind weighs 1."""
    from crs.errors import UserError

    from simulators.targets import start_weights

    if not text:
        return ()
    weights: dict[str, float] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        kind, _, weight = part.partition("=")
        try:
            weights[kind.strip()] = float(weight) if weight else 1.0
        except ValueError:
            raise UserError(f"--starts {text!r}: {weight!r} is not a number (expected KIND=WEIGHT)") from None
    try:
        return tuple(start_weights(weights).items())
    except ValueError as exc:
        raise UserError(f"--starts {text!r}: {exc}") from None


def with_ci95(outcome: Any, *, by_start: bool = False) -> list[dict[str, Any]]:
    """The run's figures (``RunOutcome.figures``), each with its ``ci95`` object added (the existing
    fields untouched): ``{figure: [lo, hi]}`` for SR, average turns, hDCG and questions per conversation;
    with ``by_start``, also ``by_start``: ``{opening kind: {n, figures..., ci95}}``
    (:func:`simulators.metrics.by_start`) and ``understanding_by_phrase``: ``{by_kind, by_form}``
    (:func:`simulators.misreadings.understanding_by_phrase`)."""
    from simulators.metrics import by_start as per_opening
    from simulators.metrics import confidence_intervals
    from simulators.misreadings import understanding_by_phrase

    figures = outcome.figures()
    for figure in figures:
        results = outcome.results[figure["policy"]]
        figure["ci95"] = confidence_intervals(results, max_turns=outcome.config.max_turns,
                                              k=outcome.config.k, seed=BOOTSTRAP_SEED, estimates=figure)
        if by_start:
            figure["by_start"] = per_opening(results, max_turns=outcome.config.max_turns, k=outcome.config.k,
                                             seed=BOOTSTRAP_SEED)
            # Where the system misreads the user: the understanding rate by kind of phrase.
            figure["understanding_by_phrase"] = understanding_by_phrase(results)
    return figures


def seed_run_ids(base: str, seeds: tuple[int, ...]) -> list[str]:
    """One run id per seed, ``BASE-seedS``; too long an id fails before the first seed runs."""
    from crs.errors import UserError

    ids = [f"{base}-seed{seed}" for seed in seeds]
    if too_long := [i for i in ids if len(i) > 100]:
        raise UserError(f"--run-id {base!r}: with --seeds the run ids ({too_long[0]!r}) pass 100 characters; "
                        "give a shorter --run-id")
    return ids


def cmd_eval(args: argparse.Namespace) -> int:
    from crs.config import DEMO_CATALOG
    from crs.errors import UserError
    from crs.policy import load_policy_option
    from crs.store import open_store

    from simulators.report import format_table, write_report
    from simulators.runner import evaluate
    from simulators.sharding import RunConfig

    seeds: tuple[int, ...] | None = args.seeds
    seed = seeds[0] if seeds else args.seed
    if args.agreement:
        check_agreement_options(args)
    if args.address and args.executor != "ray":
        raise UserError("--address names a Ray cluster: give it with --executor ray")
    if args.executor == "ray":
        from simulators.ray_executor import import_ray

        import_ray()  # a missing extra fails here, before any model loads
    policies = policies_to_run(args.policy, args.compare)
    for policy in policies:  # a typo fails here, before any model loads
        load_policy_option(policy, llm=args.llm, seed=seed)
    stages = tuple((name, value) for name in ("parser", "reader", "writer") if (value := getattr(args, name)))
    # With --agreement this is the agenda side; the LLM side differs in its simulator only.
    config = RunConfig(policies=policies, simulator=simulator_spec(args), n=args.n, max_turns=args.max_turns,
                       k=args.k, seed=seed, catalog=args.catalog or DEMO_CATALOG, embedder=args.embedder,
                       llm=args.llm, starts=parse_starts(args.starts), stages=stages)
    try:
        config.settings()  # a bad stage name fails here, before any model loads
    except UserError as exc:
        raise UserError(f"crs eval: {exc}") from None
    store = open_store(args.db)

    def run(config: RunConfig, run_id: str | None) -> Any:
        with ProgressBar() as progress:
            outcome = evaluate(store, config, run_id=run_id, workers=args.workers, executor=args.executor,
                               address=args.address, progress=progress,
                               notice=lambda message: print(message, file=sys.stderr, flush=True))
        if outcome.computed == 0:
            print(f"run {outcome.run_id} is finished: its stored figures (nothing was run)", file=sys.stderr)
        return outcome

    with executor_session(args):
        if args.agreement:
            return _eval_agreement(args, store, config, run)
        if seeds:
            return _eval_seeds(args, store, config, seeds, run)
        outcome = run(config, args.run_id)
    figures = with_ci95(outcome, by_start=args.compare or args.by_start)
    if args.report:
        from pathlib import Path

        path = write_report(Path(args.report).expanduser(), figures, outcome.results, outcome.config.identity())
        print(f"report: {path}", file=sys.stderr)
    if args.json:
        print(json.dumps(figures if args.compare else figures[0], indent=2))
    else:
        print(format_table(figures))
    return 0


def executor_session(args: argparse.Namespace) -> contextlib.AbstractContextManager[None]:
    """With ``--executor ray``, one Ray session (connected, or a local cluster started) for every run
    of the command: starting a local Ray takes seconds, and ``--seeds`` makes a run per seed."""
    if args.executor != "ray":
        return contextlib.nullcontext()
    from simulators.ray_executor import ray_session

    return ray_session(args.address, args.workers)


def _eval_seeds(args: argparse.Namespace, store: Any, config: Any, seeds: tuple[int, ...],
                run: Callable[[Any, str | None], Any]) -> int:
    """``--seeds``: the configuration once per seed (one stored run each), then the spread over seeds."""
    from dataclasses import replace

    from simulators.report import format_spread_table, format_table, seed_spread, write_seeds_report
    from simulators.runner import new_run_id

    run_ids = seed_run_ids(args.run_id or new_run_id(), seeds)
    outcomes = [run(replace(config, seed=seed), run_id) for seed, run_id in zip(seeds, run_ids)]
    runs = [with_ci95(outcome, by_start=args.compare or args.by_start) for outcome in outcomes]
    spreads = seed_spread(runs)
    if args.report:
        from pathlib import Path

        path = write_seeds_report(Path(args.report).expanduser(), runs, [o.results for o in outcomes],
                                  [o.config.identity() for o in outcomes], spreads)
        print(f"report: {path}", file=sys.stderr)
    if args.json:
        print(json.dumps({"seeds": list(seeds), "runs": runs if args.compare else [r[0] for r in runs],
                          "seed_spread": spreads if args.compare else spreads[0]}, indent=2))
    else:
        print("\n\n".join([*(format_table(r) for r in runs), format_spread_table(spreads)]))
    return 0


def check_agreement_options(args: argparse.Namespace) -> None:
    """``--agreement``'s own rules, checked before anything loads: one policy, one seed, an agenda
    profile on one side (``--profile``, default realistic) and the LLM user (``--llm``) on the other."""
    from crs.errors import UserError

    if args.compare or args.seeds:
        raise UserError("--agreement runs one policy with one seed: leave out --compare and --seeds")
    if args.simulator != "agenda" or args.profile == "llm":
        raise UserError("--agreement runs the agenda user (--profile realistic, critiquing or mcr) against the llm "
                        "user itself: leave out --simulator llm and --profile llm")
    if not args.llm:
        raise UserError("--agreement needs the LLM user's model: give --llm (e.g. ollama:qwen2.5:7b)")


def agreement_run_ids(base: str, profile: str) -> dict[str, str]:
    """The two stored runs of ``--agreement --run-id BASE``: ``{"agenda": BASE-PROFILE, "llm": BASE-llm}``."""
    from crs.errors import UserError

    ids = {"agenda": f"{base}-{profile}", "llm": f"{base}-llm"}
    if too_long := [i for i in ids.values() if len(i) > 100]:
        raise UserError(f"--run-id {base!r}: with --agreement the run ids ({too_long[0]!r}) pass 100 characters; "
                        "give a shorter --run-id")
    return ids


def _eval_agreement(args: argparse.Namespace, store: Any, config: Any,
                    run: Callable[[Any, str | None], Any]) -> int:
    """``--agreement``: the policy on the same plans with the agenda user, then with the LLM user (two
    stored runs, same configuration but the simulator), and how far their successes agree."""
    from dataclasses import replace

    from simulators.agreement import success_agreement
    from simulators.report import format_agreement, write_agreement_report, write_report
    from simulators.runner import new_run_id

    profile = config.simulator.profile
    llm_spec = simulator_spec(argparse.Namespace(**{**vars(args), "simulator": "llm", "profile": "llm"}))
    run_ids = agreement_run_ids(args.run_id or new_run_id(), profile)
    configs = {"agenda": config, "llm": replace(config, simulator=llm_spec)}
    outcomes = {name: run(configs[name], run_ids[name]) for name in ("agenda", "llm")}
    policy = config.policies[0]
    data: dict[str, Any] = {
        "policy": policy, "n": config.n, "max_turns": config.max_turns, "k": config.k, "seed": config.seed,
        "profile": profile, "llm": args.llm, "run_ids": run_ids,
        **success_agreement(outcomes["agenda"].results[policy], outcomes["llm"].results[policy],
                            max_turns=config.max_turns, names=("agenda", "llm"), seed=BOOTSTRAP_SEED),
    }
    data["runs"] = {name: with_ci95(outcome, by_start=args.by_start)[0] for name, outcome in outcomes.items()}
    if args.report:
        from pathlib import Path

        folder = Path(args.report).expanduser()
        for name, outcome in outcomes.items():
            write_report(folder / name, [data["runs"][name]], outcome.results, outcome.config.identity())
        print(f"report: {write_agreement_report(folder, data)}", file=sys.stderr)
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        print(format_agreement(data))
    return 0


class ProgressBar:
    """A tqdm bar on stderr when stderr is a terminal; otherwise nothing (logs and pipes stay clean)."""

    def __enter__(self) -> Callable[[int, int], None] | None:
        self.bar: Any = None
        if not sys.stderr.isatty():
            return None
        from tqdm import tqdm

        def update(done: int, total: int) -> None:
            if self.bar is None:
                self.bar = tqdm(total=total, initial=done, unit="conv", file=sys.stderr, dynamic_ncols=True)
            else:
                self.bar.update(done - self.bar.n)

        return update

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.close()
