"""Loading a script under benchmarks/ as a module, for the tests that run its logic on something tiny."""
from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

BENCHMARKS = Path(__file__).resolve().parents[1] / "benchmarks"


def load_benchmark(script: str | Path) -> ModuleType:
    """``benchmarks/<script>`` (a file name, or a path) as a module named ``<stem>_bench``."""
    path = Path(script) if Path(script).is_absolute() else BENCHMARKS / script
    spec = importlib.util.spec_from_file_location(f"{path.stem}_bench", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    # Registered in sys.modules before exec: its dataclasses look their module up while being created.
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module
