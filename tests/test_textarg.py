"""`text_arg=`: a callable that extracts the text (chat messages), and a clear error or a
one-time warning when the text argument is not a str (issue 8, section 4)."""

from __future__ import annotations

import logging
from typing import Annotated, Any, Literal, NewType, Optional, TypeVar, Union

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from pmm_memo import Cache, ConfigError, cached, semantic_lookup
from pmm_memo._textarg import TEXT_MARKER, may_be_str, replace_text
from tests.conftest import run

Message = dict[str, str]


def last_user(args: dict[str, Any]) -> str | None:
    for m in reversed(args["messages"]):
        if m["role"] == "user":
            return str(m["content"]) if isinstance(m["content"], str) else None
    return None


def chat(*turns: str, system: str = "You are terse.") -> list[Message]:
    out = [{"role": "system", "content": system}]
    for i, t in enumerate(turns):
        out.append({"role": "user" if i % 2 == 0 else "assistant", "content": t})
    return out


def make_chat(cache: Cache, calls: list[Any], threshold: float = 0.9) -> Any:
    @semantic_lookup(threshold=threshold, tenant="t", cache=cache, text_arg=last_user)
    def complete(messages: list[Message], model: str = "m", temperature: float = 0.0) -> str:
        calls.append(messages[-1]["content"])
        return f"{model}: {messages[-1]['content']}"

    return complete


def test_last_user_message_is_embedded_everything_else_is_scope(cache: Cache) -> None:
    calls: list[Any] = []
    complete = make_chat(cache, calls)
    first = complete(chat("How do I reset my password?"))
    assert complete(chat("how do i reset my password")) == first  # near-duplicate: hit
    assert complete.cache_info().semantic_hits == 1
    # Anything else differs -> never a hit: system prompt, history, model, temperature.
    assert complete(chat("how do i reset my password", system="Be verbose.")) != first
    assert complete(chat("Hi", "Hello!", "how do i reset my password")) != first
    assert complete(chat("how do i reset my password"), model="other") != first
    assert complete(chat("how do i reset my password"), temperature=0.7) != first
    assert complete(chat("What is the capital of France?")) != first
    assert complete.cache_info().semantic_hits == 1
    assert len(calls) == 6


def test_text_arg_callable_async(cache: Cache) -> None:
    calls: list[Any] = []

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache, text_arg=last_user)
    async def complete(messages: list[Message]) -> str:
        calls.append(messages[-1]["content"])
        return str(messages[-1]["content"])

    async def main() -> list[str]:
        out = [
            await complete(chat("How do I reset my password?")),
            await complete(chat("how do i reset my password")),
            await complete(chat("how do i reset my password", system="Other.")),
        ]
        await cache.aclose()
        return out

    got = run(main())
    assert got[1] == got[0] and got[2] != got[0] and len(calls) == 2


def test_text_arg_callable_returning_none_is_exact_only(cache: Cache) -> None:
    calls: list[Any] = []
    complete = make_chat(cache, calls, threshold=0.01)
    complete(chat())  # no user message: nothing to embed
    complete(chat(system="Other"))
    assert complete.cache_info().semantic_hits == 0 and len(calls) == 2


def test_text_arg_callable_returning_a_non_str_is_a_clear_error(cache: Cache) -> None:
    @semantic_lookup(tenant="t", cache=cache, text_arg=lambda a: a["messages"])
    def complete(messages: list[Message]) -> str:
        return "x"

    with pytest.raises(TypeError, match=r"text_arg callable .* returned list"):
        complete(chat("hi"))


def test_a_built_text_keeps_the_whole_arguments_in_scope(
    cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Any] = []

    @semantic_lookup(
        threshold=0.01, tenant="t", cache=cache, text_arg=lambda a: a["q"].strip() + "!"
    )
    def ask(q: str) -> str:
        calls.append(q)
        return q

    ask(" How do I reset my password?")
    ask(" how do i reset my password")  # the built text is not an argument: no hit
    ask(" how do i reset my password ")
    assert ask.cache_info().semantic_hits == 0
    assert sum("not one of the arguments" in r.message for r in caplog.records) == 1


# -- a text argument that is not a str ---------------------------------------------------


@pytest.mark.parametrize(
    "annotation",
    [list[Message], list, dict, int, bytes, "list[dict[str, str]]", Optional[int], tuple[str]],  # noqa: UP045
)
def test_non_str_annotation_is_an_error_at_decoration(annotation: Any) -> None:
    def complete(messages, model: str = "m") -> str:  # type: ignore[no-untyped-def]
        return "x"

    complete.__annotations__["messages"] = annotation
    for decorate in (semantic_lookup(), cached(embed_key=True)):
        with pytest.raises(ConfigError, match=r"'messages' is annotated .*text_arg"):
            decorate(complete)
    cached(complete)  # plain exact caching does not embed: fine
    semantic_lookup(text_arg=last_user)(complete)  # a callable says where the text is


def test_unannotated_non_str_text_warns_once_and_is_exact_only(
    cache: Cache, caplog: pytest.LogCaptureFixture
) -> None:
    calls: list[Any] = []

    @semantic_lookup(threshold=0.01, tenant="t", cache=cache)
    def complete(messages):  # type: ignore[no-untyped-def]
        calls.append(1)
        return "x"

    complete(chat("a"))
    complete(chat("b"))
    complete(chat("a"))
    assert len(calls) == 2 and complete.cache_info().hits == 1
    assert sum("not str" in r.message for r in caplog.records if r.levelno == logging.WARNING) == 1


T = TypeVar("T")
UserText = NewType("UserText", str)


@pytest.mark.parametrize(
    ("annotation", "want"),
    [
        (str, True),
        (Optional[str], True),  # noqa: UP045
        (str | None, True),
        (Union[int, str], True),  # noqa: UP007
        (Annotated[str, "doc"], True),
        (Literal["a", "b"], True),
        (Literal[1, 2], False),
        (UserText, True),
        (Any, True),
        (object, True),
        (T, None),
        ("SomeForwardRef", None),
        (int | None, False),
        (list[str], False),
        (dict[str, Any], False),
        (bytes, False),
    ],
)
def test_may_be_str(annotation: Any, want: bool | None) -> None:
    assert may_be_str(annotation) is want


def test_may_be_str_for_abcs() -> None:
    from collections.abc import Hashable, Sequence

    assert may_be_str(Sequence[str]) is True  # a str is a Sequence
    assert may_be_str(Hashable) is True


@settings(max_examples=60, deadline=None)
@given(
    st.recursive(
        st.text() | st.integers(),
        lambda inner: st.lists(inner) | st.dictionaries(st.text(), inner),
        max_leaves=20,
    )
)
def test_property_replace_text_changes_only_the_text_object(value: Any) -> None:
    target = "the text"  # an object not in `value` by identity
    assert replace_text(value, object()) == (value, False)
    wrapped = [value, {"content": target}]
    new, found = replace_text(wrapped, target)
    assert found and new == [value, {"content": TEXT_MARKER}]
    assert wrapped == [value, {"content": target}]  # the caller's arguments are untouched
