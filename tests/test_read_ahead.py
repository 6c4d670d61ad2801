"""Reading ahead (`_memo_semantic.AHEAD_AFTER`): a `@semantic_lookup` function whose exact
reads keep missing sends its exact read with the KNN query. Its answers must be exactly
those of the two-step path: the call's own entry first, never a damaged one, never
another user's, the function's own result when the server fails."""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from typing import Any

import pytest
import redis

import pmm_memo
from pmm_memo import Cache, CacheConfig, refresh, semantic_lookup
from pmm_memo._memo_semantic import AHEAD_AFTER
from pmm_memo.backends.redis import RedisBackend
from pmm_memo.embedders import make_embedder
from pmm_memo.embedders._base import BaseEmbedder
from tests.conftest import SLOW_MACHINE, make_cache, run, url_for
from tests.support.entry_meta import write_meta
from tests.support.servers import ValkeyServer

Q = "How do I reset my password?"
# Paraphrases of Q that the offline embedder scores >= 0.9 (case and punctuation).
NEARS = [
    "how do i reset my password",
    "How do I reset my password",
    "how do I reset my password?",
    "HOW DO I RESET MY PASSWORD?",
    "How do i reset my password?!",
    "how do I reset my password ?",
    "How do I Reset my Password?",
    "how Do I reset my password?",
]
assert len(NEARS) >= AHEAD_AFTER


class Spy:
    """Counts the combined reads a backend answers (our own method, wrapped: the server
    is real)."""

    def __init__(self, backend: Any) -> None:
        self.calls = 0
        self.answered = 0
        original, aoriginal = backend.get_knn, backend.aget_knn

        def get_knn(*args: Any) -> Any:
            self.calls += 1
            out = original(*args)
            self.answered += out is not None
            return out

        async def aget_knn(*args: Any) -> Any:
            self.calls += 1
            out = await aoriginal(*args)
            self.answered += out is not None
            return out

        backend.get_knn, backend.aget_knn = get_knn, aget_knn


def _asker(cache: Cache, calls: list[str] | None = None) -> Any:
    @semantic_lookup(threshold=0.9, tenant="t", cache=cache, user_arg="user")
    def ask(prompt: str, user: str = "alice") -> str:
        if calls is not None:
            calls.append(prompt)
        return f"{user}: {prompt}"

    return ask


@pytest.fixture
def cache(redis_url: str) -> Iterator[Cache]:
    c = make_cache("redis", redis_url)
    yield c
    c.close()


def _warm(ask: Any) -> None:
    """Store Q, then paraphrases until the function reads ahead."""
    assert ask(Q) == f"alice: {Q}"
    for text in NEARS[: AHEAD_AFTER - 1]:  # Q's own first read missed too
        assert ask(text) == f"alice: {Q}"
    assert ask._memo().ahead


def test_reads_ahead_after_a_run_of_exact_misses_and_back_on_an_exact_hit(cache: Cache) -> None:
    calls: list[str] = []
    ask = _asker(cache, calls)
    spy = Spy(cache.backend)
    assert ask(Q) == f"alice: {Q}"
    for i, text in enumerate(NEARS[: AHEAD_AFTER - 1]):  # Q's first read missed too
        assert not ask._memo().ahead, i
        assert ask(text) == f"alice: {Q}"
    assert ask._memo().ahead and spy.calls == 0
    for text in NEARS:
        assert ask(text) == f"alice: {Q}"  # semantic hits, one round trip each
    assert spy.calls == spy.answered == len(NEARS)
    assert calls == [Q]
    assert ask(Q) == f"alice: {Q}"  # its own entry, found by the combined read
    assert not ask._memo().ahead  # back to reading first
    info = ask.cache_info()
    assert (info.hits, info.semantic_hits, info.misses, info.corrupt, info.errors) == (
        1,
        AHEAD_AFTER - 1 + len(NEARS),
        1,
        0,
        0,
    )
    assert ask(Q) == f"alice: {Q}" and spy.calls == len(NEARS) + 1  # read first again


@pytest.mark.parametrize("kind", ["memory", "cluster"])
def test_backends_that_cannot_never_read_ahead(kind: str, request: pytest.FixtureRequest) -> None:
    cache = make_cache(kind, url_for(kind, request))
    ask = _asker(cache)
    ask(Q)
    for text in NEARS * 2:
        assert ask(text) == f"alice: {Q}"
    assert not ask._memo().ahead
    cache.close()


def test_own_entry_wins_over_a_closer_neighbour(cache: Cache) -> None:
    ask = _asker(cache)
    _warm(ask)
    own = NEARS[0]
    with refresh():  # its own entry, with its own answer
        ask(own)
    assert ask._memo().ahead
    assert ask(own) == f"alice: {own}"  # not Q's answer, though Q is a neighbour


