"""The `meta` field of a Redis entry: the envelope and identity fields packed into one.

Why one field: a Redis hash holding a vector is a hashtable, where every field costs
~45 bytes of its own besides its name and value (measured on Valkey 9), and every field
is two more arguments for the client to pack on each write and, when read, one more
reply to parse. Nothing in here is indexed or filtered on by the server, so nothing is
lost by packing: `fmt` (the entry format), `codec`, `sum` (the envelope checksum), `sig`
(the HMAC, when signing), `check` (collision digest), `fn` (function tag), `scope`,
`embedder` (the vector's label) and `fn_name` (for people) — nine fields become one.

Layout: those values joined by the unit separator 0x1F, in that order, `fn_name` last
(it alone may hold any character: the split stops before it). An absent value is empty.
A value that would need the separator is refused when written (`CodecError`), so a
stored `meta` always splits into exactly nine parts; anything else is not ours.

Entries of the previous format (`fmt` 1: one hash field each) have no `meta`: a read
finds none and the entry is a miss, rewritten in this format by the miss's own store.
"""

from __future__ import annotations

from typing import Any, NamedTuple

from .._errors import CodecError

SEP = b"\x1f"
NO_META = "entry has no readable `meta` field (damaged, or not an entry of this format)"
_PARTS = 9  # fmt, codec, sum, sig, check, fn, scope, embedder, fn_name


class Meta(NamedTuple):
    """An entry's packed fields, as bytes (empty: absent)."""

    fmt: bytes
    codec: bytes
    checksum: bytes
    sig: bytes
    check: bytes
    fn: bytes
    scope: bytes
    embedder: bytes
    fn_name: bytes


def _token(name: str, value: bytes) -> bytes:
    if SEP in value:
        raise CodecError(f"entry field {name!r} contains the byte 0x1f; it cannot be stored")
    return value


def pack_meta(
    fmt: bytes,
    codec: bytes,
    checksum: bytes,
    sig: bytes | None,
    check: bytes,
    fn: bytes,
    scope: bytes | None,
    embedder: bytes | None,
    fn_name: bytes,
) -> bytes:
    """The `meta` value. Raises CodecError when a value (other than `fn_name`) holds the
    separator: the entry is then not stored, never stored unreadable."""
    return SEP.join(
        (
            fmt,
            codec,
            checksum,
            sig or b"",
            _token("check", check),
            _token("fn", fn),
            _token("scope", scope or b""),
            _token("embedder", embedder or b""),
            fn_name,
        )
    )


def unpack_meta(raw: Any) -> Meta | None:
    """The packed fields of a stored `meta` (bytes as the server returns them, or str
    from a decoding client); None when it is absent or not a `meta` of this layout."""
    if raw is None:
        return None
    if not isinstance(raw, bytes):
        raw = str(raw).encode("utf-8", "surrogatepass")
    parts = raw.split(SEP, _PARTS - 1)
    if len(parts) != _PARTS:
        return None
    return Meta._make(parts)
