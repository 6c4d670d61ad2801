"""Canonical, type-tagged, length-delimited encoding of argument values.

Pure and I/O-free. The bytes produced here are hashed into cache keys, so they must be
the same in every process, on every machine, for every Python hash seed: nothing here may
depend on `hash()`, `id()`, set iteration order, dict insertion order or `repr()` of
objects that embed memory addresses. Every value starts with a one-byte type tag, and
every variable-length part carries its length, so two different values can never
concatenate into the same bytes (`("ab", "c")` vs `("a", "bc")`).

Deliberate choices (pinned by golden tests; changing one re-keys every user's cache):
- `1`, `1.0` and `True` are different keys (different types, different tags).
- Every NaN is one key (NaN != NaN, but two calls with NaN are the same call);
  `-0.0` and `0.0` are different keys (`math.atan2(0.0, -1)` != `math.atan2(-0.0, -1)`).
- dict and set entries are sorted by their encoded bytes, so insertion order is ignored.
- datetimes encode as ISO text plus `fold` and which zone (not only its offset), so
  the same instant in two time zones is two keys.
- Subclasses of builtins (namedtuples, OrderedDict, str subclasses) carry their class
  name and instance attributes, so `Point(1, 2)` and `(1, 2)` differ.
- Richer types (time zones, dataclasses, pydantic models, numpy subclasses and
  structured dtypes, OrderedDict/defaultdict) keep everything they carry: see
  `_encoding_rich`, which lists what each would otherwise lose.
"""

from __future__ import annotations

import dataclasses
import datetime as _dt
import enum
import math
import struct
import sys
import uuid
from collections.abc import Callable
from decimal import Decimal
from pathlib import PurePath
from typing import Any

from ._errors import UnencodableArgumentError
from ._loaded import loaded_class

_pack_double = struct.Struct(">d").pack
_CANONICAL_NAN = b"f" + _pack_double(math.nan)


class _Unencodable(Exception):
    """Raised deep in the encoder; containers prepend their part of the path as it unwinds,
    so the hot path never formats a path string."""

    def __init__(self, value: object, reason: str) -> None:
        super().__init__(value, reason)
        self.value = value
        self.reason = reason
        self.path = ""

    def within(self, segment: str) -> _Unencodable:
        self.path = segment + self.path
        return self


def _netstring(tag: bytes, data: bytes) -> bytes:
    return tag + str(len(data)).encode() + b":" + data


def _class_path(cls: type) -> bytes:
    return f"{cls.__module__}.{cls.__qualname__}".encode()


Out = list[bytes]
Seen = set[int] | None
_Encoder = Callable[[Any, Out, Seen], None]


def _enc_none(v: None, out: Out, seen: Seen) -> None:
    out.append(b"N")


def _enc_bool(v: bool, out: Out, seen: Seen) -> None:
    out.append(b"T" if v else b"F")


def _enc_int(v: int, out: Out, seen: Seen) -> None:
    out.append(b"i%d;" % v)


def _enc_float(v: float, out: Out, seen: Seen) -> None:
    out.append(_CANONICAL_NAN if v != v else b"f" + _pack_double(v))


def _enc_complex(v: complex, out: Out, seen: Seen) -> None:
    # Each part like a float: -0.0 kept, every NaN one key.
    out.append(b"c")
    _enc_float(v.real, out, seen)
    _enc_float(v.imag, out, seen)


def _enc_str(v: str, out: Out, seen: Seen) -> None:
    # surrogatepass: lone surrogates are legal in a Python str and must not crash the key.
    data = v.encode("utf-8", "surrogatepass")
    out.append(b"s%d:" % len(data))
    out.append(data)


def _enc_bytes(v: bytes, out: Out, seen: Seen) -> None:
    out.append(b"b%d:" % len(v))
    out.append(v)


def _enc_bytearray(v: bytearray, out: Out, seen: Seen) -> None:
    out.append(b"y%d:" % len(v))
    out.append(bytes(v))


