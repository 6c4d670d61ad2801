"""Key material of a whole call in one pass: the hot path of every cache hit.

Byte-for-byte the generic encoder's output (`_encoding`; a property test pins the fast
paths to it), without its per-value dispatch for the common shapes: str, small int, and
short lists/tuples of str. Pure and I/O-free.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from typing import Any

from ._encoding import (
    _CANONICAL_NAN,
    _EXACT,
    _encode,
    _Unencodable,
    encode_value,
)


def _heads(make: Callable[[int], Any], unit: bytes, limit: int) -> list[bytes]:
    """Length prefixes as the generic encoder writes them, taken from its own output for
    values of 0..limit-1 units: what `make(n)` encodes to, minus its n units of content.
    Formatting `b"s%d:"` per element costs more than encoding the element."""
    heads = []
    for n in range(limit):
        encoded = encode_value(make(n))
        heads.append(encoded[: len(encoded) - n * len(unit)])
    return heads


_pack_tagged_double = struct.Struct(">cd").pack  # b"f" + _pack_double(v) in one call
_UNIT = encode_value("a")
# Up to 1 KB (passages, prompts): past it, formatting the prefix is small beside copying
# and hashing the text. ~40 KB of bytes objects, built once.
_STR_LIMIT = 1024
_STR_HEAD = _heads(lambda n: "a" * n, b"a", _STR_LIMIT)
_SMALL_INT = [encode_value(i) for i in range(256)]  # counts, indexes, top_k, max_tokens...
_SEQ_HEAD = {
    list: _heads(lambda n: ["a"] * n, _UNIT, 32),
    tuple: _heads(lambda n: ("a",) * n, _UNIT, 32),
}


# The same heads as text, in a dict keyed by the element's exact type: one subscript
# checks the type (a str subclass is another key, as in the generic `_EXACT`) and finds
# the head. For ASCII text, characters are bytes, so a whole list is one `join` and one
# `encode` instead of a Python-level encode, length and two appends per element.
_TEXT_HEAD = {str: [head.decode() for head in _STR_HEAD]}


def _str_sequence(v: list[Any] | tuple[Any, ...], out: list[bytes]) -> bool:
    """A short list/tuple of plain str (retrieved passages, stop words, message texts):
    the generic encoder's bytes without its per-element dispatch and cycle bookkeeping
    (a sequence of str cannot contain itself). False, leaving `out` as it was, for
    anything else."""
    heads = _SEQ_HEAD[type(v)]
    if len(v) >= len(heads):
        return False
    try:
        item_heads = [_TEXT_HEAD[type(item)][len(item)] for item in v]
    except KeyError:  # not all plain str
        return False
    except IndexError:  # an element of _STR_LIMIT characters or more: the items after
        # it were not looked at, so their types are checked here
        if not all(type(item) is str for item in v):
            return False
        return _str_items(v, heads, out)
    parts = [*v, *v]
    parts[::2] = item_heads  # head, item, head, item...
    parts[1::2] = v
    text = "".join(parts)
    if not text.isascii():  # multi-byte UTF-8: lengths are in bytes, not characters
        return _str_items(v, heads, out)
    out.append(heads[len(v)])
    out.append(text.encode())
    return True


def _str_items(v: list[Any] | tuple[Any, ...], heads: list[bytes], out: list[bytes]) -> bool:
    """`_str_sequence` element by element, for text that is not all short ASCII."""
    append = out.append
    append(heads[len(v)])
    for item in v:
        data = item.encode()  # see encode_values
        n = len(data)
        append(_STR_HEAD[n] if n < _STR_LIMIT else b"s%d:" % n)
        append(data)
    return True


def encode_values(values: Sequence[Any], head: bytes = b"") -> bytes | None:
    """`head` and the arguments' encodings concatenated in one pass: the hot path of
    every cache hit (`head` is the key header: one concatenation and copy less).

    Produces exactly the concatenation of the per-argument encodings (a property test
    pins the fast paths to the generic encoder); returns None when an argument cannot
    be encoded, so the caller can take the slow path that names it.
    """
    out = [head]
    append = out.append
    try:
        for v in values:
            t = type(v)
            if t is str:  # inlined _enc_str: prompts are the common case
                # Strict UTF-8 (half the cost of naming an error handler) gives the
                # generic encoder's surrogatepass bytes for every str without a lone
                # surrogate; one with a surrogate raises and takes the generic path.
                data = v.encode()
                n = len(data)
                out += (_STR_HEAD[n] if n < _STR_LIMIT else b"s%d:" % n, data)
            elif t is int and 0 <= v < 256:
                append(_SMALL_INT[v])
            elif t is float:  # inlined _enc_float (temperature, top_p, ...)
                append(_pack_tagged_double(b"f", v) if v == v else _CANONICAL_NAN)
            elif (t is list or t is tuple) and _str_sequence(v, out):
                pass
            else:
                encoder = _EXACT.get(t)
                if encoder is not None:
                    encoder(v, out, None)
                else:
                    _encode(v, out, None)
    except UnicodeEncodeError:
        return _generic(values, head)
    except (_Unencodable, RecursionError):
        return None
    return b"".join(out)


def _generic(values: Sequence[Any], head: bytes) -> bytes | None:
    """`encode_values` by the generic encoder alone (a str with a lone surrogate)."""
    out = [head]
    try:
        for v in values:
            _encode(v, out, None)
    except (_Unencodable, RecursionError):
        return None
    return b"".join(out)


def encode_included(
    values: Sequence[Any], included: tuple[int, ...], head: bytes = b""
) -> bytes | None:
    """`encode_values` of the arguments at `included` (the others are `ignore`d)."""
    return encode_values([values[i] for i in included], head)
