"""The value codec: exact round trips, and nothing untrusted is ever executed."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import json
import os
import pickle
import uuid
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pmm_memo import CodecError, allow_type
from pmm_memo._codec import FORMAT_VERSION, Codec, checksum
from pmm_memo._json_tree import allow_types_from_annotation


@allow_type
@dataclasses.dataclass(frozen=True)
class Answer:
    text: str
    score: float
    tags: tuple[str, ...] = ()


class Mood(enum.Enum):
    HAPPY = "happy"


@dataclasses.dataclass
class Unregistered:
    x: int


def roundtrip(codec: Codec, value: Any) -> Any:
    enc = codec.encode(value)
    return codec.decode(FORMAT_VERSION, enc.codec, enc.payload, enc.sig, enc.checksum)


def dec(
    codec: Codec,
    name: bytes | None,
    payload: bytes,
    sig: bytes | None = None,
    fmt: bytes | None = FORMAT_VERSION,
) -> Any:
    """Decode a hand-made entry (with a correct checksum, so the parser itself is tested)."""
    good = checksum(name, payload) if name is not None else None
    return codec.decode(fmt, name, payload, sig, good)


VALUES = [
    "text",
    "",
    "ünï\ud800",
    b"\x00\xff",
    0,
    -(2**80),
    1.5,
    float("inf"),
    float("nan"),
    -0.0,
    True,
    None,
    [1, [2, (3, 4)]],
    (1, "a"),
    {"a": 1, "b": [None]},
    {1: "int key"},
    {"$t": "dollar key"},
    {(1, 2): "tuple key"},
    {1, 2},
    frozenset({"a"}),
    dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.UTC),
    dt.date(2024, 1, 1),
    dt.time(3, 4),
    dt.timedelta(seconds=5),
    decimal.Decimal("1.10"),
    uuid.UUID(int=7),
    Answer("hi", 0.5, ("x",)),
    [Answer("a", 1.0)],
]


@pytest.mark.parametrize("value", VALUES, ids=lambda v: type(v).__name__)
def test_safe_codec_round_trips_exactly(value: Any) -> None:
    out = roundtrip(Codec(), value)
    if isinstance(value, float) and value != value:
        assert out != out
        return
    assert type(out) is type(value)
    assert out == value
    if isinstance(value, float):
        assert str(out) == str(value)  # -0.0 stays -0.0


def test_numpy_round_trip() -> None:
    for arr in (
        np.arange(6, dtype=np.int16).reshape(2, 3),
        np.zeros((0, 4), np.float32),
        np.array([1.5], dtype=">f8"),
    ):
        out = roundtrip(Codec(), arr)
        assert out.dtype == arr.dtype and out.shape == arr.shape and np.array_equal(out, arr)
    scalar = roundtrip(Codec(), np.float32(2.5))
    assert type(scalar) is np.float32 and scalar == 2.5


def test_pydantic_and_enum_round_trip() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Msg(pydantic.BaseModel):
        role: str
        n: int

    out = roundtrip(Codec(), {"m": Msg(role="user", n=2), "mood": Mood.HAPPY})
    assert out == {"m": Msg(role="user", n=2), "mood": Mood.HAPPY}


def test_unknown_classes_are_not_resolved() -> None:
    codec = Codec()
    payload = json.dumps({"$dc": "os:system", "f": {"command": "true"}}).encode()
    with pytest.raises(CodecError, match="not known"):
        dec(codec, b"json", payload)


@dataclasses.dataclass
class OnlyAnnotated:
    v: int


def test_annotation_allows_return_types() -> None:
    payload = json.dumps({"$dc": f"{__name__}:OnlyAnnotated", "f": {"v": 3}}).encode()
    with pytest.raises(CodecError, match="not known"):
        dec(Codec(), b"json", payload)

    def f() -> list[OnlyAnnotated]:
        return []

    allow_types_from_annotation(f)
    assert dec(Codec(), b"json", payload) == OnlyAnnotated(3)


def test_unstorable_values_raise_codec_error() -> None:
    with pytest.raises(CodecError, match="cannot be stored"):
        Codec().encode(object())
    with pytest.raises(CodecError, match="dtype=object"):
        Codec().encode(np.array([object()]))
    with pytest.raises(CodecError, match="CACHE_MAX_VALUE_BYTES"):
        Codec(max_bytes=10).encode("x" * 11)


@pytest.mark.parametrize(
    ("fmt", "codec", "payload"),
    [
        (b"1", b"str", b"x"),  # the previous format (its fields are not in `meta`)
        (b"3", b"str", b"x"),  # unknown format version
        (None, b"str", b"x"),
        (FORMAT_VERSION, b"zip", b"x"),  # unknown codec
        (FORMAT_VERSION, b"json", b'{"a": [1, 2'),  # truncated
        (FORMAT_VERSION, b"json", b'{"$b": "***"}'),  # bad base64
        (FORMAT_VERSION, b"json", b'{"$zz": 1}'),  # unknown tag
        (FORMAT_VERSION, b"json", b'{"$nd": ["|O", [1], "AA=="]}'),  # object array
        (FORMAT_VERSION, b"json", b'{"$s": [[1]]}'),  # unhashable set member
        (FORMAT_VERSION, b"str", b"\xff\xfe"),  # not utf-8
        (FORMAT_VERSION, None, b"x"),
        # Trees that parse but do not build (was: decimal.InvalidOperation, OverflowError,
        # RecursionError, raised past every `except CodecError`):
        (FORMAT_VERSION, b"json", b'{"$dec": "not a number"}'),
        (FORMAT_VERSION, b"json", b'{"$td": [1e300, 0, 0]}'),
        (FORMAT_VERSION, b"json", b"[" * 700 + b"]" * 700),
    ],
)
def test_bad_entries_raise_codec_error(
    fmt: bytes | None, codec: bytes | None, payload: bytes
) -> None:
    with pytest.raises(CodecError):
        dec(Codec(), codec, payload, fmt=fmt)


class Refused(Exception):
    """A result class's own validation error (not a ValueError)."""


