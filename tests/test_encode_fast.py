"""The hit path's one-pass encoder (`_encode_fast.encode_included`): its fast paths give
exactly the generic encoder's bytes, so they can never move a key."""

from __future__ import annotations

from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from pmm_memo._encoding import encode_value

_texts = st.one_of(
    st.text(max_size=300),
    st.text(alphabet="é€𝄞", max_size=70),  # multi-byte UTF-8: prefixes count bytes
    # Lone surrogates (the strict fast path falls back) and the edge of the prefix table.
    st.sampled_from(["", "\ud800", "a\udfffb", "x" * 1023, "x" * 1024, "é" * 512]),
)


class _Str(str):
    pass


_scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(min_value=-3, max_value=300),  # around the small-int table
    st.integers(),
    st.floats(allow_nan=True),
    _texts,
    st.binary(max_size=20),
    _texts.map(_Str),  # a str subclass inside a list takes the generic path
)
_arguments = st.recursive(
    _scalars,
    lambda inner: st.one_of(
        st.lists(_texts, max_size=40),  # around the 32-element header table's edge
        st.lists(_texts, max_size=5).map(tuple),
        st.lists(inner, max_size=6),
        st.lists(inner, max_size=6).map(tuple),
        st.dictionaries(_texts, inner, max_size=4),
    ),
    max_leaves=30,
)


@settings(max_examples=400, deadline=None)
@given(st.lists(_arguments, max_size=5), st.data())
def test_hot_path_encoding_is_the_generic_encoding(values: list[Any], data: Any) -> None:
    """encode_included's fast paths (str prefixes, small ints, sequences of str) must
    give exactly the generic encoder's bytes, for any values and any included subset."""
    from pmm_memo._encode_fast import encode_included

    included = tuple(
        data.draw(st.lists(st.sampled_from(range(len(values))), unique=True).map(sorted))
        if values
        else ()
    )
    expected = b"".join(encode_value(values[i]) for i in included)
    assert encode_included(values, included) == expected


def test_hot_path_falls_back_cleanly_mid_sequence() -> None:
    """A list that turns out not to be all str leaves no partial bytes behind."""
    from pmm_memo._encode_fast import encode_included

    long = "x" * 1024  # past the prefix table: the elements after it are checked too
    for value in (
        ["a", "b", 1],
        ["a", ["b"]],
        ("a", None),
        ["a"] * 32,
        ["a", _Str("b")],
        [long, 5],
        [long, _Str("b")],
        ("é" * 600, b""),
        [long + "x", "a", None],
    ):
        assert encode_included(["p", value, 7], (0, 1, 2)) == b"".join(
            encode_value(v) for v in ("p", value, 7)
        )
    assert encode_included([object()], (0,)) is None
