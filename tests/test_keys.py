"""Keys: golden values (must never change), binding equivalences, type distinctions,
hypothesis properties, and stability across processes with different hash seeds."""

from __future__ import annotations

import dataclasses
import datetime as dt
import decimal
import enum
import math
import os
import pathlib
import subprocess
import sys
import uuid
import zoneinfo
from collections import OrderedDict, namedtuple
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmm_memo import ConfigError, UnencodableArgumentError
from pmm_memo._digests import check_digest, qhash
from pmm_memo._encoding import encode_value
from pmm_memo._identity import function_identity
from pmm_memo._keys import KeyMaker


def _golden_complete(prompt: str, model: str = "gpt-4o-mini", temperature: float = 0.0) -> None:
    """Stand-in with a fixed identity: golden keys must not depend on this file's path."""


# Golden keys hash this function's identity: its module/qualname below and a digest of
# its source text above (from the `def` line, dedented). Do not edit either; the file's
# location and the lines around the function do not matter.
_golden_complete.__module__ = "golden"
_golden_complete.__qualname__ = "complete"
GOLDEN_IDENTITY = "golden.complete#src:0e2e54e1820021a1e0df125a"

# Key scheme pmm2 (function identity with code digest). Changed deliberately once, from
# pmm1 (module.qualname only); see CHANGELOG. From here on these must never change.
GOLDEN_CALLS = [
    (None, ("hello",), "cbbfa1ad0973377659ae5f29b0b9033a", "b6c804fbbc907562"),
    (None, ("hello", "gpt-4o"), "a8c269c5a5caad363947fa189d6efe95", "c25bef1b2f89aabd"),
    (None, ("hello", "gpt-4o-mini", 0.7), "dc6f073bcd3e8dde36c5a6ee6ebf2535", "ceb75f97e88f3f93"),
    ("1", ("hello",), "2b80d662a53792219dbaab8e20af100e", "f0f902d8bf2bf465"),
    ("1", ("hello", "gpt-4o"), "1d4fa2da91c89c18c17b3c4b4510cd27", "01bc13aa6ae0ac6e"),
    ("1", ("hello", "gpt-4o-mini", 0.7), "730abe60a4eac4428315f4b5035e293f", "32b10700bf0d520f"),
]

GOLDEN_VALUES: dict[str, tuple[Any, str]] = {
    "none": (None, "626d368fe0e74b4f1a038927df1311d6"),
    "true": (True, "1d33c0bd3511c80d20948828081ddcb4"),
    "one": (1, "c3d8523c272c18fb5f79164a38c7d984"),
    "onef": (1.0, "17d29d6657bed9b0e5cc2902c4d18dd6"),
    "nan": (float("nan"), "e6f3ecce6b6258c6cf4864359784bbde"),
    "negzero": (-0.0, "d156bb30be11708f6a7dec2974768fe4"),
    "str": ("héllo", "eb6ea8f91cd29d8000af3553fe96e11d"),
    "bytes": (b"\x00\xff", "ca231f3fbc0fa51158f6f1a896a0d986"),
    "list": ([1, "a"], "3071cc5588012977bd82d1f380f3e02d"),
    "tuple": ((1, "a"), "dcfad574e2e1cfe21dc0b65e0a332513"),
    "dict": ({"b": 1, "a": [2.5]}, "4d3daca0b52854c692e1e082a744700b"),
    "set": ({3, 1, 2}, "e9435fd3747a0e56fa4414c7bd1f973d"),
    "arr": (np.arange(4, dtype=np.int32).reshape(2, 2), "e5903521e60900e56a1662158f6e3a81"),
    # Changed deliberately with key scheme pmm2 (fold + which zone): was 384db04c...
    "dt": (dt.datetime(2024, 1, 2, 3, 4, 5, tzinfo=dt.UTC), "ae54744986ddcb5b021e381cfb1d1e58"),
    "naive_dt": (dt.datetime(2024, 1, 2, 3, 4, 5), "251e7133067ed953b39c0421cb2bf2d2"),
    "zone_dt": (
        dt.datetime(2024, 10, 27, 2, 30, fold=1, tzinfo=zoneinfo.ZoneInfo("Europe/Berlin")),
        "a7b5989b69a6a0dacd2f0ef4bd5c922b",
    ),
    "time": (
        dt.time(1, 2, tzinfo=dt.timezone(dt.timedelta(hours=1), "CET")),
        "4891bba60499fa6f3f5e863c22534b34",
    ),
    "complex": (complex(1, -0.0), "a542b5d3d67822cb1ee5947f96395b93"),
    "odict": (OrderedDict([("b", 1), ("a", 2)]), "cb6053746f108769e2f2612fa040bb92"),
    "struct": (
        np.zeros(2, dtype=[("a", "<i4"), ("b", "<f4")]),
        "9f773330c7066a906394097c65fe77c1",
    ),
    "dec": (decimal.Decimal("1.10"), "878e47f0e5a7266e36f2e72fa0743ac9"),
    "uuid": (uuid.UUID(int=1), "a09a135b4f4a7e81183330d0f7377082"),
    "td": (dt.timedelta(days=1, seconds=2), "6d628ea0286b2d039a6b39fa03c062ef"),
}


