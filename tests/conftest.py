from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

# The PostgreSQL fixtures (postgres_server_url, postgres_url, store_url), for every test module.
from tests.postgres_support import postgres_server_url, postgres_url, store_url  # noqa: F401

FIXTURES = Path(__file__).parent / "fixtures"

# Never reach a model hub from tests; models must come from installed packages or tmp dirs.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def crs_home(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Each test gets its own CRS_HOME, so no test touches ~/.crs or another test's database."""
    home = tmp_path_factory.mktemp("crs_home")
    monkeypatch.setenv("CRS_HOME", str(home))
    monkeypatch.delenv("CRS_DB", raising=False)
    return home


@pytest.fixture
def store(request: pytest.FixtureRequest, tmp_path: Path):
    """A migrated store: SQLite, or once on SQLite and once on PostgreSQL where the test also uses
    ``store_url`` (an argument, ``@pytest.mark.usefixtures("store_url")`` or a module's pytestmark)."""
    from crs.store import open_store

    if "store_url" in request.fixturenames:
        url = str(request.getfixturevalue("store_url"))
    else:
        url = f"sqlite:///{tmp_path / 'test.db'}"
    opened = open_store(url)
    yield opened
    opened.engine.dispose()  # a PostgreSQL test database is dropped next; let go of its connections


@pytest.fixture
def catalog_dir(tmp_path: Path) -> Path:
    """A writable copy of the tiny fixture catalog (tests may break its rows and images)."""
    target = tmp_path / "catalog"
    shutil.copytree(FIXTURES / "catalog", target)
    return target


@pytest.fixture
def shapes_catalog(tmp_path: Path, store):
    """The generated shapes catalog (24 items) ingested into `store`; returns (store, Catalog)."""
    from crs.catalog.demo import open_catalog
    from crs.catalog.ingest import IngestOptions, ingest
    from tests.shapes import write_shapes_catalog

    path = write_shapes_catalog(tmp_path / "shapes")
    ingest(store, path, IngestOptions(format="jsonl", catalog="shapes"))
    return store, open_catalog(store, "shapes")
