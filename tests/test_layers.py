"""The architecture's layering, checked by import-linter over the installed packages (the
contracts are in pyproject.toml, [tool.importlinter]): the core never imports an interface, a
simulator, the demo build tool or a web framework; retrieval knows nothing of the conversation."""
from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LINT = Path(sys.executable).with_name("lint-imports")


def lint(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(LINT), *args], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_the_import_contracts_hold() -> None:
    result = lint()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert "0 broken" in result.stdout and "Contracts: 5 kept" in result.stdout
    # Issue 14: the simulated users are independent of what they measure.
    assert "Simulated users know the catalog and the replies, never the system's" in " ".join(result.stdout.split())


def test_the_simulated_users_boundary_catches_an_indirect_import(tmp_path: Path) -> None:
    """The independence contract is live: the conversation loop (the harness, not a user) does reach
    the parser through the dialogue manager, and the same contract put on it fails."""
    config = tmp_path / "contracts.ini"
    config.write_text("[importlinter]\nroot_packages =\n    crs\n    simulators\n    retrieval\n"
                      "include_external_packages = True\n\n"
                      "[importlinter:contract:loop]\nname = loop\ntype = forbidden\nsource_modules =\n"
                      "    simulators.conversation\nforbidden_modules =\n    crs.understanding\n")
    result = lint("--config", str(config))
    assert result.returncode != 0 and "crs.understanding" in result.stdout


def test_a_broken_contract_fails_the_check(tmp_path: Path) -> None:
    """The check is live: a contract the code breaks (the web API does import FastAPI) fails."""
    config = tmp_path / "contracts.ini"
    config.write_text("[importlinter]\nroot_packages =\n    crs\ninclude_external_packages = True\n\n"
                      "[importlinter:contract:web-without-fastapi]\nname = web without FastAPI\n"
                      "type = forbidden\nsource_modules =\n    crs.web.api\nforbidden_modules =\n    fastapi\n")
    result = lint("--config", str(config))
    assert result.returncode != 0 and "crs.web.api -> fastapi" in result.stdout
