"""Fixtures of the integration tests."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from pmm_memo import Cache
from pmm_memo.integrations import openai as integration
from tests.support.openai_server import FakeOpenAI


@pytest.fixture
def instrumented(cache: Cache, openai_server: FakeOpenAI) -> Iterator[FakeOpenAI]:
    """The openai client classes instrumented on the test's cache, talking to the
    loopback server; uninstrumented afterwards."""
    integration.instrument(tenant="pmm_llm", cache=cache)
    yield openai_server
    integration.uninstrument()
