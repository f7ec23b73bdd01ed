"""The lexical space: BM25 over each item's words, so names and rare words are found.

A dense text vector knows what a text is about, not every word in it: "Scorsese", a cast name,
a rare title word barely move MiniLM's vector, so a person who types one may not see the item
that carries it. BM25 (``bm25s``: sparse-matrix BM25, numpy only) matches the words themselves.

Its scores are made comparable with the dense cosines per query: each is divided by the query's
best score, so the best lexical match scores 1 and an item sharing none of the words 0, and the
fused weight (:class:`retrieval.multimodal.FusionWeights`) says what a perfect match is worth.
A query none of whose words the catalog holds scores 0 everywhere: it adds nothing.

Words are lower-cased, accents folded ("Bérénice" = "berenice"), English stop words dropped and
a final plural "s" cut ("cats" = "cat"), the same way for items and queries.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
import unicodedata
from pathlib import Path

import numpy as np

from retrieval.progress import ProgressClock, ProgressFn
from retrieval.vector_index import Hits, IndexFileError, top_k

__all__ = ["LexicalIndex", "LEXICAL_FORMAT", "tokens"]

LEXICAL_FORMAT = 1  # bump when tokenising or scoring changes: a cached index is then rebuilt
_SIDECAR = "lexical.json"


def _bm25s():  # type: ignore[no-untyped-def]
    try:
        import bm25s
    except ImportError as exc:  # a core dependency; only a broken install gets here
        raise ImportError("the lexical index needs bm25s: pip install 'bm25s>=0.2'") from exc
    return bm25s


def _fold(text: str) -> str:
    # ASCII has nothing to fold; skipping it saves ~3 s of a 12k-item build (a per-character loop).
    if text.isascii():
        return text
    return "".join(c for c in unicodedata.normalize("NFKD", text) if not unicodedata.combining(c))


def _stem(words: list[str]) -> list[str]:
    return [w[:-1] if len(w) > 3 and w.endswith("s") and not w.endswith("ss") else w for w in words]


def tokens(texts: list[str]) -> list[list[str]]:
    """The words BM25 sees, one list per text (empty for a text of stop words only)."""
    bm25s = _bm25s()
    out = bm25s.tokenize([_fold(t) for t in texts], stopwords="en", stemmer=_stem, return_ids=False,
                         show_progress=False, allow_empty=False)
    return [list(words) for words in out]


class LexicalIndex:
    """BM25 over one text per item, keyed by the caller's int64 ids (rows in ascending id order)."""

    def __init__(self, retriever, ids: np.ndarray) -> None:  # type: ignore[no-untyped-def]
        self.retriever = retriever
        self.ids = np.ascontiguousarray(ids, dtype=np.int64)

    @property
    def size(self) -> int:
        return len(self.ids)

    @classmethod
    def build(cls, ids: np.ndarray, texts: list[str], progress: ProgressFn | None = None) -> LexicalIndex:
        """BM25 over ``texts``; ``progress`` hears of the start and the end (bm25s gives nothing between)."""
        ids = np.asarray(ids, dtype=np.int64)
        if len(ids) != len(texts) or len(np.unique(ids)) != len(ids):
            raise ValueError(f"{len(texts)} texts need as many unique ids, got {len(ids)}")
        clock = ProgressClock(progress, "indexing words", len(texts))
        clock.report(0)
        order = np.argsort(ids, kind="stable")
        words = tokens([texts[i] for i in order])
        retriever = _bm25s().BM25()
        # An item without a word still needs its row; "" is the token bm25s keeps for empty rows.
        retriever.index([w or [""] for w in words], show_progress=False)
        clock.report(len(texts))
        return cls(retriever, ids[order])

    # -- queries ---------------------------------------------------------------------------------

    def scores(self, words: str) -> np.ndarray:
        """Every item's BM25 score for ``words`` divided by the best one, in ``ids`` order:
        1 for the best match, 0 for items sharing no word (all 0 when nothing matches)."""
        vocab = self.retriever.vocab_dict
        # bm25s turns a text of one letter or digits only into "", which is in its vocabulary
        # but not in its score table: such a word matches nothing, so it is dropped here.
        query = [vocab[w] for w in dict.fromkeys(tokens([words])[0]) if w and w in vocab]
        if not query or self.size == 0:
            return np.zeros(self.size, dtype=np.float32)
        raw = np.asarray(self.retriever.get_scores_from_ids(query), dtype=np.float32)
        best = float(raw.max())
        return raw / best if best > 0 else np.zeros(self.size, dtype=np.float32)

    def rows_of(self, ids: np.ndarray) -> np.ndarray:
        """Row of each id, -1 where the index does not hold it."""
        ids = np.asarray(ids, dtype=np.int64)
        if self.size == 0:
            return np.full(len(ids), -1, dtype=np.int64)
        at = np.clip(np.searchsorted(self.ids, ids), 0, self.size - 1)
        return np.where(self.ids[at] == ids, at, -1)

    def top(self, scores: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> Hits:
        """The best ``k`` items by ``scores`` (from :meth:`scores`) that match at all, among
        ``allowed_ids`` when given (an empty array: none), best first, padded with id -1."""
        if k <= 0:
            raise ValueError(f"k must be positive, got {k}")
        keep = scores > 0
        if allowed_ids is not None:
            allowed = np.zeros(self.size, dtype=bool)
            rows = self.rows_of(np.asarray(allowed_ids, dtype=np.int64).reshape(-1))
            allowed[rows[rows >= 0]] = True
            keep &= allowed
        rows = np.flatnonzero(keep)
        if len(rows) == 0:
            return Hits(np.full((1, k), -1, dtype=np.int64), np.full((1, k), -np.inf, dtype=np.float32))
        return top_k(scores[rows][None, :], self.ids[rows], k)

    # -- persistence -------------------------------------------------------------------------------

    def save(self, folder: Path, meta: dict[str, object]) -> None:
        """bm25s's files and the ids under ``folder``, with ``meta`` in a sidecar written last
        (a crash mid-way leaves a folder :meth:`load` refuses); replaces what was there."""
        folder = Path(folder)
        folder.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(prefix=folder.name + ".", suffix=".tmp", dir=folder.parent))
        try:
            self.retriever.save(str(tmp), show_progress=False)
            np.save(tmp / "ids.npy", self.ids, allow_pickle=False)
            shutil.rmtree(folder, ignore_errors=True)
            os.replace(tmp, folder)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
        sidecar = {**meta, "format": LEXICAL_FORMAT, "size": self.size}
        (folder / _SIDECAR).write_text(json.dumps(sidecar, sort_keys=True))

    @classmethod
    def load(cls, folder: Path, expect: dict[str, object]) -> LexicalIndex:
        """What :meth:`save` wrote; IndexFileError if missing, corrupt or built for other data."""
        folder = Path(folder)
        try:
            meta = json.loads((folder / _SIDECAR).read_text())
        except (OSError, json.JSONDecodeError) as exc:
            raise IndexFileError(f"{folder}: no readable sidecar ({exc})") from None
        stale = {k: (meta.get(k), v) for k, v in {**expect, "format": LEXICAL_FORMAT}.items() if meta.get(k) != v}
        if stale:
            raise IndexFileError(f"{folder}: built for other data: {stale}")
        try:
            ids = np.load(folder / "ids.npy", allow_pickle=False)
            retriever = _bm25s().BM25.load(str(folder), show_progress=False, verbosity=0)
        except (OSError, ValueError, KeyError, json.JSONDecodeError) as exc:
            raise IndexFileError(f"{folder}: corrupt ({exc})") from None
        if len(ids) != meta.get("size") or retriever.scores.get("num_docs") != len(ids):
            raise IndexFileError(f"{folder}: holds {len(ids)} ids, sidecar says {meta.get('size')}")
        return cls(retriever, ids)
