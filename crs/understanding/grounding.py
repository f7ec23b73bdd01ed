"""Grounding words to values by meaning: "bluish" is blue, "three-dimensional" 3d, "animated"
animation, "scary" horror. The words no earlier spotter used (one and two word phrases, stop
words left out) are encoded with the catalog's sentence encoder and compared with its values
(each value as the catalog writes it).

A phrase grounds to the closest value when the cosine is at least ``threshold`` and beats the
runner-up value of any attribute by ``margin`` (a word that is as close to "comedy" as to
"horror" says neither). The constants are calibrated on the pairs in
``tests/fixtures/grounding_pairs.jsonl`` (words people use for values, and
words that must not ground), with the bundled MiniLM-L6-v2: positives score 0.69-0.85 against
their value, the closest negatives 0.60-0.62 (tests/test_grounding.py keeps them apart).
"""
from __future__ import annotations

import threading
from collections.abc import Callable, Collection, Sequence

import numpy as np

from crs.facts import CatalogFacts
from crs.understanding.lexicon import normalise
from crs.understanding.spotting import Span, SpotContext, Spotter, free_runs
from crs.understanding.stopwords import STOPWORDS

THRESHOLD = 0.65
MARGIN = 0.10
CACHE = 2048  # phrase encodings kept

Encode = Callable[[Sequence[str]], np.ndarray]


class GroundingSpotter(Spotter):
    def __init__(self, facts: CatalogFacts, attributes: Collection[str], encode: Encode,
                 threshold: float = THRESHOLD, margin: float = MARGIN, skip: Collection[str] = ()) -> None:
        """``skip``: words never grounded (the attributes' own names: "language" is no language)."""
        self.encode = encode
        self.skip = set(skip)
        self.threshold, self.margin = threshold, margin
        self.values: list[tuple[str, str]] = [(a, v) for a in attributes for v in facts.attributes[a].values
                                              if len(normalise(v)) >= 2]
        self._vectors: np.ndarray | None = None  # encoded on first use: a parser that never needs it costs nothing
        self._cache: dict[str, np.ndarray] = {}
        self._lock = threading.Lock()

    @property
    def vectors(self) -> np.ndarray:
        if self._vectors is None:
            self._vectors = _unit(self.encode([v for _, v in self.values])) if self.values else np.zeros((0, 1))
        return self._vectors

    def spot(self, words: list[str], free: list[bool], context: SpotContext) -> list[Span]:
        if not self.values:
            return []
        phrases: list[tuple[int, int, str]] = []
        for start, end in free_runs(free):
            for size in (2, 1):
                for i in range(start, end - size + 1):
                    chunk = words[i:i + size]
                    if any(w in STOPWORDS or w in self.skip or not any(c.isalpha() for c in w) for w in chunk):
                        continue
                    phrases.append((i, i + size, " ".join(chunk)))
        if not phrases:
            return []
        scores = self._encode([p for _, _, p in phrases]) @ self.vectors.T
        spans: list[Span] = []
        taken = [not f for f in free]
        for (start, end, _), row in zip(phrases, scores):  # two-word phrases first: "love story"
            if any(taken[start:end]):
                continue
            order = np.argsort(-row)
            best = order[0]
            runner_up = next((j for j in order[1:] if self.values[j][1] != self.values[best][1]), None)
            gap = row[best] - (row[runner_up] if runner_up is not None else 0.0)
            if row[best] >= self.threshold and gap >= self.margin:
                attribute, value = self.values[best]
                spans.append(Span(start, end, attribute, (value,)))
                taken[start:end] = [True] * (end - start)
        return spans

    def _encode(self, phrases: list[str]) -> np.ndarray:
        with self._lock:  # one parser serves concurrent requests; the cache evicts as it fills
            missing = [p for p in dict.fromkeys(phrases) if p not in self._cache]
            if missing:
                for phrase, vector in zip(missing, _unit(self.encode(missing))):
                    if len(self._cache) >= CACHE:
                        self._cache.pop(next(iter(self._cache)))
                    self._cache[phrase] = vector
            return np.stack([self._cache[p] for p in phrases])


def _unit(vectors: np.ndarray) -> np.ndarray:
    vectors = np.asarray(vectors, dtype=np.float32)
    return vectors / np.maximum(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12)
