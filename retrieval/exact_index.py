"""Exact inner-product search in numpy: every query scored against every (allowed) vector.

A backend with nothing to train or tune and no approximation: right for small catalogs, as the
reference answer approximate kinds are checked against, and in tests, where an exact answer
makes exact assertions possible. Rows are kept in ascending id order, so ties go to the smaller id whatever
order the vectors came in (see :func:`retrieval.vector_index.top_k`).
"""
from __future__ import annotations

import numpy as np

from retrieval.vector_index import Hits, VectorIndex, as_matrix, check_ids, top_k

__all__ = ["ExactIndex"]


class ExactIndex(VectorIndex):
    def __init__(self, matrix: np.ndarray, ids: np.ndarray) -> None:
        """``matrix`` holds unit float32 rows, ``ids`` their unique ids in ascending order; use
        :meth:`build` for anything else."""
        self._matrix = matrix
        super().__init__("exact", matrix.shape[1], ids, lambda rows: self._matrix[rows])

    @classmethod
    def build(cls, vectors: np.ndarray, ids: np.ndarray) -> ExactIndex:
        matrix = as_matrix(vectors)
        ids = check_ids(ids, len(matrix))
        order = np.argsort(ids, kind="stable")
        return cls(np.ascontiguousarray(matrix[order]), ids[order])

    def search(self, queries: np.ndarray, k: int, allowed_ids: np.ndarray | None = None) -> Hits:
        matrix = self._queries(queries, k)
        if allowed_ids is not None:
            return self._scan(matrix, k, allowed_ids)
        # One matrix product over the whole store: no gather of rows as the filtered scan needs.
        return top_k(matrix @ self._matrix.T, self.ids, k)
