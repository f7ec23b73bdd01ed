"""The README's quickstart is the contract: CI must run exactly its test command."""
from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def readme_commands() -> list[str]:
    blocks = re.findall(r"```bash\n(.*?)```", (ROOT / "README.md").read_text(), re.S)
    quickstart = [b for b in blocks if b.lstrip().startswith("# 1.") or b.lstrip().startswith("# 2.")]
    return [next(line for line in b.splitlines() if line and not line.startswith("#")) for b in quickstart]


def test_readme_has_two_quickstart_commands() -> None:
    start, test = readme_commands()
    assert start.startswith("python3 -m venv .venv") and start.endswith("python app.py")
    assert test.startswith("python3 -m venv .venv") and test.endswith("pytest")


def test_ci_runs_the_readme_test_command_verbatim() -> None:
    ci = (ROOT / ".ci" / "run").read_text()
    declared = re.search(r"^TEST_CMD='(.*)'$", ci, re.M)
    assert declared, "TEST_CMD is not declared in .ci/run"
    assert declared.group(1) == readme_commands()[1]
    assert 'bash -c "set -e; $TEST_CMD"' in ci and "rm -rf .venv" in ci