def test_golden_function_identity_never_changes() -> None:
    assert function_identity(_golden_complete, None) == GOLDEN_IDENTITY


@pytest.mark.parametrize(("version", "args", "qhash_hex", "check"), GOLDEN_CALLS)
def test_golden_call_keys_never_change(
    version: str | None, args: tuple[Any, ...], qhash_hex: str, check: str
) -> None:
    call = KeyMaker(_golden_complete, version=version).bind(args, {}, False)
    assert call is not None
    assert qhash(call.material()) == qhash_hex
    assert check_digest(call.material()) == check


@pytest.mark.parametrize("name", sorted(GOLDEN_VALUES))
def test_golden_value_encodings_never_change(name: str) -> None:
    value, expected = GOLDEN_VALUES[name]
    assert qhash(encode_value(value)) == expected


def _key(func: Any, *args: Any, **kwargs: Any) -> bytes:
    call = KeyMaker(func).bind(args, kwargs, False)
    assert call is not None
    return call.material()


def f3(a: Any, b: Any = 2, c: Any = 3) -> None: ...


def test_binding_equivalences() -> None:
    base = _key(f3, 1)
    assert _key(f3, 1, 2) == base
    assert _key(f3, 1, b=2) == base
    assert _key(f3, a=1, b=2) == base
    assert _key(f3, c=3, a=1) == base
    assert _key(f3, 1, 2, 3) == base
    assert _key(f3, 1, 3) != base


def test_varargs_and_kwonly_bind() -> None:
    def g(a: Any, *rest: Any, k: Any = 0, **extra: Any) -> None: ...

    assert _key(g, 1, 2, 3, k=1, z=2) == _key(g, 1, 2, 3, z=2, k=1)
    assert _key(g, 1, 2) != _key(g, 1, 2, 3)
    assert _key(g, 1, x=1) != _key(g, 1, y=1)


def test_bad_call_does_not_bind() -> None:
    maker = KeyMaker(f3)
    assert maker.bind((), {}, False) is None
    assert maker.bind((1,), {"a": 2}, False) is None
    assert maker.bind((1, 2, 3, 4), {}, False) is None
    assert maker.bind((1,), {"nope": 2}, False) is None


@pytest.mark.parametrize(
    ("x", "y"),
    [
        (1, 1.0),
        (1, True),
        (1.0, True),
        (0, False),
        (0, None),
        ("1", 1),
        (b"a", "a"),
        ([1], (1,)),
        ({1}, frozenset({1})),
        ([1, 2], [2, 1]),
        (0.0, -0.0),
        ("", b""),
        (bytearray(b"a"), b"a"),
        ({"a": 1}, [("a", 1)]),
        (("ab", "c"), ("a", "bc")),
        (np.array([1, 2], dtype=np.int32), np.array([1, 2], dtype=np.int64)),
        (np.array([1, 2]), np.array([[1, 2]])),
        (dt.date(2024, 1, 1), "2024-01-01"),
    ],
)
def test_distinct_values_distinct_keys(x: Any, y: Any) -> None:
    assert encode_value(x) != encode_value(y)


