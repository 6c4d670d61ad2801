"""Which KNN neighbour may answer a semantic lookup: every check in one place.

A neighbour is served only when all of these hold (any failure: try the next one):

1. it is provably ours: not corrupt, and its stored tenant, user, function, scope and
   embedder equal the query's (backends filter already; a filter bug or a foreign entry
   must still never leak a result, and vectors of another embedder are never compared);
2. it is close enough: the whole normalised text is the same (`digest`, whatever the
   float cosine says), or — below `threshold=1.0` only — cosine similarity >= threshold
   and >= the entry's own `min_similarity` (raised by `report_wrong_hit`);
3. the guards (`_guards`: equal numbers, ...) find nothing that tells the texts apart;
4. what differs is close enough on its own: when the two windows share context and
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


class Matcher:
    """The acceptance rules of one decorated function (its threshold)."""

    def __init__(self, threshold: float, guards: Any = None) -> None:
        self.threshold = threshold
        self.guards = guards  # a _guards.Guards (falsy: none), or None
        self.exact_only = threshold >= 1.0  # same normalised text, never a float cosine

    def candidates(
        self,
        query: VectorQuery,
        text: SemanticText,
        neighbours: list[Neighbour],
        counters: Counters | None = None,
    ) -> Iterator[Candidate]:
        """Neighbours that pass the checks that need no embedding, best first. A guard's
        veto is counted in `counters.guard_rejections` (when counters are given)."""
        for n in neighbours:
            if (
                n.corrupt
                or n.tenant != query.tenant
                or n.user != query.user
                or n.fn != query.fn
                or n.scope != query.scope
                or n.embedder != query.embedder
            ):
                continue
            if n.text_h == text.digest:
                yield Candidate(n)
                continue
            if (
                self.exact_only
                or n.similarity < self.threshold
                or n.similarity < n.min_similarity  # a reported wrong hit (feedback)
                or n.text is None  # what differs cannot be checked: not served
            ):
                continue
            if self.guards and self.guards.veto(text.window, n.text) is not None:
                if counters is not None:
                    counters.guard_rejections += 1
                continue
            yield Candidate(n, changed_spans(text.window, n.text))

    def confirm(self, vectors: np.ndarray | None) -> bool:
        """Are the two changed parts (embedded as a (2, dim) array) similar enough?"""
        if vectors is None or len(vectors) != 2:
            return False  # embedding failed: not proven similar, so not served
        return float(vectors[0] @ vectors[1]) >= self.threshold
