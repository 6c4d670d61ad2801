"""The circuit breaker and single-flight, with a fake clock and real threads."""

from __future__ import annotations

import asyncio
import gc
import logging
import threading

import pytest
import redis

from pmm_memo._breaker import CircuitBreaker
from pmm_memo._singleflight import AsyncSingleFlight, SingleFlight


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_breaker_opens_and_allows_one_probe() -> None:
    clock = Clock()
    b = CircuitBreaker(5.0, clock)
    assert b.allow() and not b.is_open
    assert b.record_failure() is True  # a new outage
    assert b.record_failure() is False
    assert not b.allow()
    clock.now += 5.1
    assert b.allow()  # the probe
    assert not b.allow()  # only one probe at a time
    assert b.record_failure() is False  # probe failed: open again
    assert not b.allow()
    clock.now += 5.1
    assert b.allow()
    assert b.record_success() is True  # recovered
    assert b.allow() and b.allow() and not b.is_open
    assert b.record_success() is False


def test_a_probe_that_never_reports_does_not_wedge_the_breaker() -> None:
    clock = Clock()
    b = CircuitBreaker(5.0, clock)
    b.record_failure()
    clock.now += 5.1
    assert b.allow()  # the probe goes out and is never heard from again
    assert not b.allow()
    clock.now += 5.1
    assert b.allow()  # one interval later another caller may probe
    b.record_success()
    assert b.allow() and not b.is_open


def test_single_flight_propagates_errors_to_all() -> None:
    flight = SingleFlight()
    started = threading.Event()
    release = threading.Event()
    calls = []

    def work() -> int:
        calls.append(1)
        started.set()
        release.wait(5)
        raise KeyError("boom")

    errors: list[BaseException] = []

    def caller() -> None:
        try:
            flight.do("k", work)
        except KeyError as exc:
            errors.append(exc)

    leader = threading.Thread(target=caller)
    leader.start()
    started.wait(5)
    followers = [threading.Thread(target=caller) for _ in range(5)]
    for t in followers:
        t.start()
    release.set()
    for t in [leader, *followers]:
        t.join(5)
    assert len(calls) <= 6 and len(errors) == 6
    with pytest.raises(KeyError):
        flight.do("k", work)  # nothing remembered afterwards


@pytest.mark.parametrize("leader_ends", ["raises", "is cancelled"])
def test_a_cancelled_waiter_leaves_no_unretrieved_exception(
    leader_ends: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A waiter given up on (asyncio.wait_for's timeout, a closed request) before its
    leader fails: the leader's exception was left in the waiter's wrapped future, and
    asyncio logged it at ERROR ("Future exception was never retrieved") when collected,
    once per abandoned waiter, for an error the leader's own caller already received."""
    flights = AsyncSingleFlight()

    async def work() -> int:
        await asyncio.sleep(0.05)
        raise RuntimeError("the function failed")

    async def main() -> None:
        leader = asyncio.create_task(flights.do("k", work))
        await asyncio.sleep(0.01)
        waiter = asyncio.create_task(flights.do("k", work))
        await asyncio.sleep(0.01)
        waiter.cancel()
        with pytest.raises(asyncio.CancelledError):
            await waiter
        if leader_ends == "is cancelled":
            leader.cancel()
        with pytest.raises((RuntimeError, asyncio.CancelledError)):
            await leader
        await asyncio.sleep(0.01)  # the wrapped future is completed by call_soon

    caplog.set_level(logging.ERROR, logger="asyncio")
    asyncio.run(main())
    gc.collect()
    assert "never retrieved" not in caplog.text


def test_busy_log_lines_do_not_contradict_themselves(
    redis_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    """A pool wait ended by the server failing was logged as "the server failed while
    this call waited ... (the server is answering other calls)"; a busy error's own
    message says why, and only a bare timeout gets the evidence added."""
    from pmm_memo.backends._connect import PoolTimeoutError
    from pmm_memo.backends._pools import _FAILED_WHILE_WAITING
    from tests.conftest import make_cache

    cache = make_cache("redis", redis_url)
    cache._failed("read", PoolTimeoutError(_FAILED_WHILE_WAITING), cache.counters)
    cache._logged.clear()
    cache.replies += 1  # another call got a reply while this one timed out
    cache._failed("write", redis.TimeoutError("Timeout reading from socket"), cache.counters, 0)
    lines = [r.getMessage() for r in caplog.records if "skipped" in r.getMessage()]
    assert len(lines) == 2
    assert "server failed" in lines[0] and "answering other calls" not in lines[0]
    assert lines[1].endswith(
        "Timeout reading from socket (other calls got replies); the call went to the function"
    )
    assert not cache.breaker.is_open
    cache.close()