def test_equal_values_equal_keys() -> None:
    assert encode_value({"a": 1, "b": 2}) == encode_value({"b": 2, "a": 1})
    assert encode_value({3, 1, 2}) == encode_value({1, 2, 3})
    assert encode_value(float("nan")) == encode_value(-float("nan")) == encode_value(math.nan)
    assert encode_value(np.arange(6).reshape(2, 3)) == encode_value(
        np.asfortranarray(np.arange(6).reshape(2, 3))
    )


class Color(enum.Enum):
    RED = 1
    BLUE = 2


class Level(enum.IntEnum):
    LOW = 1


@dataclasses.dataclass(frozen=True)
class Point:
    x: int
    y: int
    note: str = dataclasses.field(default="", compare=False)


class Account:
    def __init__(self, ident: str) -> None:
        self.ident = ident

    def __cache_key__(self) -> str:
        return self.ident


def test_supported_types_encode() -> None:
    values = [
        Color.RED,
        Level.LOW,
        Point(1, 2),
        pathlib.PurePosixPath("/a/b"),
        pathlib.PureWindowsPath("C:/a"),
        uuid.uuid4(),
        decimal.Decimal("NaN"),
        dt.time(1, 2),
        dt.date(2020, 1, 1),
        np.float32(1.5),
        np.int64(3),
        Account("u1"),
        OrderedDict(a=1),
        namedtuple("P", "x y")(1, 2),
    ]
    for v in values:
        assert encode_value(v)
    assert encode_value(Level.LOW) != encode_value(1)
    # Every field counts, compare=False ones too: the function can read them.
    assert encode_value(Point(1, 2, "a")) != encode_value(Point(1, 2, "b"))
    assert encode_value(Account("u1")) == encode_value(Account("u1"))
    assert encode_value(Account("u1")) != encode_value(Account("u2"))
    assert encode_value(namedtuple("P", "x y")(1, 2)) != encode_value((1, 2))


def test_pydantic_models_encode() -> None:
    pydantic = pytest.importorskip("pydantic")

    class Msg(pydantic.BaseModel):
        role: str
        content: str

    assert encode_value(Msg(role="user", content="hi")) == encode_value(
        Msg(content="hi", role="user")
    )
    assert encode_value(Msg(role="user", content="hi")) != encode_value(
        Msg(role="user", content="ho")
    )


def test_unencodable_names_parameter_and_path() -> None:
    def h(messages: Any) -> None: ...

    with pytest.raises(UnencodableArgumentError, match=r"messages\[0\]\['x'\].*object"):
        _key(h, [{"x": object()}])
    with pytest.raises(TypeError, match="messages"):
        _key(h, lambda: 1)
    cyclic: list[Any] = [1]
    cyclic.append(cyclic)
    with pytest.raises(UnencodableArgumentError, match="recursive"):
        _key(h, cyclic)
    with pytest.raises(UnencodableArgumentError, match="dtype=object"):
        _key(h, np.array([object()]))


def test_options_are_checked_at_decoration() -> None:
    with pytest.raises(ConfigError, match="nope"):
        KeyMaker(f3, ignore=("nope",))
    with pytest.raises(ConfigError, match="text_arg='zz'"):
        KeyMaker(f3, text_arg="zz")


def test_ignore_and_version_and_identity() -> None:
    def g(a: Any, client: Any = None) -> None: ...

    maker = KeyMaker(g, ignore=("client",))
    c1, c2 = maker.bind((1, object()), {}, False), maker.bind((1, object()), {}, False)
    assert c1 is not None and c2 is not None and c1.material() == c2.material()
    v2 = KeyMaker(g, ignore=("client",), version="2").bind((1,), {}, False)
    assert v2 is not None and v2.material() != c1.material()

    def other(a: Any, client: Any = None) -> None: ...

    o = KeyMaker(other, ignore=("client",)).bind((1,), {}, False)
    assert o is not None and o.material() != c1.material()