def _enter(v: object, seen: Seen) -> set[int]:
    # Containers only: remember what is on the current path to reject cycles with a
    # clear error instead of a RecursionError deep inside the hash.
    seen = set() if seen is None else seen
    if id(v) in seen:
        raise _Unencodable(v, "it contains itself (a recursive structure)")
    seen.add(id(v))
    return seen


def _enc_sequence(tag: bytes) -> _Encoder:
    def encode(v: list[Any] | tuple[Any, ...], out: Out, seen: Seen) -> None:
        inner = _enter(v, seen)
        out.append(tag + b"%d:" % len(v))
        i = 0
        try:
            for i, item in enumerate(v):  # noqa: B007 - i names the failing element
                _encode(item, out, inner)
        except _Unencodable as exc:
            raise exc.within(f"[{i}]") from None
        inner.discard(id(v))

    return encode


def _enc_dict(v: dict[Any, Any], out: Out, seen: Seen) -> None:
    inner = _enter(v, seen)
    pairs = []
    k: Any = None
    try:
        for k, item in v.items():
            sub: Out = []
            _encode(k, sub, inner)
            _encode(item, sub, inner)
            pairs.append(b"".join(sub))
    except _Unencodable as exc:
        raise exc.within(f"[{k!r}]") from None
    inner.discard(id(v))
    pairs.sort()
    out.append(b"d%d:" % len(pairs))
    out.append(b"".join(pairs))


def _enc_set(tag: bytes) -> _Encoder:
    def encode(v: set[Any] | frozenset[Any], out: Out, seen: Seen) -> None:
        inner = _enter(v, seen)
        items = []
        try:
            for item in v:
                sub: Out = []
                _encode(item, sub, inner)
                items.append(b"".join(sub))
        except _Unencodable as exc:
            raise exc.within("{…}") from None
        inner.discard(id(v))
        items.sort()
        out.append(tag + b"%d:" % len(items))
        out.append(b"".join(items))

    return encode


def _enc_datetime(v: _dt.datetime, out: Out, seen: Seen) -> None:
    out.append(_netstring(b"M", v.isoformat().encode()) + b"%d" % v.fold)
    _rich.enc_tzinfo(v.tzinfo, v, out)


def _enc_date(v: _dt.date, out: Out, seen: Seen) -> None:
    out.append(_netstring(b"A", v.isoformat().encode()))


def _enc_time(v: _dt.time, out: Out, seen: Seen) -> None:
    out.append(_netstring(b"O", v.isoformat().encode()) + b"%d" % v.fold)
    _rich.enc_tzinfo(v.tzinfo, None, out)


def _enc_timedelta(v: _dt.timedelta, out: Out, seen: Seen) -> None:
    out.append(b"W%d,%d,%d;" % (v.days, v.seconds, v.microseconds))


def _enc_decimal(v: Decimal, out: Out, seen: Seen) -> None:
    out.append(_netstring(b"C", str(v).encode()))


def _enc_uuid(v: uuid.UUID, out: Out, seen: Seen) -> None:
    out.append(b"U" + v.bytes)


_EXACT: dict[type, _Encoder] = {
    type(None): _enc_none,
    bool: _enc_bool,
    int: _enc_int,
    float: _enc_float,
    complex: _enc_complex,
    str: _enc_str,
    bytes: _enc_bytes,
    bytearray: _enc_bytearray,
    list: _enc_sequence(b"l"),
    tuple: _enc_sequence(b"t"),
    dict: _enc_dict,
    set: _enc_set(b"S"),
    frozenset: _enc_set(b"Z"),
    _dt.datetime: _enc_datetime,
    _dt.date: _enc_date,
    _dt.time: _enc_time,
    _dt.timedelta: _enc_timedelta,
    Decimal: _enc_decimal,
    uuid.UUID: _enc_uuid,
}

# Checked in order for subclasses of builtins (after the special protocols below);
# datetime before date because it subclasses date.
_BASES: tuple[type, ...] = (
    int,
    float,
    complex,
    str,
    bytes,
    bytearray,
    list,
    tuple,
    dict,
    set,
    frozenset,
    _dt.datetime,
    _dt.date,
    _dt.time,
    _dt.timedelta,
    Decimal,
    uuid.UUID,
)


