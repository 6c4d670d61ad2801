"""An OpenAI-compatible HTTP server on loopback for the real `openai` client: the tests
reach OpenAI only through it (never the internet)."""

from __future__ import annotations

import contextlib
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any

import numpy as np

from pmm_memo.embedders import OfflineEmbedder

if TYPE_CHECKING:
    import openai


def client() -> openai.OpenAI:
    """The real sync client, without retries (a test's failure is seen at once); the
    `openai_server` fixture points it at the loopback server."""
    import openai

    return openai.OpenAI(max_retries=0)


def aclient() -> openai.AsyncOpenAI:
    """The real async client, as `client`."""
    import openai

    return openai.AsyncOpenAI(max_retries=0)


class FakeOpenAI:
    """Serves /v1/embeddings, /v1/chat/completions and /v1/responses on loopback for the
    real client (streams as server-sent events, like the API).

    Embeddings are the offline embedder's vectors (so near-duplicates are near), at the
    requested `dimensions`. Tests can count calls and make it fail, slow or malformed.
    """

    def __init__(self) -> None:
        self.calls: list[dict[str, Any]] = []
        self.embedded_texts: list[str] = []
        self.fail_status: int | None = None
        self.delay = 0.0
        self.wrong_dim: int | None = None
        self.nan = False
        self.cut: int | None = None  # send only this many stream events, then hang up
        self.failed = False  # a Responses answer fails (a stream: `response.failed`)
        self.novel = False  # a Responses answer holds an item type newer than the SDK
        self._lock = threading.Lock()
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                with fake._lock:
                    fake.calls.append(
                        {"path": self.path, "body": body, "auth": self.headers.get("Authorization")}
                    )
                if fake.delay:
                    time.sleep(fake.delay)
                if fake.fail_status is not None:
                    self._send(
                        fake.fail_status,
                        {"error": {"message": "injected failure", "type": "server_error"}},
                    )
                    return
                if self.path.endswith("/embeddings"):
                    self._send(200, fake._embeddings(body))
                elif self.path.endswith("/chat/completions") and body.get("stream"):
                    self._send_stream(fake._chat_chunks(body))
                elif self.path.endswith("/chat/completions"):
                    self._send(200, fake._chat(body))
                elif self.path.endswith("/responses") and body.get("stream"):
                    self._send_stream(fake._response_events(body), events=True)
                elif self.path.endswith("/responses"):
                    self._send(200, fake._answer(body))
                else:
                    self._send(404, {"error": {"message": "no such path"}})

            def _send_stream(self, chunks: list[dict[str, Any]], events: bool = False) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("x-request-id", f"req-{len(fake.calls)}")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    if fake.cut is not None:  # a connection lost mid-stream
                        for chunk in chunks[: fake.cut]:
                            self.wfile.write(f"data: {json.dumps(chunk)}\n\n".encode())
                        return
                    for chunk in chunks:
                        # The Responses API names each event; chat streams do not.
                        name = f"event: {chunk['type']}\n" if events else ""
                        self.wfile.write(f"{name}data: {json.dumps(chunk)}\n\n".encode())
                        self.wfile.flush()
                    if not events:
                        self.wfile.write(b"data: [DONE]\n\n")

            def _send(self, status: int, payload: dict[str, Any]) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.send_header("x-request-id", f"req-{len(fake.calls)}")
                self.end_headers()
                # The client may have timed out first: that is what such a test wants.
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
                    self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def start(self) -> FakeOpenAI:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()

    def reset(self) -> None:
        with self._lock:
            self.calls.clear()
            self.embedded_texts.clear()
        self.fail_status = None
        self.delay = 0.0
        self.wrong_dim = None
        self.nan = False
        self.cut = None
        self.failed = False
        self.novel = False

    def count(self, suffix: str) -> int:
        return sum(1 for c in self.calls if c["path"].endswith(suffix))

    def _embeddings(self, body: dict[str, Any]) -> dict[str, Any]:
        texts = body["input"] if isinstance(body["input"], list) else [body["input"]]
        dim = self.wrong_dim or int(body.get("dimensions") or 1536)
        with self._lock:
            self.embedded_texts.extend(texts)
        vectors = OfflineEmbedder(dim).embed(texts)
        if self.nan:
            vectors[:, 0] = np.nan
        data = [
            {
                "object": "embedding",
                "index": i,
                "embedding": [None if np.isnan(x) else float(x) for x in v],
            }
            for i, v in enumerate(vectors)
        ]
        return {
            "object": "list",
            "data": data,
            "model": body["model"],
            "usage": {"prompt_tokens": len(texts), "total_tokens": len(texts)},
        }

    def _chat_chunks(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        last = body["messages"][-1]["content"]
        base = {
            "id": f"chatcmpl-{len(self.calls)}",
            "object": "chat.completion.chunk",
            "created": 1700000000,
            "model": body["model"],
        }
        pieces = [{"role": "assistant", "content": "echo: "}, {"content": last}, {}]
        chunks = [
            {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": "stop" if not delta else None}
                ],
            }
            for delta in pieces
        ]
        if (body.get("stream_options") or {}).get("include_usage"):
            usage = {"prompt_tokens": 1, "completion_tokens": 2, "total_tokens": 3}
            chunks.append({**base, "choices": [], "usage": usage})
        return chunks

    def _chat(self, body: dict[str, Any]) -> dict[str, Any]:
        last = body["messages"][-1]["content"]
        return {
            "id": f"chatcmpl-{len(self.calls)}",
            "object": "chat.completion",
            "created": 1700000000,
            "model": body["model"],
            "choices": [
                {
                    "index": 0,
                    "finish_reason": "stop",
                    "message": {"role": "assistant", "content": f"echo: {last}"},
                }
            ],
            "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
        }

    def _response(self, body: dict[str, Any]) -> dict[str, Any]:
        """A Responses API `response` object echoing the last user text."""
        given = body["input"]
        if isinstance(given, list):
            given = next(m["content"] for m in reversed(given) if m.get("role") == "user")
        return {
            "id": f"resp_{len(self.calls)}",
            "object": "response",
            "created_at": 1700000000,
            "model": body["model"],
            "status": "failed" if self.failed else "completed",
            "error": {"code": "server_error", "message": "The model failed."}
            if self.failed
            else None,
            "output": [
                {
                    "type": "message",
                    "id": f"msg_{len(self.calls)}",
                    "role": "assistant",
                    "status": "completed",
                    "content": [
                        {"type": "output_text", "text": f"echo: {given}", "annotations": []}
                    ],
                }
            ],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "temperature": body.get("temperature"),
            # The API echoes the request's text configuration (a JSON schema included).
            "text": body.get("text", {"format": {"type": "text"}}),
            "usage": {
                "input_tokens": 1,
                "output_tokens": 1,
                "total_tokens": 2,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }

    def _answer(self, body: dict[str, Any]) -> dict[str, Any]:
        """`_response`, with an output item the installed SDK does not know when
        `novel` is set (the API adds item types before SDKs declare them)."""
        answer = self._response(body)
        if self.novel:
            answer["output"].append({"type": "brand_new_call", "id": "bn_1", "status": "completed"})
        return answer

    def _response_events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The event sequence the API sends for one text answer (what the SDK's
        `responses.stream()` helper checks, in order)."""
        done = self._answer(body)
        item = done["output"][0]
        part = item["content"][0]
        text = part["text"]
        where = {"item_id": item["id"], "output_index": 0}
        events: list[dict[str, Any]] = [
            {
                "type": "response.created",
                "response": {**done, "status": "in_progress", "output": []},
            },
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "status": "in_progress", "content": []},
            },
            {
                "type": "response.content_part.added",
                **where,
                "content_index": 0,
                "part": {**part, "text": ""},
            },
            {
                "type": "response.output_text.delta",
                **where,
                "content_index": 0,
                "delta": text,
                "logprobs": [],
            },
            {
                "type": "response.output_text.done",
                **where,
                "content_index": 0,
                "text": text,
                "logprobs": [],
            },
            {"type": "response.content_part.done", **where, "content_index": 0, "part": part},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": done},
        ]
        if self.failed:
            events[-1] = {"type": "response.failed", "response": done}
        return [{**e, "sequence_number": i} for i, e in enumerate(events)]