def test_damaged_own_entry_is_never_served(cache: Cache, redis_url: str) -> None:
    ask = _asker(cache)
    _warm(ask)
    own = NEARS[0]
    with refresh():
        ask(own)
    ask._memo().ahead = True
    write_meta(redis.Redis.from_url(redis_url), ask.cache_key(own), checksum=b"0" * 16)
    assert ask(own) == f"alice: {Q}"  # the neighbour answers; the damaged entry does not
    assert ask.cache_info().corrupt == 1


def test_key_of_another_type_goes_the_two_step_way(cache: Cache, redis_url: str) -> None:
    ask = _asker(cache)
    _warm(ask)
    text = "What is the capital of France?"
    redis.Redis.from_url(redis_url).set(ask.cache_key(text), "not ours")
    assert ask(text) == f"alice: {text}"
    # Counted by the read and again by the lock holder's re-read, as in the two steps.
    assert ask.cache_info().corrupt >= 1 and ask.cache_info().errors == 0


def test_other_users_entries_stay_theirs(cache: Cache) -> None:
    ask = _asker(cache)
    _warm(ask)
    assert ask(NEARS[1], user="bob") == f"bob: {NEARS[1]}"  # alice's Q is no answer
    assert ask(NEARS[2], user="bob") == f"bob: {NEARS[1]}"  # bob's own neighbour


def test_async_paths_with_a_loop_per_call(cache: Cache) -> None:
    calls: list[str] = []

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    async def ask(prompt: str) -> str:
        calls.append(prompt)
        return f"answer: {prompt}"

    spy = Spy(cache.backend)
    assert run(ask(Q)) == f"answer: {Q}"
    for text in NEARS[: AHEAD_AFTER - 1]:
        assert run(ask(text)) == f"answer: {Q}"
    assert ask._memo().ahead
    for text in NEARS:
        assert run(ask(text)) == f"answer: {Q}"
    assert spy.answered == len(NEARS)
    with refresh():
        run(ask(NEARS[0]))
    assert run(ask(NEARS[0])) == f"answer: {NEARS[0]}"
    assert not ask._memo().ahead and calls == [Q, NEARS[0]]


def test_many_threads_and_tasks_share_a_small_pool(redis_url: str) -> None:
    cache = make_cache("redis", redis_url, max_connections=3, **SLOW_MACHINE)
    ask = _asker(cache)
    _warm(ask)
    others = [f"question number {i} about something else entirely" for i in range(10)]
    for text in others:
        ask(text)  # their own entries: exact hits, which end the read-ahead run
    wrong: list[str] = []

    def worker(i: int) -> None:
        for j in range(6):
            text = NEARS[(i + j) % len(NEARS)] if (i + j) % 3 else others[(i + j) % 10]
            ask._memo().ahead = True  # keep reading ahead, whatever the last call found
            expected = f"alice: {Q}" if (i + j) % 3 else f"alice: {text}"
            if (got := ask(text)) != expected:
                wrong.append(f"{text!r} -> {got!r}")

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(150)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert wrong == []
    assert ask.cache_info().errors == 0

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    async def aask(prompt: str) -> str:
        return f"answer: {prompt}"

    async def main() -> list[str]:
        await aask(Q)
        aask._memo().ahead = True
        return await asyncio.gather(*(aask(NEARS[i % len(NEARS)]) for i in range(150)))

    assert set(run(main())) == {f"answer: {Q}"}
    assert aask.cache_info().errors == 0
    cache.close()


def test_cancelled_reads_leave_no_reply_behind(redis_url: str) -> None:
    cache = make_cache("redis", redis_url, max_connections=1, **SLOW_MACHINE)

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    async def ask(prompt: str) -> str:
        return f"answer: {prompt}"

    async def main() -> None:
        await ask(Q)
        await ask("What is the capital of France?")
        memo = ask._memo()
        for i in range(60):
            memo.ahead = True
            task = asyncio.ensure_future(ask(NEARS[i % len(NEARS)]))
            for _ in range(i % 6):
                await asyncio.sleep(0)
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)
            memo.ahead = True
            assert await ask("What is the capital of France?") == (
                "answer: What is the capital of France?"
            )
            assert await ask(NEARS[0]) == f"answer: {Q}"

    run(main())
    cache.close()


def test_a_failing_server_never_reaches_the_caller(tmp_path: Any) -> None:
    server = ValkeyServer(search=True, log_dir=tmp_path).start()
    try:
        cache = make_cache("redis", server.url, socket_timeout=0.3, breaker_interval=0.2)
        assert isinstance(cache.backend, RedisBackend)
        ask = _asker(cache)
        _warm(ask)
        server.freeze()
        try:
            assert ask(NEARS[0]) == f"alice: {NEARS[0]}"  # timed out: the function's
            # A failed read ahead ends the run: a KNN slower than the socket timeout
            # must not cost the exact hits after it.
            assert not ask._memo().ahead
        finally:
            server.thaw()
        server.kill()
        for text in NEARS:
            assert ask(text) == f"alice: {text}"
        assert ask.cache_info().errors >= 1 and cache.breaker.is_open
    finally:
        server.stop()


