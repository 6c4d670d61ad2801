"""Encoding audit, one property per encoded type: values a function can tell apart never
share an encoding (and equal values share one where that is promised).

Each test draws pairs from a deliberately small domain, so look-alike pairs (same digits,
another exponent; same wall time, another zone; same data, another dtype) are common,
and compares the encodings with `observe`: everything a function could read from the
value. Property: encode(x) == encode(y)  =>  observe(x) == observe(y).
"""

from __future__ import annotations

import collections
import datetime as dt
import decimal
import enum
import functools
import math
import pathlib
import struct
import uuid
import zoneinfo
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmm_memo import UnencodableArgumentError
from pmm_memo._encoding import encode_value
from tests.support.encoding import PROPERTY, NanoDelta, RuleZone, Tag, never_shared, tagged


def _float_bits(v: float) -> Any:
    return "nan" if math.isnan(v) else struct.pack(">d", v)


# -- numbers --------------------------------------------------------------------------


class Level(enum.IntEnum):
    LOW = 1
    HIGH = 2


class Other(enum.IntEnum):
    LOW = 1


class Perm(enum.Flag):
    R = 1
    W = 2


class Bits(enum.IntFlag):
    A = 1


numbers = st.one_of(
    st.sampled_from([0, 1, -1, 2, True, False, Level.LOW, Level.HIGH, Other.LOW]),
    st.sampled_from([Perm(0), Perm.R, Perm.W, Perm.R | Perm.W, Bits(0), Bits(8), Bits.A]),
    st.sampled_from([0.0, -0.0, 1.0, -1.0, 2.0, math.inf, -math.inf, math.nan]),
    st.sampled_from([np.float16(1), np.float32(1), np.float64(1), np.int32(1), np.int64(1)]),
    st.sampled_from([np.float32(-0.0), np.bool_(True), np.uint8(1)]),
    st.sampled_from([1j, complex(1, 0), complex(1, -0.0), complex(-0.0, 1), complex(math.nan, 0)]),
)


def observe_number(v: Any) -> Any:
    if isinstance(v, enum.Enum):
        return (type(v), v.value)
    if isinstance(v, np.generic):
        return (type(v), np.asarray(v).tobytes())
    if isinstance(v, complex):
        return (type(v), _float_bits(v.real), _float_bits(v.imag))
    if isinstance(v, float):
        return (type(v), _float_bits(v))
    return (type(v), v)


@PROPERTY
@given(numbers, numbers)
def test_numbers(x: Any, y: Any) -> None:
    never_shared(x, y, observe_number)


def test_unnamed_flag_values_encode() -> None:
    # Perm(0) has no name: it used to crash the key builder with an AttributeError.
    assert encode_value(Perm(0)) != encode_value(Perm.R)
    assert encode_value(Bits(8)) != encode_value(Bits(0)) != encode_value(8)


# -- text and bytes -----------------------------------------------------------------------


class Color(enum.StrEnum):
    RED = "red"


small_text = st.sampled_from(["", "a", "red", "\ud800", "é", "e\u0301"])
texts = st.one_of(
    small_text,
    st.builds(tagged, small_text, st.sampled_from([None, "en", "fr"])),
    st.just(Color.RED),
    small_text.map(lambda s: s.encode("utf-8", "surrogatepass")),
    small_text.map(lambda s: bytearray(s.encode("utf-8", "surrogatepass"))),
    small_text.map(pathlib.PurePosixPath),
    small_text.map(pathlib.PureWindowsPath),
)


def observe_text(v: Any) -> Any:
    if isinstance(v, enum.Enum):
        return (type(v), v.value)
    if isinstance(v, bytes | bytearray):
        return (type(v), bytes(v))
    return (type(v), str(v), tuple(sorted(getattr(v, "__dict__", {}).items())))


@PROPERTY
@given(texts, texts)
def test_text_bytes_and_paths(x: Any, y: Any) -> None:
    never_shared(x, y, observe_text)


# -- time -----------------------------------------------------------------------------------

