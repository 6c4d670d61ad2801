"""The embedder's circuit breaker (`_cache_embedding`): while the embedder is down, calls
skip embedding (exact caching only) instead of each waiting its timeout and retries."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from typing import Any

import numpy as np
import pytest

from pmm_memo import Cache, CacheConfig, semantic_lookup
from pmm_memo.embedders._base import BaseEmbedder
from tests.support.openai_server import FakeOpenAI

Q = "How do I reset my password?"
NEAR = "how do i reset my password"


def _openai_cache(**settings: Any) -> Cache:
    settings.setdefault("breaker_interval", 60.0)
    return Cache(
        CacheConfig(
            embedder="openai",
            embedding_dimensions=64,
            openai_max_retries=0,
            openai_timeout=0.3,
            **settings,
        )
    )


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.mark.parametrize("fault", ["slow", "status_500", "status_429", "refused"])
def test_a_down_embedder_is_asked_once_per_interval(
    openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch, fault: str
) -> None:
    if fault == "slow":
        openai_server.delay = 1.0
    elif fault == "refused":
        monkeypatch.setenv("OPENAI_BASE_URL", f"http://127.0.0.1:{_closed_port()}/v1")
    else:
        openai_server.fail_status = int(fault.removeprefix("status_"))
    cache = _openai_cache()
    calls: list[str] = []

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return prompt[::-1]

    questions = [f"{Q} ({i})" for i in range(6)]
    # The first call pays for the embedder's one try and for what it loads the first
    # time (a fresh venv compiles the HTTP client's modules then: 1.9 s once), so the
    # clock starts after it.
    assert ask(questions[0]) == questions[0][::-1]
    started = time.monotonic()
    assert [ask(q) for q in questions[1:]] == [q[::-1] for q in questions[1:]]
    assert ask(questions[0]) == questions[0][::-1]  # still cached exactly
    assert calls == questions
    # One request reached (or tried) the embedder; the other calls did not wait for it.
    asked = 0 if fault == "refused" else openai_server.count("/embeddings")
    assert asked <= 1
    assert cache.embed_breaker.is_open
    assert time.monotonic() - started < 0.3 * 5
    assert ask.cache_info().errors == 1
    openai_server.reset()


def test_a_text_refused_opens_nothing(openai_server: FakeOpenAI) -> None:
    """A 400 (this text refused, a context too long) says nothing about the next text."""
    openai_server.fail_status = 400
    cache = _openai_cache()

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        return prompt

    for i in range(3):
        ask(f"{Q} ({i})")
    assert openai_server.count("/embeddings") >= 3  # every call asked (lookup and store)
    assert not cache.embed_breaker.is_open
    openai_server.reset()


def test_semantic_lookups_resume_after_the_interval(openai_server: FakeOpenAI) -> None:
    openai_server.fail_status = 503
    cache = _openai_cache(breaker_interval=0.3)
    calls: list[str] = []

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return "answer"

    ask(Q)  # stored without a vector: the embedder is down
    assert cache.embed_breaker.is_open
    openai_server.fail_status = None
    time.sleep(0.4)
    ask("What is the capital of France?")  # the probe: embedded, breaker closed
    assert not cache.embed_breaker.is_open
    ask.invalidate(Q)
    ask(Q)  # stored again, with its vector now
    assert ask(NEAR) == "answer" and ask.cache_info().semantic_hits == 1
    assert calls == [Q, "What is the capital of France?", Q]
    openai_server.reset()


def test_async_calls_share_the_breaker(openai_server: FakeOpenAI) -> None:
    openai_server.delay = 1.0
    cache = _openai_cache()

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    async def ask(prompt: str) -> str:
        return prompt.upper()

    # The first call pays the embedder's one try (and the client's first import).
    assert asyncio.run(ask(Q)) == Q.upper()
    started = time.monotonic()
    for i in range(5):  # a new event loop per request, as a WSGI-style server runs
        assert asyncio.run(ask(f"{Q} {i}")) == f"{Q} {i}".upper()
    assert openai_server.count("/embeddings") <= 1
    assert time.monotonic() - started < 0.3 * 5
    openai_server.reset()


class _SlowForOne(BaseEmbedder):
    """Times out once, on "slow", after the others were embedded meanwhile."""

    name = "slow-for-one"

    def __init__(self) -> None:
        super().__init__(8)
        self.others_done = threading.Event()
        self.timed_out = False

    def _embed_batch(self, texts: list[str]) -> object:
        if texts == ["slow"] and not self.timed_out:
            self.others_done.wait(5)
            self.timed_out = True
            raise TimeoutError("read timed out")
        vectors = np.ones((len(texts), 8), dtype=np.float32)
        vectors[:, 0] = [len(t) for t in texts]
        return vectors


def test_a_timeout_while_others_were_embedded_is_a_slow_request() -> None:
    """Evidence, as for Redis under load: a timeout while other calls got their vectors
    says this one request was slow, not that the embedder is down."""
    embedder = _SlowForOne()
    cache = Cache(CacheConfig(), embedder=embedder)

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        return prompt

    slow = threading.Thread(target=ask, args=("slow",))
    slow.start()
    time.sleep(0.05)  # "slow" is waiting inside the embedder now
    ask("fast one")
    embedder.others_done.set()
    slow.join(5)
    assert ask.cache_info().errors == 1
    assert not cache.embed_breaker.is_open


class _Refusing(BaseEmbedder):
    """Refuses every text (as an API refuses a text: not a sign it is down)."""

    name = "refusing"

    def __init__(self) -> None:
        super().__init__(8)
        self.asked = 0

    def _embed_batch(self, texts: list[str]) -> object:
        self.asked += 1
        raise ValueError("this text is refused")


def test_a_failed_embedding_is_not_tried_again_for_the_store() -> None:
    """One embedding per call: the lookup's failure (counted) is the call's answer, not
    a reason to wait for the embedder again before storing (stored without a vector)."""
    embedder = _Refusing()
    cache = Cache(CacheConfig(), embedder=embedder)

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        return prompt

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    async def aask(prompt: str) -> str:
        return prompt

    assert ask(Q) == Q and embedder.asked == 1
    assert asyncio.run(aask(NEAR)) == NEAR and embedder.asked == 2
    assert ask(Q) == Q and embedder.asked == 2  # an exact hit: no embedding at all
    assert ask.cache_info().errors == 1 and aask.cache_info().errors == 1
