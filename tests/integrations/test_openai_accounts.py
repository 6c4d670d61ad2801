"""An answer belongs to the account that asked: another organization's or project's
client (its own fine-tuned models, files, vector stores, stored prompts) never gets it."""

from __future__ import annotations

from typing import Any

import openai
import pytest

from tests.conftest import run
from tests.support.openai_server import FakeOpenAI

ASK: Any = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}


@pytest.mark.parametrize("account", ["organization", "project"])
def test_another_account_is_never_served(instrumented: FakeOpenAI, account: str) -> None:
    def client(name: str) -> openai.OpenAI:
        return openai.OpenAI(max_retries=0, **{account: name})

    client("a").chat.completions.create(temperature=0, **ASK)
    client("a").chat.completions.create(temperature=0, **ASK)
    assert instrumented.count("/chat/completions") == 1  # the same account: a hit
    client("b").chat.completions.create(temperature=0, **ASK)
    assert instrumented.count("/chat/completions") == 2
    list(client("a").chat.completions.create(temperature=0, stream=True, **ASK))
    list(client("b").chat.completions.create(temperature=0, stream=True, **ASK))
    assert instrumented.count("/chat/completions") == 4

    async def other() -> Any:
        first = openai.AsyncOpenAI(max_retries=0, **{account: "a"})
        await first.chat.completions.create(temperature=0, **ASK)
        second = openai.AsyncOpenAI(max_retries=0, **{account: "b"})
        return await second.chat.completions.create(temperature=0, **ASK)

    run(other())
    assert instrumented.count("/chat/completions") == 6


def test_an_account_set_by_headers_is_the_account(instrumented: FakeOpenAI) -> None:
    """The SDK sends organization and project as headers, which `default_headers` and a
    call's `extra_headers` override: the account they name is the one keyed."""
    a = openai.OpenAI(max_retries=0, organization="a")
    a.chat.completions.create(temperature=0, **ASK)
    a.chat.completions.create(temperature=0, extra_headers={"X-Trace": "1"}, **ASK)
    assert instrumented.count("/chat/completions") == 1  # other headers: still a hit
    a.chat.completions.create(temperature=0, extra_headers={"openai-organization": "b"}, **ASK)
    assert instrumented.count("/chat/completions") == 2
    b = openai.OpenAI(max_retries=0, default_headers={"OpenAI-Project": "b"})
    b.chat.completions.create(temperature=0, **ASK)
    assert instrumented.count("/chat/completions") == 3
    via_header = openai.OpenAI(max_retries=0, default_headers={"OpenAI-Organization": "a"})
    via_header.chat.completions.create(temperature=0, **ASK)
    assert instrumented.count("/chat/completions") == 3  # organization "a", however set
