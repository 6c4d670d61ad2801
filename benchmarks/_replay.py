"""Cache replay over embedding matrices, as `@semantic_lookup` decides (k=1).

The top-2 stored texts per query, and the decision of pmm_memo._candidates on them: the
best is at or above the threshold and allowed by the guards, and the second, when it is
too, is not within the ambiguity margin. Used by benchmarks/quality.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import numpy as np

from pmm_memo._candidates import AMBIGUITY_MARGIN
from pmm_memo._guards import DEFAULT_GUARDS, Guards


class Knn(NamedTuple):
    """Top-2 stored texts per query: indices and cosine similarities."""

    best: np.ndarray
    sims: np.ndarray
    second: np.ndarray
    sims2: np.ndarray


def top2(queries: np.ndarray, stored: np.ndarray, chunk: int = 2048) -> Knn:
    n = len(queries)
    out = Knn(*(np.empty(n, dtype=t) for t in (np.int64, np.float32, np.int64, np.float32)))
    for start in range(0, n, chunk):
        block = queries[start : start + chunk] @ stored.T
        rows = np.arange(len(block))
        if block.shape[1] > 1:
            two = np.argpartition(-block, 1, axis=1)[:, :2]
            swap = block[rows, two[:, 1]] > block[rows, two[:, 0]]
            two[swap] = two[swap][:, ::-1]
        else:
            two = np.zeros((len(block), 2), dtype=np.int64)
        end = start + len(block)
        out.best[start:end], out.second[start:end] = two[:, 0], two[:, 1]
        out.sims[start:end] = block[rows, two[:, 0]]
        # One stored text: nothing competes.
        out.sims2[start:end] = block[rows, two[:, 1]] if block.shape[1] > 1 else -1.0
    return out


class Rule(NamedTuple):
    guards: Guards
    margin: float  # 0: no ambiguity check


DEFAULT_RULE = Rule(Guards(DEFAULT_GUARDS), AMBIGUITY_MARGIN)


def hits(
    queries: Sequence[str], stored: Sequence[str], knn: Knn, threshold: float, rule: Rule
) -> np.ndarray:
    """Which queries hit, as the decorator decides with k=1 (pmm_memo._candidates): the
    top-1 is at or above the threshold and allowed by the guards, and the second, when it
    is too, is not within the margin of it."""
    out = knn.sims >= threshold
    for i in np.flatnonzero(out).tolist():
        q = queries[i]
        if rule.guards.veto(q, stored[int(knn.best[i])]) is not None or (
            rule.margin
            and knn.sims2[i] >= threshold
            and knn.sims2[i] > knn.sims[i] - rule.margin
            and stored[int(knn.second[i])] != stored[int(knn.best[i])]
            and rule.guards.veto(q, stored[int(knn.second[i])]) is None
            and q != stored[int(knn.best[i])]
        ):
            out[i] = False
    return out
