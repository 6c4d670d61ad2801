"""The OpenAI embedder across `os.fork()` (gunicorn --preload, Celery prefork).

The parent's HTTP client keeps its connection to the API open for the next request; a
forked child inherited it, and several children then wrote and read one socket at once:
one child received another's vectors (stored, in the shared embeddings cache, as its
own text's), or half a response. A child opens connections of its own.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import numpy as np
import pytest

from pmm_memo.embedders.openai import OpenAIEmbedder


class _KeepAlive:
    """An embeddings endpoint that keeps connections open (HTTP/1.1, as the API does)
    and records which client connection each request came on."""

    def __init__(self) -> None:
        self.ports: list[int] = []
        seen = self.ports

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                seen.append(self.client_address[1])
                data = json.dumps(
                    {
                        "object": "list",
                        "model": body["model"],
                        "usage": {"prompt_tokens": 1, "total_tokens": 1},
                        "data": [
                            {"object": "embedding", "index": i, "embedding": [1.0, float(len(t))]}
                            for i, t in enumerate(body["input"])
                        ],
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"


@pytest.fixture
def keep_alive() -> Iterator[_KeepAlive]:
    server = _KeepAlive()
    yield server
    server.server.shutdown()
    server.server.server_close()


@pytest.mark.skipif(not hasattr(os, "fork"), reason="POSIX fork")
def test_a_forked_child_never_uses_the_parents_connection(keep_alive: _KeepAlive) -> None:
    embedder = OpenAIEmbedder(
        "text-embedding-3-small", 2, api_key="sk-test", base_url=keep_alive.base_url
    )
    embedder.embed(["warm-up"])
    embedder.embed(["again"])
    assert keep_alive.ports[0] == keep_alive.ports[1]  # the parent's kept connection
    pid = os.fork()
    if pid == 0:  # the child: its vector, on a connection of its own
        try:
            vector = embedder.embed(["a child's text"])[0]
            expected = np.asarray([1.0, 14.0]) / np.hypot(1.0, 14.0)
            os._exit(0 if np.allclose(vector, expected, atol=1e-6) else 3)
        except BaseException:
            os._exit(4)
    _, status = os.waitpid(pid, 0)
    assert os.waitstatus_to_exitcode(status) == 0
    assert len(keep_alive.ports) == 3
    assert keep_alive.ports[2] != keep_alive.ports[0]
    embedder.embed(["the parent again"])  # the parent's client still works
    assert len(keep_alive.ports) == 4
