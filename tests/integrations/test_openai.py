"""Zero-edit instrumentation through the real openai client and a loopback server."""

from __future__ import annotations

from typing import Any

import openai
import pytest
from openai.types import CreateEmbeddingResponse
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from pmm_memo import Cache
from pmm_memo.integrations import openai as integration
from tests.conftest import run
from tests.support.openai_server import FakeOpenAI, aclient, client

ORIGINALS = (
    openai.resources.chat.completions.Completions.create,
    openai.resources.chat.completions.AsyncCompletions.create,
    openai.resources.embeddings.Embeddings.create,
)


def ask(c: openai.OpenAI, content: str = "hello", **kw: Any) -> ChatCompletion:
    kw.setdefault("temperature", 0)
    return c.chat.completions.create(
        model="gpt-4o-mini", messages=[{"role": "user", "content": content}], **kw
    )


def test_chat_hits_return_typed_objects(instrumented: FakeOpenAI) -> None:
    c = client()
    first = ask(c)
    second = ask(c)
    assert isinstance(second, ChatCompletion)
    assert second.choices[0].message.content == "echo: hello"
    assert second.id == first.id  # the stored answer, not a new one
    assert instrumented.count("/chat/completions") == 1


@pytest.mark.parametrize(
    "change",
    [
        {"model": "gpt-4o"},
        {"seed": 7},
        {"top_p": 0.5},
        {"max_tokens": 5},
        {"response_format": {"type": "json_object"}},
        {"content": "other"},
        {"tools": [{"type": "function", "function": {"name": "f", "parameters": {}}}]},
        {"extra_body": {"x": 1}},
    ],
)
def test_every_answer_changing_parameter_is_keyed(
    instrumented: FakeOpenAI, change: dict[str, Any]
) -> None:
    change = dict(change)  # parametrize shares the dict between backends
    c = client()
    ask(c)
    content = change.pop("content", "hello")
    model = change.pop("model", "gpt-4o-mini")
    c.chat.completions.create(
        model=model, messages=[{"role": "user", "content": content}], temperature=0, **change
    )
    assert instrumented.count("/chat/completions") == 2


def test_transport_options_and_client_do_not_change_the_key(instrumented: FakeOpenAI) -> None:
    ask(client())
    ask(
        openai.OpenAI(api_key="sk-another-key", max_retries=0),
        timeout=30,
        extra_headers={"X-Trace": "1"},
    )
    assert instrumented.count("/chat/completions") == 1
    other_base = openai.OpenAI(base_url=instrumented.base_url + "/", max_retries=0)
    ask(other_base)  # same URL with a trailing slash normalises to the same base
    assert instrumented.count("/chat/completions") == 1


def test_nondeterministic_requests_pass_through(cache: Cache, openai_server: FakeOpenAI) -> None:
    integration.instrument(cache=cache)
    try:
        c = client()
        for kw in ({"temperature": 0.7}, {"temperature": 0, "n": 2}):
            ask(c, **kw)
            ask(c, **kw)
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        c.chat.completions.create(model="m", messages=[{"role": "user", "content": "x"}])
        assert openai_server.count("/chat/completions") == 6
        # extra_body is merged over the named parameters: this request samples at 0.9.
        for extra in ({"temperature": 0.9}, {"n": 2}):
            ask(c, temperature=0, extra_body=extra)
            ask(c, temperature=0, extra_body=extra)
        assert openai_server.count("/chat/completions") == 10
        integration.instrument(cache=cache, cache_nondeterministic=True)
        ask(c, temperature=0.7)
        ask(c, temperature=0.7)
        assert openai_server.count("/chat/completions") == 11
    finally:
        integration.uninstrument()


def test_api_key_is_never_stored(instrumented: FakeOpenAI, cache: Cache) -> None:
    ask(client())
    client().embeddings.create(model="text-embedding-3-small", input=["a"])
    if cache.backend.name == "redis":
        raw = cache.backend.client  # type: ignore[attr-defined]
        dump = b"".join(
            v for k in raw.scan_iter("*") if raw.type(k) == b"hash" for v in raw.hgetall(k).values()
        )
    else:
        dump = repr([e.value for e in cache.backend.entries()]).encode()  # type: ignore[attr-defined]
    assert b"sk-test-not-a-real-key" not in dump


def test_embeddings_are_cached(instrumented: FakeOpenAI) -> None:
    c = client()
    a = c.embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=8)
    b = c.embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=8)
    assert isinstance(b, CreateEmbeddingResponse)
    assert b.data[1].embedding == a.data[1].embedding and len(b.data[0].embedding) == 8
    c.embeddings.create(model="text-embedding-3-small", input=["a", "b"], dimensions=16)
    assert instrumented.count("/embeddings") == 2


