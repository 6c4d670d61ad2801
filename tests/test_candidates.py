"""`Matcher`: which KNN neighbour may answer a semantic lookup (no backend needed)."""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmm_memo._candidates import Matcher
from pmm_memo._errors import CodecError
from pmm_memo._semantic import prepare
from pmm_memo.backends._base import Neighbour, VectorQuery

TEXT = prepare("How do I reset my password?", 10_000)
assert TEXT is not None
QUERY = VectorQuery(
    tenant="t",
    vector=np.ones(4, np.float32) / 2,
    k=3,
    fn="f",
    scope="s",
    user="u",
    embedder="offline/hash-v2/4",
)


def neighbour(**changes: Any) -> Neighbour:
    n = Neighbour(
        key="cache:t:" + "0" * 32,
        similarity=0.97,
        tenant="t",
        user="u",
        fn="f",
        scope="s",
        text="how do i reset my password",
        created_at=0.0,
        value="answer",
        text_h="other",
        embedder="offline/hash-v2/4",
    )
    return dataclasses.replace(n, **changes)


@pytest.mark.parametrize(
    "change",
    [
        {"tenant": "T"},
        {"user": ""},
        {"fn": "g"},
        {"scope": "s2"},
        {"embedder": "openai/text-embedding-3-small/4"},
        {"embedder": None},
        {"corrupt": True},
        {"similarity": 0.89},
        {"text": None},
    ],
)
def test_a_neighbour_that_is_not_provably_ours_or_close_is_skipped(change: dict[str, Any]) -> None:
    assert list(Matcher(0.9).candidates(QUERY, TEXT, [neighbour(**change)])) == []


def test_a_close_neighbour_passes() -> None:
    (c,) = Matcher(0.9).candidates(QUERY, TEXT, [neighbour()])
    assert c.neighbour.value == "answer" and c.compare is None  # whole texts differ


def test_the_same_normalised_text_passes_whatever_the_float_says() -> None:
    same = neighbour(text_h=TEXT.digest, similarity=0.9991)  # e.g. FLOAT16 rounding
    assert [c.neighbour for c in Matcher(1.0).candidates(QUERY, TEXT, [same])] == [same]
    assert [c.compare for c in Matcher(0.9999).candidates(QUERY, TEXT, [same])] == [None]


def test_the_default_threshold_turns_away_a_0934_neighbour() -> None:
    """0.935 (README, "Choosing a threshold"): 0.93 served this neighbour."""
    from pmm_memo._decorators import DEFAULT_THRESHOLD

    m = Matcher(DEFAULT_THRESHOLD)
    assert list(m.candidates(QUERY, TEXT, [neighbour(similarity=0.934)])) == []
    assert len(list(m.candidates(QUERY, TEXT, [neighbour(similarity=0.9355)]))) == 1


def test_threshold_one_never_trusts_a_cosine() -> None:
    assert list(Matcher(1.0).candidates(QUERY, TEXT, [neighbour(similarity=1.0)])) == []


def test_shared_context_asks_for_the_changed_sentences() -> None:
    doc = "Revenue grew. Costs fell. "
    q = prepare(doc + "What was revenue in EMEA?", 10_000)
    assert q is not None
    n = neighbour(text=doc + "How many people were fired in APAC?")
    (c,) = Matcher(0.9).candidates(QUERY, q, [n])
    assert c.compare == ("What was revenue in EMEA?", "How many people were fired in APAC?")


def test_confirm() -> None:
    m = Matcher(0.9)
    assert m.confirm(np.asarray([[1, 0], [1, 0]], np.float32))
    assert not m.confirm(np.asarray([[1, 0], [0, 1]], np.float32))
    assert not m.confirm(None)  # embedding failed: not proven, not served


# -- ambiguity: two stored texts about equally close ---------------------------------------


def test_fetch_asks_for_one_competitor_more() -> None:
    assert Matcher(0.9).fetch(1) == 2
    assert Matcher(1.0).fetch(1) == 1  # the same text only: nothing can compete


def test_two_stored_texts_about_equally_close_answer_neither() -> None:
    from pmm_memo._stats import Counters

    counters = Counters()
    best = neighbour(similarity=0.97, text_h="a")
    close = neighbour(similarity=0.96, text="how can i reset my password", text_h="b")
    query = dataclasses.replace(QUERY, k=2)  # k=1 may answer, one competitor
    assert list(Matcher(0.9).candidates(query, TEXT, [best, close], counters)) == []
    assert counters.guard_rejections == 1
    far = dataclasses.replace(close, similarity=0.95)  # 0.02 apart: distinct enough
    assert [c.neighbour for c in Matcher(0.9).candidates(query, TEXT, [best, far])] == [best]


