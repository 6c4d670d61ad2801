"""Guards on the decorator, `verify=` judges, and feedback on wrong hits (report_wrong_hit),
on both backends, sync and async."""

from __future__ import annotations

import asyncio
import logging
import threading
from typing import Any

import pytest

import pmm_memo
from pmm_memo import Cache, CacheManager, cached, semantic_lookup
from tests.conftest import make_cache, run

# Long shared context: the offline embedder scores these pairs far above 0.6.
Q15 = "Please work out what 15 percent of the total team budget of 200 dollars is this year"
Q25 = "Please work out what 25 percent of the total team budget of 200 dollars is this year"
Q15_NEAR = "please work out what 15 percent of the total team budget of 200 dollars is, this year!"
Q15_FAR = "Work out please what 15 percent of the team budget of 200 dollars is"
LEARN_C = "What is the best book and the best way to learn C programming quickly at home"
LEARN_CPP = "What is the best book and the best way to learn C++ programming quickly at home"
LIKE = "Tell me why I really like green eggs and ham for breakfast on a Sunday morning"
DONT = "Tell me why I really do not like green eggs and ham for breakfast on a Sunday morning"


def _ask(cache: Cache, calls: list[str], **options: Any) -> Any:
    options.setdefault("threshold", 0.6)

    @semantic_lookup(tenant="t", cache=cache, **options)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return f"answer to {prompt}"

    return ask


def _aask(cache: Cache, calls: list[str], **options: Any) -> Any:
    options.setdefault("threshold", 0.6)

    @semantic_lookup(tenant="t", cache=cache, **options)
    async def ask(prompt: str) -> str:
        calls.append(prompt)
        return f"answer to {prompt}"

    return ask


# -- guards --------------------------------------------------------------------------------


def test_guards_are_on_by_default(cache: Cache) -> None:
    calls: list[str] = []
    ask = _ask(cache, calls)
    ask(Q15)
    assert ask(Q25) == f"answer to {Q25}"  # above the threshold, but another number
    assert ask(Q15_NEAR) == f"answer to {Q15}"  # same numbers: a hit
    info = ask.cache_info()
    assert (info.semantic_hits, info.guard_rejections) == (1, 1)
    assert calls == [Q15, Q25]


def test_without_guards_the_number_swap_hits(cache: Cache) -> None:
    """The control: the embedding alone cannot tell 15% from 25% (why the guard exists)."""
    calls: list[str] = []
    ask = _ask(cache, calls, guards=())
    ask(Q15)
    assert ask(Q25) == f"answer to {Q15}"


@pytest.mark.parametrize(("stored", "other"), [(LEARN_C, LEARN_CPP), (LIKE, DONT)])
def test_optional_guards(cache: Cache, stored: str, other: str) -> None:
    calls: list[str] = []
    plain = _ask(cache, calls, guards=("numbers",))
    plain(stored)
    assert plain(other) == f"answer to {stored}"  # the numbers guard does not look at these
    guarded = _ask(cache, calls, version="2")  # the default guards do
    guarded(stored)
    assert guarded(other) == f"answer to {other}"
    assert guarded.cache_info().guard_rejections == 1


def test_guards_async(cache: Cache) -> None:
    calls: list[str] = []
    ask = _aask(cache, calls)

    async def go() -> list[str]:
        return [await ask(Q15), await ask(Q25), await ask(Q15_NEAR)]

    assert run(go()) == [f"answer to {Q15}", f"answer to {Q25}", f"answer to {Q15}"]


# Pairs the offline embedder scores >= 0.6 (word order: 1.0) that a guard tells apart.
GUARDED_PAIRS = [
    (
        "roles",
        "Please convert the distance of the morning run along the river from miles to km today",
        "Please convert the distance of the morning run along the river from km to miles today",
    ),
    (
        "opposites",
        "Please explain how I can quickly gain weight with a healthy diet plan and exercise",
        "Please explain how I can quickly lose weight with a healthy diet plan and exercise",
    ),
    (
        "units",
        "Please explain how long the morning run along the river is in miles for the family",
        "Please explain how long the morning run along the river is in kilometers for the family",
    ),
    (
        "numbers",  # magnitudes
        "Please estimate what the house would cost the whole family with 3 million dollars",
        "Please estimate what the house would cost the whole family with 3 billion dollars",
    ),
    (
        "numbers",  # decades
        "Please suggest some good exercise routines for a busy woman in her forties at home",
        "Please suggest some good exercise routines for a busy woman in her fifties at home",
    ),
]


@pytest.mark.parametrize(("guard", "stored", "other"), GUARDED_PAIRS)
def test_each_guard_on_the_decorator(cache: Cache, guard: str, stored: str, other: str) -> None:
    calls: list[str] = []
    plain = _ask(cache, calls, guards=())
    plain(stored)
    assert plain(other) == f"answer to {stored}"  # the embedding alone cannot tell
    only = _ask(cache, calls, version="2", guards=(guard,))
    only(stored)
    assert only(other) == f"answer to {other}"
    assert only.cache_info().guard_rejections == 1
    default = _ask(cache, calls, version="3")  # on by default
    default(stored)
    assert default(other) == f"answer to {other}"


