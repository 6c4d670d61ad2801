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

from pmm_memo import Cache, cached
from pmm_memo._identity import code_digest, function_identity, normalised_source
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
