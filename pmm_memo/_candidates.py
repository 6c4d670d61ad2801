"""Which KNN neighbour may answer a semantic lookup: every check in one place.

A neighbour is served only when all of these hold (any failure: try the next one):

1. it is provably ours: not corrupt, and its stored tenant, user, function, scope and
   embedder equal the query's (backends filter already; a filter bug or a foreign entry
   must still never leak a result, and vectors of another embedder are never compared);
2. it is close enough: the whole normalised text is the same (`digest`, whatever the
   float cosine says), or — below `threshold=1.0` only — cosine similarity >= threshold
   and >= the entry's own `min_similarity` (raised by `report_wrong_hit`);
3. the guards (`_guards`: equal numbers, ...) find nothing that tells the texts apart;
4. it is not ambiguous: when the next neighbour that also passes 1-3 (another stored
   text) is within AMBIGUITY_MARGIN of its similarity, the query matches two different
   questions about equally well and the cache cannot tell which was asked: a miss
   (counted as a guard rejection). The ratio test of nearest-neighbour matching (Lowe,
   "Distinctive image features from scale-invariant keypoints", 2004), as a difference
   of cosines. The KNN therefore asks for one neighbour more than may answer (`fetch`);
   a match of the whole text (step 2) is never ambiguous;
5. what differs is close enough on its own: when the two windows share context and
   differ in some sentences (`_semantic.changed_spans`), those sentences, embedded
   alone, must also reach the threshold. The caller embeds the pair (sync or async) and
   asks `confirm`.

The optional `verify=` judge is asked by the caller afterwards (it may be async).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from ._semantic import SemanticText, changed_spans

if TYPE_CHECKING:
    import numpy as np

    from ._stats import Counters
    from .backends._base import Neighbour, VectorQuery


@dataclass(slots=True)
class Candidate:
    neighbour: Neighbour
    # Texts whose own embeddings must also be similar enough (see `Matcher.confirm`).
    compare: tuple[str, str] | None = None


# Chosen with benchmarks/quality.py on the even-numbered GPTCache pairs and the Quora
# train split (README, "Choosing a threshold"): it removes most wrong hits between
# near-duplicate stored texts for ~3% of right hits.
AMBIGUITY_MARGIN = 0.015


class Matcher:
    """The acceptance rules of one decorated function (its threshold)."""

    def __init__(self, threshold: float, guards: Any = None) -> None:
        self.threshold = threshold
        self.guards = guards  # a _guards.Guards (falsy: none), or None
        self.exact_only = threshold >= 1.0  # same normalised text, never a float cosine

    def fetch(self, k: int) -> int:
        """How many neighbours to ask the KNN for when `k` may answer: one more, the
        competitor of the ambiguity check (none at threshold 1.0)."""
        return k if self.exact_only else k + 1

    def candidates(
        self,
        query: VectorQuery,
        text: SemanticText,
        neighbours: list[Neighbour],
        counters: Counters | None = None,
    ) -> Iterator[Candidate]:
        """Neighbours that pass the checks that need no embedding, best first (at most
        `query.k - 1` of them below threshold 1.0: the last one fetched only competes).
        A guard's veto or an ambiguity is counted in `counters.guard_rejections`."""
        answerable = query.k if self.exact_only else query.k - 1
        passing: list[tuple[int, Candidate]] = []
        for i, n in enumerate(neighbours):
            c = self._check(query, text, n, counters if i < answerable else None)
            if c is not None:
                passing.append((i, c))
        for j, (i, c) in enumerate(passing):
            if i >= answerable:
                return
            n = c.neighbour
            if n.text_h != text.digest and any(
                other.neighbour.text_h != n.text_h
                and other.neighbour.similarity > n.similarity - AMBIGUITY_MARGIN
                for _, other in passing[j + 1 : j + 2]
            ):
                if counters is not None:
                    counters.guard_rejections += 1
                return  # two stored texts match about equally well: neither answers
            yield c

    def _check(
        self, query: VectorQuery, text: SemanticText, n: Neighbour, counters: Counters | None
    ) -> Candidate | None:
        """Checks 1-3 (see the module docstring) on one neighbour."""
        if (
            n.corrupt
            or n.tenant != query.tenant
            or n.user != query.user
            or n.fn != query.fn
            or n.scope != query.scope
            or n.embedder != query.embedder
        ):
            return None
        if n.text_h == text.digest:
            n.settle()
            return None if n.corrupt else Candidate(n)
        if (
            self.exact_only
            or n.similarity < self.threshold
            or n.similarity < n.min_similarity  # a reported wrong hit (feedback)
            or n.text is None  # what differs cannot be checked: not served
        ):
            return None
        # Its value only now (a lazy query, see VectorQuery.lazy_values): the competitor
        # fetched for the ambiguity check rarely gets this far. Before the guards, which
        # count what they veto, as when a corrupt neighbour was known from the start.
        n.settle()
        if n.corrupt:
            return None
        if self.guards and self.guards.veto(text.window, n.text) is not None:
            if counters is not None:
                counters.guard_rejections += 1
            return None
        return Candidate(n, changed_spans(text.window, n.text))

    def confirm(self, vectors: np.ndarray | None) -> bool:
        """Are the two changed parts (embedded as a (2, dim) array) similar enough?"""
        if vectors is None or len(vectors) != 2:
            return False  # embedding failed: not proven similar, so not served
        return float(vectors[0] @ vectors[1]) >= self.threshold