def test_a_competitor_must_itself_pass_every_check() -> None:
    best = neighbour(similarity=0.97, text_h="a")
    query = dataclasses.replace(QUERY, k=2)
    for other in (
        neighbour(similarity=0.965, text="how do i reset my 2 passwords", text_h="b"),  # guard
        neighbour(similarity=0.965, text_h="b", tenant="T"),  # not ours
        neighbour(similarity=0.965, text_h="b", min_similarity=0.99),  # reported wrong
        neighbour(similarity=0.965, text_h="a"),  # the same stored text again
    ):
        found = Matcher(0.9, _every_guard()).candidates(query, TEXT, [best, other])
        assert [c.neighbour for c in found] == [best], other


def test_the_same_text_is_never_ambiguous() -> None:
    same = neighbour(similarity=0.99, text_h=TEXT.digest)
    close = neighbour(similarity=0.985, text_h="b")
    query = dataclasses.replace(QUERY, k=2)
    assert [c.neighbour for c in Matcher(0.9).candidates(query, TEXT, [same, close])] == [same]


def test_only_k_neighbours_may_answer_the_last_one_only_competes() -> None:
    first = neighbour(similarity=0.97, text_h="a", text="how do i reset my 2 passwords")
    second = neighbour(similarity=0.93, text_h="b")
    query = dataclasses.replace(QUERY, k=2)  # fetched 2: only the first may answer
    assert list(Matcher(0.9, _every_guard()).candidates(query, TEXT, [first, second])) == []
    query3 = dataclasses.replace(QUERY, k=3)  # k=2 may answer: the second does
    found = Matcher(0.9, _every_guard()).candidates(query3, TEXT, [first, second])
    assert [c.neighbour for c in found] == [second]


def _lazy(name: str, decoded: list[str], damaged: bool = False, **changes: Any) -> Any:
    """A neighbour of a lazy query (VectorQuery.lazy_values): its value is decoded, and
    recorded in `decoded`, only when the matcher settles it."""

    def decode() -> str:
        decoded.append(name)
        if damaged:
            raise CodecError("entry checksum is missing or does not match its payload")
        return name

    return neighbour(value=None, pending=decode, **changes)


def test_only_a_neighbour_that_may_answer_is_decoded() -> None:
    decoded: list[str] = []
    best = _lazy("best", decoded, similarity=0.97, text_h="a")
    far = _lazy("far", decoded, similarity=0.5, text_h="b")  # the competitor: too far
    query = dataclasses.replace(QUERY, k=2)
    found = list(Matcher(0.9).candidates(query, TEXT, [best, far]))
    assert [c.neighbour.value for c in found] == ["best"] and decoded == ["best"]
    decoded.clear()
    stranger = _lazy("stranger", decoded, tenant="T")  # not ours: never decoded
    assert list(Matcher(0.9).candidates(query, TEXT, [stranger, far])) == []
    assert decoded == []


def test_a_value_that_does_not_decode_is_corrupt_only_when_settled() -> None:
    """Decoded lazily, a damaged value is what it was decoded eagerly: that neighbour
    never answers (the next one may), and as a competitor it vetoes nothing; the guards
    never see it (they count what they veto)."""
    from pmm_memo._stats import Counters

    decoded: list[str] = []
    damaged = _lazy("damaged", decoded, damaged=True, similarity=0.98, text_h="a")
    good = _lazy("good", decoded, similarity=0.97, text_h="b")
    query = dataclasses.replace(QUERY, k=3)  # two may answer
    found = list(Matcher(0.9).candidates(query, TEXT, [damaged, good]))
    assert [c.neighbour.value for c in found] == ["good"] and damaged.corrupt
    rival = _lazy("rival", decoded, damaged=True, similarity=0.965, text_h="c")
    best = _lazy("best", decoded, similarity=0.97, text_h="a")
    query = dataclasses.replace(QUERY, k=2)  # within the margin, but damaged
    assert [c.neighbour.value for c in Matcher(0.9).candidates(query, TEXT, [best, rival])] == [
        "best"
    ]
    counters = Counters()
    vetoed = _lazy("vetoed", decoded, damaged=True, text="how do i reset my 2 passwords")
    assert list(Matcher(0.9, _every_guard()).candidates(query, TEXT, [vetoed], counters)) == []
    assert counters.guard_rejections == 0


def _every_guard() -> Any:
    from pmm_memo._guards import GUARDS, Guards

    return Guards(GUARDS)


@given(st.one_of(st.floats(allow_nan=True), st.sampled_from([0.5, 0.9, 0.99, -0.0, 2.0])))
def test_a_similarity_is_counted_in_the_first_bucket_whose_edge_is_above_it(x: float) -> None:
    from pmm_memo._stats import SIMILARITY_BUCKETS, Counters

    counters = Counters()
    counters.record_similarity(x)
    want = next((i for i, e in enumerate(SIMILARITY_BUCKETS) if x < e), len(SIMILARITY_BUCKETS))
    assert counters.similarity == [int(i == want) for i in range(len(SIMILARITY_BUCKETS) + 1)]
