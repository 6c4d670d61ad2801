"""Cross-process single-flight against a real server: stampedes and dead owners."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from redis.crc import key_slot

from pmm_memo import cached
from pmm_memo._distributed import LOCK_PREFIX
from tests.conftest import make_cache, run
from tests.support.servers import ValkeyServer

ROOT = Path(__file__).resolve().parent.parent


def worker(
    url: str, threads: int, t0: float, sleep: float, lock_ttl: float = 60.0
) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.support.stampede_worker",
            url,
            str(threads),
            str(t0),
            str(sleep),
            str(lock_ttl),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


@pytest.mark.parametrize("where", ["redis", "cluster"])
def test_four_processes_fifty_threads_one_call(where: str, request: pytest.FixtureRequest) -> None:
    url = str(request.getfixturevalue(f"{where}_url"))
    t0 = time.time() + 4.0  # every process has imported and connected by then
    procs = [worker(url, 50, t0, 0.5) for _ in range(4)]
    outputs = []
    for p in procs:
        out, err = p.communicate(timeout=60)
        assert p.returncode == 0, err
        outputs.append(json.loads(out))
    results = [r for o in outputs for r in o["results"]]
    assert len(results) == 200
    assert set(results) == {"answer #1 to cold key"}
    if where == "redis":
        calls = request.getfixturevalue("search_server").client().get("stampede:calls")
    else:
        cluster = request.getfixturevalue("cluster_server")
        owner = cluster.node_of_slot(key_slot(b"stampede:calls"))
        calls = owner.client().get("stampede:calls")
    assert int(calls) == 1
    # The other processes got the owner's result by waiting for it (or, if one started
    # late on a slow machine, by a plain hit): either way, never by calling.
    assert sum(o["info"]["waited_hits"] + o["info"]["hits"] for o in outputs) >= 3


def test_dead_owner_holds_others_back_only_until_the_lock_expires(
    redis_url: str, search_server: ValkeyServer
) -> None:
    client = search_server.client()
    owner = worker(redis_url, 1, time.time(), 60.0, lock_ttl=1.5)
    deadline = time.time() + 20
    locks: list[bytes] = []
    while not locks and time.time() < deadline:
        locks = list(client.scan_iter(match=LOCK_PREFIX + "*"))
        time.sleep(0.05)
    assert locks, "the owner never took the lock"
    os.kill(owner.pid, signal.SIGKILL)
    owner.communicate(timeout=10)  # reaps it and closes its pipes
    assert 0 < client.pttl(locks[0]) <= 1500
    start = time.time()
    follower = worker(redis_url, 1, time.time(), 0.0, lock_ttl=1.5)
    out, err = follower.communicate(timeout=30)
    assert follower.returncode == 0, err
    assert json.loads(out)["results"] == ["answer #2 to cold key"]
    assert time.time() - start < 10
    assert not list(client.scan_iter(match=LOCK_PREFIX + "*"))


def test_lock_released_after_an_exception_lets_the_next_caller_lead(server_url: str) -> None:
    cache = make_cache("redis", server_url)
    calls = []

    @cached(tenant="pmm_llm", cache=cache)
    def flaky(x: int) -> int:
        calls.append(x)
        if len(calls) == 1:
            raise RuntimeError("first attempt fails")
        return x

    with pytest.raises(RuntimeError):
        flaky(1)
    assert flaky(1) == 1  # not blocked by a leftover lock
    assert len(calls) == 2


def test_lock_is_off_for_ordinary_tenants_and_on_by_option(
    redis_url: str, search_server: ValkeyServer
) -> None:
    cache = make_cache("redis", redis_url)
    seen: list[int] = []
    client = search_server.client()

    @cached(tenant="pmm_db", cache=cache)
    def plain(x: int) -> int:
        seen.append(len(list(client.scan_iter(match=LOCK_PREFIX + "*"))))
        return x

    @cached(tenant="pmm_db", cache=cache, lock=True)
    def locked(x: int) -> int:
        seen.append(len(list(client.scan_iter(match=LOCK_PREFIX + "*"))))
        return x

    plain(1)
    locked(1)
    assert seen == [0, 1]


@pytest.mark.parametrize("is_async", [False, True])
def test_a_lock_won_after_the_owner_stored_serves_the_stored_result(
    server_url: str, monkeypatch: pytest.MonkeyPatch, is_async: bool
) -> None:
    """A caller whose read missed just before another process stored the result, and
    whose SET NX lands just after that process released the lock, wins a free lock: it
    must return the stored result, not call the function a second time (a window that a
    caller descheduled between the two commands on a busy machine can fall into)."""
    other = make_cache("redis", server_url)  # another process: its own in-process flights
    cache = make_cache("redis", server_url)
    calls: list[str] = []

    def body(prompt: str) -> str:
        calls.append(prompt)
        return f"answer #{len(calls)}"

    async def abody(prompt: str) -> str:
        return body(prompt)

    try:
        if is_async:
            aowner = cached(tenant="pmm_llm", cache=other)(abody)
            alate = cached(tenant="pmm_llm", cache=cache)(abody)
            real_async = cache.atry_lock

            async def atry_lock_after_the_owner(name: str, token: str) -> bool:
                await aowner("q")  # computes, stores and unlocks between read and SET NX
                return await real_async(name, token)

            monkeypatch.setattr(cache, "atry_lock", atry_lock_after_the_owner)
            assert run(alate("q")) == "answer #1"
            info = alate.cache_info()
        else:
            owner = cached(tenant="pmm_llm", cache=other)(body)
            late = cached(tenant="pmm_llm", cache=cache)(body)
            real = cache.try_lock

            def try_lock_after_the_owner(name: str, token: str) -> bool:
                owner("q")  # computes, stores and unlocks between read and SET NX
                return real(name, token)

            monkeypatch.setattr(cache, "try_lock", try_lock_after_the_owner)
            assert late("q") == "answer #1"
            info = late.cache_info()
        assert calls == ["q"]
        assert (info.hits, info.waited_hits, info.misses) == (1, 1, 0)
        client = cache.backend.client  # type: ignore[attr-defined]
        assert not list(client.scan_iter(match=LOCK_PREFIX + "*"))  # released
    finally:
        other.close()
        cache.close()
