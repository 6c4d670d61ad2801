"""Module-level data a function reads by name is part of what it computes (issue 8 §1).

Two programs whose function text is the same but whose `SETTINGS = {...}` differ, or one
script whose global is bound in `if __name__ == "__main__":` after the decorator ran,
never get each other's answers; the same program run again still hits. The identity is
taken at the first call (value at that moment), once, on every backend, sync and async,
for every kind of callable the decorators take.
"""

from __future__ import annotations

import asyncio
import dataclasses
import datetime
import decimal
import logging
import multiprocessing
import os
import pathlib
import subprocess
import sys
import textwrap
import threading
from pathlib import Path
from typing import Any, NamedTuple

import pytest

import pmm_memo._keys
from pmm_memo import Cache
from pmm_memo._global_values import MAX_ITEMS, data_token, is_plain_data
from pmm_memo._identity import function_identity
from tests.support.modules import load_module

ROOT = Path(__file__).resolve().parent.parent


def _program(tmp_path: Path, name: str, source: str, **names: Any) -> Any:
    """Import `source` as module `prog` of its own directory (one program each), after
    `names` are set in its namespace (what `cache=` the decorators use)."""
    return load_module(tmp_path / name, source, "prog", preset=names)


@dataclasses.dataclass(frozen=True)
class _Settings:
    model: str


class _Pair(NamedTuple):
    lang: str
    n: int


# -- which values count ------------------------------------------------------------------


@pytest.mark.parametrize(
    "value",
    [
        {"lang": "French"},
        ["a", 1, 2.5, None, True, b"x"],
        {"nested": {"list": [1, (2, {3})], "set": {"a", "b"}}},
        ({"tuple": "of a dict"},),
        {1: "int keys", 2.5: "float keys", None: frozenset({1, 2})},
    ],
)
def test_plain_data_counts_by_value(value: Any) -> None:
    assert is_plain_data(value)
    token = data_token(value, "G")
    assert token is not None and token.startswith(b"data:")
    assert data_token(value, "G") == token  # deterministic


@pytest.mark.parametrize(
    "value",
    [
        logging.getLogger("pmm_memo"),
        threading.Lock(),
        {"client": logging.getLogger("x")},  # a container holding an instance
        [object()],
        list(range(MAX_ITEMS + 1)),  # too large to read once per function
    ],
)
def test_what_is_not_plain_data_is_left_out(value: Any) -> None:
    assert not is_plain_data(value)
    assert data_token(value, "G") is None


def test_dict_and_set_order_never_change_the_token() -> None:
    one = {"a": 1, "b": [1, 2], "s": {"x", "y", "z"}}
    two = {"s": {"z", "y", "x"}, "b": [1, 2], "a": 1}
    assert data_token(one, "G") == data_token(two, "G")
    assert data_token({"b": [2, 1]}, "G") != data_token({"b": [1, 2]}, "G")


_READER = """
import logging, threading
log = logging.getLogger("prog")
LOCK = threading.Lock()
SETTINGS = {settings!r}

def summarize(text):
    with LOCK:
        log.debug("summarizing")
        return SETTINGS["lang"] + ":" + text
"""


