"""OpenAI embeddings through the official `openai` client (sync and async).

Key and base URL come from the arguments or the client's usual environment variables
(OPENAI_API_KEY, OPENAI_BASE_URL). `dimensions` is sent for text-embedding-3 models,
which can shorten their vectors; other models must natively match the configured size.
The client's own retries are kept (a transient 429 is worth a retry) but bounded by
`timeout`; a failure makes the decorated call fall back to the function.

Fork-safe: the sync client keeps its connection to the API open for the next request,
and a forked child (gunicorn --preload, Celery prefork) inherited it; children then
shared one socket and read each other's vectors. A child builds its own client; the
parent's is left untouched (closing it would close the parent's connection too).
"""

from __future__ import annotations

from typing import Any

import numpy as np

from .. import _forksafe
from .._loopbound import LoopBound
from ._base import BaseEmbedder

_INHERITED: list[Any] = []  # a forked child's copies of its parent's clients


class OpenAIEmbedder(BaseEmbedder):
    name = "openai"
    remote = True

    def __init__(
        self,
        model: str = "text-embedding-3-small",
        dim: int = 1536,
        *,
        api_key: str | None = None,
        base_url: str | None = None,
        batch_size: int = 100,
        timeout: float = 30.0,
        max_retries: int = 2,
    ) -> None:
        super().__init__(dim, batch_size)
        self.model = model
        self._client_args: dict[str, Any] = {
            "api_key": api_key,
            "base_url": base_url,
            "timeout": timeout,
            "max_retries": max_retries,
        }
        self._client: Any = None
        self._aclients: LoopBound[Any] = LoopBound(self._make_async, lambda c: c.close())
        _forksafe.track(self)

    def _fork_lock(self) -> None:
        return None  # no lock: the client is built once and then only read

    def _after_fork_in_child(self) -> None:
        if self._client is not None:
            _INHERITED.append(self._client)  # never used, never closed (see above)
            self._client = None

    @property
    def client(self) -> Any:
        if self._client is None:
            import openai

            self._client = openai.OpenAI(**self._client_args)
        return self._client

    def _make_async(self) -> Any:
        import openai

        return openai.AsyncOpenAI(**self._client_args)

    def _request(self, texts: list[str]) -> dict[str, Any]:
        req: dict[str, Any] = {"model": self.model, "input": texts, "encoding_format": "float"}
        if self.model.startswith("text-embedding-3"):
            req["dimensions"] = self.dim
        return req

    @staticmethod
    def _vectors(response: Any) -> np.ndarray:
        data = sorted(response.data, key=lambda d: d.index)
        return np.asarray([d.embedding for d in data], dtype=np.float32)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        return self._vectors(self.client.embeddings.create(**self._request(texts)))

    async def _aembed_batch(self, texts: list[str]) -> np.ndarray:
        client = await self._aclients.get()
        return self._vectors(await client.embeddings.create(**self._request(texts)))

    async def aclose(self) -> None:
        await self._aclients.close()
