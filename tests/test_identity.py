"""Function and class identity in keys: a result computed by different code is never
served; the same code keeps its keys from another directory or machine."""

from __future__ import annotations

import functools
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest

from pmm_memo import Cache, cached, semantic_lookup
from pmm_memo._identity import code_digest, function_identity, normalised_source
from pmm_memo._keys import KeyMaker
from tests.conftest import run
from tests.support.modules import load_module

ROOT = Path(__file__).resolve().parent.parent

# -- programs sharing one Redis (the input), as real subprocesses ---------------

_SCRIPT = """\
import functools
import os
from pmm_memo import cached

computed = []

@cached(tenant="pmm_llm")
def summarize(text: str) -> str:
    computed.append(text)
    return {answer!r} + text

print(summarize("report"), "computed" if computed else "hit")
"""


def _run_script(path: Path, cwd: Path, url: str) -> str:
    env = {**os.environ, "CACHE_REDIS_URL": url, "CACHE_EMBEDDER": "offline"}
    env["PYTHONPATH"] = str(ROOT)
    out = subprocess.run(
        [sys.executable, str(path)], cwd=cwd, env=env, capture_output=True, text=True, timeout=120
    )
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_two_main_scripts_on_one_redis_never_share_answers(redis_url: str, tmp_path: Path) -> None:
    a = tmp_path / "a" / "summarize.py"
    b = tmp_path / "b" / "summarize.py"
    for path, answer in ((a, "A says: "), (b, "B says: ")):
        path.parent.mkdir()
        path.write_text(_SCRIPT.format(answer=answer))
    assert _run_script(a, a.parent, redis_url) == "A says: report computed"
    assert _run_script(b, b.parent, redis_url) == "B says: report computed"
    assert _run_script(a, a.parent, redis_url) == "A says: report hit"
    assert _run_script(b, b.parent, redis_url) == "B says: report hit"


def test_same_script_from_other_directories_and_copies_still_hits(
    redis_url: str, tmp_path: Path
) -> None:
    script = tmp_path / "one" / "job.py"
    script.parent.mkdir()
    script.write_text(_SCRIPT.format(answer="same: "))
    assert _run_script(script, script.parent, redis_url) == "same: report computed"
    assert _run_script(script, tmp_path, redis_url) == "same: report hit"  # another cwd
    # Another checkout (another machine): other absolute path, same code.
    other = tmp_path / "elsewhere" / "deeper" / "job.py"
    other.parent.mkdir(parents=True)
    shutil.copy(script, other)
    assert _run_script(other, other.parent, redis_url) == "same: report hit"


def test_edited_script_on_one_redis_recomputes(redis_url: str, tmp_path: Path) -> None:
    script = tmp_path / "job.py"
    script.write_text(_SCRIPT.format(answer="v1: "))
    assert _run_script(script, tmp_path, redis_url) == "v1: report computed"
    script.write_text(_SCRIPT.format(answer="v2: "))
    assert _run_script(script, tmp_path, redis_url) == "v2: report computed"


