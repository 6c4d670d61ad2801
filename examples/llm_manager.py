"""The seed project's LLMManager, rebuilt on pmm_memo and the official openai client.

    embd_text(text, user_id, use_cache)          cached OpenAI embeddings
    find_similar_embeddings(text, user_id, k)    KNN over what this user has embedded
    cached_llm_call(messages, user_id, use_cache)  cached chat completions

Run it against any OpenAI-compatible server (OPENAI_BASE_URL, OPENAI_API_KEY). Without
them, `python examples/llm_manager.py` starts a tiny local stand-in server so the
example runs offline.
"""

from __future__ import annotations

import contextlib
import os
import sys
from pathlib import Path
from typing import Any

import numpy as np
import openai

import pmm_memo
from pmm_memo import CacheManager, cached


class LLMManager:
    def __init__(
        self,
        client: openai.OpenAI | None = None,
        model: str = "gpt-4o-mini",
        embedding_model: str = "text-embedding-3-small",
        dimensions: int = 256,
    ) -> None:
        self.client = client or openai.OpenAI()
        self.model = model
        self.embedding_model = embedding_model
        self.dimensions = dimensions
        self.manager = CacheManager(cache=pmm_memo.default_cache())

    # `self` is left out of keys, so every LLMManager shares these entries. The key holds
    # what changes the answer: the text, the model and the dimensions (not the user: an
    # embedding is the same for everyone, and paid for once).
    @cached(tenant="pmm_embeddings", ttl=86400)
    def _embed(self, text: str, model: str, dimensions: int) -> np.ndarray:
        response = self.client.embeddings.create(model=model, input=[text], dimensions=dimensions)
        return np.asarray(response.data[0].embedding, dtype=np.float32)

    @cached(tenant="pmm_llm", ttl=3600)
    def _chat(self, messages: list[dict[str, str]], model: str, user_id: str | None) -> str:
        response = self.client.chat.completions.create(
            model=model, messages=messages, temperature=0
        )  # type: ignore[arg-type]
        return response.choices[0].message.content or ""

    def embd_text(
        self, text: str, user_id: str | None = None, use_cache: bool = True
    ) -> np.ndarray:
        """The embedding of `text`; also recorded for `find_similar_embeddings`."""
        with contextlib.nullcontext() if use_cache else pmm_memo.bypass():
            vector = self._embed(text, self.embedding_model, self.dimensions)
        self.manager.put_cache("pmm_bot", user_id, f"text:{text}", text, embedding=vector)
        return vector

    def find_similar_embeddings(
        self, text: str, user_id: str | None = None, k: int = 5
    ) -> list[dict[str, Any]]:
        """Texts this user embedded before, most similar first."""
        vector = self.embd_text(text, user_id)
        hits = self.manager.knn_search("pmm_bot", vector, k=k + 1, user=user_id)
        return [h for h in hits if h["text"] != text][:k]

    def cached_llm_call(
        self, messages: list[dict[str, str]], user_id: str | None = None, use_cache: bool = True
    ) -> str:
        with contextlib.nullcontext() if use_cache else pmm_memo.bypass():
            return self._chat(messages, self.model, user_id)


def main() -> None:
    server = None
    if not os.environ.get("OPENAI_BASE_URL"):
        sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
        from tests.support.openai_server import FakeOpenAI

        server = FakeOpenAI().start()
        os.environ["OPENAI_BASE_URL"] = server.base_url
        os.environ.setdefault("OPENAI_API_KEY", "sk-local-stand-in")
        print(f"(using a local OpenAI stand-in at {server.base_url})")
    pmm_memo.configure(embedder="offline", embedding_dimensions=256)
    llm = LLMManager(dimensions=256)
    try:
        for text in (
            "Напиши песню о любви",
            "Write a song about love",
            "Напиши песню о любви и весне",
            "What is the weather in Paris?",
        ):
            llm.embd_text(text, user_id="user123")
        llm.embd_text("Напиши песню о любви", user_id="user123")  # cached: no API call
        print("similar to 'Напиши песню о любви!':")
        for hit in llm.find_similar_embeddings("Напиши песню о любви!", user_id="user123", k=3):
            print(f"  {hit['similarity']:.3f}  {hit['text']}")
        messages = [{"role": "user", "content": "Say hello"}]
        print("LLM:", llm.cached_llm_call(messages, user_id="user123"))
        print("LLM (cached):", llm.cached_llm_call(messages, user_id="user123"))
        if server is not None:
            print(
                f"API calls made: {server.count('/embeddings')} embeddings, "
                f"{server.count('/chat/completions')} chat"
            )
            assert server.count("/chat/completions") == 1
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    main()
