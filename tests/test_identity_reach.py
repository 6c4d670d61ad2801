"""What a function's identity reaches beyond its own text: decorator layers, captured
callables, lambdas that share a line, and the module-level constants it reads. Each
kind: different behaviour never shares a key; the same code keeps its key across
processes (other hash seeds, other directories)."""

from __future__ import annotations

import functools
import json
import operator
import os
import re
import subprocess
import sys
import textwrap
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pmm_memo import Cache, cached
from pmm_memo._identity import function_identity
from tests.conftest import run
from tests.support.modules import load_module

ROOT = Path(__file__).resolve().parent.parent

# -- 1. decorator layers: every layer of the __wrapped__ chain counts --------------------


def with_prefix(p: str) -> Callable[[Callable[[str], str]], Callable[[str], str]]:
    def deco(fn: Callable[[str], str]) -> Callable[[str], str]:
        @functools.wraps(fn)
        def wrapper(x: str) -> str:
            return p + fn(x)

        return wrapper

    return deco


def shout(fn: Callable[[str], str]) -> Callable[[str], str]:
    @functools.wraps(fn)
    def wrapper(x: str) -> str:
        return fn(x) + "!"

    return wrapper


def whisper(fn: Callable[[str], str]) -> Callable[[str], str]:
    @functools.wraps(fn)
    def wrapper(x: str) -> str:
        return fn(x) + "..."

    return wrapper


def base(x: str) -> str:
    return x.upper()


class Suffix:
    """A class-based decorator: a callable instance that wraps (functools.update_wrapper)."""

    def __init__(self, fn: Callable[[str], str], end: str) -> None:
        functools.update_wrapper(self, fn)
        self.fn, self.end = fn, end

    def __call__(self, x: str) -> str:
        return self.fn(x) + self.end


LAYERED = [
    ("parametrised decorator", lambda: with_prefix("A:")(base), lambda: with_prefix("B:")(base)),
    ("decorators with other code", lambda: shout(base), lambda: whisper(base)),
    (
        "an inner layer's parameter",
        lambda: with_prefix("A:")(with_prefix("x")(base)),
        lambda: with_prefix("A:")(with_prefix("y")(base)),
    ),
    ("class-based decorator", lambda: Suffix(base, "!"), lambda: Suffix(base, "?")),
    (
        "lru_cache around layers",
        lambda: functools.lru_cache(shout(base)),
        lambda: functools.lru_cache(whisper(base)),
    ),
]


@pytest.mark.parametrize(("name", "one", "two"), LAYERED, ids=[c[0] for c in LAYERED])
def test_every_decorator_layer_is_in_the_identity(
    cache: Cache, name: str, one: Callable[[], Any], two: Callable[[], Any]
) -> None:
    first, second = cached(tenant="t", cache=cache)(one()), cached(tenant="t", cache=cache)(two())
    assert first("q") == one()("q")
    assert second("q") == two()("q")  # used to be first's answer
    again = cached(tenant="t", cache=cache)(one())
    assert again("q") == one()("q") and again.cache_info().hits == 1


def test_async_parametrised_decorator(cache: Cache) -> None:
    def tagged(tag: str) -> Any:
        def deco(fn: Any) -> Any:
            @functools.wraps(fn)
            async def wrapper(x: str) -> str:
                return tag + await fn(x)

            return wrapper

        return deco

    async def ask(x: str) -> str:
        return x

    a = cached(tenant="t", cache=cache)(tagged("A:")(ask))
    b = cached(tenant="t", cache=cache)(tagged("B:")(ask))

    async def main() -> list[str]:
        return [await a("q"), await b("q"), await a("q")]

    assert run(main()) == ["A:q", "B:q", "A:q"]
    assert a.cache_info().hits == 1
    run(cache.aclose())


# -- 2. captured callables: identified recursively ---------------------------------------


def make(fmt: Callable[[Any], Any]) -> Callable[[Any], Any]:
    def render(x: Any) -> Any:
        return fmt(x)

    return render


def times(k: int) -> Callable[[int], int]:
    def m(x: int) -> int:
        return x * k

    return m


def twice(f: Callable[[int], int]) -> Callable[[int], int]:
    def t(x: int) -> int:
        return f(f(x))

    return t


class Multiplier:
    def __init__(self, k: int) -> None:
        self.k = k

    def __call__(self, x: int) -> int:
        return x * self.k


