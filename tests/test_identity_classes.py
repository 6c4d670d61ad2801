"""Class identity for methods: classes of one qualified name made by a factory, or
differing only in their bases or class attributes, never share keys."""

from __future__ import annotations

from typing import Any, ClassVar

import pytest

from pmm_memo import Cache, cached
from pmm_memo._identity import class_identity
from tests.conftest import run


def make_cls(suffix: str, cache: Cache) -> Any:
    class Model:
        SUFFIX = suffix

        @cached(tenant="t", cache=cache)
        @classmethod
        def kind(cls, x: int) -> str:
            return f"{cls.SUFFIX}:{x}"

        @cached(tenant="t", cache=cache)
        def tag(self, x: int) -> str:
            return f"{self.SUFFIX}:{x}"

        @cached(tenant="t", cache=cache)
        async def atag(self, x: int) -> str:
            return f"{self.SUFFIX}:{x}"

    return Model


def test_factory_made_classes_with_other_attributes(cache: Cache) -> None:
    a, b, a2 = make_cls("a", cache), make_cls("b", cache), make_cls("a", cache)
    assert a.kind(1) == "a:1"
    assert b.kind(1) == "b:1"  # used to be a's answer
    assert a().tag(1) == "a:1"
    assert b().tag(1) == "b:1"  # used to be a's answer
    assert a2().tag(1) == "a:1" and a2.tag.cache_info().hits == 1  # same values: a hit

    async def main() -> list[str]:
        return [await a().atag(1), await b().atag(1)]

    assert run(main()) == ["a:1", "b:1"]
    run(cache.aclose())


def make_plain(suffix: str) -> type:
    class Model:
        SUFFIX = suffix

        def tag(self, x: int) -> str:
            return f"{self.SUFFIX}:{x}"

    return Model


def make_captured(suffix: str) -> type:
    """The value lives only in a method's closure, not in a class attribute."""

    class Model:
        def tag(self, x: int) -> str:
            return f"{suffix}:{x}"

    return Model


class Base:
    LANG = "en"

    def label(self) -> str:
        return "base"


class Mid(Base):
    def label(self) -> str:
        return "mid"


def make_leaf(parent: type) -> type:
    class Leaf(parent):  # type: ignore[valid-type, misc]
        pass

    return Leaf


@pytest.mark.parametrize(
    ("name", "one", "two"),
    [
        ("class attribute", lambda: make_plain("a"), lambda: make_plain("b")),
        ("a method's captured value", lambda: make_captured("a"), lambda: make_captured("b")),
        ("the bases (same own attributes)", lambda: make_leaf(Base), lambda: make_leaf(Mid)),
        (
            "type() with the same qualname",
            lambda: Base,
            lambda: type("Base", (Base,), {"LANG": "fr"}),
        ),
        (
            "a tuple attribute",
            lambda: type("T", (), {"K": (1, 2)}),
            lambda: type("T", (), {"K": (1, 3)}),
        ),
    ],
)
def test_what_tells_classes_apart(name: str, one: Any, two: Any) -> None:
    for versioned in (False, True):  # values count with version= too: they are not edits
        assert class_identity(one(), versioned) != class_identity(two(), versioned)
        assert class_identity(one(), versioned) == class_identity(one(), versioned)


def test_subclass_inheriting_an_override_is_not_confused(cache: Cache) -> None:
    class Greeter(Base):
        @cached(tenant="t", cache=cache)
        def greet(self, name: str) -> str:
            return f"[{self.LANG}:{self.label()}] {name}"

    def sub(parent: type) -> Any:
        class Sub(parent):  # type: ignore[valid-type, misc]
            pass

        return Sub

    class MidGreeter(Mid, Greeter):
        pass

    assert sub(Greeter)().greet("x") == "[en:base] x"
    assert sub(MidGreeter)().greet("x") == "[en:mid] x"  # same qualname, other base


def test_mutable_class_state_does_not_move_keys(cache: Cache) -> None:
    calls: list[int] = []

    class Counter:
        seen: ClassVar[list[int]] = []
        hits = 0

        @cached(tenant="t", cache=cache)
        def f(self, x: int) -> int:
            calls.append(x)
            self.seen.append(x)
            return x

    before = class_identity(Counter, False)
    assert Counter().f(1) == 1 and Counter().f(1) == 1
    assert calls == [1]
    assert class_identity(Counter, False) == before
