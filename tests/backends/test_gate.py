"""The cluster backend's in-flight bound: holders beyond the size wait for a release or
time out with MaxConnectionsError; nothing is lost or duplicated under many threads;
asyncio callers get the same; a forked child starts with every slot free."""

from __future__ import annotations

import asyncio
import multiprocessing
import threading

import pytest
import redis

from pmm_memo.backends._gate import Gate, acquire_async


def test_waiters_get_released_slots_and_time_out_without_one() -> None:
    gate = Gate(2, timeout=10.0)
    gate.acquire()
    gate.acquire()
    got = threading.Event()

    def third() -> None:
        gate.acquire()
        got.set()

    t = threading.Thread(target=third)
    t.start()
    assert not got.wait(0.1)  # no slot: it waits
    gate.release()
    assert got.wait(10)  # a release hands the slot over
    t.join()
    short = Gate(1, timeout=0.05)
    short.acquire()
    with pytest.raises(redis.exceptions.MaxConnectionsError, match="CACHE_MAX_CONNECTIONS"):
        short.acquire()


def test_many_threads_never_exceed_the_size() -> None:
    gate = Gate(3, timeout=30.0)
    inside = 0
    most = 0
    lock = threading.Lock()

    def work() -> None:
        nonlocal inside, most
        for _ in range(200):
            gate.acquire()
            try:
                with lock:
                    inside += 1
                    most = max(most, inside)
                with lock:
                    inside -= 1
            finally:
                gate.release()

    threads = [threading.Thread(target=work) for _ in range(12)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert most <= 3
    for _ in range(3):  # every slot came back
        gate.acquire()


def test_async_fast_path_and_timeout() -> None:
    async def main() -> None:
        sem = asyncio.Semaphore(1)
        await acquire_async(sem, 1.0)
        with pytest.raises(redis.exceptions.MaxConnectionsError):
            await acquire_async(sem, 0.05)
        asyncio.get_running_loop().call_later(0.05, sem.release)
        await acquire_async(sem, 10.0)  # waits for the release

    asyncio.run(main())


def _child(gate: Gate, out: multiprocessing.queues.Queue[str]) -> None:
    gate.acquire()
    gate.acquire()
    out.put("ok")


def test_forked_child_starts_with_free_slots() -> None:
    gate = Gate(2, timeout=0.5)
    gate.acquire()
    gate.acquire()  # held by this process's "threads" at fork time
    ctx = multiprocessing.get_context("fork")
    out = ctx.Queue()
    child = ctx.Process(target=_child, args=(gate, out))
    child.start()
    child.join(30)
    assert child.exitcode == 0 and out.get(timeout=5) == "ok"
