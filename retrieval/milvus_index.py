"""Milvus as a :class:`~retrieval.vector_index.VectorIndex`: the vectors live in a Milvus server
(a cluster, or one standalone process) or, for one machine, in a milvus-lite folder.

Selected by one setting, ``--index-kind milvus:URI`` (:mod:`retrieval.index_kinds`):

* ``milvus:./vectors.db``: milvus-lite (``pip install 'crs-multimodal[milvus]'``), the same
  client API as a cluster, run inside this process; the data lives in that folder (a relative
  path is resolved against the working directory when the index is built and recorded absolute);
* ``milvus:http://host:19530`` (or https): a Milvus server; the data lives in the server.

Why this shape:

* Ids are the catalog's int64 ids, the collection's primary key, so no id map is kept here.
* Similarity is inner product on the unit vectors the base class makes (cosine), the metric FAISS
  uses, so a space's scores, and so the fused scores, do not change with the backend.
* A collection is named after its content (a hash of the ids and unit vectors): building the
  same data again finds it and reuses it instead of inserting a copy, and every vector space of
  a catalog (text, image, visual) gets its own collection without the caller naming them.
* The index type follows the ``auto`` rule of the FAISS kinds: ``FLAT`` (exact) below
  :data:`~retrieval.vector_index.AUTO_HNSW_FROM` items, ``HNSW`` with FAISS's M, efConstruction
  and efSearch above; :meth:`MilvusIndex.build` takes another (``IVF_FLAT``...) for benchmarks.
* Filters (``allowed_ids``) are Milvus's boolean expression on the primary key, ``id in [...]``,
  applied before ranking (Milvus has no faster id filter; its filter templates are 2.5+ only and
  milvus-lite refuses them). On HNSW a small allowed set (<= :data:`SCAN_UP_TO` ids) is scored
  exactly from its fetched vectors, as FAISS scans small sets, because a graph search under a
  very selective filter misses allowed items (measured on milvus-lite: a filter to 1 or 5 of 1000
  items returned other top hits than brute force). A Milvus server's HNSW brute-forces very
  selective filters itself, but a server is not what the tests can check.
* :meth:`save` writes the ids (8 bytes an item) and a sidecar naming the URI and the collection,
  never the vectors: they stay in Milvus. :meth:`load` reconnects and checks that the collection
  still holds what the sidecar says; when it does not (a server was wiped), the cache rebuilds.
"""
from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from retrieval.vector_index import (
    AUTO_HNSW_FROM,
    HNSW_EF_CONSTRUCTION,
    HNSW_EF_SEARCH,
    HNSW_M,
    IVF_NPROBE,
    Hits,
    IndexFileError,
    VectorIndex,
    as_matrix,
    check_ids,
)

__all__ = ["MilvusIndex", "MilvusUnavailable", "check_uri", "connect", "INDEX_TYPES"]

KIND = "milvus"
PRIMARY, VECTOR = "id", "vector"
INDEX_TYPES = ("FLAT", "HNSW", "IVF_FLAT")
# Milvus refuses a search limit above 16384 (its topk cap); a larger k is padded with -1.
MAX_LIMIT = 16_384
# HNSW under a filter of at most this many ids: exact scan of their fetched vectors. Lower than
# FAISS's 4096: fetching through pymilvus cost 0.07 ms an id from a 2.3.5 server and 0.4 ms from
# milvus-lite (measured: its rows come back as Python lists).
SCAN_UP_TO = 1024
# One insert call carries at most this many bytes of vectors: a server's gRPC messages are
# capped (64 MB by default), and the 1280-d visual space reaches that at 13k rows.
INSERT_BYTES = 16 * 1024 * 1024
# Ids per `get`/`id in [...]` call when fetching vectors: bounds one request's expression size.
FETCH_IDS = 4096
INDEX_WAIT_S = 3600.0  # building an HNSW over 1M vectors on 2 cores takes minutes, not hours
SERVER_SCHEMES = ("http", "https", "tcp", "grpc")
USAGE = "milvus:./vectors.db (milvus-lite, a local folder) or milvus:http://host:19530 (a Milvus server)"


