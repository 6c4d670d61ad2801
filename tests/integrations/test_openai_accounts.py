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
