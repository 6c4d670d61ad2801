"""Shared statistics under a real pre-fork server: gunicorn `--preload -w 4`.

The application (and its cache) is imported once by gunicorn's master and forked into
four workers, as in production. `pmm_memo:stats:<tenant>` must count every served call
exactly once: while the workers run (each sends its deltas once a second) and after a
graceful shutdown (each exiting worker sends only what it has not sent; none re-sends
the master's counts).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.servers import ValkeyServer, free_port

TENANT = "gunicorn"
KEYS = 40
ROUNDS = 10  # every key requested this many times: KEYS misses, the rest hits

APP = textwrap.dedent(
    """
    import os

    from pmm_memo import Cache, CacheConfig, cached

    cache = Cache(CacheConfig.from_env())

    @cached(tenant="gunicorn", cache=cache)
    def square(x: int) -> int:
        return x * x

    # Imported by the master (--preload): one call there, before the fork, whose counts
    # are the master's to send, once.
    square(-1)

    def app(environ, start_response):
        x = int(environ["PATH_INFO"].strip("/"))
        body = str(square(x)).encode()
        start_response("200 OK", [("Content-Type", "text/plain"), ("X-Pid", str(os.getpid()))])
        return [body]
    """
)


@pytest.fixture
def gunicorn(tmp_path: Path, redis_url: str) -> Iterator[tuple[int, subprocess.Popen[bytes]]]:
    """gunicorn serving the app on loopback; stopped by its pid (SIGTERM: graceful)."""
    (tmp_path / "stats_app.py").write_text(APP)
    port = free_port()
    env = {
        **os.environ,
        "CACHE_REDIS_URL": redis_url,
        "CACHE_EMBEDDER": "offline",
        "PYTHONPATH": str(tmp_path),
    }
    log = open(tmp_path / "gunicorn.log", "wb")  # noqa: SIM115 - the process owns it
    proc = subprocess.Popen(
        [
            *(sys.executable, "-m", "gunicorn", "--preload", "-w", "4"),
            *("-b", f"127.0.0.1:{port}", "--graceful-timeout", "20", "stats_app:app"),
        ],
        cwd=tmp_path,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                _get(port, 0)
                break
            except OSError:
                if proc.poll() is not None or time.monotonic() > deadline:
                    pytest.fail((tmp_path / "gunicorn.log").read_text(errors="replace"))
                time.sleep(0.2)
        yield port, proc
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


def _get(port: int, x: int) -> tuple[str, str]:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/{x}", timeout=30) as reply:
        return reply.read().decode(), reply.headers["X-Pid"]


def _stats(server: ValkeyServer) -> dict[str, int]:
    raw = server.client().hgetall(f"pmm_memo:stats:{TENANT}")
    return {k.decode(): int(v) for k, v in raw.items()}


def _settled(server: ValkeyServer, want: dict[str, int], within: float = 30.0) -> dict[str, int]:
    """The stats once they equal `want` (flushes are once a second), or as last seen."""
    deadline = time.monotonic() + within
    seen = _stats(server)
    while seen != want and time.monotonic() < deadline:
        time.sleep(0.25)
        seen = _stats(server)
    return seen


@pytest.mark.slow
def test_gunicorn_preload_workers_count_every_call_once(
    gunicorn: tuple[int, subprocess.Popen[bytes]], search_server: ValkeyServer
) -> None:
    port, proc = gunicorn
    pids = set()
    # Key 0 was requested once while waiting for the server to answer, by one worker.
    for _ in range(ROUNDS):
        for x in range(1, KEYS + 1):
            body, pid = _get(port, x)
            assert body == str(x * x)
            pids.add(pid)
    assert len(pids) > 1  # the requests really were spread over several workers
    # Served: 1 (key 0) + KEYS * ROUNDS; the master's own call before the fork: 1 miss.
    want = {"hits": KEYS * (ROUNDS - 1), "misses": KEYS + 2}
    assert _settled(search_server, want) == want  # while the workers run
    time.sleep(2.5)  # two more flush intervals: nothing is counted twice
    assert _stats(search_server) == want
    proc.send_signal(signal.SIGTERM)  # gunicorn's graceful shutdown
    assert proc.wait(60) == 0
    assert _stats(search_server) == want  # no worker re-sent anything at exit
    assert search_server.client().ttl(f"pmm_memo:stats:{TENANT}") > 0
