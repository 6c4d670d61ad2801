"""Every public call shape of the SDK after instrument(), through the real client.

`with_raw_response` and `with_streaming_response` must return what they return without
instrumentation (the SDK's response objects, with headers and `.parse()`), on a miss and
on a hit; the Responses API is cached like chat completions. Sync and async, both
backends, against the loopback OpenAI-compatible server.
"""

from __future__ import annotations

from typing import Any

import openai
from openai._legacy_response import LegacyAPIResponse
from openai._response import APIResponse, AsyncAPIResponse
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk
from openai.types.responses import Response

from pmm_memo import Cache
from pmm_memo.integrations import openai as integration
from tests.conftest import run
from tests.support.openai_server import FakeOpenAI, aclient, client

HIT = "x-pmm-memo-cache"
MSGS = [{"role": "user", "content": "hello"}]


def chat_kw(**kw: Any) -> dict[str, Any]:
    return {"model": "gpt-4o-mini", "messages": MSGS, "temperature": 0, **kw}


def test_with_raw_response_miss_and_hit(instrumented: FakeOpenAI) -> None:
    c = client()
    miss = c.chat.completions.with_raw_response.create(**chat_kw())
    assert isinstance(miss, LegacyAPIResponse)
    assert miss.headers["x-request-id"] == "req-1" and HIT not in miss.headers
    first = miss.parse()
    assert isinstance(first, ChatCompletion)
    hit = c.chat.completions.with_raw_response.create(**chat_kw())
    assert isinstance(hit, LegacyAPIResponse)
    assert hit.headers[HIT] == "hit" and hit.status_code == 200
    second = hit.parse()
    assert isinstance(second, ChatCompletion)
    assert second.model_dump() == first.model_dump()
    # One entry serves every call shape.
    plain = c.chat.completions.create(**chat_kw())
    assert isinstance(plain, ChatCompletion) and plain.id == first.id
    assert instrumented.count("/chat/completions") == 1
    emb = c.embeddings.with_raw_response.create(model="text-embedding-3-small", input="x")
    emb_hit = c.embeddings.with_raw_response.create(model="text-embedding-3-small", input="x")
    assert isinstance(emb_hit.parse(), CreateEmbeddingResponse)
    assert emb_hit.parse().data[0].embedding == emb.parse().data[0].embedding
    assert instrumented.count("/embeddings") == 1


def test_with_streaming_response_miss_and_hit(instrumented: FakeOpenAI) -> None:
    c = client()
    with c.chat.completions.with_streaming_response.create(**chat_kw()) as miss:
        assert isinstance(miss, APIResponse)
        assert miss.headers["x-request-id"] == "req-1"
        first = miss.parse()
    with c.chat.completions.with_streaming_response.create(**chat_kw()) as hit:
        assert isinstance(hit, APIResponse) and hit.headers[HIT] == "hit"
        assert hit.json()["id"] == first.id
        assert hit.parse().model_dump() == first.model_dump()
    plain = c.chat.completions.create(**chat_kw())
    assert plain.choices[0].message.content == "echo: hello"
    assert instrumented.count("/chat/completions") == 1


def test_async_raw_and_streaming_shapes(instrumented: FakeOpenAI) -> None:
    async def main() -> list[Any]:
        c = aclient()
        out: list[Any] = []
        for _ in range(2):
            raw = await c.chat.completions.with_raw_response.create(**chat_kw())
            out.append((type(raw), raw.headers.get(HIT), raw.parse().id))
            async with c.chat.completions.with_streaming_response.create(**chat_kw(seed=1)) as resp:
                parsed = await resp.parse()
                out.append((type(resp), resp.headers.get(HIT), parsed.id))
        return out

    (r1, s1, r2, s2) = run(main())
    assert r1[0] is LegacyAPIResponse and r1[1] is None and r2 == (LegacyAPIResponse, "hit", r1[2])
    assert s1[0] is AsyncAPIResponse and s1[1] is None
    assert s2 == (AsyncAPIResponse, "hit", s1[2])
    assert instrumented.count("/chat/completions") == 2


