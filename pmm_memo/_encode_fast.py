"""Key material of a whole call in one pass: the hot path of every cache hit.

Byte-for-byte the generic encoder's output (`_encoding`; a property test pins the fast
paths to it), without its per-value dispatch for the common shapes: str, small int, and
short lists/tuples of str. Pure and I/O-free.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from ._encoding import (
    _CANONICAL_NAN,
    _EXACT,
    _encode,
    _pack_double,
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


def _str_sequence(v: list[Any] | tuple[Any, ...], out: list[bytes]) -> bool:
    """A short list/tuple of plain str (retrieved passages, stop words, message texts):
    the generic encoder's bytes without its per-element dispatch and cycle bookkeeping
    (a sequence of str cannot contain itself). False, leaving `out` as it was, for
    anything else."""
    heads = _SEQ_HEAD[type(v)]
    if len(v) >= len(heads):
        return False
    start = len(out)
    append = out.append
    append(heads[len(v)])
    for item in v:
        if type(item) is not str:
            del out[start:]
            return False
        data = item.encode()  # see encode_values
        n = len(data)
        append(_STR_HEAD[n] if n < _STR_LIMIT else b"s%d:" % n)
        append(data)
    return True


def encode_values(values: Sequence[Any]) -> bytes | None:
    """The arguments' encodings concatenated in one pass: the hot path of every cache hit.

    Produces exactly the concatenation of the per-argument encodings (a property test
    pins the fast paths to the generic encoder); returns None when an argument cannot
    be encoded, so the caller can take the slow path that names it.
    """
    out: list[bytes] = []
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
                append(_STR_HEAD[n] if n < _STR_LIMIT else b"s%d:" % n)
                append(data)
            elif t is int and 0 <= v < 256:
                append(_SMALL_INT[v])
            elif t is float:  # inlined _enc_float (temperature, top_p, ...)
                append(b"f" + _pack_double(v) if v == v else _CANONICAL_NAN)
            elif (t is list or t is tuple) and _str_sequence(v, out):
                pass
            else:
                encoder = _EXACT.get(t)
                if encoder is not None:
                    encoder(v, out, None)
                else:
                    _encode(v, out, None)
    except UnicodeEncodeError:
        return _generic(values)
    except (_Unencodable, RecursionError):
        return None
    return b"".join(out)


def _generic(values: Sequence[Any]) -> bytes | None:
    """`encode_values` by the generic encoder alone (a str with a lone surrogate)."""
    out: list[bytes] = []
    try:
        for v in values:
            _encode(v, out, None)
    except (_Unencodable, RecursionError):
        return None
    return b"".join(out)


def encode_included(values: Sequence[Any], included: tuple[int, ...]) -> bytes | None:
    """`encode_values` of the arguments at `included` (the others are `ignore`d)."""
    return encode_values([values[i] for i in included])
