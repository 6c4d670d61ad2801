"""The offline embedder: deterministic, normalised, lexical near-duplicates score high."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmm_memo import EmbeddingError
from pmm_memo.embedders import OfflineEmbedder, check_vectors


def sim(a: str, b: str) -> float:
    v = OfflineEmbedder(1536).embed([a, b])
    return float(v[0] @ v[1])


def test_near_duplicates_high_unrelated_low() -> None:
    base = "How do I reset my password?"
    assert sim(base, "how do i reset my password") == pytest.approx(1.0, abs=1e-6)
    assert sim(base, "My password: how do I reset it?") > 0.95  # word order
    assert sim(base, "How do I reset my pasword?") > 0.75  # a typo
    assert sim(base, "How I reset password?") > 0.9  # dropped words
    assert sim(base, "What is the capital of France?") < 0.2


def test_deterministic_across_processes() -> None:
    code = (
        "from pmm_memo.embedders import OfflineEmbedder; "
        "print(OfflineEmbedder(32).embed(['hello world'])[0].round(6).tolist())"
    )
    outs = {
        subprocess.run(
            [sys.executable, "-c", code],
            capture_output=True,
            text=True,
            check=True,
            env={"PYTHONHASHSEED": seed},
        ).stdout
        for seed in ("1", "2")
    }
    assert len(outs) == 1


def test_shapes_and_edge_cases() -> None:
    e = OfflineEmbedder(16, batch_size=2)
    out = e.embed(["", "   ", "!!!", "a", "é"])
    assert out.shape == (5, 16)
    assert np.allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)
    assert e.embed([]).shape == (0, 16)
    with pytest.raises(EmbeddingError, match="sequence of texts"):
        e.embed("not a list")  # type: ignore[arg-type]
    with pytest.raises(EmbeddingError, match="text 1 is int"):
        e.embed(["a", 1])  # type: ignore[list-item]


def test_cancelling_features_never_give_a_zero_vector(monkeypatch: pytest.MonkeyPatch) -> None:
    import pmm_memo.embedders.offline as offline

    monkeypatch.setattr(offline, "_STOP_WEIGHT", 0.0)  # stop-word-only texts: no features
    out = OfflineEmbedder(8).embed(["the of and", "a"])
    assert np.allclose(np.linalg.norm(out, axis=1), 1)


def test_check_vectors_rejects_bad_output() -> None:
    with pytest.raises(EmbeddingError, match="expected \\(2, 4\\)"):
        check_vectors(np.ones((2, 3)), 2, 4, "x")
    with pytest.raises(EmbeddingError, match="NaN"):
        check_vectors([[np.inf, 0, 0, 1]], 1, 4, "x")
    with pytest.raises(EmbeddingError, match="all-zero"):
        check_vectors(np.zeros((1, 4)), 1, 4, "x")
    with pytest.raises(EmbeddingError, match="not numbers"):
        check_vectors([["a", "b"]], 1, 2, "x")


# Pairs that differ only in what carries meaning: signs, digits, currency, operators,
# symbols. Each must score clearly below a strict threshold (and never 1.0).
MEANINGFUL = [
    ("Explain C templates", "Explain C++ templates"),
    ("Convert 100 to EUR", "Convert $100 to EUR"),
    ("Is x 5?", "Is x -5?"),
    ("Is x 5?", "Is x +5?"),
    ("Convert 100 to EUR", "Convert €100 to EUR"),
    ("Convert 100 to EUR", "Convert 1000 to EUR"),
    ("Convert 100 to EUR", "Convert 100.5 to EUR"),
    ("Is 3 < 5?", "Is 3 > 5?"),
    ("Is 3 < 5?", "Is 3 <= 5?"),
    ("a == b", "a != b"),
    ("What is 2+2?", "What is 2*2?"),
    ("What is 2+2?", "What is 2/2?"),
    ("Raise prices 5%", "Raise prices 5"),
    ("C# tutorial", "C tutorial"),
    ("I love 🍕", "I love 🍣"),
    ("Is 3 ≠ 4?", "Is 3 = 4?"),
    ("x ± 1", "x 1"),
    ("temperature -5 degrees", "temperature 5 degrees"),
    ("pay £20", "pay 20"),
    ("int x", "int* x"),
    ("What is .NET used for?", "What is NET used for?"),
]


@pytest.mark.parametrize(("a", "b"), MEANINGFUL)
def test_meaningful_symbols_are_kept(a: str, b: str) -> None:
    assert sim(a, b) < 0.9, (a, b)


def test_unicode_minus_is_a_minus_and_punctuation_is_not_meaning() -> None:
    assert sim("\u22125 degrees", "-5 degrees") == pytest.approx(1.0, abs=1e-6)
    assert sim("x-5", "x - 5") == pytest.approx(1.0, abs=1e-6)
    assert sim("Is x 5?", "is x 5") == pytest.approx(1.0, abs=1e-6)


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.sampled_from(["convert", "price", "x", "total", "is"]), max_size=6),
    number=st.integers(min_value=0, max_value=10**9),
    change=st.sampled_from(["-{}", "+{}", "${}", "€{}", "{}%", "{}0", "{}.5", "1{}"]),
)
def test_property_a_changed_number_is_a_different_vector(
    words: list[str], number: int, change: str
) -> None:
    text = " ".join(words)
    a = f"{text} {number}"
    b = f"{text} {change.format(number)}"
    assert sim(a, b) < 0.95, (a, b)


@settings(max_examples=60, deadline=None)
@given(
    words=st.lists(st.sampled_from(["explain", "templates", "a", "b", "use"]), min_size=1),
    symbol=st.sampled_from(list("+-*/=<>%^&|~#@$€£¥≠≤≥\u00d7÷±√∞°©🍕")),
)
def test_property_an_added_symbol_is_a_different_vector(words: list[str], symbol: str) -> None:
    text = " ".join(words)
    assert sim(text, f"{text} {symbol}") < 0.999, (text, symbol)