def _encode(v: Any, out: Out, seen: Seen) -> None:
    encoder = _EXACT.get(type(v))
    if encoder is not None:
        encoder(v, out, seen)
    else:
        _encode_other(v, out, seen)


def _encode_other(v: Any, out: Out, seen: Seen) -> None:
    cls = type(v)
    hook = getattr(cls, "__cache_key__", None)
    if hook is not None:
        if not callable(hook):  # `__cache_key__ = "eu"`: would raise a bare TypeError
            raise _Unencodable(
                v,
                f"{cls.__qualname__}.__cache_key__ is not a method: define "
                f"`def __cache_key__(self)` returning what identifies the instance",
            )
        out.append(_netstring(b"K", _class_path(cls)))
        inner = _enter(v, seen)
        try:
            _encode(v.__cache_key__(), out, inner)
        except _Unencodable as exc:
            raise exc.within(".__cache_key__()") from None
        inner.discard(id(v))
        return
    if isinstance(v, enum.Enum):
        out.append(_netstring(b"E", _class_path(cls)))
        if v.name is not None:
            _enc_str(v.name, out, seen)
        else:  # a Flag combination without a name, e.g. Perm(0): its value names it
            out.append(b"v")
            _encode(v.value, out, seen)
        return
    ndarray = loaded_class("numpy", "ndarray")
    if ndarray is not None:
        numpy = sys.modules["numpy"]
        if isinstance(v, ndarray):
            if cls is ndarray:
                _enc_ndarray(v, out, b"a")
            else:
                _rich.enc_ndarray_subclass(v, out, numpy)
            return
        if isinstance(v, numpy.generic):
            _enc_ndarray(numpy.asarray(v), out, b"g")
            return
    if dataclasses.is_dataclass(v) and not isinstance(v, type):
        _rich.enc_dataclass(v, out, seen)
        return
    if isinstance(v, PurePath):
        out.append(_netstring(b"P", _class_path(cls)))
        _enc_str(str(v), out, seen)
        return
    base_model = loaded_class("pydantic", "BaseModel")
    if base_model is not None and isinstance(v, base_model):
        _rich.enc_pydantic(v, out, seen)
        return
    if isinstance(v, dict) and _rich.enc_special_dict(v, out, seen):
        return
    for base in _BASES:
        if isinstance(v, base):
            out.append(_netstring(b"X", _class_path(cls)))
            _EXACT[base](v, out, seen)
            _rich.enc_instance_state(v, out, seen)
            return
    raise _Unencodable(
        v, f"values of type {cls.__module__}.{cls.__qualname__} have no stable encoding"
    )


def _enc_ndarray(v: Any, out: Out, tag: bytes) -> None:
    if v.dtype.hasobject:
        raise _Unencodable(v, "numpy arrays of dtype=object have no stable encoding")
    shape = ",".join(str(n) for n in v.shape).encode()
    out.append(_netstring(tag, _rich.dtype_text(v.dtype)))
    out.append(_netstring(b"", shape))
    out.append(_netstring(b"", v.tobytes(order="C")))


def encode_argument(name: str, value: Any, out: Out) -> None:
    """Append the canonical encoding of `value` (parameter `name`) to `out`.

    Raises UnencodableArgumentError naming the parameter (and the element inside it).
    """
    try:
        _encode(value, out, None)
    except _Unencodable as exc:
        where = name + exc.path
        raise UnencodableArgumentError(
            f"cannot build a cache key from argument {where!r}: {exc.reason}. "
            f"Pass a supported type, define __cache_key__() on it, or leave the "
            f"parameter out with ignore=({name!r},)"
        ) from None
    except RecursionError:
        raise UnencodableArgumentError(
            f"cannot build a cache key from argument {name!r}: it is nested too deeply"
        ) from None


def encode_value(value: Any, name: str = "value") -> bytes:
    """The canonical bytes of one value."""
    out: Out = []
    encode_argument(name, value, out)
    return b"".join(out)


# Last: _encoding_rich uses this module's helpers (at call time).
from . import _encoding_rich as _rich  # noqa: E402