def test_raw_stream_served_from_a_recorded_stream(instrumented: FakeOpenAI) -> None:
    c = client()
    recorded = [ch.model_dump() for ch in c.chat.completions.create(**chat_kw(stream=True))]
    raw = c.chat.completions.with_raw_response.create(**chat_kw(stream=True))
    assert raw.headers[HIT] == "hit"
    replayed = list(raw.parse())
    assert all(isinstance(ch, ChatCompletionChunk) for ch in replayed)
    assert [ch.model_dump() for ch in replayed] == recorded
    # A raw stream that misses goes to the API, streams as usual and is recorded...
    miss = c.chat.completions.with_raw_response.create(**chat_kw(stream=True, seed=3))
    assert HIT not in miss.headers
    text = "".join(ch.choices[0].delta.content or "" for ch in miss.parse())
    assert text == "echo: hello"
    # ...so the same request, in any shape, is then a hit.
    again = c.chat.completions.create(**chat_kw(stream=True, seed=3))
    assert "".join(ch.choices[0].delta.content or "" for ch in again) == text
    with c.chat.completions.with_streaming_response.create(**chat_kw(stream=True, seed=3)) as r:
        assert r.headers[HIT] == "hit"
        assert "".join(ch.choices[0].delta.content or "" for ch in r.parse()) == text
    assert instrumented.count("/chat/completions") == 2

    async def amiss() -> str:
        ac = aclient()
        async with ac.chat.completions.with_streaming_response.create(
            **chat_kw(stream=True, seed=4)
        ) as resp:
            chunks = [ch.choices[0].delta.content or "" async for ch in await resp.parse()]
        hit = await ac.chat.completions.with_raw_response.create(**chat_kw(stream=True, seed=4))
        assert hit.headers[HIT] == "hit"
        replay = [ch.choices[0].delta.content or "" async for ch in hit.parse()]
        assert replay == chunks
        return "".join(chunks)

    assert run(amiss()) == "echo: hello"
    assert instrumented.count("/chat/completions") == 3


def respond(c: openai.OpenAI, prompt: Any = "hello", **kw: Any) -> Any:
    kw.setdefault("temperature", 0)
    kw.setdefault("model", "gpt-4o-mini")
    return c.responses.create(input=prompt, **kw)


def test_responses_api_is_cached_and_scoped(instrumented: FakeOpenAI) -> None:
    c = client()
    first = respond(c)
    second = respond(c)
    assert isinstance(second, Response) and second.output_text == "echo: hello"
    assert second.id == first.id
    assert instrumented.count("/responses") == 1
    for change in (
        {"model": "gpt-4o"},
        {"instructions": "be brief"},
        {"max_output_tokens": 5},
        {"text": {"format": {"type": "json_object"}}},
        {"previous_response_id": "resp_0"},
        {"metadata": {"k": "v"}},
    ):
        before = instrumented.count("/responses")
        respond(c, **change)
        assert instrumented.count("/responses") == before + 1, change
    respond(c, [{"role": "user", "content": "hello"}])  # a message list is another request
    assert instrumented.count("/responses") == 8


def test_responses_nondeterministic_and_stateful_pass_through(instrumented: FakeOpenAI) -> None:
    c = client()
    for extra in (
        {},  # the API's default temperature is 1
        {"temperature": 0.7},
        {"temperature": 0, "conversation": "conv_1"},  # its items change between calls
        {"temperature": 0, "background": True},  # a job, not an answer
        {"temperature": 0, "prompt": {"id": "pmpt_1"}},  # its latest version: editable
    ):
        before = instrumented.count("/responses")
        for _ in range(2):
            c.responses.create(model="gpt-4o-mini", input="hi", **extra)  # type: ignore[call-overload]
        assert instrumented.count("/responses") == before + 2, extra
    before = instrumented.count("/responses")
    for _ in range(2):  # a pinned version of a stored prompt does not change
        c.responses.create(
            model="gpt-4o-mini", input="hi", temperature=0, prompt={"id": "pmpt_1", "version": "2"}
        )
    assert instrumented.count("/responses") == before + 1