class MilvusUnavailable(RuntimeError):
    """pymilvus (or milvus-lite, for a local folder) is not installed, or the server cannot be reached."""


def check_uri(arg: str | None) -> str:
    """The URI of a ``milvus:URI`` spec, made absolute for a milvus-lite folder; ValueError saying
    what is wrong with it. Nothing is contacted, so settings can be checked before anything loads."""
    if arg is None or not arg.strip():
        raise ValueError(f"index kind 'milvus' needs a URI: {USAGE}")
    arg = arg.strip()
    if urlsplit(arg).scheme in SERVER_SCHEMES:
        if not urlsplit(arg).hostname:
            raise ValueError(f"milvus URI {_redacted(arg)!r} names no host; e.g. {USAGE}")
        return arg
    if "://" in arg:
        raise ValueError(f"milvus URI {_redacted(arg)!r}: unknown scheme; use {', '.join(SERVER_SCHEMES)} or a .db path")
    if not arg.endswith(".db"):  # pymilvus starts milvus-lite only for a name ending in .db
        raise ValueError(f"milvus-lite path {arg!r} must end in .db, e.g. {USAGE}")
    return str(Path(arg).expanduser().resolve())


class MilvusIndex(VectorIndex):
    """One Milvus collection (``id`` INT64 primary key, ``vector`` FLOAT_VECTOR, metric IP)."""

    def __init__(self, client: Any, uri: str, collection: str, dim: int, ids: np.ndarray, index_type: str) -> None:
        self.client = client
        self.uri = uri
        self.collection = collection
        self.index_type = index_type
        super().__init__(KIND, dim, ids, self._fetch_rows)

    # -- building and opening ----------------------------------------------------------------------

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray, uri: str, *, index_type: str | None = None) -> MilvusIndex:
        """Put ``vectors`` (one row per id, normalised here) into the collection named after
        them at ``uri``, reusing it when it already holds exactly them; wait until Milvus has
        indexed them, so the first search is as fast as the later ones."""
        uri = check_uri(uri)
        matrix = as_matrix(vectors)
        ids = check_ids(ids, len(matrix))
        index_type = index_type or ("HNSW" if len(ids) >= AUTO_HNSW_FROM else "FLAT")
        if index_type not in INDEX_TYPES:
            raise ValueError(f"Milvus index type {index_type!r}; choose one of {', '.join(INDEX_TYPES)}")
        dim = matrix.shape[1]
        client = connect(uri)
        collection = _collection_name(matrix, ids, index_type)
        if client.has_collection(collection):
            if _row_count(client, collection) == len(ids):
                client.load_collection(collection)
                return cls(client, uri, collection, dim, ids, index_type)
            client.drop_collection(collection)  # a build that stopped half-way: start again
        _create(client, collection, dim, index_type, len(ids))
        rows = max(1, INSERT_BYTES // (4 * dim))
        for start in range(0, len(ids), rows):
            client.insert(collection, [{PRIMARY: int(i), VECTOR: v}
                                       for i, v in zip(ids[start:start + rows], matrix[start:start + rows])])
        client.flush(collection)  # seals the segments, which Milvus then indexes
        _wait_indexed(client, collection, len(ids))
        client.load_collection(collection)
        return cls(client, uri, collection, dim, ids, index_type)

    def save(self, path: Path, meta: dict[str, object]) -> None:
        """The ids at ``path`` (.npy) and a sidecar naming the URI and collection; the vectors
        stay in Milvus. The sidecar is written last, as for FAISS files (a crash leaves no
        sidecar, so no trusted half-file)."""
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        with tmp.open("wb") as out:
            np.save(out, self.ids, allow_pickle=False)
        tmp.replace(path)
        sidecar = {**meta, "kind": self.kind, "dim": self.dim, "size": self.size, "bytes": path.stat().st_size,
                   "uri": self.uri, "collection": self.collection, "index_type": self.index_type}
        _sidecar(path).write_text(json.dumps(sidecar, sort_keys=True))

    @classmethod
    def load(cls, path: Path, expect: dict[str, object]) -> MilvusIndex:
        """Reopen what :meth:`save` wrote; IndexFileError if the files are missing, truncated,
        corrupt or built for other data, or the collection no longer holds those items."""
        meta = saved_meta(path)
        stale = {k: (meta.get(k), v) for k, v in expect.items() if meta.get(k) != v}
        if stale:
            raise IndexFileError(f"{path}: built for other data: {stale}")
        if meta.get("kind") != KIND:
            raise IndexFileError(f"{path}: holds a {meta.get('kind')!r} index, not a Milvus one")
        if not path.is_file() or path.stat().st_size != meta.get("bytes"):
            raise IndexFileError(f"{path}: missing or truncated")
        try:
            ids = np.load(path, allow_pickle=False)
        except (OSError, ValueError) as exc:
            raise IndexFileError(f"{path}: corrupt ({exc})") from None
        if ids.dtype != np.int64 or ids.shape != (meta.get("size"),):
            raise IndexFileError(f"{path}: holds {ids.shape} {ids.dtype} ids, sidecar says {meta.get('size')}")
        uri, collection = str(meta.get("uri")), str(meta.get("collection"))
        try:
            client = connect(uri)
            held = _row_count(client, collection) if client.has_collection(collection) else None
        except MilvusUnavailable as exc:
            raise IndexFileError(f"{path}: {exc}") from None
        if held != len(ids):
            raise IndexFileError(f"{path}: Milvus collection {collection} at {_redacted(uri)} holds "
                                 f"{'nothing' if held is None else held} rows, the index {len(ids)}")
        client.load_collection(collection)
        return cls(client, uri, collection, int(meta["dim"]), ids, str(meta.get("index_type", "FLAT")))

    # -- searching ---------------------------------------------------------------------------------

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> Hits:
        matrix = self._queries(queries, k)
        expression = ""
        candidates = self.size
        if allowed_ids is not None:
            held, _ = self._held(allowed_ids)  # ids Milvus does not hold would only lengthen the expression
            if len(held) == 0:
                return _no_hits(len(matrix), k)
            if self.index_type != "FLAT" and len(held) <= SCAN_UP_TO:
                return self._scan(matrix, k, held)
            expression = f"{PRIMARY} in {held.tolist()}"
            candidates = len(held)
        if candidates == 0:
            return _no_hits(len(matrix), k)
        results = self.client.search(self.collection, data=list(matrix), limit=min(k, candidates, MAX_LIMIT),
                                     filter=expression, output_fields=[PRIMARY],
                                     search_params={"metric_type": "IP", "params": _search_params(self.index_type)})
        ids = np.full((len(matrix), k), -1, dtype=np.int64)
        scores = np.full((len(matrix), k), -np.inf, dtype=np.float32)
        for q, row in enumerate(results):
            for j, hit in enumerate(row):
                ids[q, j] = hit[PRIMARY]
                scores[q, j] = hit["distance"]  # for metric IP Milvus reports the inner product itself
        return Hits(ids, scores)

    def _fetch_rows(self, rows: np.ndarray) -> np.ndarray:
        """The stored vectors at storage rows ``rows`` (our ids at those rows), fetched by id."""
        wanted = self.ids[np.asarray(rows, dtype=np.int64)]
        unique, inverse = np.unique(wanted, return_inverse=True)
        found = np.empty((len(unique), self.dim), dtype=np.float32)
        for start in range(0, len(unique), FETCH_IDS):
            chunk = unique[start:start + FETCH_IDS]
            records = self.client.get(self.collection, ids=chunk.tolist(), output_fields=[VECTOR])
            by_id = {int(r[PRIMARY]): r[VECTOR] for r in records}
            if len(by_id) != len(chunk):
                missing = [int(i) for i in chunk if int(i) not in by_id][:5]
                raise IndexFileError(f"Milvus collection {self.collection} lost ids {missing}")
            found[start:start + len(chunk)] = np.asarray([by_id[int(i)] for i in chunk], dtype=np.float32)
        return found[inverse.reshape(-1)]


def saved_meta(path: Path) -> dict[str, Any]:
    """The sidecar of an index file; IndexFileError if missing or unreadable."""
    try:
        meta = json.loads(_sidecar(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise IndexFileError(f"{path}: no readable sidecar ({exc})") from None
    if not isinstance(meta, dict):
        raise IndexFileError(f"{path}: the sidecar is not a JSON object")
    return meta


# -- Milvus calls --------------------------------------------------------------------------------

_CLIENTS: dict[str, Any] = {}  # one connection per URI and process: each opens a channel (or a lite server)


def connect(uri: str) -> Any:
    """The pymilvus client of ``uri`` (checked with :func:`check_uri` first), opened once per process."""
    if uri not in _CLIENTS:
        try:
            from pymilvus import MilvusClient
        except ImportError:
            raise MilvusUnavailable("index kind 'milvus' needs pymilvus: pip install 'crs-multimodal[milvus]'") from None
        try:
            _CLIENTS[uri] = MilvusClient(uri=uri)
        except Exception as exc:  # pymilvus raises its own and grpc's types; the message is what matters
            raise MilvusUnavailable(f"cannot open Milvus at {_redacted(uri)}: {_first_line(exc)}") from None
    return _CLIENTS[uri]


def _create(client: Any, collection: str, dim: int, index_type: str, n: int) -> None:
    from pymilvus import DataType, MilvusClient

    schema = MilvusClient.create_schema(auto_id=False, enable_dynamic_field=False)
    schema.add_field(PRIMARY, DataType.INT64, is_primary=True)
    schema.add_field(VECTOR, DataType.FLOAT_VECTOR, dim=dim)
    params = client.prepare_index_params()
    params.add_index(field_name=VECTOR, index_type=index_type, metric_type="IP", params=_build_params(index_type, n))
    # "Session": this client sees its own inserts at once (a build is searched right away) without
    # "Strong"'s wait on every search of a server.
    client.create_collection(collection, schema=schema, index_params=params, consistency_level="Session")


def _build_params(index_type: str, n: int) -> dict[str, int]:
    if index_type == "HNSW":
        return {"M": HNSW_M, "efConstruction": HNSW_EF_CONSTRUCTION}
    if index_type == "IVF_FLAT":  # FaissIndex's rule: ~4 sqrt(n) lists, >= 39 points per list
        return {"nlist": max(1, min(4096, int(4 * np.sqrt(max(n, 1))), n // 39))}
    return {}


def _search_params(index_type: str) -> dict[str, int]:
    if index_type == "HNSW":
        return {"ef": HNSW_EF_SEARCH}
    if index_type == "IVF_FLAT":
        return {"nprobe": IVF_NPROBE}
    return {}


def _row_count(client: Any, collection: str) -> int:
    return int(client.get_collection_stats(collection)["row_count"])


def _wait_indexed(client: Any, collection: str, n: int) -> None:
    """Until Milvus has indexed every row (a server does it in the background after a flush)."""
    deadline = time.monotonic() + INDEX_WAIT_S
    while time.monotonic() < deadline:
        info = client.describe_index(collection, VECTOR)
        if int(info.get("pending_index_rows", 0)) == 0 and int(info.get("indexed_rows", n)) >= n:
            return
        time.sleep(0.5)
    raise MilvusUnavailable(f"Milvus did not index collection {collection} within {INDEX_WAIT_S:.0f} s")


def _collection_name(matrix: np.ndarray, ids: np.ndarray, index_type: str) -> str:
    """``crs_<hash>``: the same ids, vectors and index type always name the same collection."""
    digest = hashlib.sha256()
    digest.update(index_type.encode())
    digest.update(np.asarray(matrix.shape, dtype=np.int64).tobytes())
    digest.update(ids.tobytes())
    digest.update(matrix.tobytes())
    return f"crs_{digest.hexdigest()[:32]}"


def _no_hits(n: int, k: int) -> Hits:
    return Hits(np.full((n, k), -1, dtype=np.int64), np.full((n, k), -np.inf, dtype=np.float32))


def _sidecar(path: Path) -> Path:
    return path.with_name(path.name + ".json")


def _redacted(uri: str) -> str:
    """``uri`` without a user:password part, for messages and logs."""
    parts = urlsplit(uri)
    if "@" in parts.netloc:
        return urlunsplit(parts._replace(netloc="***@" + parts.netloc.rpartition("@")[2]))
    return uri


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
