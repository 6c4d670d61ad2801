"""Encoding audit of the richer types (`_encoding_rich`): dataclasses, pydantic models and
numpy arrays, one property each as in `test_encoding`; then the look-alike pairs of
every rich type through the decorator, on both backends, sync and async."""

from __future__ import annotations

import collections
import dataclasses
import datetime as dt
import zoneinfo
from typing import Any

import numpy as np
import pydantic
import pytest
from hypothesis import given
from hypothesis import strategies as st

from pmm_memo import UnencodableArgumentError
from pmm_memo._encoding import encode_value
from tests.support.encoding import PROPERTY, NanoDelta, RuleZone, never_shared, tagged

# -- dataclasses and pydantic models ---------------------------------------------------


@dataclasses.dataclass
class Job:
    name: str
    note: str = dataclasses.field(default="", compare=False)
    derived: int = dataclasses.field(init=False, default=0)


@dataclasses.dataclass
class OtherJob:
    name: str
    note: str = ""
    derived: int = 0


def _job(cls: type, name: str, note: str, derived: int) -> Any:
    job = cls(name, note)
    job.derived = derived
    return job


jobs = st.builds(
    _job,
    st.sampled_from([Job, OtherJob]),
    st.sampled_from(["a", "b"]),
    st.sampled_from(["", "urgent"]),
    st.sampled_from([0, 1]),
)


@PROPERTY
@given(jobs, jobs)
def test_dataclasses(x: Any, y: Any) -> None:
    never_shared(x, y, lambda v: (type(v), dataclasses.astuple(v)))


class Inner(pydantic.BaseModel):
    x: int


class InnerToo(pydantic.BaseModel):
    x: int


class Outer(pydantic.BaseModel):
    inner: Inner | InnerToo
    secret: str = pydantic.Field(default="", exclude=True)
    _cache: int = pydantic.PrivateAttr(default=0)


class Loose(pydantic.BaseModel):
    model_config = pydantic.ConfigDict(extra="allow")
    x: int = 0


def _outer(inner_cls: type, x: int, secret: str, private: int) -> Outer:
    model = Outer(inner=inner_cls(x=x), secret=secret)
    model._cache = private
    return model


models = st.one_of(
    st.builds(
        _outer,
        st.sampled_from([Inner, InnerToo]),
        st.sampled_from([1, 2]),
        st.sampled_from(["", "s"]),
        st.sampled_from([0, 1]),
    ),
    st.sampled_from([Loose(), Loose(x=1), Loose(y=1), Loose(x=0, y="1")]),
)


def observe_model(v: Any) -> Any:
    if not isinstance(v, pydantic.BaseModel):
        return (type(v), v)
    fields = {k: observe_model(x) for k, x in v.__dict__.items()}
    return (type(v), sorted(fields.items()), v.__pydantic_extra__, v.__pydantic_private__)


@PROPERTY
@given(models, models)
def test_pydantic_models(x: Any, y: Any) -> None:
    never_shared(x, y, lambda v: repr(observe_model(v)))


# -- numpy --------------------------------------------------------------------------------

DTYPES: list[Any] = [
    np.int32,
    np.int64,
    ">i4",
    np.float32,
    np.uint8,
    [("a", "<i4"), ("b", "<f4")],
    [("x", "<f4"), ("y", "<i4")],
    [("a", "<i4"), ("b", "<i4")],
]


def _array(dtype: Any, shape: tuple[int, ...], fortran: bool, masked: int) -> Any:
    n = int(np.prod(shape))
    base = np.zeros(n, dtype=dtype) if isinstance(dtype, list) else np.arange(n).astype(dtype)
    arr = base.reshape(shape, order="F" if fortran else "C")
    if masked:
        mask = np.zeros(n, dtype=bool)
        mask[: masked - 1] = True
        return np.ma.array(arr, mask=mask.reshape(shape))
    return arr