ZONES: list[Any] = [
    None,
    dt.UTC,
    dt.timezone(dt.timedelta(hours=1)),
    dt.timezone(dt.timedelta(hours=1), "CET"),
    dt.timezone(dt.timedelta(hours=2)),
    zoneinfo.ZoneInfo("Europe/Berlin"),
    zoneinfo.ZoneInfo("Europe/Paris"),
    zoneinfo.ZoneInfo("Africa/Lagos"),  # +01:00 all year, no DST
]
# Around the 2024 end of DST in Europe (02:00-03:00 happens twice on Oct 27).
moments = st.builds(
    dt.datetime,
    st.just(2024),
    st.just(10),
    st.sampled_from([26, 27]),
    st.sampled_from([1, 2, 3]),
    st.sampled_from([0, 30]),
    tzinfo=st.sampled_from(ZONES),
    fold=st.sampled_from([0, 1]),
)
times = st.builds(
    dt.time,
    st.sampled_from([1, 2]),
    tzinfo=st.sampled_from(ZONES[:5]),
    fold=st.sampled_from([0, 1]),
)
temporal = st.one_of(
    moments,
    times,
    st.sampled_from([dt.date(2024, 10, 27), dt.timedelta(0), dt.timedelta(days=1)]),
    st.sampled_from([dt.timedelta(seconds=86400), dt.timedelta(microseconds=-1)]),
)


def observe_time(v: Any) -> Any:
    if isinstance(v, dt.datetime | dt.time):
        tz = v.tzinfo
        at = v if isinstance(v, dt.datetime) else None
        zone = None
        if tz is not None:
            zone = (
                type(tz),
                getattr(tz, "key", None),
                tz.tzname(at),
                tz.utcoffset(at),
                tz.dst(at),
            )
        return (type(v), v.replace(tzinfo=None), v.fold, zone)
    return (type(v), v)


@PROPERTY
@given(temporal, temporal)
def test_dates_times_and_zones(x: Any, y: Any) -> None:
    never_shared(x, y, observe_time)


