"""Fork: a child forked while other threads are inside the cache works at once, and
shared statistics stay exact across forked workers (multiprocessing's fork method, as
pre-fork servers do)."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from typing import Any

import pytest

from pmm_memo import Cache, cached
from tests.conftest import make_cache, url_for

fork = multiprocessing.get_context("fork")


def _in_forked_child(target: Any, f: Any, hung: str) -> Any:
    """Run `target(f, results)` in a forked child; fail with `hung` unless it exits 0
    within 30 s (killed then); what the child put on its queue."""
    results = fork.Queue()
    child = fork.Process(target=target, args=(f, results))
    child.start()
    child.join(30)
    if child.is_alive():
        child.kill()
    assert child.exitcode == 0, hung
    return results.get(timeout=5)


def _child_calls(f: Any, keys: list[int], done: Any) -> None:
    for k in keys:
        assert f(k) == k * 2
    done.put("ok")


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["memory", "redis", "cluster"])
def test_fork_while_threads_are_inside_the_cache(kind: str, request: pytest.FixtureRequest) -> None:
    url = url_for(kind, request)
    cache = make_cache(kind, url)
    release = threading.Event()

    @cached(tenant="fork", cache=cache)
    def f(k: int) -> int:
        if k == 0:
            release.wait(10)  # a leader parked inside the single-flight table
        return k * 2

    leader = threading.Thread(target=f, args=(0,))
    leader.start()
    backend_lock = getattr(cache.backend, "_lock", None)
    holder = None
    if backend_lock is not None:  # a thread inside the embedded backend at fork time

        def hold() -> None:
            with backend_lock:
                time.sleep(0.5)

        holder = threading.Thread(target=hold)
        holder.start()
    time.sleep(0.1)
    try:
        results = fork.Queue()
        children = [
            fork.Process(target=_child_calls, args=(f, [0, 1, 2, 1], results)) for _ in range(4)
        ]
        for c in children:
            c.start()
        for c in children:
            c.join(30)
        alive = [c for c in children if c.is_alive()]
        for c in alive:
            c.kill()
        assert alive == [], "a forked child hung on its first cache call"
        assert [c.exitcode for c in children] == [0] * 4
    finally:
        release.set()
        leader.join()
        if holder is not None:
            holder.join()
        cache.close()


def _child_reads(f: Any, done: Any) -> None:
    before = f.cache_info()
    values = [f(k) for k in (1, 2, 1)]
    after = f.cache_info()
    done.put((values, after.hits - before.hits, after.errors - before.errors))


@pytest.mark.slow
@pytest.mark.parametrize("moment", ["building the client", "inside a command"])
def test_cluster_fork_while_another_thread_holds_the_client(
    moment: str, cluster_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The cluster backend builds its client lazily under a lock of its own (a slot-map
    read: ~0.5 s on a busy machine, so a thread's first call can be inside it at a fork),
    and redis-py's cluster client takes its nodes manager's lock on every keyed command,
    a lock nothing resets after a fork. A child forked while another thread holds either
    must still be served by the cache, not hang on its first call."""
    from pmm_memo.backends._cluster_connect import sync_cluster_client as build

    parent = os.getpid()
    held, done = threading.Event(), threading.Event()

    def slow_build(url: str, options: dict[str, Any]) -> Any:
        if os.getpid() == parent:  # the child's own build is not held up
            held.set()
            done.wait(10)
        return build(url, options)

    cache = make_cache("cluster", cluster_url)

    @cached(tenant="forkcluster", cache=cache)
    def f(k: int) -> int:
        return k * 2

    if moment == "building the client":
        monkeypatch.setattr("pmm_memo.backends.redis_cluster.sync_cluster_client", slow_build)
        holder = threading.Thread(target=f, args=(1,))
    else:
        assert f(1) == 2  # the client exists; a thread is inside its next command
        lock = cache.backend.client.nodes_manager._lock  # type: ignore[attr-defined]

        def hold() -> None:
            with lock:
                held.set()
                done.wait(10)

        holder = threading.Thread(target=hold)
    holder.start()
    assert held.wait(10)
    try:
        hung = f"a child forked while a thread was {moment} hung"
        values, hits, errors = _in_forked_child(_child_reads, f, hung)
        assert values == [2, 4, 2]
        assert (hits >= 1, errors) == (True, 0)  # served by the cache, not by failing open
    finally:
        done.set()
        holder.join()
        cache.close()


