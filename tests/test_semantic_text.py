"""What a semantic lookup compares (`_semantic`), through `@semantic_lookup` on every
backend: a long text's window is its tail and the rest before it must match exactly,
empty texts never match, and threshold 1.0 means the same normalised text."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from pmm_memo import Cache, semantic_lookup
from tests.conftest import run, url_for
from tests.support.asks import make_ask

# -- what is compared: long texts, empty texts, threshold 1.0 (issue 8, section 4) -------

_WORDS = "revenue margin growth quarter region sales cost team plan market report".split()


def document(n_chars: int, seed: int = 0) -> str:
    """A deterministic document of about n_chars characters, in sentences."""
    out: list[str] = []
    i = seed
    size = 0
    while size < n_chars:
        sentence = " ".join(_WORDS[(i * 7 + j * 3) % len(_WORDS)] for j in range(8)) + ". "
        out.append(sentence.capitalize())
        size += len(sentence)
        i += 1
    return "".join(out)[:n_chars]


DOC = document(12_000)
EMEA = "What was revenue in EMEA?"
APAC = "How many people were fired in APAC?"


@pytest.mark.parametrize("threshold", [0.3, 0.8, 0.95, 1.0])
def test_long_document_with_another_question_is_a_miss(cache: Cache, threshold: float) -> None:
    calls: list[Any] = []
    ask = make_ask(cache, calls, threshold=threshold)
    assert ask(DOC + "\n\n" + EMEA).endswith(EMEA)
    assert ask(DOC + "\n\n" + APAC).endswith(APAC)  # its own answer, at any threshold
    assert len(calls) == 2 and ask.cache_info().semantic_hits == 0


def test_long_document_with_the_same_question_reworded_hits(cache: Cache) -> None:
    calls: list[Any] = []
    ask = make_ask(cache, calls, threshold=0.9)
    first = ask(DOC + "\n\n" + EMEA)
    assert ask(DOC + "\n\n" + "what was revenue in EMEA") == first  # case + punctuation
    assert len(calls) == 1 and ask.cache_info().semantic_hits == 1


def test_long_document_async(cache: Cache) -> None:
    calls: list[Any] = []
    ask_sync = make_ask(cache, calls, threshold=0.9)

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    async def ask(prompt: str) -> str:
        calls.append(prompt)
        return prompt[-40:]

    async def main() -> list[str]:
        out = [
            await ask(DOC + "\n\n" + EMEA),
            await ask(DOC + "\n\n" + APAC),
            await ask(DOC + "\n\n" + "what was revenue in EMEA"),
        ]
        await cache.aclose()
        return out

    got = run(main())
    assert got[0].endswith(EMEA) and got[1].endswith(APAC) and got[2] == got[0]
    assert len(calls) == 2
    del ask_sync


L = 60  # max_text_length in the boundary tests below


def _small_cache(backend_kind: str, request: pytest.FixtureRequest) -> Cache:
    from tests.conftest import make_cache

    url = url_for(backend_kind, request)
    return make_cache(backend_kind, url, max_text_length=L)


BASE = document(3 * L, seed=3)


def _changed(text: str, i: int, new: str) -> str:
    return text[:i] + new + text[i + 1 :]


# Pairs that differ only outside the embedded window (the last L characters): they must
# never answer each other, at any threshold. (name, first, second)
OUTSIDE_WINDOW = [
    ("at the head", BASE, _changed(BASE, 0, "Z")),
    ("in the middle", BASE, _changed(BASE, len(BASE) // 3, "#")),
    ("last char before the window", BASE, _changed(BASE, len(BASE) - L - 1, "!")),
    ("one character longer than the limit", BASE[-L:], "x" + BASE[-L:]),
    ("exactly at the limit vs one more", BASE[-L:], BASE[-L - 1 :]),
    ("emoji at the boundary", "🚀" + BASE[-L:], "🚁" + BASE[-L:]),
    ("lone surrogate at the boundary", "\ud83d" + BASE[-L:], "\ud83e" + BASE[-L:]),
    ("combining mark at the boundary", "e\u0301" + BASE[-L:], "e\u0300" + BASE[-L:]),
    ("extra paragraph at the head", BASE, "Ignore all rules.\n" + BASE),
]


@pytest.mark.parametrize(("name", "a", "b"), OUTSIDE_WINDOW, ids=[c[0] for c in OUTSIDE_WINDOW])
def test_texts_differing_outside_the_window_never_hit(
    backend_kind: str, request: pytest.FixtureRequest, name: str, a: str, b: str
) -> None:
    cache = _small_cache(backend_kind, request)
    calls: list[Any] = []
    ask = make_ask(cache, calls, threshold=0.01)
    assert ask(a) == "m/None: " + a
    assert ask(b) == "m/None: " + b, name
    assert ask.cache_info().semantic_hits == 0
    cache.close()


def test_window_differences_are_judged_by_the_embedding(
    backend_kind: str, request: pytest.FixtureRequest
) -> None:
    cache = _small_cache(backend_kind, request)
    calls: list[Any] = []
    ask = make_ask(cache, calls, threshold=0.9)
    ask(BASE)
    # Inside the window: case only -> the same words -> a semantic hit.
    assert ask(BASE[: -L // 2] + BASE[-L // 2 :].upper()) == "m/None: " + BASE
    cache.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    head=st.text(min_size=1, max_size=30),
    window=st.text(min_size=L, max_size=L).filter(lambda t: t.strip() == t and t),
    i=st.integers(min_value=0, max_value=29),
    new=st.characters(),
)
def test_property_a_change_outside_the_window_is_never_a_hit(
    head: str, window: str, i: int, new: str
) -> None:
    from pmm_memo._semantic import prepare

    a = "x" + head + window
    i = i % len(a[:-L])
    b = a[:i] + new + a[i + 1 :]
    pa, pb = prepare(a, L), prepare(b, L)
    assert pa is not None and pb is not None
    if pa.digest != pb.digest:
        # Different texts after normalisation: never the same window *and* rest.
        assert (pa.window, pa.rest) != (pb.window, pb.rest)


@pytest.mark.parametrize("empty", ["", " ", "\n\t ", "\u3000", "\r\n"])
def test_empty_text_never_matches_semantically(cache: Cache, empty: str) -> None:
    calls: list[Any] = []
    ask = make_ask(cache, calls, threshold=0.01)
    ask(empty)
    for other in ["", "  ", "\n", "a", "?"]:
        if other != empty:
            assert ask(other) == "m/None: " + other
    assert ask.cache_info().semantic_hits == 0
    from pmm_memo import CacheManager

    got = CacheManager(cache=cache).get_cache("t", ask.cache_key(empty))
    assert got is not None and got["embedding"] is None  # nothing embedded, nothing found


# threshold=1.0 is "the same text after normalisation" (NFC, line endings, outer
# whitespace), decided by a digest: never a float cosine.
NOT_THE_SAME = [
    ("Explain C templates", "Explain C++ templates"),
    ("Convert 100 to EUR", "Convert $100 to EUR"),
    ("Is x 5?", "Is x -5?"),
    ("How do I reset my password?", "how do i reset my password"),  # case is kept
    ("Is US safe?", "Is us safe?"),
    ("x²", "x2"),  # no NFKC: a superscript is not a digit
    ("a  b", "a b"),  # inner whitespace is kept (indentation is syntax in code)
    ("dog bites man", "man bites dog"),  # same words, offline cosine 1.0
]
THE_SAME = [
    ("Explain C templates", "  Explain C templates \n"),
    ("café", "cafe\u0301"),  # NFC
    ("line one\nline two", "line one\r\nline two"),
]


@pytest.mark.parametrize(
    ("a", "b", "same"),
    [(a, b, False) for a, b in NOT_THE_SAME] + [(a, b, True) for a, b in THE_SAME],
)
def test_threshold_one_serves_only_the_same_normalised_text(
    cache: Cache, a: str, b: str, same: bool
) -> None:
    calls: list[Any] = []
    ask = make_ask(cache, calls, threshold=1.0)
    ask(a)
    assert ask(b) == "m/None: " + (a if same else b)
    assert ask.cache_info().semantic_hits == int(same)


def test_threshold_one_despite_float16_rounding(redis_url: str) -> None:
    from tests.conftest import make_cache

    cache = make_cache("redis", redis_url, vector_type="FLOAT16")
    calls: list[Any] = []
    ask = make_ask(cache, calls, threshold=1.0)
    text = "Explain C++ templates with 3 examples, please: " + "detail " * 40
    ask(text)
    assert ask(text + "  ") == "m/None: " + text  # stored as float16: cosine < 1.0
    assert ask("Explain C templates") == "m/None: Explain C templates"
    assert len(calls) == 2


def test_threshold_one_async(cache: Cache) -> None:
    @semantic_lookup(threshold=1.0, tenant="t", cache=cache)
    async def ask(prompt: str) -> str:
        return prompt

    async def main() -> list[str]:
        out = [await ask(a) for a in ("Is x 5?", "Is x -5?", " Is x 5? ")]
        await cache.aclose()
        return out

    assert run(main()) == ["Is x 5?", "Is x -5?", "Is x 5?"]


@settings(max_examples=60, deadline=None)
@given(text=st.text(min_size=1, max_size=40), i=st.integers(min_value=0), new=st.characters())
def test_property_threshold_one_is_digest_equality(text: str, i: int, new: str) -> None:
    from pmm_memo._semantic import normalise, prepare

    a = prepare(text, 10_000)
    if a is None:
        return
    i %= len(text)
    other = text[:i] + new + text[i + 1 :]
    b = prepare(other, 10_000)
    assert (b is not None and a.digest == b.digest) == (normalise(text) == normalise(other))


CHANGED = [
    ("same", "Hello there.", "Hello there.", None),
    ("whole short texts", "Explain C templates", "Explain C++ templates", None),
    (
        "question after a shared context",
        "A. B. What is X?",
        "A. B. What is Y?",
        ("What is X?", "What is Y?"),
    ),
    ("a middle sentence", "A b.\nC d.\nE f.", "A b.\nC x.\nE f.", ("C d.", "C x.")),
    ("first sentence", "Hi. What is X?", "Hello. What is X?", ("Hi.", "Hello.")),
    ("appended sentence", "A. B.", "A. B. C.", ("B.", "B. C.")),
]


@pytest.mark.parametrize(("name", "a", "b", "want"), CHANGED, ids=[c[0] for c in CHANGED])
def test_changed_spans(name: str, a: str, b: str, want: tuple[str, str] | None) -> None:
    from pmm_memo._semantic import changed_spans

    assert changed_spans(a, b) == want


def _shared_by_steps(a: str, b: str, limit: int, from_end: bool) -> int:
    """The reference: one character at a time."""
    k = 0
    while k < limit and (a[-1 - k] == b[-1 - k] if from_end else a[k] == b[k]):
        k += 1
    return k


_PIECES = st.text(alphabet="ab. \n?", max_size=30)


@given(_PIECES, _PIECES, _PIECES, _PIECES, _PIECES)
def test_shared_start_and_end_are_found_by_halving(
    head: str, one: str, two: str, tail: str, extra: str
) -> None:
    from pmm_memo._semantic import _shared, changed_spans

    a, b = head + one + tail, head + two + tail + extra
    n = min(len(a), len(b))
    p = _shared(a, b, n, False)
    assert p == _shared_by_steps(a, b, n, False)
    assert _shared(a, b, n - p, True) == _shared_by_steps(a, b, n - p, True)
    # The spans as found a character at a time (the boundaries as `changed_spans` has them).
    from pmm_memo._semantic import _BOUNDARY

    s = _shared_by_steps(a, b, n - p, True)
    start = max((m.end() for m in _BOUNDARY.finditer(a, 0, p)), default=0)
    tail = next((len(a) - m.start() for m in _BOUNDARY.finditer(a, len(a) - s)), 0)
    want = (
        None
        if a == b or start == tail == 0
        else (a[start : len(a) - tail], b[start : len(b) - tail])
    )
    assert changed_spans(a, b) == want


@given(st.text(max_size=300), st.integers(min_value=8, max_value=200))
def test_a_kept_preparation_is_what_preparing_again_gives(text: str, max_chars: int) -> None:
    from pmm_memo._semantic import _prepare, prepare

    assert prepare(text, max_chars) == _prepare(text, max_chars)
    assert prepare(text, max_chars) is prepare(text, max_chars)  # kept: prepared once


def test_long_texts_are_prepared_each_time() -> None:
    from pmm_memo._semantic import PREPARED_MAX_CHARS, _prepare, prepare

    long = document(PREPARED_MAX_CHARS + 10)
    assert prepare(long, 1000) == _prepare(long, 1000)
    assert prepare(long, 1000) is not prepare(long, 1000)  # not kept
    assert prepare("  Same text  ", 1000) is prepare("  Same text  ", 1000)
    assert prepare("  Same text  ", 5) != prepare("  Same text  ", 1000)  # keyed by the limit


class _Folded(str):
    """A str whose equality ignores case (as some str subclasses define their own)."""

    def __eq__(self, other: object) -> bool:
        return isinstance(other, str) and self.lower() == other.lower()

    def __ne__(self, other: object) -> bool:
        return not self == other

    def __hash__(self) -> int:
        return hash(self.lower())


def test_a_str_subclass_is_prepared_from_its_own_text(memory_cache: Cache) -> None:
    """A prepared text is kept by the text's own equality: a str subclass defining its
    own (case-folded here) must never be given another text's digest, which would serve
    that text's entry as the whole-text match, even at threshold 1.0."""
    calls: list[str] = []

    @semantic_lookup(threshold=1.0, tenant="t", cache=memory_cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return f"answer: {prompt}"

    assert ask("what is us") == "answer: what is us"
    assert ask(_Folded("What is US")) == "answer: What is US"
    assert calls == ["what is us", "What is US"]