def test_identity_follows_the_data_and_leaves_instances_out(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    fr = _program(tmp_path, "fr", _READER.format(settings={"lang": "French"})).summarize
    en = _program(tmp_path, "en", _READER.format(settings={"lang": "English"})).summarize
    fr2 = _program(tmp_path, "fr2", _READER.format(settings={"lang": "French"})).summarize
    with caplog.at_level(logging.DEBUG, logger="pmm_memo"):
        assert function_identity(fr, None) != function_identity(en, None)
        assert function_identity(fr, None) == function_identity(fr2, None)
    # The logger and the lock are named, once per identity, at DEBUG (never a warning).
    lines = [r for r in caplog.records if "left out (not plain data)" in r.getMessage()]
    assert lines and all(r.levelno == logging.DEBUG for r in lines)
    assert "LOCK (lock)" in lines[0].getMessage() and "log (Logger)" in lines[0].getMessage()
    # version= replaces code digests and module-level values: entries survive both.
    assert function_identity(fr, "1") == function_identity(en, "1")


# -- keys: both backends, sync and async, every kind of callable -------------------------

_KINDS = """
import asyncio, functools
from pmm_memo import cached, semantic_lookup

SETTINGS = {settings!r}

def _say(text):
    return SETTINGS["lang"] + ":" + text

@cached(cache=CACHE)
def plain(text):
    return _say(text)

@cached(cache=CACHE)
async def coro(text):
    await asyncio.sleep(0)
    return SETTINGS["lang"] + ":" + text

as_lambda = cached(cache=CACHE)(lambda text: SETTINGS["lang"] + ":" + text)

def _two(prefix, text):
    return prefix + SETTINGS["lang"] + ":" + text

as_partial = cached(cache=CACHE)(functools.partial(_two, ""))

class Tool:
    @cached(cache=CACHE)
    def method(self, text):
        return SETTINGS["lang"] + ":" + text

    @cached(cache=CACHE)
    @classmethod
    def klass(cls, text):
        return SETTINGS["lang"] + ":" + text

    @cached(cache=CACHE)
    @staticmethod
    def static(text):
        return SETTINGS["lang"] + ":" + text

@semantic_lookup(threshold=0.99, cache=CACHE)
def semantic(text):
    return SETTINGS["lang"] + ":" + text

def calls():
    return {{
        "plain": lambda t: plain(t),
        "coro": lambda t: asyncio.run(coro(t)),
        "lambda": lambda t: as_lambda(t),
        "partial": lambda t: as_partial(t),
        "method": lambda t: Tool().method(t),
        "classmethod": lambda t: Tool.klass(t),
        "staticmethod": lambda t: Tool.static(t),
        "semantic": lambda t: semantic(t),
    }}
"""


def test_two_programs_with_other_settings_never_share_answers(cache: Cache, tmp_path: Path) -> None:
    fr = _program(tmp_path, "fr", _KINDS.format(settings={"lang": "French"}), CACHE=cache)
    en = _program(tmp_path, "en", _KINDS.format(settings={"lang": "English"}), CACHE=cache)
    again = _program(tmp_path, "fr2", _KINDS.format(settings={"lang": "French"}), CACHE=cache)
    text = "The quarterly report shows growth."
    for kind, call in fr.calls().items():
        assert call(text) == "French:" + text, kind
        assert en.calls()[kind](text) == "English:" + text, kind  # used to be French
        assert again.calls()[kind](text) == "French:" + text, kind
    # The same program again hits (one call computed per program and kind, not three).
    assert again.plain.cache_info().hits == 1
    assert again.coro.cache_info().hits == 1
    assert again.Tool.klass.cache_info().hits == 1


_LATE = """
from pmm_memo import cached

@cached(cache=CACHE)
def summarize(text):
    return f"[summary in {LANG}] {text}"

@cached(cache=CACHE)
async def asummarize(text):
    return f"[summary in {LANG}] {text}"
"""


def test_a_global_bound_after_the_decorator_counts(cache: Cache, tmp_path: Path) -> None:
    # `if __name__ == "__main__": LANG = sys.argv[1]`: bound after decoration, before
    # the first call, which is when the identity is taken.
    runs = []
    for lang in ("French", "English", "French"):
        module = _program(tmp_path, lang + str(len(runs)), _LATE, CACHE=cache)
        module.LANG = lang
        runs.append(
            (
                module.summarize("x"),
                asyncio.run(module.asummarize("x")),
                module.summarize.cache_info().hits,
            )
        )
    assert runs == [
        ("[summary in French] x", "[summary in French] x", 0),
        ("[summary in English] x", "[summary in English] x", 0),
        ("[summary in French] x", "[summary in French] x", 1),
    ]


def test_the_value_at_the_first_call_is_the_one_kept(
    memory_cache: Cache, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    computed = []
    real = pmm_memo._keys.function_identity

    def counting(func: Any, version: str | None) -> str:
        computed.append(func)
        return real(func, version)

    monkeypatch.setattr(pmm_memo._keys, "function_identity", counting)
    module = _program(tmp_path, "p", _READER.format(settings={"lang": "French"}))
    summarize = pmm_memo.cached(cache=memory_cache)(module.summarize)
    assert computed == []  # not at decoration
    key = summarize.cache_key("x")
    for _ in range(50):
        summarize("x")
    # Mutating the dict later in the process is not followed: documented.
    module.SETTINGS["lang"] = "German"
    assert summarize.cache_key("x") == key
    assert len(computed) == 1  # once per function, never on the hit path


def test_threads_racing_on_the_first_call_agree(memory_cache: Cache, tmp_path: Path) -> None:
    module = _program(tmp_path, "p", _READER.format(settings={"lang": "French"}))
    summarize = pmm_memo.cached(cache=memory_cache)(module.summarize)
    barrier = threading.Barrier(64)  # concurrent ast.parse raised SystemError (3.11)
    keys: list[str] = []

    def first_call() -> None:
        barrier.wait()
        keys.append(summarize.cache_key("x"))
        summarize("x")

    threads = [threading.Thread(target=first_call) for _ in range(64)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(keys) == 64 and len(set(keys)) == 1


def test_an_identity_that_cannot_be_computed_never_breaks_the_call(
    memory_cache: Cache, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(func: Any, version: str | None) -> str:
        raise RuntimeError("odd object")

    monkeypatch.setattr(pmm_memo._keys, "function_identity", broken)
    calls = []

    @pmm_memo.cached(cache=memory_cache)
    def f(x: int) -> int:
        calls.append(x)
        return x + 1

    assert (f(1), f(1)) == (2, 2) and calls == [1]  # cached within this process
    # Its entries are its own: another decoration of the same code never shares them.
    again = pmm_memo.cached(cache=memory_cache)(f.__wrapped__)
    assert again.cache_key(1) != f.cache_key(1)


def _child_key(summarize: Any, out: Any) -> None:
    out.put(summarize.cache_key("x"))


@pytest.mark.skipif(not hasattr(os, "fork"), reason="fork start method")
def test_a_forked_child_keeps_or_takes_the_same_identity(
    memory_cache: Cache, tmp_path: Path
) -> None:
    module = _program(tmp_path, "p", _READER.format(settings={"lang": "French"}))
    summarize = pmm_memo.cached(cache=memory_cache)(module.summarize)
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    before = ctx.Process(target=_child_key, args=(summarize, out))  # child resolves
    before.start()
    child_first = out.get(timeout=60)
    before.join(60)
    key = summarize.cache_key("x")  # the parent resolves now
    after = ctx.Process(target=_child_key, args=(summarize, out))  # inherits it
    after.start()
    assert out.get(timeout=60) == child_first == key
    after.join(60)


# -- the same as two programs against one real server ------------------------------------

_SCRIPT = """
import sys
from pmm_memo import cached
SETTINGS = {{"lang": {lang!r}, "tags": ["a", "b"]}}

@cached(tenant="pmm_llm")
def summarize(text: str) -> str:
    return f"[summary in {{SETTINGS['lang']}}, {{LANG}}] {{text[:20]}}"

if __name__ == "__main__":
    LANG = sys.argv[1]
    print(summarize("The quarterly report shows growth."), summarize.cache_info().hits)
"""


def test_programs_and_runs_on_one_redis(redis_url: str, tmp_path: Path) -> None:
    env = {**os.environ, "CACHE_REDIS_URL": redis_url, "PYTHONPATH": str(ROOT)}
    outputs = []
    for lang, arg in (("French", "fr"), ("English", "fr"), ("French", "en"), ("French", "fr")):
        path = tmp_path / lang / "prog.py"  # one script per setting, run from elsewhere
        path.parent.mkdir(exist_ok=True)
        path.write_text(textwrap.dedent(_SCRIPT.format(lang=lang)))
        out = subprocess.run(
            [sys.executable, str(path), arg],
            cwd=tmp_path,
            env=env,
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert out.returncode == 0, out.stderr
        outputs.append(out.stdout.strip())
    assert outputs == [
        "[summary in French, fr] The quarterly report 0",
        "[summary in English, fr] The quarterly report 0",  # another SETTINGS dict
        "[summary in French, en] The quarterly report 0",  # another argv, bound late
        "[summary in French, fr] The quarterly report 1",  # the same program again: a hit
    ]


@pytest.mark.parametrize(
    "one, two",
    [
        (decimal.Decimal("0.1"), decimal.Decimal("0.2")),
        (datetime.date(2026, 1, 1), datetime.date(2026, 1, 2)),
        (pathlib.PurePosixPath("/a"), pathlib.PurePosixPath("/b")),
        (_Settings(model="small"), _Settings(model="large")),
        (_Pair("fr", 1), _Pair("en", 1)),
        ({"models": [_Settings(model="small")]}, {"models": [_Settings(model="large")]}),
    ],
    ids=["Decimal", "date", "path", "frozen dataclass", "namedtuple", "dict of dataclasses"],
)
def test_values_the_encoder_encodes_count_by_value(one: Any, two: Any) -> None:
    """`CONFIG = Settings(model="small")` decides answers as much as a dict would."""
    assert data_token(one, "G") is not None
    assert data_token(one, "G") == data_token(one, "G")
    assert data_token(one, "G") != data_token(two, "G")


def test_numpy_arrays_count_by_value_up_to_a_size() -> None:
    np = pytest.importorskip("numpy")
    assert data_token(np.array([1, 2]), "G") != data_token(np.array([1, 3]), "G")
    assert data_token(np.zeros((1 << 20) // 8 + 1), "G") is None  # over MAX_BYTES: not read
    assert data_token([decimal.Decimal(1)] * (MAX_ITEMS + 1), "G") is None


def test_two_programs_with_other_settings_objects_get_other_identities(tmp_path: Path) -> None:
    source = """
        import dataclasses, decimal

        @dataclasses.dataclass(frozen=True)
        class Settings:
            model: str

        CONFIG = Settings(model={model!r})
        RATE = decimal.Decimal({rate!r})

        def summarize(text):
            return f"{{CONFIG.model}}:{{RATE}}:{{text}}"
    """
    small = load_module(tmp_path / "a", source.format(model="small", rate="0.1"), "prog")
    large = load_module(tmp_path / "b", source.format(model="large", rate="0.1"), "prog")
    again = load_module(tmp_path / "c", source.format(model="small", rate="0.1"), "prog")
    dearer = load_module(tmp_path / "d", source.format(model="small", rate="0.2"), "prog")
    ids = [function_identity(m.summarize, None) for m in (small, large, again, dearer)]
    assert ids[0] == ids[2]
    assert len({ids[0], ids[1], ids[3]}) == 3


def test_globals_the_function_mutates_are_state_not_identity(tmp_path: Path) -> None:
    """A call counter or a memo table the function changes in place would give every
    process (and every run) its own key: like `global n; n += 1`, it is left out."""
    source = """
        import collections

        CALLS = collections.Counter()
        SEEN = []
        TABLE = {{}}
        STATE = type("State", (), {{}})()
        LANG = {lang!r}
        SETTINGS = {{"lang": {lang!r}}}

        def answer(text):
            CALLS["answer"] += 1
            SEEN.append(text)
            TABLE[text] = len(SEEN)
            del TABLE[text]
            STATE.last = text
            return f"{{LANG}}:{{SETTINGS['lang']}}:{{text}}"
    """
    one = load_module(tmp_path / "a", source.format(lang="fr"), "prog")
    before = function_identity(one.answer, None)
    one.answer("x")  # changes CALLS, SEEN and STATE: not the identity
    assert function_identity(one.answer, None) == before
    other = load_module(tmp_path / "b", source.format(lang="en"), "prog")
    assert function_identity(other.answer, None) != before  # what it only reads counts