def _op(sign: int) -> Callable[[int], int]:
    if sign > 0:

        def op(x: int) -> int:
            return x + 1
    else:

        def op(x: int) -> int:
            return x - 1

    return op


CAPTURED = [
    ("method descriptor", str.upper, str.lower, "MiXed"),
    ("bound builtin method", "-".join, "+".join, "ab"),
    ("closure-made function", times(2), times(3), 7),
    ("closure of a closure", twice(times(2)), twice(times(3)), 7),
    ("same qualname, other code", _op(1), _op(-1), 7),
    ("partial", functools.partial(pow, 2), functools.partial(pow, 3), 5),
    ("operator.itemgetter", operator.itemgetter(0), operator.itemgetter(1), "ab"),
    ("callable instance", Multiplier(2), Multiplier(3), 7),
    ("compiled pattern method", re.compile("a").findall, re.compile("b").findall, "aab"),
    ("lambdas", lambda x: x + 1, lambda x: x - 1, 7),
]


@pytest.mark.parametrize(("name", "f", "g", "arg"), CAPTURED, ids=[c[0] for c in CAPTURED])
def test_captured_callables_are_identified_by_what_they_do(
    cache: Cache, name: str, f: Any, g: Any, arg: Any
) -> None:
    assert f(arg) != g(arg)
    assert function_identity(make(f), None) != function_identity(make(g), None)
    assert function_identity(make(f), None) == function_identity(make(f), None)
    one, two = cached(tenant="t", cache=cache)(make(f)), cached(tenant="t", cache=cache)(make(g))
    assert one(arg) == f(arg)
    assert two(arg) == g(arg)  # used to be one's answer


def test_captured_cycles_terminate() -> None:
    def even(n: int) -> bool:
        return n == 0 or odd(n - 1)

    def odd(n: int) -> bool:
        return n != 0 and even(n - 1)

    ident = function_identity(make(even), None)
    assert ident == function_identity(make(even), None)
    assert function_identity(make(odd), None) != ident
    looped: list[Any] = []
    looped.append(looped)  # no stable encoding: left out, identity still computed
    assert function_identity(make(looped.count), None).startswith(f"{__name__}.make.")


# -- 3. lambdas that share a line, defaults that carry data ------------------------------


def test_two_lambdas_on_one_line(cache: Cache) -> None:
    inc, dec = cached(tenant="t", cache=cache)(lambda x: x + 1), cached(tenant="t", cache=cache)(lambda x: x - 1)  # noqa: E501  # fmt: skip
    assert inc(10) == 11
    assert dec(10) == 9  # used to be inc's answer
    ops = {"double": lambda x: x * 2, "square": lambda x: x**2}
    assert cached(tenant="t", cache=cache)(ops["double"])(3) == 6
    assert cached(tenant="t", cache=cache)(ops["square"])(3) == 9


def test_lambdas_made_in_a_loop_differ_by_their_defaults(cache: Cache) -> None:
    scale = [cached(tenant="t", cache=cache)(lambda x, k=k: x * k) for k in (2, 3)]
    assert [f(5) for f in scale] == [10, 15]


def test_a_default_read_from_a_name_counts(tmp_path: Path) -> None:
    src = "LANG = {lang!r}\n\ndef f(text, lang=LANG):\n    return lang + text\n"
    en = load_module(tmp_path / "en", src.format(lang="en")).f
    fr = load_module(tmp_path / "fr", src.format(lang="fr")).f
    assert function_identity(en, None) != function_identity(fr, None)


# -- 4. module-level constants the function reads ----------------------------------------


_PROGRAM = """
import enum
import os
from os.path import join

class Mode(enum.Enum):
    FAST = 1
    SLOW = 2

LANG = {lang!r}
LIMITS = {limits!r}
MODE = Mode.{mode}
SEEN = []
COUNT = 0

def helper(text):
    return text + {helper!r}

def summarize(text):
    global COUNT
    COUNT += 1
    SEEN.append(text)
    words = [w for w in text.split() if len(w) < LIMITS[0]]
    return LANG, MODE, helper(" ".join(words)), join("a", "b"), os.sep
"""


