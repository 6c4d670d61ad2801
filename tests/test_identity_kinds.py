"""What kind of object a value is, for function identity (`_identity_kinds`): the
classification decides whether a value counts by its code, by its value, or not at all,
so each kind is pinned here directly."""

from __future__ import annotations

import enum
import functools
import operator
import re
from typing import Any

import pytest

from pmm_memo._identity_kinds import (
    accessors,
    enumerate_named,
    home_of,
    is_code_like,
    is_constant,
    python_call,
    qualified_name,
)


class Mode(enum.Enum):
    FAST = 1


class Caller:
    def __call__(self, x: int) -> int:
        return x

    def method(self) -> None: ...


def plain(x: int) -> int:
    return x


@pytest.mark.parametrize(
    ("obj", "name"),
    [
        (plain, "tests.test_identity_kinds.plain"),
        (Caller.method, "tests.test_identity_kinds.Caller.method"),
        (Caller, "tests.test_identity_kinds.Caller"),
        (len, "builtins.len"),
        (str.upper, "builtins.str.upper"),  # a method descriptor: its class's module
        (dict.__dict__["fromkeys"], "builtins.dict.fromkeys"),
    ],
)
def test_qualified_name_is_module_and_qualname(obj: Any, name: str) -> None:
    assert qualified_name(obj) == name


@pytest.mark.parametrize(
    "value",
    ["s", b"b", 1, 1.5, 1j, True, None, Mode.FAST, (1, "a", (None,)), frozenset({1, 2})],
)
def test_immutable_values_are_constants(value: Any) -> None:
    assert is_constant(value)


@pytest.mark.parametrize("value", [[1], {"a": 1}, {1}, (1, [2]), object(), plain])
def test_mutable_or_opaque_values_are_not_constants(value: Any) -> None:
    assert not is_constant(value)


def test_deeply_nested_tuples_stop_counting_as_constants() -> None:
    nested: Any = 1
    for _ in range(12):
        nested = (nested,)
    assert not is_constant(nested)  # bounded recursion: left out rather than walked


@pytest.mark.parametrize(
    "value",
    [
        plain,
        Caller,
        functools.partial(plain, 1),
        Caller().method,
        classmethod(plain),
        staticmethod(plain),
        property(plain),
        functools.cached_property(plain),
        re.compile("a+"),
        len,
        str.upper,
        "a".upper,
        operator.itemgetter(1),
    ],
)
def test_code_like_values(value: Any) -> None:
    assert is_code_like(value)


@pytest.mark.parametrize("value", [Caller(), 1, "s", [plain]])
def test_instances_and_data_are_not_code_like(value: Any) -> None:
    assert not is_code_like(value)


def test_python_call_only_for_instances_of_python_callable_classes() -> None:
    assert python_call(Caller()) is Caller.__dict__["__call__"]
    assert python_call(Caller) is None  # a class is called through its metaclass
    assert python_call(functools.lru_cache(plain)) is None  # a C callable
    assert python_call(1) is None


def test_home_of_follows_partials_and_bound_methods() -> None:
    here = "tests.test_identity_kinds"
    assert home_of(functools.partial(functools.partial(plain, 1))) == here
    assert home_of(Caller().method) == here
    assert home_of(Caller()) == here  # a callable instance: its class's module
    assert home_of(len) == "builtins"


def test_small_helpers() -> None:
    assert list(enumerate_named((1, 2))) == [("args[0]", 1), ("args[1]", 2)]
    assert list(enumerate_named(3)) == [("args[0]", 3)]  # a lone argument
    prop = property(plain)
    assert accessors(prop) == [plain, None, None]