def test_async_client(instrumented: FakeOpenAI, cache: Cache) -> None:
    async def main() -> list[str]:
        c = aclient()
        out = []
        for _ in range(2):
            r = await c.chat.completions.create(
                model="gpt-4o-mini", messages=[{"role": "user", "content": "hi"}], temperature=0
            )
            out.append(r.choices[0].message.content)
        e = await c.embeddings.create(model="text-embedding-3-small", input="x")
        e2 = await c.embeddings.create(model="text-embedding-3-small", input="x")
        assert e2.data[0].embedding == e.data[0].embedding
        await c.close()
        await cache.aclose()
        return out

    assert run(main()) == ["echo: hi", "echo: hi"]
    assert instrumented.count("/chat/completions") == 1
    assert instrumented.count("/embeddings") == 1


def _stream_text(stream: Any) -> str:
    parts = []
    with stream as s:
        for chunk in s:
            assert isinstance(chunk, ChatCompletionChunk)
            parts.append(chunk.choices[0].delta.content or "")
    return "".join(parts)


def test_streams_are_recorded_and_replayed(instrumented: FakeOpenAI) -> None:
    c = client()
    kw: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "temperature": 0,
        "stream": True,
        "messages": [{"role": "user", "content": "stream me"}],
    }
    assert _stream_text(c.chat.completions.create(**kw)) == "echo: stream me"
    assert _stream_text(c.chat.completions.create(**kw)) == "echo: stream me"
    assert instrumented.count("/chat/completions") == 1
    ask(c, "stream me")  # the non-streaming request is a different entry
    assert instrumented.count("/chat/completions") == 2


def test_abandoned_stream_is_not_stored(instrumented: FakeOpenAI) -> None:
    c = client()
    kw: dict[str, Any] = {
        "model": "gpt-4o-mini",
        "temperature": 0,
        "stream": True,
        "messages": [{"role": "user", "content": "partial"}],
    }
    with c.chat.completions.create(**kw) as s:
        next(iter(s))
    _stream_text(c.chat.completions.create(**kw))
    assert instrumented.count("/chat/completions") == 2


def test_async_streams(instrumented: FakeOpenAI, cache: Cache) -> None:
    async def main() -> list[str]:
        c = aclient()
        texts = []
        for _ in range(2):
            stream = await c.chat.completions.create(
                model="gpt-4o-mini",
                temperature=0,
                stream=True,
                messages=[{"role": "user", "content": "async stream"}],
            )
            parts = []
            async with stream as s:
                async for chunk in s:
                    parts.append(chunk.choices[0].delta.content or "")
            texts.append("".join(parts))
        await c.close()
        await cache.aclose()
        return texts

    assert run(main()) == ["echo: async stream"] * 2
    assert instrumented.count("/chat/completions") == 1


def test_semantic_chat(cache: Cache, openai_server: FakeOpenAI) -> None:
    integration.instrument(cache=cache, semantic_threshold=0.9)
    try:
        c = client()
        system = {"role": "system", "content": "be brief"}
        first = c.chat.completions.create(
            model="m",
            temperature=0,
            messages=[system, {"role": "user", "content": "How do I reset my password?"}],
        )
        near = c.chat.completions.create(
            model="m",
            temperature=0,
            messages=[system, {"role": "user", "content": "how do i reset my password"}],
        )
        assert near.choices[0].message.content == first.choices[0].message.content
        assert openai_server.count("/chat/completions") == 1
        c.chat.completions.create(
            model="m",
            temperature=0,
            messages=[
                {"role": "system", "content": "be verbose"},
                {"role": "user", "content": "how do i reset my password"},
            ],
        )
        c.chat.completions.create(
            model="other",
            temperature=0,
            messages=[system, {"role": "user", "content": "how do i reset my password"}],
        )
        assert openai_server.count("/chat/completions") == 3  # other scope: no hit
        assert integration.cache_info()["chat_semantic"].semantic_hits == 1
    finally:
        integration.uninstrument()


def test_uninstrument_restores_originals(cache: Cache, openai_server: FakeOpenAI) -> None:
    integration.instrument(cache=cache)
    integration.uninstrument()
    assert (
        openai.resources.chat.completions.Completions.create,
        openai.resources.chat.completions.AsyncCompletions.create,
        openai.resources.embeddings.Embeddings.create,
    ) == ORIGINALS
    c = client()
    ask(c)
    ask(c)
    assert openai_server.count("/chat/completions") == 2


def test_an_sdk_without_the_responses_api_is_instrumented(
    cache: Cache, openai_server: FakeOpenAI, monkeypatch: pytest.MonkeyPatch
) -> None:
    """openai releases before 1.66 (the package accepts 1.40) have no Responses API:
    instrument() raised ModuleNotFoundError, leaving chat patched but caching nothing."""
    import sys

    monkeypatch.setitem(sys.modules, "openai.resources.responses.responses", None)
    integration.instrument(cache=cache)
    try:
        ask(client())
        ask(client())
        assert openai_server.count("/chat/completions") == 1
    finally:
        integration.uninstrument()
    assert openai.resources.chat.completions.Completions.create is ORIGINALS[0]