@pytest.mark.parametrize(("guard", "stored", "other"), GUARDED_PAIRS)
def test_each_guard_async(cache: Cache, guard: str, stored: str, other: str) -> None:
    calls: list[str] = []
    ask = _aask(cache, calls, guards=(guard,))

    async def go() -> list[str]:
        return [await ask(stored), await ask(other), await ask(stored)]

    assert run(go()) == [f"answer to {stored}", f"answer to {other}", f"answer to {stored}"]
    assert calls == [stored, other]


# Two stored texts the query matches about equally well (offline: 0.945 / 0.945).
COOK = "Please tell me the best way to cook brown rice in a {} on the stove for dinner tonight"


def test_an_ambiguous_query_is_a_miss(cache: Cache) -> None:
    calls: list[str] = []
    ask = _ask(cache, calls)
    ask(COOK.format("pot"))
    assert ask(COOK.format("wok")) == f"answer to {COOK.format('pot')}"  # one close text
    ask.invalidate(COOK.format("wok"))
    with pmm_memo.refresh():
        ask(COOK.format("pan"))  # a second, about as close: which one was asked?
    before = ask.cache_info().guard_rejections
    assert ask(COOK.format("wok")) == f"answer to {COOK.format('wok')}"
    assert ask.cache_info().guard_rejections == before + 1
    assert ask(COOK.format("pan")) == f"answer to {COOK.format('pan')}"  # exact: a hit


def test_an_ambiguous_query_is_a_miss_async(cache: Cache) -> None:
    calls: list[str] = []
    ask = _aask(cache, calls)

    async def go() -> list[str]:
        with pmm_memo.refresh():
            await ask(COOK.format("pot"))
            await ask(COOK.format("pan"))
        return [await ask(COOK.format("wok")), await ask(COOK.format("pot"))]

    assert run(go()) == [f"answer to {COOK.format('wok')}", f"answer to {COOK.format('pot')}"]


def test_bad_guards_fail_at_decoration() -> None:
    with pytest.raises(ValueError, match="unknown guard"):
        semantic_lookup(guards=("nums",))
    with pytest.raises(TypeError, match="guards must be"):
        semantic_lookup(guards=1)  # type: ignore[arg-type]


# -- verify= -------------------------------------------------------------------------------


class _Judge:
    def __init__(self, verdict: Any) -> None:
        self.verdict = verdict
        self.seen: list[tuple[str, str]] = []

    def __call__(self, query: str, cached: str) -> Any:
        self.seen.append((query, cached))
        if isinstance(self.verdict, BaseException):
            raise self.verdict
        return self.verdict


def test_judge_sees_only_candidates_above_threshold(cache: Cache) -> None:
    calls: list[str] = []
    judge = _Judge(True)
    ask = _ask(cache, calls, verify=judge)
    ask(Q15)
    ask(Q15)  # exact hit: no judge
    ask("something else entirely about weather in the mountains")  # far: no judge
    assert ask(Q15_NEAR) == f"answer to {Q15}"
    assert judge.seen == [(Q15_NEAR, Q15)]