arrays = st.builds(
    _array,
    st.sampled_from(DTYPES),
    st.sampled_from([(4,), (2, 2), (1, 4)]),
    st.booleans(),
    st.sampled_from([0, 1, 2]),
)


def observe_array(v: Any) -> Any:
    mask = np.ma.getmaskarray(v).tobytes() if isinstance(v, np.ma.MaskedArray) else None
    data = np.asarray(v.data if isinstance(v, np.ma.MaskedArray) else v)
    return (type(v), repr(v.dtype.descr), v.shape, np.ascontiguousarray(data).tobytes(), mask)


@PROPERTY
@given(arrays, arrays)
def test_numpy_arrays(x: Any, y: Any) -> None:
    never_shared(x, y, observe_array)


def test_structured_dtypes_and_masks_regressions() -> None:
    one = np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")])
    two = np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")])
    assert one.dtype.str == two.dtype.str  # "|V8": what the old encoding saw
    assert encode_value(one) != encode_value(two)
    fill = np.ma.array([1, 2], mask=[0, 1]).fill_value
    masked = np.ma.array([1, 2], mask=[0, 1])
    assert encode_value(masked) != encode_value(np.array([1, fill]))
    assert encode_value(masked) != encode_value(np.ma.array([1, 3], mask=[0, 1]))


def test_unknown_array_subclasses_ask_for_cache_key() -> None:
    class Quantity(np.ndarray):
        unit = "m"

    q = np.arange(3).view(Quantity)
    with pytest.raises(UnencodableArgumentError, match="__cache_key__"):
        encode_value(q)


# -- the same look-alike pairs through the decorator, on both backends, sync and async ---

LOOK_ALIKES: list[tuple[str, Any, Any]] = [
    (
        "zone vs fixed offset",
        dt.datetime(2024, 1, 15, 12, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")),
        dt.datetime(2024, 1, 15, 12, tzinfo=dt.timezone(dt.timedelta(hours=1))),
    ),
    (
        "OrderedDict order",
        collections.OrderedDict([("x", 1), ("y", 2)]),
        collections.OrderedDict([("y", 2), ("x", 1)]),
    ),
    ("defaultdict factory", collections.defaultdict(int), collections.defaultdict(list)),
    (
        "structured dtype",
        np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]),
        np.zeros(2, dtype=[("x", "<f4"), ("y", "<i4")]),
    ),
    ("mask", np.ma.array([1, 2], mask=[0, 1]), np.ma.array([1, 2], mask=[0, 0])),
    ("compare=False field", Job("a", "urgent"), Job("a", "")),
    ("nested model class", _outer(Inner, 1, "", 0), _outer(InnerToo, 1, "", 0)),
    ("excluded model field", _outer(Inner, 1, "s", 0), _outer(Inner, 1, "", 0)),
    ("str subclass attribute", tagged("a", "en"), tagged("a", "fr")),
    (
        "zone rules beyond the moment",
        dt.datetime(2024, 1, 15, 12, tzinfo=RuleZone(1)),
        dt.datetime(2024, 1, 15, 12, tzinfo=RuleZone(2)),
    ),
    ("nanoseconds of a timedelta subclass", NanoDelta(0, 1), NanoDelta(0, 0)),
]


@pytest.mark.parametrize(("name", "x", "y"), LOOK_ALIKES, ids=[r[0] for r in LOOK_ALIKES])
def test_look_alikes_get_their_own_results(cache: Any, name: str, x: Any, y: Any) -> None:
    from pmm_memo import cached
    from tests.conftest import run

    seen: list[Any] = []

    @cached(tenant="t", cache=cache)
    def sync_f(v: Any) -> int:
        seen.append(v)
        return len(seen)

    @cached(tenant="t", cache=cache)
    async def async_f(v: Any) -> int:
        seen.append(v)
        return len(seen)

    assert sync_f(x) == 1 and sync_f(y) == 2 and sync_f(x) == 1
    assert run(async_f(x)) == 3 and run(async_f(y)) == 4 and run(async_f(y)) == 4