STRICT: list[bool] = []


@allow_type
@dataclasses.dataclass(frozen=True)
class Checked:
    score: int

    def __post_init__(self) -> None:
        if STRICT and self.score > 10:
            raise Refused(f"score {self.score} is out of range")


def test_a_stored_value_its_class_now_refuses_is_a_codec_error() -> None:
    """A value stored before its class's validation changed: damage, like any other
    entry this process cannot read (was: the class's own exception, past every `except
    CodecError`: an error instead of a corrupt miss, a whole KNN search failed)."""
    codec = Codec()
    enc = codec.encode(Checked(42))
    assert codec.decode(FORMAT_VERSION, enc.codec, enc.payload, None, enc.checksum) == Checked(42)
    STRICT.append(True)
    try:
        with pytest.raises(CodecError, match="Refused"):
            codec.decode(FORMAT_VERSION, enc.codec, enc.payload, None, enc.checksum)
    finally:
        STRICT.clear()


class _Bomb:
    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> Any:
        return (os.system, (f"touch {self.marker}",))


def test_pickle_never_loaded_without_valid_signature(tmp_path: Path) -> None:
    marker = tmp_path / "exploded"
    bomb = pickle.dumps(_Bomb(marker))
    safe = Codec()
    signed = Codec(allow_pickle=True, signing_key="s" * 32)
    other_key = Codec(allow_pickle=True, signing_key="t" * 32)
    for codec in (safe, signed, other_key):
        for sig in (None, b"0" * 64, b"garbage"):
            with pytest.raises(CodecError):
                dec(codec, b"pickle", bomb, sig)  # even with a valid checksum
    forged = other_key.encode(_Unjsonable(1))  # signed with another key
    with pytest.raises(CodecError, match="signature"):
        signed.decode(FORMAT_VERSION, forged.codec, forged.payload, forged.sig, forged.checksum)
    assert not marker.exists()


class _Unjsonable:
    def __init__(self, v: int) -> None:
        self.v = v


def test_signed_pickle_round_trip_and_signed_safe_entries() -> None:
    codec = Codec(allow_pickle=True, signing_key="s" * 32)
    enc = codec.encode(_Unjsonable(5))
    assert enc.codec == b"pickle" and enc.sig is not None
    assert roundtrip(codec, _Unjsonable(5)).v == 5
    text = codec.encode("hello")
    assert text.codec == b"str" and text.sig is not None  # every entry is signed
    with pytest.raises(CodecError, match="signature"):
        dec(codec, text.codec, b"tampered", text.sig)  # checksum fine, signature not


def test_checksum_catches_payloads_that_would_still_parse() -> None:
    codec = Codec()
    enc = codec.encode("a long answer")
    with pytest.raises(CodecError, match="checksum"):  # truncated text is still text
        codec.decode(FORMAT_VERSION, enc.codec, enc.payload[:6], None, enc.checksum)
    js = codec.encode({"x": 1})
    with pytest.raises(CodecError, match="checksum"):  # json read as str would be a str
        codec.decode(FORMAT_VERSION, b"str", js.payload, None, js.checksum)
    with pytest.raises(CodecError, match="checksum"):
        codec.decode(FORMAT_VERSION, js.codec, js.payload, None, None)


def test_pickle_requires_key() -> None:
    with pytest.raises(CodecError, match="signing key"):
        Codec(allow_pickle=True)


def test_checksum_never_changes() -> None:
    """Entries already stored carry this checksum: XXH3-64 over format, codec, payload
    (format 2; format 1's were 0d5594e076209144 and 9cfc7ae26e0f69c2)."""
    import xxhash

    assert checksum(b"str", b"answer") == b"85727260f3780972"
    assert checksum(b"pickle", b"abc") == b"4017289c2a60e31c"  # a codec without a cached head
    for codec in (b"str", b"json", b"bytes", b"pickle", b"other"):
        for payload in (b"", b"x", bytes(range(256)) * 40, bytes(range(256)) * 300):
            joined = b"".join((FORMAT_VERSION, b"\x00", codec, b"\x00", payload))
            assert checksum(codec, payload) == xxhash.xxh3_64_hexdigest(joined).encode()
