"""A hit is the answer the API sent, field for field, through the real client.

The SDK's models name some fields differently from the API (`schema_` for `schema`,
`async_` for `async`): an answer stored under the Python names came back without them.
"""

from __future__ import annotations

from typing import Any

from openai.types.responses import Response

from tests.conftest import run
from tests.support.openai_server import FakeOpenAI, aclient, client

SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}
TEXT: Any = {"format": {"type": "json_schema", "name": "place", "schema": SCHEMA, "strict": True}}


def respond(**kw: Any) -> Any:
    return client().responses.create(
        model="gpt-4o-mini", input="where?", temperature=0, text=TEXT, **kw
    )


def test_aliased_fields_survive_a_hit(instrumented: FakeOpenAI) -> None:
    first = respond()
    hit = respond()
    assert instrumented.count("/responses") == 1
    assert isinstance(hit, Response) and hit.id == first.id
    assert hit.text is not None and hit.text.format.schema_ == SCHEMA  # type: ignore[union-attr]
    assert hit.to_dict() == first.to_dict()


def test_aliased_fields_survive_a_replayed_stream(instrumented: FakeOpenAI) -> None:
    first = [e.to_dict() for e in respond(stream=True)]
    replay = list(respond(stream=True))
    assert instrumented.count("/responses") == 1
    assert [e.to_dict() for e in replay] == first
    assert replay[-1].response.text.format.schema_ == SCHEMA


def test_aliased_fields_survive_a_raw_and_an_async_hit(instrumented: FakeOpenAI) -> None:
    kw: Any = {"model": "gpt-4o-mini", "input": "where?", "temperature": 0, "text": TEXT}
    miss = client().responses.with_raw_response.create(**kw)
    first = miss.parse()
    hit = respond()
    assert hit.text.format.schema_ == SCHEMA and hit.to_dict() == first.to_dict()

    async def twice() -> tuple[Any, Any]:
        c = aclient()
        return await c.responses.create(**kw), await c.responses.create(**kw)

    amiss, ahit = run(twice())
    assert instrumented.count("/responses") == 2  # one per client kind
    assert ahit.text.format.schema_ == SCHEMA and ahit.to_dict() == amiss.to_dict()


def test_an_item_type_newer_than_the_sdk_is_stored_without_a_warning(
    instrumented: FakeOpenAI,
) -> None:
    """The API sends item types before the installed SDK declares them: the SDK builds
    them leniently, and serializing them warned (an exception under `-W error`, as in
    this suite) after the API had answered."""
    instrumented.novel = True
    kw: Any = {"model": "gpt-4o-mini", "input": "new?", "temperature": 0}
    first = client().responses.create(**kw)
    hit = client().responses.create(**kw)
    assert (
        hit.to_dict(warnings=False) == first.to_dict(warnings=False)
        and hit.output[-1].type == "brand_new_call"
    )
    streamed = [e.to_dict(warnings=False) for e in client().responses.create(stream=True, **kw)]
    replayed = [e.to_dict(warnings=False) for e in client().responses.create(stream=True, **kw)]
    assert replayed == streamed
    assert instrumented.count("/responses") == 2
