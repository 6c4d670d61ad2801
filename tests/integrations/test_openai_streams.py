"""Only a whole answer is stored from a stream, through the real client.

The SDK ends a stream's iteration quietly when the connection closes before the end,
and a Responses stream reports a failure as its last event: neither raises, so both
were stored and replayed as the answer.
"""

from __future__ import annotations

from typing import Any

import pytest

from pmm_memo import Cache, CacheConfig
from pmm_memo.integrations import openai as integration
from tests.conftest import run
from tests.support.openai_server import FakeOpenAI, aclient, client

CHAT: Any = {
    "model": "gpt-4o-mini",
    "messages": [{"role": "user", "content": "hello"}],
    "temperature": 0,
    "stream": True,
}
RESPONSES: Any = {"model": "gpt-4o-mini", "input": "hello", "temperature": 0, "stream": True}


def chat() -> list[Any]:
    return list(client().chat.completions.create(**CHAT))


def respond() -> list[Any]:
    return list(client().responses.create(**RESPONSES))


async def consume_async() -> list[Any]:
    return [chunk async for chunk in await aclient().chat.completions.create(**CHAT)]


@pytest.mark.parametrize("cut", [1, 2])
def test_a_chat_stream_cut_short_is_not_stored(instrumented: FakeOpenAI, cut: int) -> None:
    instrumented.cut = cut
    assert len(chat()) == cut  # the caller got what came
    instrumented.cut = None
    whole = chat()
    assert whole[-1].choices[0].finish_reason == "stop"
    assert [c.to_dict() for c in chat()] == [c.to_dict() for c in whole]  # now a hit
    assert instrumented.count("/chat/completions") == 2


def test_a_chat_stream_without_the_usage_it_was_asked_for_is_not_stored(
    instrumented: FakeOpenAI,
) -> None:
    kw = {**CHAT, "stream_options": {"include_usage": True}}
    instrumented.cut = 3  # every choice finished; the usage chunk lost
    assert len(list(client().chat.completions.create(**kw))) == 3
    instrumented.cut = None
    whole = list(client().chat.completions.create(**kw))
    assert whole[-1].usage is not None
    hit = list(client().chat.completions.create(**kw))
    assert hit[-1].usage == whole[-1].usage
    assert instrumented.count("/chat/completions") == 2


def test_a_responses_stream_cut_short_or_failed_is_not_stored(instrumented: FakeOpenAI) -> None:
    instrumented.cut = 3
    assert [e.type for e in respond()][-1] == "response.content_part.added"
    instrumented.cut = None
    instrumented.failed = True
    assert respond()[-1].type == "response.failed"
    instrumented.failed = False
    assert respond()[-1].type == "response.completed"
    assert respond()[-1].type == "response.completed"
    assert instrumented.count("/responses") == 3


def test_an_async_stream_cut_short_is_not_stored(instrumented: FakeOpenAI) -> None:
    async def consume(kw: Any) -> list[Any]:
        c = aclient()
        create = c.chat.completions.create if "messages" in kw else c.responses.create
        return [chunk async for chunk in await create(**kw)]

    instrumented.cut = 2
    run(consume(CHAT))
    run(consume(RESPONSES))
    instrumented.cut = None
    assert run(consume(CHAT))[-1].choices[0].finish_reason == "stop"
    assert run(consume(RESPONSES))[-1].type == "response.completed"
    assert instrumented.count("/chat/completions") == 2
    assert instrumented.count("/responses") == 2


def test_a_failed_response_is_not_stored(cache: Cache, openai_server: FakeOpenAI) -> None:
    """A Response the API sent as `failed` is returned, never replayed (exact, raw and
    semantic lookups alike)."""
    for threshold in (None, 0.9):
        integration.instrument(cache=cache, semantic_threshold=threshold)
        try:
            openai_server.reset()
            openai_server.failed = True
            kw: Any = {**RESPONSES, "stream": False, "input": f"hello {threshold}"}
            assert client().responses.create(**kw).status == "failed"
            raw = client().responses.with_raw_response.create(**kw)
            assert raw.parse().status == "failed"
            openai_server.failed = False
            assert client().responses.create(**kw).status == "completed"
            assert client().responses.create(**kw).status == "completed"
            assert openai_server.count("/responses") == 3
        finally:
            integration.uninstrument()


@pytest.mark.parametrize("mode", ["bypass", "disabled", "refresh"])
def test_streams_follow_the_per_call_modes(instrumented: FakeOpenAI, mode: str) -> None:
    """A stream goes round the decorated function: it read (and wrote) the cache inside
    `bypass()`, `disabled()` and `refresh()` alike."""
    import pmm_memo

    first = chat()
    with getattr(pmm_memo, mode)():
        inside = chat()
        run(consume_async())
    assert instrumented.count("/chat/completions") == 3  # none served from the cache
    instrumented.reset()
    chat()  # a refreshed entry (the API's newer answer) or the first one: a hit
    expected = inside if mode == "refresh" else first
    assert chat()[0].id == expected[0].id
    assert instrumented.count("/chat/completions") == 0


def test_streams_are_not_cached_when_the_cache_is_off(openai_server: FakeOpenAI) -> None:
    off = Cache(CacheConfig(enabled=False, embedder="offline", embedding_dimensions=8))
    integration.instrument(cache=off)
    try:
        chat()
        chat()
        run(consume_async())
        assert openai_server.count("/chat/completions") == 3
    finally:
        integration.uninstrument()