@pytest.mark.parametrize("mode", ["sync", "async"])
def test_an_unreadable_neighbour_never_hides_the_others(
    cache: Cache, redis_url: str, mode: str
) -> None:
    """A neighbour whose fields do not decode is never served and fails nothing else:
    the call's own entry still answers, and so does another neighbour (was: the whole
    search failed, for every lookup near the damaged entry, until it was rewritten)."""
    calls: list[str] = []
    if mode == "sync":
        fn: Any = _asker(cache, calls)
        ask = fn
    else:

        @semantic_lookup(threshold=0.9, tenant="t", cache=cache, user_arg="user")
        async def fn(prompt: str, user: str = "alice") -> str:
            calls.append(prompt)
            return f"{user}: {prompt}"

        def ask(prompt: str) -> Any:
            return run(fn(prompt))

    own = "What is the capital of France?"
    for text in [Q, *NEARS[: AHEAD_AFTER - 1], own]:
        assert ask(text) in (f"alice: {Q}", f"alice: {own}")
    memo = fn._memo()
    assert memo.ahead and calls == [Q, own]
    redis.Redis.from_url(redis_url).hset(fn.cache_key(Q), "text", b"\xff\xfe damaged")
    memo.ahead = True
    before = fn.cache_info()
    assert ask(own) == f"alice: {own}"  # its own entry
    assert not memo.ahead
    memo.ahead = True
    assert ask("what is the capital of france") == f"alice: {own}"  # another neighbour
    assert ask(NEARS[0]) == f"alice: {NEARS[0]}"  # the damaged one never answers
    info = fn.cache_info()
    assert calls == [Q, own, NEARS[0]]
    assert (info.hits, info.semantic_hits, info.errors) == (
        before.hits + 1,
        before.semantic_hits + 1,
        before.errors,
    )


@pytest.mark.parametrize("ahead", [False, True], ids=["two steps", "ahead"])
def test_only_the_neighbour_served_is_decoded(
    cache: Cache, ahead: bool, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The KNN fetches one neighbour more than may answer (the ambiguity check's
    competitor); far from the query, it fails the threshold, so its value is never
    decoded and verified (was: every neighbour's, on every lookup)."""
    ask = _asker(cache)
    ask("What is the capital of France?")  # the competitor
    _warm(ask)
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    decoded: list[Any] = []
    original = backend._decode

    def counting(key: Any, *args: Any) -> Any:
        decoded.append(key)
        return original(key, *args)

    monkeypatch.setattr(backend, "_decode", counting)
    ask._memo().ahead = ahead
    before = ask.cache_info().semantic_hits
    assert ask(NEARS[AHEAD_AFTER - 1]) == f"alice: {Q}"
    assert ask.cache_info().semantic_hits == before + 1
    assert [k.decode() if isinstance(k, bytes) else k for k in decoded] == [ask.cache_key(Q)]


class Flaky(BaseEmbedder):
    """The offline embedder's vectors until `failing` is set (then every call raises)."""

    name = "flaky"

    def __init__(self) -> None:
        super().__init__(64, 100)
        self.inner = make_embedder(CacheConfig(embedder="offline", embedding_dimensions=64))
        self.failing = False
        self.calls = 0

    def _embed_batch(self, texts: list[str]) -> Any:
        self.calls += 1
        if self.failing:
            raise ConnectionError("embedding service down")
        return self.inner.embed(texts)

    async def _aembed_batch(self, texts: list[str]) -> Any:
        return self._embed_batch(texts)


def test_an_embedder_failing_ends_the_run(redis_url: str) -> None:
    flaky = Flaky()
    cache = Cache(CacheConfig(redis_url=redis_url, embedding_dimensions=64), embedder=flaky)
    ask = _asker(cache)
    _warm(ask)
    flaky.failing = True
    assert ask(NEARS[0]) == f"alice: {Q}"  # kept vector: no embedder call, still ahead
    assert ask._memo().ahead
    fresh = "how do I reset my password, please?"
    assert ask(fresh) == f"alice: {fresh}"  # no vector: the exact read alone, a miss
    assert not ask._memo().ahead  # reading first again
    calls = flaky.calls
    assert ask(Q) == f"alice: {Q}"  # an exact hit that never waits for the embedder
    assert flaky.calls == calls and ask.cache_info().hits == 1
    cache.close()


def test_a_new_default_cache_that_cannot_ends_the_run(redis_url: str) -> None:
    try:
        pmm_memo.configure(redis_url=redis_url, embedder="offline", embedding_dimensions=64)

        @semantic_lookup(threshold=0.9, tenant="t")
        def ask(prompt: str) -> str:
            return f"answer: {prompt}"

        ask(Q)
        for text in NEARS[: AHEAD_AFTER - 1]:
            assert ask(text) == f"answer: {Q}"
        assert ask._memo().ahead
        pmm_memo.configure(embedder="offline", embedding_dimensions=64)  # the embedded one
        assert ask(NEARS[0]) == f"answer: {NEARS[0]}"  # a miss there: computed
        assert not ask._memo().ahead
    finally:
        pmm_memo.configure()
