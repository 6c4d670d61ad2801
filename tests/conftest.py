"""Session servers (real Valkey with and without RediSearch, an OpenAI-shaped server) and
the backend-parametrised `cache` fixture used by the backend-agnostic suites.

A server that cannot start fails the run: these tests never skip for lack of Redis.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from pmm_memo import Cache, CacheConfig
from pmm_memo.backends.memory import MemoryBackend
from tests.support.openai_server import FakeOpenAI
from tests.support.servers import ValkeyCluster, ValkeyServer


@pytest.fixture(scope="session")
def server_logs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("servers")


def _start(server: ValkeyServer) -> ValkeyServer:
    try:
        return server.start()
    except Exception as exc:  # fail, never skip: CI must not go green without Redis
        pytest.fail(f"could not start a test Valkey server: {exc}", pytrace=False)


@pytest.fixture(scope="session")
def search_server(server_logs: Path) -> Iterator[ValkeyServer]:
    server = _start(ValkeyServer(search=True, log_dir=server_logs))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def plain_server(server_logs: Path) -> Iterator[ValkeyServer]:
    server = _start(ValkeyServer(search=False, log_dir=server_logs))
    yield server
    server.stop()


@pytest.fixture(scope="session")
def cluster_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ValkeyCluster]:
    """A 3-primary Valkey cluster with RediSearch (fault tests start their own)."""
    cluster = ValkeyCluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.start()
    except Exception as exc:  # fail, never skip
        cluster.stop()
        pytest.fail(f"could not start a test Valkey cluster: {exc}", pytrace=False)
    yield cluster
    cluster.stop()


@pytest.fixture
def own_cluster(tmp_path: Path) -> Iterator[ValkeyCluster]:
    """A cluster of the test's own, for tests that freeze, kill or reshard it."""
    cluster = ValkeyCluster(tmp_path).start()
    yield cluster
    cluster.stop()


@pytest.fixture
def cluster_url(cluster_server: ValkeyCluster) -> str:
    """A flushed cluster (its per-primary indexes are dropped too: FLUSHALL)."""
    cluster_server.flush()
    return cluster_server.url


@pytest.fixture(params=["redis", "cluster"])
def server_url(request: pytest.FixtureRequest) -> str:
    """A clean Redis: one server, then a 3-primary cluster (tests that need a server)."""
    return str(request.getfixturevalue(f"{request.param}_url"))


def url_for(kind: str, request: pytest.FixtureRequest) -> str | None:
    """The clean server URL of a backend kind (None for the embedded backend)."""
    return None if kind == "memory" else str(request.getfixturevalue(f"{kind}_url"))


def _emptied(server: ValkeyServer) -> str:
    client = server.client()
    client.flushall()
    client.close()
    return server.url


@pytest.fixture
def redis_url(search_server: ValkeyServer) -> str:
    """A clean database on the search-enabled server."""
    return _emptied(search_server)


@pytest.fixture
def plain_url(plain_server: ValkeyServer) -> str:
    """A clean database on the server without the search module."""
    return _emptied(plain_server)


@pytest.fixture(scope="session")
def fake_openai() -> Iterator[FakeOpenAI]:
    server = FakeOpenAI().start()
    yield server
    server.stop()


@pytest.fixture
def openai_server(fake_openai: FakeOpenAI, monkeypatch: pytest.MonkeyPatch) -> FakeOpenAI:
    fake_openai.reset()
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    monkeypatch.setenv("OPENAI_BASE_URL", fake_openai.base_url)
    return fake_openai


# Asyncio timeouts are event-loop time: on a test machine shared by many jobs (load 19 on
# 2 cores was seen) a loop can be descheduled for longer than the 250 ms default. Tests of
# async behaviour under load (pool waiting, single-flight, loop lifetimes) use timeouts
# only a dead server trips, so the defaults' timing does not hide what they test.
SLOW_MACHINE = {"socket_timeout": 5.0, "connect_timeout": 5.0}


def make_cache(kind: str, url: str | None = None, **settings: Any) -> Cache:
    settings.setdefault("embedder", "offline")
    settings.setdefault("embedding_dimensions", 64)
    if kind == "memory":
        return Cache(CacheConfig(**settings))
    return Cache(CacheConfig(redis_url=url, **settings))


@pytest.fixture(params=["memory", "redis", "cluster"])
def backend_kind(request: pytest.FixtureRequest) -> str:
    """Every backend-agnostic test runs on the embedded backend, one Redis server and the
    session's 3-primary cluster (flushed per test; one cluster for the whole run)."""
    return str(request.param)


@pytest.fixture
def cache(backend_kind: str, request: pytest.FixtureRequest) -> Iterator[Cache]:
    """A fresh cache on each backend (Redis: the search server, flushed)."""
    c = make_cache(backend_kind, url_for(backend_kind, request))
    yield c
    c.close()


@pytest.fixture
def memory_cache() -> Cache:
    return Cache(CacheConfig(embedder="offline", embedding_dimensions=64), backend=MemoryBackend())


def run(coro: Any) -> Any:
    """asyncio.run, for tests (each call is a fresh loop, as in real scripts)."""
    return asyncio.run(coro)


@pytest.fixture(autouse=True)
def _quiet_offline_warning(caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.INFO, logger="pmm_memo")
