"""The bad-input corpus (``tests/fixtures/bad_inputs``): every case gets its documented error,
no traceback or server path, and leaves the store exactly as it was.

The cases are data (``cases.jsonl``, described in the folder's README), so adding one is one line
and, where it needs a file, one file. Each runs against a store that already holds the shapes
catalog and one chat session with one turn: "unchanged" then means something.
"""
from __future__ import annotations

import contextlib
import io
import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from PIL import Image
from sqlalchemy import inspect, text

CORPUS = Path(__file__).parent / "fixtures" / "bad_inputs"
CASES = [json.loads(line) for line in (CORPUS / "cases.jsonl").read_text(encoding="utf-8").splitlines()
         if line.strip()]
API = "/api/v1"


def make_image(name: str) -> bytes:
    """Images too big to commit (or pointless to): ``make:NAME`` in a case's ``files``."""
    out = io.BytesIO()
    if name == "huge-one-colour-png":  # 4470 x 4470: 19 KB on disk, 80 MB decoded
        Image.new("RGB", (4470, 4470), "red").save(out, "PNG", optimize=True)
    elif name == "over-pixel-limit-png":  # 5000 x 5000 = 25 MP, over the 20 MP per-image limit
        Image.new("1", (5000, 5000), 0).save(out, "PNG")
    elif name == "small-png":
        Image.new("RGB", (32, 32), "blue").save(out, "PNG")
    else:
        raise KeyError(f"no generated image {name!r}")
    return out.getvalue()


def snapshot(store: Any) -> dict[str, Any]:
    """Row count of every table and every catalog's content hash: what 'unchanged' compares."""
    with store.engine.connect() as connection:
        tables = inspect(connection).get_table_names()
        counts = {table: connection.execute(text(f'SELECT COUNT(*) FROM "{table}"')).scalar_one()
                  for table in tables}
        hashes = dict(connection.execute(text("SELECT name, content_hash FROM catalogs")).all())
        turns = dict(connection.execute(text("SELECT id, turns FROM chat_sessions")).all())
    return {"counts": counts, "catalog_hashes": hashes, "session_turns": turns}


def fill(value: Any, where: dict[str, str]) -> Any:
    if isinstance(value, str):
        for key, replacement in where.items():
            value = value.replace("{" + key + "}", replacement)
        return value
    if isinstance(value, list):
        return [fill(v, where) for v in value]
    if isinstance(value, dict):
        if set(value) == {"repeat", "times"}:
            return fill(value["repeat"], where) * int(value["times"])
        return {k: fill(v, where) for k, v in value.items()}
    return value


def assert_clean(message: str, *secrets: str) -> None:
    assert "Traceback" not in message, message
    for secret in secrets:
        if secret:
            assert secret not in message, f"{secret!r} leaked in {message!r}"


@pytest.fixture
def world(shapes_catalog, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """The shapes store, the API app over it (fake embedder) and one session with one turn."""
    from fastapi.testclient import TestClient

    from app import create_app
    from crs.web.services import Services
    from crs.settings import Settings

    store, _ = shapes_catalog
    services = Services(Settings(db_url=store.url, catalog="shapes", embedder="fake", k=3))
    with TestClient(create_app(services)) as client:
        session = client.post(f"{API}/sessions").json()["session_id"]
        assert client.post(f"{API}/sessions/{session}/messages", data={"text": "a red circle"}).status_code == 200
        yield {"store": store, "client": client, "session": session, "tmp": tmp_path}


def test_corpus_is_well_formed() -> None:
    names = [case["name"] for case in CASES]
    assert len(names) == len(set(names)), "case names must be unique"
    kinds = {case["kind"] for case in CASES}
    assert kinds <= {"cli", "api"}, kinds
    assert {"cli", "api"} <= kinds, "the corpus covers the command line and the API"
    for case in CASES:
        assert case.get("why"), f"{case['name']}: say which rule or defect it replays"


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_bad_input(case: dict[str, Any], world: dict[str, Any], capsys: pytest.CaptureFixture[str]) -> None:
    store = world["store"]
    before = snapshot(store)
    where = {"fixtures": str(CORPUS), "tmp": str(world["tmp"]), "session": world["session"]}
    if case["kind"] == "cli":
        from crs.cli import main

        argv = [*fill(case["argv"], where), "--db", store.url]
        with pytest.raises(SystemExit) if case["exit"] == 2 else contextlib.nullcontext() as raised:
            status = main(argv)
        if case["exit"] == 2:
            status = raised.value.code  # type: ignore[union-attr]
        err = capsys.readouterr().err
        assert status == case["exit"], err
        assert case["stderr"].lower() in err.lower(), err
        assert_clean(err)
    else:
        client = world["client"]
        files = []
        for field, name in case.get("files", []):
            data = make_image(name[5:]) if name.startswith("make:") else (CORPUS / name).read_bytes()
            files.append((field, (Path(name).name, data, "application/octet-stream")))
        raw = {"content": case["raw"], "headers": {"Content-Type": "application/json"}} if "raw" in case else {}
        response = client.request(case["method"], fill(case["path"], where), data=fill(case.get("form"), where),
                                  files=files or None, json=case.get("json"), **raw)
        assert response.status_code == case["status"], response.text
        detail = response.json()["detail"]
        assert case["detail"].lower() in detail.lower(), detail
        assert_clean(detail, str(CORPUS), str(Path.cwd()), str(world["tmp"]), store.url)
        assert not re.search(r"(?<![\w.])/(home|root|tmp|usr|work|var)/", detail), detail
    assert snapshot(store) == before, "a refused input changed the store"
