"""The LangChain cache through langchain-core's own fake LLM and chat model (no network),
on both backends, sync and async, exact and semantic."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from langchain_core.globals import get_llm_cache, set_llm_cache
from langchain_core.language_models.fake import FakeListLLM
from langchain_core.language_models.fake_chat_models import FakeListChatModel
from langchain_core.messages import AIMessage, BaseMessage, HumanMessage, SystemMessage
from langchain_core.outputs import ChatGeneration, Generation

import pmm_memo
from pmm_memo import Cache, CacheConfig
from pmm_memo.backends.memory import MemoryBackend
from pmm_memo.integrations.langchain import PmmMemoCache
from tests.conftest import run

Q = "How do I reset my password?"
NEAR = "how do i reset my password"  # offline similarity 1.0
FAR = "What is the capital of France?"


@pytest.fixture
def global_cache() -> Iterator[None]:
    before = get_llm_cache()
    yield
    set_llm_cache(before)


def test_exact_cache_with_fake_llm_and_chat_model(cache: Cache, global_cache: None) -> None:
    set_llm_cache(PmmMemoCache(tenant="pmm_llm", cache=cache))
    llm = FakeListLLM(responses=["first", "second"])
    assert llm.invoke(Q) == "first"
    assert llm.invoke(Q) == "first"  # cached: the fake would have said "second"
    assert llm.invoke(FAR) == "second"
    chat = FakeListChatModel(responses=["a", "b"])
    assert chat.invoke(Q).content == "a"
    hit = chat.invoke(Q)
    assert isinstance(hit, AIMessage) and hit.content == "a"
    lc = get_llm_cache()
    assert isinstance(lc, PmmMemoCache)
    info = lc.cache_info()
    assert (info.hits, info.misses) == (2, 3)


def test_scoped_by_llm_string(cache: Cache, global_cache: None) -> None:
    set_llm_cache(PmmMemoCache(cache=cache))
    assert FakeListLLM(responses=["x"]).invoke(Q) == "x"
    # Another model configuration (another llm_string) never gets that answer.
    assert FakeListLLM(responses=["y"]).invoke(Q) == "y"
    assert FakeListChatModel(responses=["z"]).invoke(Q).content == "z"


def test_async_methods(cache: Cache, global_cache: None) -> None:
    set_llm_cache(PmmMemoCache(cache=cache))

    async def main() -> list[str]:
        llm = FakeListLLM(responses=["one", "two"])
        chat = FakeListChatModel(responses=["c1", "c2"])
        return [
            await llm.ainvoke(Q),
            await llm.ainvoke(Q),
            str((await chat.ainvoke(Q)).content),
            str((await chat.ainvoke(Q)).content),
        ]

    assert run(main()) == ["one", "one", "c1", "c1"]
    lc = PmmMemoCache(cache=cache)
    assert run(lc.alookup(Q, "other")) is None
    run(lc.aupdate(Q, "other", [Generation(text="t", generation_info={"n": 1})]))
    got = run(lc.alookup(Q, "other"))
    assert got == [Generation(text="t", generation_info={"n": 1})]
    run(lc.aclear())
    assert lc.lookup(Q, "other") is None


def test_semantic_mode(cache: Cache, global_cache: None) -> None:
    lc = PmmMemoCache(cache=cache, semantic_threshold=0.9)
    set_llm_cache(lc)
    llm = FakeListLLM(responses=["first", "second", "third"])
    assert llm.invoke(Q) == "first"
    assert llm.invoke(NEAR) == "first"  # a near-duplicate prompt, same model
    assert llm.invoke(FAR) == "second"
    assert FakeListLLM(responses=["other"]).invoke(NEAR) == "other"  # other llm_string
    assert lc.cache_info().semantic_hits == 1
    assert run(llm.ainvoke("HOW DO I RESET MY PASSWORD?")) == "first"  # async lookup
    assert lc.cache_info().semantic_hits == 2


POLICY = "You are a support bot for ACME. " + "Follow the policy carefully and be polite. " * 30


def _chat(system: str, *turns: str) -> list[BaseMessage]:
    history: list[BaseMessage] = [SystemMessage(system)]
    for i, text in enumerate(turns):
        history.append(HumanMessage(text) if i % 2 == 0 else AIMessage(text))
    return history


def test_semantic_chat_embeds_the_question_and_scopes_the_rest(
    cache: Cache, global_cache: None
) -> None:
    """A chat model hands the cache its whole message list as one JSON string. Only the
    last human message is compared for similarity: a system prompt or an earlier turn
    that differs in one line is never carried over by a long shared context."""
    set_llm_cache(PmmMemoCache(cache=cache, semantic_threshold=0.95))
    chat = FakeListChatModel(responses=[f"r{i}" for i in range(20)])
    gold, free = POLICY + "Customer tier: gold.", POLICY + "Customer tier: free."
    ask = "What discount do I get?"
    assert chat.invoke(_chat(gold, ask)).content == "r0"
    assert chat.invoke(_chat(free, ask)).content == "r1"  # another system prompt
    assert chat.invoke(_chat(gold, "what discount do i get")).content == "r0"  # reworded
    assert chat.invoke(_chat(gold, "Hi, I am Alice.", "Hi Alice!", ask)).content == "r2"
    assert chat.invoke(_chat(gold, "Hi, I am Bobby.", "Hi Bobby!", ask)).content == "r3"

    async def asynchronous() -> list[str]:
        return [
            str((await chat.ainvoke(_chat(free, "What discount do I get"))).content),
            str((await chat.ainvoke(_chat(free + " Be brief.", ask))).content),
        ]

    assert run(asynchronous()) == ["r1", "r4"]
    lc = get_llm_cache()
    assert isinstance(lc, PmmMemoCache) and lc.cache_info().semantic_hits == 2


def test_round_trip_keeps_messages_and_info(cache: Cache) -> None:
    lc = PmmMemoCache(cache=cache)
    message = AIMessage(
        content="hi",
        tool_calls=[{"name": "f", "args": {"a": 1}, "id": "call_1"}],
        response_metadata={"model": "m"},
    )
    gens = [ChatGeneration(message=message, generation_info={"finish_reason": "stop"})]
    lc.update("p", "llm", gens)
    got = lc.lookup("p", "llm")
    assert got is not None and isinstance(got[0], ChatGeneration)
    assert got[0].message == message and got[0].generation_info == {"finish_reason": "stop"}


def test_fail_open(redis_url: str, global_cache: None) -> None:
    """A dead server or a foreign value is a miss; the chain still answers."""
    dead = Cache(
        CacheConfig(redis_url="redis://127.0.0.1:1/0", embedder="offline", embedding_dimensions=64)
    )
    set_llm_cache(PmmMemoCache(cache=dead, semantic_threshold=0.9))
    llm = FakeListLLM(responses=["a", "b"])
    assert [llm.invoke(Q), llm.invoke(Q)] == ["a", "b"]
    lc = get_llm_cache()
    assert isinstance(lc, PmmMemoCache) and lc.cache_info().errors >= 1
    # An entry that is not generations (another writer's) is a miss, counted as corrupt.
    mem = Cache(CacheConfig(embedder="offline", embedding_dimensions=64), backend=MemoryBackend())
    lc2 = PmmMemoCache(cache=mem)
    prepared = lc2._prepare("p", "l", writing=True)
    assert prepared is not None
    _, call, key, check = prepared
    entry = lc2._memo.entry(mem, call, key, check, "not generations", None)
    mem.write(entry, 60_000, lc2._memo.counters)
    assert lc2.lookup("p", "l") is None and lc2.cache_info().corrupt == 1
    dead.close()


def test_context_modes(memory_cache: Cache) -> None:
    lc = PmmMemoCache(cache=memory_cache)
    lc.update("p", "l", [Generation(text="v")])
    with pmm_memo.bypass():
        assert lc.lookup("p", "l") is None
        lc.update("p2", "l", [Generation(text="v2")])
    assert lc.lookup("p2", "l") is None
    with pmm_memo.refresh():
        assert lc.lookup("p", "l") is None  # recompute...
        lc.update("p", "l", [Generation(text="new")])  # ...and overwrite
    got = lc.lookup("p", "l")
    assert got is not None and got[0].text == "new"