def _serve(f: Any, calls: int, seed: int, out: Any) -> None:
    for i in range(calls):
        f((seed * 7 + i) % 30)
    # The counts must reach Redis while the worker runs (multiprocessing children exit
    # without atexit, as killed workers do): wait past one flush interval.
    time.sleep(2.0)
    out.put(calls)


@pytest.mark.slow
def test_shared_stats_are_exact_across_forked_workers(redis_url: str) -> None:
    cache: Cache = make_cache("redis", redis_url)

    @cached(tenant="forkstats", cache=cache)
    def f(k: int) -> int:
        return k

    try:
        for i in range(30):
            f(i)  # the parent's own calls, just before forking: partly unsent
        out = fork.Queue()
        workers = [fork.Process(target=_serve, args=(f, 100, w, out)) for w in range(4)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(60)
        assert [w.exitcode for w in workers] == [0] * 4
        cache.stats.flush()
        row = cache.stats.shared("forkstats")["forkstats"]  # type: ignore[index]
        assert row["hits"] + row["misses"] == 30 + 4 * 100
        assert row["errors"] == 0
    finally:
        cache.close()


def _first_call_in_child(f: Any, done: Any) -> None:
    done.put(f(21))


@pytest.mark.slow
@pytest.mark.parametrize("kind", ["memory", "redis"])
def test_fork_while_another_thread_builds_the_default_cache(
    kind: str, request: pytest.FixtureRequest, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A thread's first call builds the process-wide default cache (on Redis that takes
    a connection and an index check: ~0.5 s on a busy machine) while the main thread
    forks: the child must not inherit the build's lock held by a thread it lacks."""
    from pmm_memo import _runtime

    monkeypatch.setattr(_runtime, "_default", None)
    for name, value in (("CACHE_EMBEDDER", "offline"), ("CACHE_EMBEDDING_DIMENSIONS", "64")):
        monkeypatch.setenv(name, value)
    if kind == "redis":
        monkeypatch.setenv("CACHE_REDIS_URL", request.getfixturevalue("redis_url"))
    else:
        monkeypatch.delenv("CACHE_REDIS_URL", raising=False)
    inside, release = threading.Event(), threading.Event()

    class SlowToBuild(Cache):
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            inside.set()
            release.wait(10)
            super().__init__(*args, **kwargs)

    monkeypatch.setattr(_runtime, "Cache", SlowToBuild)

    @cached(tenant="forkbuild")
    def f(k: int) -> int:
        return k * 2

    first = threading.Thread(target=f, args=(1,))
    first.start()
    assert inside.wait(10)
    try:
        hung = "a child forked during the default cache's build hung"
        assert _in_forked_child(_first_call_in_child, f, hung) == 42
    finally:
        release.set()
        first.join()
        built = _runtime._default
        if built is not None:
            built.close()


def _child_uses_cluster_bookkeeping(objs: Any, done: Any) -> None:
    from types import SimpleNamespace

    tags, indexes = objs
    tags.note("fresh-tenant", "cache:fresh-tenant:" + "0" * 32)
    indexes.invalidate()
    done.put(indexes.names({0: [SimpleNamespace(name="127.0.0.1:1")]}, force=True))


def test_a_child_forked_while_cluster_bookkeeping_is_locked_can_use_it(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The cluster backend's tenant and index bookkeeping (TenantTags, ShardIndexes):
    a lock another thread held at the fork is a fresh lock in the child (was: the
    child's first write of a new tenant, or its first index plan, hung forever)."""
    from pmm_memo import _forksafe
    from pmm_memo.backends._cluster_index import ShardIndexes
    from pmm_memo.backends._cluster_tags import TenantTags

    monkeypatch.setattr(_forksafe, "_LOCK_WAIT", 0.2)  # the parent forks past the holder
    tags, indexes = TenantTags(), ShardIndexes("idx:cache:x:v2")
    held, stop = threading.Event(), threading.Event()

    def hold() -> None:
        with tags._lock, indexes._lock:
            held.set()
            stop.wait(30)

    holder = threading.Thread(target=hold, daemon=True)
    holder.start()
    assert held.wait(5)
    try:
        names = _in_forked_child(
            _child_uses_cluster_bookkeeping, (tags, indexes), "the child hung on a lock"
        )
    finally:
        stop.set()
        holder.join(5)
    assert list(names) == ["127.0.0.1:1"]