@pytest.mark.parametrize(
    "verdict", [False, RuntimeError("judge down"), "yes", None], ids=["no", "raises", "str", "none"]
)
def test_rejection_or_failure_is_a_counted_miss(
    cache: Cache, verdict: Any, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[str] = []
    ask = _ask(cache, calls, verify=_Judge(verdict))
    ask(Q15)
    with caplog.at_level(logging.WARNING, logger="pmm_memo"):
        assert ask(Q15_NEAR) == f"answer to {Q15_NEAR}"
        ask.invalidate(Q15_NEAR)  # else Q15 and Q15_NEAR would be ambiguous for Q15_FAR
        assert ask(Q15_FAR) == f"answer to {Q15_FAR}"
    info = ask.cache_info()
    assert (info.semantic_hits, info.verify_rejections, info.misses) == (0, 2, 3)
    failures = [r for r in caplog.records if "verify judge failed" in r.getMessage()]
    assert len(failures) == (0 if verdict is False else 1)  # logged once, not per call
    assert "judge down" not in caplog.text  # the judge's own message may carry secrets


def test_async_judge_on_async_function(cache: Cache) -> None:
    calls: list[str] = []
    seen: list[str] = []

    async def judge(query: str, cached: str) -> bool:
        await asyncio.sleep(0)
        seen.append(query)
        return "!" not in query

    ask = _aask(cache, calls, verify=judge)

    async def go() -> list[str]:
        first, near = await ask(Q15), await ask(Q15_NEAR)
        ask.invalidate(Q15_NEAR)  # else Q15 / Q15_NEAR would be ambiguous for Q15_FAR
        return [first, near, await ask(Q15_FAR)]

    assert run(go()) == [f"answer to {Q15}", f"answer to {Q15_NEAR}", f"answer to {Q15}"]
    assert seen == [Q15_NEAR, Q15_FAR]
    assert ask.cache_info().verify_rejections == 1


def test_sync_judge_on_async_function_runs_off_the_loop(cache: Cache) -> None:
    loop_threads: list[bool] = []

    def judge(query: str, cached: str) -> bool:
        loop_threads.append(threading.current_thread() is threading.main_thread())
        return True

    ask = _aask(cache, [], verify=judge)

    async def go() -> str:
        await ask(Q15)
        return str(await ask(Q15_NEAR))

    assert run(go()) == f"answer to {Q15}"
    assert loop_threads == [False]


def test_async_judge_on_sync_function_is_refused() -> None:
    async def judge(query: str, cached: str) -> bool:
        return True

    with pytest.raises(TypeError, match="verify is an async function"):

        @semantic_lookup(verify=judge)
        def ask(prompt: str) -> str:
            return prompt

    with pytest.raises(TypeError, match="verify must be a callable"):
        semantic_lookup(verify="yes")  # type: ignore[arg-type]


# -- feedback: report_wrong_hit --------------------------------------------------------------


def test_reported_pair_never_hits_again(cache: Cache) -> None:
    calls: list[str] = []
    ask = _ask(cache, calls)
    ask(Q15)
    assert ask(Q15_FAR) == f"answer to {Q15}"  # judged wrong by the user
    assert ask.report_wrong_hit(Q15_FAR) is True
    for _ in range(2):
        assert ask(Q15_FAR) == f"answer to {Q15_FAR}"
        ask.invalidate(Q15_FAR)  # not even once its own entry is gone
    # A closer paraphrase still hits the entry: only similarities up to the reported one
    # are excluded.
    assert ask(Q15_NEAR) == f"answer to {Q15}"
    assert ask.report_wrong_hit("nothing like any stored question about the weather") is False


def test_report_async_twin(cache: Cache) -> None:
    ask = _aask(cache, [])

    async def go() -> list[Any]:
        await ask(Q15)
        hit = await ask(Q15_FAR)
        reported = await ask.areport_wrong_hit(Q15_FAR)
        again = await ask(Q15_FAR)
        near = await ask(Q15_NEAR)
        return [hit, reported, again, near]

    assert run(go()) == [f"answer to {Q15}", True, f"answer to {Q15_FAR}", f"answer to {Q15}"]


def test_report_on_methods(cache: Cache) -> None:
    class Bot:
        @semantic_lookup(threshold=0.6, tenant="t", cache=cache)
        def ask(self, prompt: str) -> str:
            return f"answer to {prompt}"

    bot = Bot()
    bot.ask(Q15)
    assert bot.ask(Q15_FAR) == f"answer to {Q15}"
    assert bot.ask.report_wrong_hit(Q15_FAR) is True
    assert bot.ask(Q15_FAR) == f"answer to {Q15_FAR}"


def test_report_needs_a_semantic_function(cache: Cache) -> None:
    @cached(tenant="t", cache=cache)
    def plain(prompt: str) -> str:
        return prompt

    with pytest.raises(TypeError, match="report_wrong_hit is for @semantic_lookup"):
        plain.report_wrong_hit("x")


def test_feedback_is_stored_with_the_entry(redis_url: str) -> None:
    """Another process (a fresh Cache on the same Redis) honours the report."""
    first = make_cache("redis", redis_url)
    ask = _ask(first, [])
    ask(Q15)
    assert ask.report_wrong_hit(Q15_FAR) is True
    second = make_cache("redis", redis_url)
    calls: list[str] = []
    again = _ask(second, calls)
    assert again(Q15_FAR) == f"answer to {Q15_FAR}"
    assert again(Q15_NEAR) == f"answer to {Q15}"
    first.close()
    second.close()


def test_manager_report_wrong_hit(cache: Cache) -> None:
    manager = CacheManager(cache=cache)
    ask = _ask(cache, [])
    ask(Q15)
    (result,) = manager.search_text("t", Q15_FAR, k=1)
    assert result["min_similarity"] == 0.0
    assert manager.report_wrong_hit("t", result["key"], result["similarity"]) is True
    (after,) = manager.search_text("t", Q15_FAR, k=1)
    assert after["min_similarity"] > result["similarity"]
    assert ask(Q15_FAR) == f"answer to {Q15_FAR}"  # the decorator honours it
    assert manager.report_wrong_hit("t", "0" * 32, 0.9) is False  # no such entry
    assert manager.report_wrong_hit("other", result["key"], 0.9) is False  # another tenant
    with pytest.raises(ValueError, match="cosine similarity"):
        manager.report_wrong_hit("t", result["key"], 1.5)
    with pytest.raises(TypeError, match="similarity must be a number"):
        manager.report_wrong_hit("t", result["key"], "0.9")  # type: ignore[arg-type]


def test_feedback_survives_many_threads(cache: Cache) -> None:
    """Concurrent reports only ever raise the entry's bar (max, never a lost update that
    lowers it)."""
    ask = _ask(cache, [])
    ask(Q15)
    texts = [Q15_FAR, *(Q15_FAR + " please" * i for i in range(1, 8))]
    threads = [threading.Thread(target=ask.report_wrong_hit, args=(t,)) for t in texts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert ask(Q15_FAR) == f"answer to {Q15_FAR}"
