"""Class identity for methods: a method's key has the class it is called through (a
subclass never gets its base's answers), and classes of one qualified name made by a
factory, or differing only in their bases or class attributes, never share keys."""

from __future__ import annotations

from pathlib import Path
from typing import Any, ClassVar

import pytest

from pmm_memo import Cache, cached, semantic_lookup
from pmm_memo._identity import class_identity
from pmm_memo._keys import KeyMaker
from tests.conftest import run
from tests.support.modules import load_module


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


# -- classes (the input: Base.kind(1) then Sub.kind(1)) ---------------------------


def _classes(cache: Cache, calls: list[Any], is_async: bool) -> tuple[type, type]:
    if is_async:

        class ABase:
            @cached(tenant="t", cache=cache)
            @classmethod
            async def kind(cls, x: int) -> str:
                calls.append(cls.__name__)
                return f"{cls.__name__}:{x}"

            @cached(tenant="t", cache=cache)
            async def describe(self, x: int) -> str:
                calls.append(type(self).__name__)
                return f"{self.label()}:{x}"

            def label(self) -> str:
                return "base"

        class ASub(ABase):
            def label(self) -> str:
                return "sub"

        return ABase, ASub

    class Base:
        @cached(tenant="t", cache=cache)
        @classmethod
        def kind(cls, x: int) -> str:
            calls.append(cls.__name__)
            return f"{cls.__name__}:{x}"

        @cached(tenant="t", cache=cache)
        def describe(self, x: int) -> str:
            calls.append(type(self).__name__)
            return f"{self.label()}:{x}"

        def label(self) -> str:
            return "base"

    class Sub(Base):
        def label(self) -> str:
            return "sub"

    return Base, Sub


def test_classmethod_key_has_the_class_it_is_called_through(cache: Cache) -> None:
    calls: list[Any] = []
    Base, Sub = _classes(cache, calls, is_async=False)
    assert Base.kind(1) == "Base:1"  # type: ignore[attr-defined]
    assert Sub.kind(1) == "Sub:1"  # type: ignore[attr-defined]
    assert Sub().kind(1) == "Sub:1"  # through an instance: same class, a hit
    assert Base.kind(1) == "Base:1"  # type: ignore[attr-defined]
    assert calls == ["Base", "Sub"]
    assert Base.kind.cache_key(1) != Sub.kind.cache_key(1)  # type: ignore[attr-defined]
    assert Sub.kind.cache_key(1) == Sub().kind.cache_key(1)  # type: ignore[attr-defined]


def test_instance_method_key_has_the_instance_class(cache: Cache) -> None:
    calls: list[Any] = []
    Base, Sub = _classes(cache, calls, is_async=False)
    assert Base().describe(1) == "base:1"
    assert Sub().describe(1) == "sub:1"  # overrides behaviour: never base's answer
    assert Sub().describe(1) == "sub:1"  # another instance of the same class: a hit
    assert Base.describe(Base(), 1) == "base:1"  # type: ignore[call-arg]
    assert calls == ["Base", "Sub"]
    assert Sub().describe.cache_key(1) == Sub.describe.cache_key(Sub(), 1)


def test_class_identity_in_async_methods(cache: Cache) -> None:
    calls: list[Any] = []
    Base, Sub = _classes(cache, calls, is_async=True)

    async def main() -> list[str]:
        return [
            await Base.kind(1),  # type: ignore[attr-defined]
            await Sub.kind(1),  # type: ignore[attr-defined]
            await Base().describe(1),
            await Sub().describe(1),
            await Sub().describe(1),
        ]

    assert run(main()) == ["ABase:1", "ASub:1", "base:1", "sub:1", "sub:1"]
    assert calls == ["ABase", "ASub", "ABase", "ASub"]
    run(cache.aclose())


def test_same_class_name_different_methods_are_different_classes(tmp_path: Path) -> None:
    src = """
    from pmm_memo._keys import KeyMaker

    class Bot:
        def ask(self, q):
            return self.style() + q

        def style(self):
            return {style!r}

    maker = KeyMaker(Bot.ask)
    """
    one = load_module(tmp_path / "one", src.format(style="formal"))
    two = load_module(tmp_path / "two", src.format(style="casual"))

    def key(module: Any) -> bytes:
        call = module.maker.bind(("q",), {}, True).with_instance(module.Bot())
        return bytes(call.material())

    assert key(one) != key(two)  # `ask` is identical; the class's code is not
    same = load_module(tmp_path / "three", src.format(style="formal"))
    assert key(same) == key(one)


def test_instance_state_stays_out_unless_cache_key(cache: Cache) -> None:
    calls: list[Any] = []

    class Plain:
        def __init__(self, region: str) -> None:
            self.region = region

        @cached(tenant="t", cache=cache)
        def price(self, item: str) -> str:
            calls.append(self.region)
            return f"{self.region}:{item}"

    assert Plain("eu").price("x") == "eu:x"
    assert Plain("us").price("x") == "eu:x"  # documented: state is not in the key
    assert calls == ["eu"]


def test_cache_key_state_is_in_the_semantic_scope_too(cache: Cache) -> None:
    class Client:
        def __init__(self, region: str) -> None:
            self.region = region

        def __cache_key__(self) -> str:
            return self.region

        @semantic_lookup(0.5, tenant="t", cache=cache)
        def ask(self, prompt: str) -> str:
            return f"{self.region}:{prompt}"

    assert Client("eu").ask("what is the price of coffee") == "eu:what is the price of coffee"
    # A near-duplicate prompt from another region's client never gets eu's answer.
    assert Client("us").ask("what is the price of coffee?") == "us:what is the price of coffee?"
    assert Client("eu").ask("what is the price of coffee?") == "eu:what is the price of coffee"


def test_versioned_methods_key_no_class_code(tmp_path: Path) -> None:
    src = """
    class A:
        LEVEL = {level!r}

        def f(self, x):
            return x

        def g(self):
            return {body!r}
    """
    one = load_module(tmp_path / "one", src.format(level=1, body="x"))
    edited = load_module(tmp_path / "two", src.format(level=1, body="y"))
    other = load_module(tmp_path / "three", src.format(level=2, body="x"))

    def material(module: Any) -> bytes:
        call = KeyMaker(module.A.f, version="1").bind((1,), {}, True)
        assert call is not None
        return bytes(call.with_instance(module.A()).material())

    assert b"src:" not in material(one) and b"pyc:" not in material(one)  # no code digests
    assert material(one) == material(edited)  # a method edited under version=: same key
    # Values are not edits: a class attribute's value still counts (factory-made classes).
    assert material(one) != material(other)
