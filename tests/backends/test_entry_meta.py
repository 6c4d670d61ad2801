"""The packed `meta` field: every part round-trips, and nothing that is not one packs or
unpacks as one."""

from __future__ import annotations

import pytest

from pmm_memo._errors import CodecError
from pmm_memo.backends._entry_meta import SEP, Meta, pack_meta, unpack_meta

PARTS = dict(
    fmt=b"2",
    codec=b"json",
    checksum=b"0123456789abcdef",
    sig=b"ab" * 32,
    check=b"fedcba9876543210",
    fn=b"1107c401a21672201927ea4d",
    scope=b"1a5c9a57c2112dd49a70bf35",
    embedder=b"offline/hash-v2/1536",
    fn_name=b"app.llm.<locals>.complete",
)


def test_every_part_round_trips() -> None:
    packed = pack_meta(**PARTS)
    assert unpack_meta(packed) == Meta(**PARTS)
    assert unpack_meta(packed.decode()) == Meta(**PARTS)  # a decoding client's str


def test_absent_parts_are_empty() -> None:
    packed = pack_meta(**{**PARTS, "sig": None, "scope": None, "embedder": None})
    meta = unpack_meta(packed)
    assert meta is not None
    assert (meta.sig, meta.scope, meta.embedder) == (b"", b"", b"")


@pytest.mark.parametrize(
    "fn_name", [b"", b"a\x1fb", SEP * 9, "caf\u00e9 \ud800".encode("utf-8", "surrogatepass")]
)
def test_the_function_name_may_hold_anything(fn_name: bytes) -> None:
    meta = unpack_meta(pack_meta(**{**PARTS, "fn_name": fn_name}))
    assert meta is not None and meta.fn_name == fn_name and meta.fn == PARTS["fn"]


@pytest.mark.parametrize("part", ["check", "fn", "scope", "embedder"])
def test_a_separator_elsewhere_is_refused_not_stored_unreadable(part: str) -> None:
    with pytest.raises(CodecError, match=part):
        pack_meta(**{**PARTS, part: b"x\x1fy"})


@pytest.mark.parametrize("raw", [None, b"", b"2", SEP.join([b"2"] * 8), "plain text"])
def test_anything_else_is_not_a_meta(raw: object) -> None:
    assert unpack_meta(raw) is None
