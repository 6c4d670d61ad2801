"""Guards (pmm_memo._guards): pure text checks, no embedder or backend needed."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from benchmarks.hard_negatives import HARD_NEGATIVES
from pmm_memo import ConfigError
from pmm_memo._guards import (
    DEFAULT_GUARDS,
    GUARDS,
    Guards,
    names,
    numbers,
    parse,
    same_entities,
    same_negation,
    same_numbers,
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("What is 15% of 200?", ["15", "200"]),
        ("iPhone 6 vs iPhone 7", ["6", "7"]),
        ("1,000 or 1000 or 1,000.50", ["1000", "1000", "1000.50"]),
        ("the 7th gen i7, x86 and mp3", ["7", "i7", "x86", "mp3"]),
        ("version 3.10 is not 3.1", ["3.10", "3.1"]),  # versions: decimals as written
        ("two thousand and twelve", ["2000", "12"]),
        ("3 million, 1.5 billion, a thousand", ["3000000", "1500000000", "1000"]),
        ("millions of users, 10k stars", ["million", "10000"]),
        ("the third of ninety", ["3", "90"]),
        ("in her fifties, the 50s, the 1950s", ["50s", "50s", "1950s"]),  # decades
        ("the 1990's, the 90\u2019s, her 40's", ["1990s", "90s", "40s"]),  # decade, not year
        ("my Note 3's camera, 2016's vote", ["3", "2016"]),  # possessives
        ("Which one is the first?", []),  # "one"/"first" are rarely numbers in questions
        ("Calculate the square root of 144.", ["144"]),
        ("no numbers here", []),
    ],
)
def test_numbers_are_extracted_in_order_and_normalised(text: str, expected: list[str]) -> None:
    assert numbers(text) == expected


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is 15% of 200?", "What is 25% of 200?"),
        ("Is the iPhone 6 waterproof?", "Is the iPhone 7 waterproof?"),
        ("6th gen Intel", "7th gen Intel"),
        ("What is 10 divided by 2?", "What is 2 divided by 10?"),  # order matters
        ("convert 5 km", "convert 50 km"),
        ("two eggs", "three eggs"),
        ("Intel i5", "Intel i7"),
        ("the 2011 census", "the census"),  # a number on one side only
        ("Python 3.10 features", "Python 3.1 features"),
        ("music of the fifties", "music of the forties"),  # decades
        ("a man in his twenties", "a man in his 30s"),
        ("Most popular cars in the 1990's?", "Most popular cars in 1990?"),  # decade vs year
        ("Health tips for women in their 40's", "Health tips for a woman of 40"),
    ],
)
def test_numbers_guard_vetoes_a_changed_number(a: str, b: str) -> None:
    assert not same_numbers(a, b)
    assert not same_numbers(b, a)


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("What is 15% of 200?", "How much is 15 percent of 200?"),
        ("1,000 users", "1000 users"),
        ("Is the 7th gen good?", "Is the seventh gen good?"),
        ("How are you?", "How are you doing?"),
        ("Music of the sixties?", "Songs from the 60s?"),
        ("Music of the 60's?", "Music of the sixties?"),
        ("Fashion in the 1960\u2019s", "Fashion in the 1960s"),
    ],
)
def test_numbers_guard_allows_the_same_numbers_written_differently(a: str, b: str) -> None:
    assert same_numbers(a, b)


def test_entities() -> None:
    assert names("Which is better to live in, Dubai or Qatar?") == {"dubai", "qatar"}
    assert names("How do I learn C++ quickly? And C#.") == {"c++", "c#"}
    assert names("What were Einstein's discoveries?") == {"einstein"}
    assert names("Is it OK if I go?") == set()  # "OK" and "I" are not names
    assert not same_entities("learn C quickly", "learn C++ quickly")
    assert not same_entities("Dubai or Qatar?", "Dubai or Oman?")
    assert same_entities("how do I learn python?", "What is the best way to learn Python?")


def test_negation() -> None:
    assert not same_negation("Why do cats purr?", "Why don't cats purr?")
    assert not same_negation("Which animals can swim?", "Which animals cannot swim?")
    assert not same_negation("coffee with sugar", "coffee without sugar")
    assert same_negation("Why don't cats purr?", "Why do cats never purr?")
    assert same_negation("Why do cats purr?", "What makes cats purr?")


GUARD_FOR_KIND = {
    "number": "numbers",
    "magnitude": "numbers",
    "entity": "entities",
    "symbol": "entities",
    "negation": "negation",
    "unit": "units",
    "opposite": "opposites",
    "order": "roles",
}


@pytest.mark.parametrize(("kind", "stored", "negative", "control"), HARD_NEGATIVES)
def test_hard_negatives_table(kind: str, stored: str, negative: str, control: str) -> None:
    """Every negative of benchmarks/hard_negatives.py is vetoed by the guard for its kind
    (alone), and every paraphrase control passes all guards, both ways round."""
    own = Guards((GUARD_FOR_KIND[kind],))
    assert own.veto(negative, stored) == GUARD_FOR_KIND[kind]
    assert own.veto(stored, negative) == GUARD_FOR_KIND[kind]
    every = Guards(GUARDS)
    assert every.veto(control, stored) is None
    assert every.veto(stored, control) is None


@given(st.text(max_size=200))
def test_a_text_always_passes_against_itself(text: str) -> None:
    assert Guards(GUARDS).veto(text, text) is None


@given(st.text(max_size=80), st.text(max_size=80))
def test_guards_are_symmetric(a: str, b: str) -> None:
    every = Guards(GUARDS)
    assert (every.veto(a, b) is None) == (every.veto(b, a) is None)


def test_parse_validates() -> None:
    assert parse(DEFAULT_GUARDS).names == DEFAULT_GUARDS == GUARDS
    assert parse(()).names == () and not parse(())
    assert parse(["negation", "numbers", "numbers"]).names == ("numbers", "negation")
    assert parse("entities").names == ("entities",)
    with pytest.raises(ConfigError, match="unknown guard 'digits'"):  # like every option
        parse(("digits",))
    with pytest.raises(TypeError, match="guards must be a tuple"):
        parse(3)


def test_a_pair_asked_again_is_judged_once_with_the_same_verdict() -> None:
    from pmm_memo._guards import _veto

    guards, numbers_only = Guards(GUARDS), Guards(("numbers",))
    pair = ("What is the price of 2 apples?", "what is the price of 3 apples")
    hits = _veto.cache_info().hits
    assert guards.veto(*pair) == guards.veto(*pair) == "numbers"
    assert _veto.cache_info().hits == hits + 1
    # Keyed by the guards too: another set judges the pair afresh.
    assert Guards(("negation",)).veto(*pair) is None
    assert numbers_only.veto("not 2", "2") is None and guards.veto("not 2", "2") == "negation"