def test_scope_excludes_only_the_text_argument() -> None:
    def ask(prompt: str, model: str = "m", user_id: str | None = None) -> None: ...

    maker = KeyMaker(ask)
    assert maker.text_arg == "prompt" and maker.user_arg == "user_id"
    a = maker.bind(("hi",), {}, False)
    b = maker.bind(("hello",), {}, False)
    c = maker.bind(("hi",), {"model": "x"}, False)
    d = maker.bind(("hi",), {"user_id": "u"}, False)
    assert a and b and c and d
    assert a.scope_material() == b.scope_material()
    assert a.scope_material() != c.scope_material() != d.scope_material()
    # Before or after the key material's per-argument encodings exist (a str text is
    # left out without encoding it, anything else through them): the same bytes.
    for args in [("hi", "x", "u"), (["not", "str"], "x", None), ("ünï\ud800", 3, "u")]:
        fresh, encoded = (maker.bind(args, {}, False) for _ in range(2))
        assert fresh and encoded
        encoded._encode_segments()
        assert fresh.scope_material() == encoded.scope_material()


scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(),
    st.binary(),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(
        st.lists(inner, max_size=4),
        st.tuples(inner, inner),
        st.dictionaries(st.text(max_size=5), inner, max_size=4),
        st.frozensets(st.one_of(st.integers(), st.text(max_size=5)), max_size=4),
    ),
    max_leaves=12,
)


def _same(x: Any, y: Any) -> bool:
    """Equality that also compares types all the way down (1 vs 1.0 vs True differ)."""
    if type(x) is not type(y):
        return False
    if isinstance(x, float):
        return x == y and math.copysign(1, x) == math.copysign(1, y)
    if isinstance(x, list | tuple):
        return len(x) == len(y) and all(_same(a, b) for a, b in zip(x, y, strict=True))
    if isinstance(x, dict):
        return (
            x.keys() == y.keys()
            and all(_same(x[k], y[k]) for k in x)
            and all(type(k) is type(next(j for j in y if j == k)) for k in x)
        )
    if isinstance(x, frozenset):
        return x == y and sorted(map(repr, x)) == sorted(map(repr, y))
    return bool(x == y)


@settings(max_examples=300, deadline=None)
@given(values, values)
def test_property_equal_iff_same(x: Any, y: Any) -> None:
    assert (encode_value(x) == encode_value(y)) == _same(x, y)


@settings(max_examples=200, deadline=None)
@given(values)
def test_property_deterministic(x: Any) -> None:
    assert encode_value(x) == encode_value(x)


_CROSS_PROCESS = """
import sys
sys.path.insert(0, {root!r})
from tests.test_keys import _golden_complete, GOLDEN_VALUES
from pmm_memo._digests import qhash
from pmm_memo._keys import KeyMaker
from pmm_memo._encoding import encode_value
from pmm_memo._identity import function_identity
call = KeyMaker(_golden_complete).bind(({{"b": 1, "a": {{3, 1, 2}}}},), {{}}, False)
print(qhash(call.material()), qhash(encode_value({{"x", "y", "z", "w"}})))
"""


def test_keys_stable_across_hash_seeds() -> None:
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    outputs = set()
    for seed in ("0", "1", "12345", "random"):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, "-c", _CROSS_PROCESS.format(root=root)],
            env=env,
            capture_output=True,
            text=True,
            check=True,
        )
        outputs.add(out.stdout.strip())
    assert len(outputs) == 1


def test_hash_secret_changes_every_key_but_keeps_them_stable() -> None:
    from pmm_memo import Cache, CacheConfig, cached

    def make(secret: str | None) -> str:
        cache = Cache(CacheConfig(embedder="offline", hash_secret=secret))

        @cached(tenant="t", cache=cache)
        def f(x: int) -> int:
            return x

        return f.cache_key(1)

    assert make(None) == make(None)
    assert make("s3cret-value") == make("s3cret-value")
    assert len({make(None), make("s3cret-value"), make("another")}) == 3