def test_responses_streams_recorded_and_replayed(instrumented: FakeOpenAI) -> None:
    c = client()
    first = [e.model_dump() for e in respond(c, stream=True)]
    kinds = [e["type"] for e in first]
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert "response.output_text.delta" in kinds
    replay = list(respond(c, stream=True))
    assert type(replay[-1]).__name__ == "ResponseCompletedEvent"
    assert [e.model_dump() for e in replay] == first
    assert replay[-1].response.output_text == "echo: hello"
    assert instrumented.count("/responses") == 1
    raw = c.responses.with_raw_response.create(
        model="gpt-4o-mini", input="hello", temperature=0, stream=True
    )
    assert [e.model_dump() for e in raw.parse()] == first
    assert instrumented.count("/responses") == 1


def test_async_responses(instrumented: FakeOpenAI) -> None:
    async def main() -> tuple[Any, Any, list[Any], list[Any], Any]:
        c = aclient()
        a = await c.responses.create(model="gpt-4o-mini", input="yo", temperature=0)
        b = await c.responses.create(model="gpt-4o-mini", input="yo", temperature=0)
        s1 = [
            e.type
            async for e in await c.responses.create(
                model="gpt-4o-mini", input="yo", temperature=0, stream=True
            )
        ]
        s2 = [
            e.type
            async for e in await c.responses.create(
                model="gpt-4o-mini", input="yo", temperature=0, stream=True
            )
        ]
        raw = await c.responses.with_raw_response.create(
            model="gpt-4o-mini", input="yo", temperature=0
        )
        return a, b, s1, s2, raw

    a, b, s1, s2, raw = run(main())
    assert isinstance(b, Response) and b.id == a.id and b.output_text == "echo: yo"
    assert s1 == s2 and s1[-1] == "response.completed"
    assert raw.headers[HIT] == "hit" and raw.parse().id == a.id
    assert instrumented.count("/responses") == 2  # one answer, one stream


def test_semantic_responses(cache: Cache, openai_server: FakeOpenAI) -> None:
    integration.instrument(tenant="pmm_llm", cache=cache, semantic_threshold=0.9)
    try:
        c = client()
        a = respond(c, "How do I reset my password?")
        b = respond(c, "how do i reset my password")
        assert b.id == a.id
        respond(c, "how do i reset my password", instructions="answer in French")
        assert openai_server.count("/responses") == 2  # other instructions: another scope
        chat = c.chat.completions.create(
            model="gpt-4o-mini",
            messages=[{"role": "user", "content": "How do I reset my password?"}],
            temperature=0,
        )
        assert chat.object == "chat.completion"  # never a Response from the other endpoint
        assert openai_server.count("/chat/completions") == 1
    finally:
        integration.uninstrument()


def test_streams_are_the_sdks_own_and_helpers_work(instrumented: FakeOpenAI) -> None:
    """Miss and hit are `openai.Stream` objects, so the SDK's stream helpers
    (`chat.completions.stream`, `responses.stream`) work on both."""
    c = client()
    for _ in range(2):
        s = c.chat.completions.create(**chat_kw(stream=True, seed=9))
        assert isinstance(s, openai.Stream)
        with s:
            assert "".join(ch.choices[0].delta.content or "" for ch in s) == "echo: hello"
        with c.chat.completions.stream(**chat_kw()) as helper:
            final = helper.get_final_completion()
        assert final.choices[0].message.content == "echo: hello"
        with c.responses.stream(model="gpt-4o-mini", input="hey", temperature=0) as rhelper:
            kinds = [e.type for e in rhelper]
            response = rhelper.get_final_response()
        assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
        assert response.output_text == "echo: hey"
    assert instrumented.count("/chat/completions") == 2  # one per distinct request
    assert instrumented.count("/responses") == 1

    async def main() -> tuple[bool, str]:
        ac = aclient()
        texts = []
        for _ in range(2):
            s = await ac.chat.completions.create(**chat_kw(stream=True, seed=10))
            is_stream = isinstance(s, openai.AsyncStream)
            texts.append("".join([ch.choices[0].delta.content or "" async for ch in s]))
        async with ac.responses.stream(model="gpt-4o-mini", input="hey", temperature=0) as r:
            final = await r.get_final_response()
        return is_stream and texts[0] == texts[1], final.output_text

    assert run(main()) == (True, "echo: hey")
    assert instrumented.count("/chat/completions") == 3
    assert instrumented.count("/responses") == 2  # async clients have entries of their own