def test_programs_without_source_are_told_apart_by_bytecode(redis_url: str) -> None:
    env = {**os.environ, "CACHE_REDIS_URL": redis_url, "CACHE_EMBEDDER": "offline"}
    env["PYTHONPATH"] = str(ROOT)

    def run_c(answer: str) -> str:
        code = _SCRIPT.format(answer=answer)
        out = subprocess.run(
            [sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=120
        )
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    assert run_c("x: ") == "x: report computed"
    assert run_c("y: ") == "y: report computed"
    assert run_c("x: ") == "x: report hit"


# -- in-process: what changes an identity and what does not ------------------------------


@pytest.mark.parametrize(
    ("before", "after", "same"),
    [
        ("def f(x):\n    return x + 1\n", "def f(x):\n    return x + 2\n", False),
        ("def f(x):\n    return x\n", "def f(x, y=1):\n    return x\n", False),
        ("def f(x=1):\n    return x\n", "def f(x=2):\n    return x\n", False),
        ("def f(x):\n    return x\n", "async def f(x):\n    return x\n", False),
        ("def f(x):\n    return x\n", 'def f(x):\n    """Doc."""\n    return x\n', False),
        # Not part of the identity: decorators above the def, blank lines, position,
        # trailing whitespace, CRLF line endings.
        ("@dec(1)\ndef f(x):\n    return x\n", "@dec(2)\n@dec(3)\ndef f(x):\n    return x\n", True),
        ("def f(x):\n    return x\n", "\n\n\n# moved down\n\ndef f(x):\n    return x\n", True),
        ("def f(x):\n    return x\n", "def f(x):   \n    return x\r\n", True),
    ],
)
def test_what_changes_a_function_identity(
    tmp_path: Path, before: str, after: str, same: bool
) -> None:
    prelude = "def dec(n):\n    return lambda f: f\n"
    one = load_module(tmp_path / "one", prelude + before).f
    two = load_module(tmp_path / "two", prelude + after).f
    assert (function_identity(one, None) == function_identity(two, None)) is same
    # An explicit version replaces the code digest: entries survive any edit.
    assert function_identity(one, "3") == function_identity(two, "3") == "mod.f@3"


def test_indentation_and_nesting_level_do_not_count() -> None:
    def outer() -> Any:
        def inner(x: int) -> int:
            return x

        return inner

    text = normalised_source(outer())
    assert text == "def inner(x: int) -> int:\n    return x"


def test_closures_with_different_captured_values_are_different_code(cache: Cache) -> None:
    def make(language: str, client: object) -> Any:
        @cached(tenant="t", cache=cache)
        def summarize(text: str) -> str:
            assert client is not None  # captured, unencodable: left out of the identity
            return f"{language}:{text}"

        return summarize

    en, fr, en2 = make("en", object()), make("fr", object()), make("en", object())
    assert en("x") == "en:x"
    assert fr("x") == "fr:x"  # not the English answer
    assert en2("x") == "en:x" and en2.cache_info().hits == 1


def test_recursive_and_builtin_callables_have_identities() -> None:
    def fact(n: int) -> int:
        return 1 if n <= 1 else n * fact(n - 1)

    assert "#src:" in function_identity(fact, None)
    assert code_digest(len) == "name"
    assert function_identity(len, None) == "builtins.len=builtin:builtins.len"


def test_source_less_functions_use_bytecode(tmp_path: Path) -> None:
    ns: dict[str, Any] = {}
    exec("def f(x):\n    return x + 1\n", ns)
    exec("def g(x):\n    return x + 2\n", ns)
    f_id, g_id = code_digest(ns["f"]), code_digest(ns["g"])
    assert f_id.startswith("pyc:") and g_id.startswith("pyc:") and f_id != g_id
    ns2: dict[str, Any] = {}
    exec("def f(x):\n    return x + 1\n", ns2)
    assert code_digest(ns2["f"]) == f_id


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


# -- decorated objects that are not plain functions ------------------------------------------


def _add(a: int, b: int) -> int:
    return a + b


class Scaler:
    def __init__(self, k: int, client: object = None) -> None:
        self.k, self.client = k, client

    def __call__(self, x: int) -> int:
        return x * self.k

    def scale(self, x: int) -> int:
        return x * self.k


@pytest.mark.parametrize(
    ("name", "make"),
    [
        ("partial", lambda n: functools.partial(_add, n)),
        ("partial keyword", lambda n: functools.partial(_add, b=n)),
        ("callable instance", lambda n: Scaler(n, object())),
        ("bound method", lambda n: Scaler(n, object()).scale),
    ],
)
def test_decorated_objects_carry_what_they_are_bound_to(cache: Cache, name: str, make: Any) -> None:
    two, three = cached(tenant="t", cache=cache)(make(2)), cached(tenant="t", cache=cache)(make(3))
    assert two(1) == make(2)(1)
    assert three(1) == make(3)(1)  # used to be two's answer
    again = cached(tenant="t", cache=cache)(make(2))
    assert again(1) == make(2)(1)
    if name != "bound method":  # a bound method decorated directly is a pass-through
        assert again.cache_info().hits == 1


def _notebook_cell(cell: str, source: str) -> Any:
    """What IPython does with a cell: its source registered in linecache, compiled under
    a pseudo file name, run in `__main__`'s namespace."""
    import linecache

    filename = f"<ipython-input-{cell}>"
    linecache.cache[filename] = (len(source), None, source.splitlines(True), filename)
    ns: dict[str, Any] = {"__name__": "__main__"}
    exec(compile(source, filename, "exec"), ns)
    return ns["summarize"]


def test_notebook_cells_are_told_apart_by_their_source(cache: Cache) -> None:
    one = _notebook_cell("1-aa", "def summarize(text):\n    return 'A:' + text\n")
    two = _notebook_cell("7-bb", "def summarize(text):\n    return 'B:' + text\n")
    rerun = _notebook_cell("9-cc", "def summarize(text):\n    return 'A:' + text\n")
    assert code_digest(one).startswith("src:")
    f1, f2, f3 = (cached(tenant="t", cache=cache)(f) for f in (one, two, rerun))
    assert f1("x") == "A:x" and f2("x") == "B:x"
    assert f3("x") == "A:x" and f3.cache_info().hits == 1  # the same cell run again


def test_identity_never_fails_on_odd_objects() -> None:
    class Raises:
        def __cache_key__(self) -> str:
            raise RuntimeError("broken")

    def make(captured: object) -> Any:
        def f(x: int) -> object:
            return captured

        return f

    looped: Any = make(1)
    looped.__wrapped__ = looped  # a __wrapped__ cycle
    for func in (make(Raises()), make(object()), looped):
        assert function_identity(func, None).startswith("tests.test_identity.")
    assert "+state:" in function_identity(_Stateful(Raises()), None)


class _Stateful:
    def __init__(self, inner: object) -> None:
        self.inner = inner

    def __call__(self) -> object:
        return self.inner