def test_the_same_wall_time_in_two_zones_with_one_offset() -> None:
    berlin = dt.datetime(2024, 1, 15, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin"))
    fixed = berlin.replace(tzinfo=dt.timezone(dt.timedelta(hours=1)))
    assert berlin.isoformat() == fixed.isoformat()  # what the old encoding saw
    assert berlin.tzname() != fixed.tzname()
    assert encode_value(berlin) != encode_value(fixed)


class KeyedZone(RuleZone):
    def __init__(self, summer_hours: int, name: str) -> None:
        super().__init__(summer_hours)
        self.name = name

    def __cache_key__(self) -> str:
        return self.name


class OpaqueZone(dt.tzinfo):
    """Rules the encoder cannot read (an object without a stable encoding)."""

    def __init__(self) -> None:
        self.source = object()

    def utcoffset(self, when: dt.datetime | None) -> dt.timedelta:
        return dt.timedelta(hours=1)


def test_zones_that_agree_now_and_differ_later() -> None:
    """Name, offset and DST at the moment do not identify a zone (dateutil's Berlin and
    Algiers are both CET +01:00 in January): the zone's rules decide."""
    algiers, berlin = RuleZone(1), RuleZone(2)
    jan_a = dt.datetime(2024, 1, 15, 12, tzinfo=algiers)
    jan_b = dt.datetime(2024, 1, 15, 12, tzinfo=berlin)
    assert observe_time(jan_a) == observe_time(jan_b)  # all the moment tells
    assert (jan_a + dt.timedelta(days=180)).utcoffset() != (
        jan_b + dt.timedelta(days=180)
    ).utcoffset()
    assert encode_value(jan_a) != encode_value(jan_b)
    assert encode_value(jan_a) == encode_value(jan_a.replace(tzinfo=RuleZone(1)))
    noon = dt.time(12, tzinfo=algiers)
    assert encode_value(noon) != encode_value(noon.replace(tzinfo=berlin))
    # __cache_key__ on a tzinfo names its rules; rules that cannot be read are an error.
    keyed = [dt.datetime(2024, 1, 15, tzinfo=KeyedZone(2, n)) for n in ("a", "a", "b")]
    assert encode_value(keyed[0]) == encode_value(keyed[1]) != encode_value(keyed[2])
    with pytest.raises(UnencodableArgumentError, match="__cache_key__"):
        encode_value(dt.datetime(2024, 1, 15, tzinfo=OpaqueZone()))


def test_finer_time_of_timedelta_subclasses_counts() -> None:
    one, zero = NanoDelta(0, 1), NanoDelta(0, 0)
    assert (one.days, one.seconds, one.microseconds) == (zero.days, zero.seconds, 0)
    assert encode_value(one) != encode_value(zero)
    assert encode_value(one) == encode_value(NanoDelta(0, 1))


# -- decimal and uuid -------------------------------------------------------------------


decimals = st.sampled_from(
    ["0", "-0", "0.0", "1", "1.0", "1.00", "10", "1E+1", "NaN", "-NaN", "sNaN", "Infinity"]
).map(decimal.Decimal)
uuids = st.integers(0, 3).map(lambda i: uuid.UUID(int=i))


@PROPERTY
@given(st.one_of(decimals, uuids), st.one_of(decimals, uuids))
def test_decimals_and_uuids(x: Any, y: Any) -> None:
    never_shared(x, y, lambda v: (type(v), str(v)))


# -- containers ----------------------------------------------------------------------------

Pair = collections.namedtuple("Pair", "a b")
leaves = st.sampled_from([0, 1, 1.0, True, "a", b"a", None])


def _containers(inner: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
    keys = st.sampled_from([0, 1, 1.0, True, "a", "b"])
    return st.one_of(
        st.lists(inner, max_size=3),
        st.lists(inner, max_size=3).map(tuple),
        st.builds(Pair, inner, inner),
        st.frozensets(keys, max_size=3),
        st.sets(keys, max_size=3),
        st.dictionaries(keys, inner, max_size=3),
        st.lists(st.tuples(keys, inner), max_size=3).map(collections.OrderedDict),
        st.builds(
            collections.defaultdict,
            st.sampled_from([None, int, list]),
            st.dictionaries(keys, inner, max_size=2),
        ),
    )


containers = st.recursive(leaves, _containers, max_leaves=8)


def observe_container(v: Any) -> Any:
    t = type(v)
    if isinstance(v, collections.OrderedDict):
        return (t, tuple((observe_container(k), observe_container(x)) for k, x in v.items()))
    if isinstance(v, dict):
        factory = getattr(v, "default_factory", None)
        items = frozenset((observe_container(k), observe_container(x)) for k, x in v.items())
        return (t, factory, items)
    if isinstance(v, list | tuple):
        return (t, tuple(observe_container(x) for x in v))
    if isinstance(v, set | frozenset):
        return (t, frozenset(observe_container(x) for x in v))
    if isinstance(v, float):
        return (t, _float_bits(v))
    return (t, v)


@settings(max_examples=400, deadline=None)
@given(containers, containers)
def test_containers(x: Any, y: Any) -> None:
    never_shared(x, y, observe_container)


def test_ordered_dict_order_counts_dict_order_does_not() -> None:
    a = collections.OrderedDict([("x", 1), ("y", 2)])
    b = collections.OrderedDict([("y", 2), ("x", 1)])
    assert a != b and encode_value(a) != encode_value(b)
    assert encode_value(dict(a)) == encode_value(dict(b))  # dicts are equal: one key


def test_defaultdict_factory_counts() -> None:
    assert encode_value(collections.defaultdict(int)) != encode_value(collections.defaultdict(list))
    with pytest.raises(UnencodableArgumentError, match="default_factory"):
        encode_value(collections.defaultdict(functools.partial(int)))


def test_subclass_instance_attributes_count() -> None:
    assert encode_value(tagged("a", "en")) != encode_value(tagged("a", "fr"))
    assert encode_value(tagged("a", None)) != encode_value(tagged("a", "en"))
    assert encode_value(tagged("a", None)) == encode_value(Tag("a"))