@pytest.mark.parametrize(
    ("change", "same"),
    [
        ({"lang": "French"}, False),  # a str constant
        ({"limits": (5, 9)}, False),  # a tuple, read inside a comprehension
        ({"mode": "SLOW"}, False),  # an enum member
        ({"helper": "?"}, False),  # a helper of the same module, by its code
        ({}, True),
    ],
)
def test_module_constants_the_function_reads(
    tmp_path: Path, change: dict[str, Any], same: bool
) -> None:
    values = {"lang": "English", "limits": (4, 9), "mode": "FAST", "helper": "."}
    one = load_module(tmp_path / "one", _PROGRAM.format(**values)).summarize
    two = load_module(tmp_path / "two", _PROGRAM.format(**{**values, **change})).summarize
    assert (function_identity(one, None) == function_identity(two, None)) is same
    # version= leaves module-level names out: the escape hatch for constants that do not
    # change results (and for entries that must survive their edits).
    assert function_identity(one, "1") == function_identity(two, "1")


def test_assigned_and_mutated_names_are_state_not_identity(tmp_path: Path) -> None:
    module = load_module(
        tmp_path / "m", _PROGRAM.format(lang="en", limits=(4,), mode="FAST", helper=".")
    )
    before = function_identity(module.summarize, None)
    module.COUNT = 7  # `global COUNT; COUNT += 1` in the function: state, not identity
    assert function_identity(module.summarize, None) == before
    # SEEN, a list the function appends to, is state too: its value at the first call
    # would give every process its own key (tests/test_global_values.py).
    module.summarize("a b c")
    assert function_identity(module.summarize, None) == before
    module.LIMITS = (5,)  # data the function only reads counts by value
    assert function_identity(module.summarize, None) != before


def test_two_programs_with_other_constants_on_one_redis(redis_url: str, tmp_path: Path) -> None:
    script = """
        from pmm_memo import cached
        LANGUAGE = {lang!r}

        @cached(tenant="pmm_llm")
        def summarize(text: str) -> str:
            return f"summary in {{LANGUAGE}}: {{text[:20]}}"

        print(summarize("The quick brown fox"), summarize.cache_info().hits)
    """
    env = {**os.environ, "CACHE_REDIS_URL": redis_url, "CACHE_EMBEDDER": "offline"}
    env["PYTHONPATH"] = str(ROOT)
    outputs = []
    for lang in ("English", "French", "English"):
        path = tmp_path / lang / "prog.py"
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(script.format(lang=lang)))
        out = subprocess.run(
            [sys.executable, str(path)], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        outputs.append(out.stdout.strip())
    assert outputs == [
        "summary in English: The quick brown fox 0",
        "summary in French: The quick brown fox 0",  # used to be the English answer
        "summary in English: The quick brown fox 1",  # the same program again: a hit
    ]


# -- stable across processes: other hash seeds, other directories ------------------------

_PROBE = """
import functools, json, operator, re, sys
sys.path.insert(0, {root!r})
from pmm_memo._identity import class_identity, function_identity
from tests import test_identity_reach as t

def make_cls(suffix):
    class Model:
        SUFFIX = suffix
        def tag(self, x):
            return suffix + x
    return Model

cases = {{
    "wraps": t.with_prefix("A:")(t.base),
    "class-based": t.Suffix(t.base, "!"),
    "closure": t.make(t.twice(t.times(3))),
    "partial": t.make(functools.partial(pow, 2)),
    "builtin": t.make("-".join),
    "itemgetter": t.make(operator.itemgetter(1)),
    "pattern": t.make(re.compile("a+", re.I).findall),
    "set": t.make(frozenset({{"a", "b", "c", 1.5}}).__contains__),
    "lambda": t.make(lambda x: x + 1),
}}
out = {{name: function_identity(f, None) for name, f in cases.items()}}
out["class"] = class_identity(make_cls("a"), False).decode()
print(json.dumps(out))
"""


def test_identities_are_stable_across_processes(tmp_path: Path) -> None:
    probe = tmp_path / "probe.py"
    probe.write_text(_PROBE.format(root=str(ROOT)))
    seen = []
    for seed, cwd in (("1", tmp_path), ("2", ROOT), ("3", Path("/"))):
        env = {**os.environ, "PYTHONHASHSEED": seed}
        out = subprocess.run(
            [sys.executable, str(probe)], cwd=cwd, env=env, capture_output=True, text=True
        )
        assert out.returncode == 0, out.stderr
        seen.append(json.loads(out.stdout))
    assert seen[0] == seen[1] == seen[2]
    assert len(set(seen[0].values())) == len(seen[0])
