"""Chaos: a mixed load while the server is killed, frozen, blackholed, paused and out of
memory. The cache may miss; the caller must never see an exception or a wrong result."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from pmm_memo import cached, semantic_lookup
from tests.conftest import make_cache
from tests.support.proxy import FaultProxy
from tests.support.servers import ValkeyServer


def truth(prompt: str, n: int) -> str:
    return f"{prompt.upper()}#{n * 7}"


@pytest.fixture
def rig(tmp_path: Path) -> Any:
    server = ValkeyServer(search=True, log_dir=tmp_path).start()
    proxy = FaultProxy(server.port)
    yield server, proxy
    proxy.close()
    server.stop()


def run_load(
    fn_exact: Callable[..., str],
    fn_semantic: Callable[..., str],
    seconds: float,
    faults: Callable[[], None],
) -> tuple[int, list[BaseException], list[str]]:
    errors: list[BaseException] = []
    wrong: list[str] = []
    calls = 0
    stop = time.monotonic() + seconds
    lock = threading.Lock()

    def client(seed: int) -> None:
        nonlocal calls
        rng = random.Random(seed)
        while time.monotonic() < stop:
            prompt = rng.choice(["alpha beta", "gamma delta", "epsilon zeta", "eta theta"])
            n = rng.randrange(20)
            fn = fn_exact if rng.random() < 0.6 else fn_semantic
            try:
                got = fn(prompt, n)
            except BaseException as exc:
                errors.append(exc)
                continue
            if got != truth(prompt, n):
                wrong.append(f"{prompt}/{n} -> {got}")
            with lock:
                calls += 1

    threads = [threading.Thread(target=client, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    faults()
    for t in threads:
        t.join()
    return calls, errors, wrong


def test_chaos_never_breaks_callers(rig: Any) -> None:
    server, proxy = rig
    cache = make_cache(
        "redis",
        proxy.url,
        socket_timeout=0.2,
        connect_timeout=0.2,
        breaker_interval=0.3,
        lock_wait=1.0,
    )

    @cached(tenant="pmm_llm", ttl=60, cache=cache)
    def exact(prompt: str, n: int) -> str:
        return truth(prompt, n)

    @semantic_lookup(threshold=0.999, tenant="chaos", ttl=60, cache=cache)
    def semantic(prompt: str, n: int) -> str:
        return truth(prompt, n)

    def faults() -> None:
        admin = server.client()
        steps: list[tuple[str, Callable[[], None], Callable[[], None]]] = [
            ("kill", server.kill, lambda: server.start()),
            ("freeze", server.freeze, server.thaw),
            ("blackhole", lambda: proxy.set("blackhole"), lambda: proxy.set("pass")),
            ("reset", lambda: proxy.set("reset"), lambda: proxy.set("pass")),
            ("delay", lambda: proxy.set("delay", 0.3), lambda: proxy.set("pass")),
            (
                "pause",
                lambda: server.client().execute_command("CLIENT", "PAUSE", 800, "ALL"),
                lambda: None,
            ),
            (
                "oom",
                lambda: admin.config_set("maxmemory", "1"),
                lambda: server.client().config_set("maxmemory", "0"),
            ),
        ]
        for _name, start, end in steps:
            time.sleep(0.6)
            start()
            time.sleep(0.8)
            end()
            if _name == "kill":
                admin = server.client()
        time.sleep(0.8)

    server.client().config_set("maxmemory-policy", "noeviction")
    calls, errors, wrong = run_load(exact, semantic, 12.0, faults)
    assert errors == [], errors[:3]
    assert wrong == [], wrong[:3]
    assert calls > 100
    assert exact.cache_info().errors + semantic.cache_info().errors > 0  # faults were seen
    # Recovery: after the last fault the cache is used again (the breaker closed; an
    # earlier bug left it open forever when its probe met a non-connection error).
    hits_before = exact.cache_info().hits
    for n in range(5):
        assert exact("alpha beta", n) == truth("alpha beta", n)
        assert exact("alpha beta", n) == truth("alpha beta", n)
    assert not cache.breaker.is_open
    assert exact.cache_info().hits - hits_before >= 5
    client = server.client()
    keys = list(client.scan_iter(match="cache:*"))
    assert keys, "the cache worked between faults"
    assert all(client.pttl(k) > 0 for k in keys)  # nothing lives without a TTL


def test_blackhole_costs_bounded_delay(rig: Any) -> None:
    _server, proxy = rig
    cache = make_cache(
        "redis", proxy.url, socket_timeout=0.2, connect_timeout=0.2, breaker_interval=30
    )

    @cached(tenant="t", cache=cache)
    def f(x: int) -> int:
        return x

    f(0)
    proxy.set("blackhole")
    latencies = []
    for i in range(40):
        start = time.perf_counter()
        assert f(i) == i
        latencies.append(time.perf_counter() - start)
    assert max(latencies) < 0.2 * 2 + 0.15  # at most one timeout (+ slack) per call
    assert sorted(latencies)[-2] < 0.05  # only the first call paid it: the breaker opened
    proxy.set("pass")
