"""The blocking connection pools of plain Redis URLs, with a free path for an idle pool.

Both pools are redis-py's `BlockingConnectionPool` (callers beyond CACHE_MAX_CONNECTIONS
wait up to CACHE_POOL_TIMEOUT for a connection to come back), with "no connection came
free" as an error of its own (`PoolTimeoutError`: load, never a breaker failure) and the
evidence rules of `_evidence` for connects that time out.

Why a free path: every exact hit takes a connection and gives it back, and redis-py's
blocking pools do much more than that for it. The asyncio pool enters an
`asyncio.Condition`, an `async_timeout` and a context manager per command, runs the
connection's retry policy (ours: `LoadAwareAsyncRetry`) around a `connect()` of a
connection that is already connected, and dispatches a "released" event; both pools
record redis-py's connection-count metrics (a pool name formatted four times a command)
even when no metrics are collected. Together that was over half of the gap between a
pmm_memo hit and a bare HMGET (benchmarks/floors.py).

When a connected, clean connection is idle and nobody is queued for one, the free path
takes it (a pop; an asyncio pop cannot be interrupted, a sync one is the pool's own
thread-safe queue) and gives it back the same way. Anything else goes the full way:
no idle connection (the wait, with its timeout and evidence), a connection that must
(re)connect, one with unread data, tasks queued on the Condition (no overtaking them),
redis-py metrics enabled, maintenance mode, client-side caching, credential providers
(re-auth runs on release), and Sentinel pools (their connections find the master
while connecting). Fork safety is unchanged: the sync free path runs redis-py's
`_checkpid` like the full one, and async pools are per event loop (see `_loopbound`).
"""

from __future__ import annotations

import asyncio
import queue
import select
import socket
import time
from collections.abc import Callable
from typing import Any

import redis
import redis.asyncio

from ._evidence import LocalSlowness, LocalSlownessError, ProbeKey
from ._fair_queue import FairQueue

_instance: Callable[[], Any] | None
try:  # redis-py >= 8: metrics that are recorded only once configured
    from redis.observability.providers import get_observability_instance as _instance
except ImportError:  # pragma: no cover - older redis-py records nothing
    _instance = None


_WAKING: set[asyncio.Task[None]] = set()  # see AsyncBlockingPool._pass_wake_up_on


class PoolTimeoutError(redis.RedisError):
    """No pooled connection came free within CACHE_POOL_TIMEOUT (this process is busy).

    Deliberately not a `redis.ConnectionError`: it says nothing about the server, so it
    neither opens the breaker nor triggers the ConnectionError retry."""


def _pool_timeout(limit: int, wait: float) -> PoolTimeoutError:
    return PoolTimeoutError(
        f"all {limit} pooled connections stayed busy for {wait:g}s "
        f"(raise CACHE_MAX_CONNECTIONS or CACHE_POOL_TIMEOUT)"
    )


_FAILED_WHILE_WAITING = "the server failed while this call waited for a pooled connection"
_TOO_SLOW = (
    "connects kept timing out while the server answered a probe: this process was too "
    "slow (raise CACHE_CONNECT_TIMEOUT or CACHE_POOL_TIMEOUT)"
)


def _no_failures() -> int:
    return 0


def _observed() -> bool:
    """Does redis-py record connection metrics now? (Then its own pool code runs.)"""
    if _instance is None:
        return False
    manager = _instance().get_provider_manager()
    return manager is not None and bool(manager.config.enabled_telemetry)


def _reconnect_wanted(connection: Any) -> bool:
    should = getattr(connection, "should_reconnect", None)
    return bool(should()) if should is not None else False


def _free_path_possible(pool: Any, attributes: tuple[str, ...]) -> bool:
    """Has this redis-py pool the parts the free path uses, and nothing it skips?"""
    kwargs = pool.connection_kwargs
    return (
        all(hasattr(pool, name) for name in attributes)
        and hasattr(pool.connection_class, "is_connected")
        and getattr(pool, "cache", None) is None
        and kwargs.get("credential_provider") is None
        and not kwargs.get("cache_config")
    )


# Anything but "nothing to read": data, the peer's close (EOF), an error, a bad fd.
_READABLE = (
    select.POLLIN | select.POLLPRI | select.POLLERR | select.POLLHUP | select.POLLNVAL
    if hasattr(select, "poll")
    else 0
)


def _nothing_to_read(connection: Any) -> bool | None:
    """redis-py's `not connection.can_read()` (no reply left over, not closed by the
    server) in one poll(2), for redis-py's own parser on a plain socket: `can_read` makes
    the socket non-blocking and back around a recv that raises and catches
    BlockingIOError, three system calls and an exception per pooled command. None when
    that is not the case (a TLS socket may hold decrypted bytes a poll cannot see;
    another parser buffers otherwise; no poll(2)): ask `can_read`.

    Data or a close the poll sees is left in the socket, not read into the parser: the
    caller then takes redis-py's full path, whose own `can_read` finds it and reconnects,
    as it did after `can_read` had read it."""
    sock = getattr(connection, "_sock", None)
    buffer = getattr(getattr(connection, "_parser", None), "_buffer", None)
    unread = getattr(buffer, "unread_bytes", None)
    if unread is None or type(sock) is not socket.socket or not _READABLE:
        return None
    if unread():
        return False  # a reply read from the socket but not taken
    poller = select.poll()
    poller.register(sock, _READABLE)
    return not poller.poll(0)


def _give(idle: FairQueue, connection: Any) -> None:
    """FairQueue.put_nowait for the pool's idle connections, less its bookkeeping.

    The pool never blocks on a full queue and never joins it, so `not_full` has no
    waiters and `unfinished_tasks` no reader: only the first thread in line for a
    connection is woken (`FairQueue._put`). A connection beyond the pool's size is
    dropped, as redis-py drops it (`queue.Full`). A third of a pooled command's cost was
    those Condition calls (measured: get + put 6.2 µs -> 1.4 µs)."""
    with idle.mutex:
        if 0 < idle.maxsize <= len(idle.queue):
            return
        idle._put(connection)


class BlockingPool(redis.BlockingConnectionPool):
    """redis-py's blocking pool, with "no connection came free" as its own error.

    A frozen server holds every connection for a socket timeout; without a check, each
    queued caller would then take its turn at a timeout of its own (queue length x
    timeout in all). `failures` (the breaker's count) is read before and after the wait:
    if it moved, the caller gives up at once, like calls that meet the open breaker.
    A connect that times out is tried again, until CACHE_POOL_TIMEOUT, while the server
    is shown to answer (`_evidence.LocalSlowness`): a burst of connects on a starved
    process is load; a frozen, blackholed or dead server still fails the first time."""

    failures: Callable[[], int] = staticmethod(_no_failures)
    replies: Callable[[], int] = staticmethod(_no_failures)
    probe: ProbeKey | None = None
    free_path = True  # False in the Sentinel pools (see module doc)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("queue_class", FairQueue)  # waiting threads served in order
        super().__init__(*args, **kwargs)  # type: ignore[no-untyped-call]
        self._free = (
            self.free_path
            and _free_path_possible(self, ("pool", "pid", "_checkpid"))
            and isinstance(self.pool, FairQueue)
            and isinstance(getattr(self.pool, "queue", None), list)
        )

    def _free_connection(self) -> Any:
        """An idle, connected, clean connection without waiting, or None."""
        if getattr(self, "_in_maintenance", False) or _observed():
            return None
        self._checkpid()  # after a fork: the child's own connections, as redis-py does
        idle = self.pool
        with idle.mutex:  # LifoQueue.get_nowait without its bookkeeping (see _give)
            if not idle.queue or idle.line:
                return None  # every connection is busy, or threads wait: their turn first
            connection = idle.queue.pop()
        if connection is not None and connection.is_connected:
            try:
                clean = _nothing_to_read(connection)
                if clean is None:
                    clean = not connection.can_read()
                if clean:  # no reply left over, not closed
                    return connection
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                pass
        self.pool.put_nowait(connection)  # the full path reconnects (or creates) it
        return None

    def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if self._free and (connection := self._free_connection()) is not None:
            return connection
        before = self.failures()
        deadline = time.monotonic() + (self.timeout or 0.0)
        while True:
            evidence = LocalSlowness(self.replies, self.probe)
            try:
                connection = self._get(*args, **kwargs)
                break
            except redis.TimeoutError:
                if self.failures() != before or not evidence.local():
                    raise
                if time.monotonic() >= deadline:
                    raise LocalSlownessError(_TOO_SLOW) from None
        if self.failures() != before:
            self.release(connection)
            raise PoolTimeoutError(_FAILED_WHILE_WAITING)
        return connection

    def release(self, connection: Any) -> None:
        if self._free and not getattr(self, "_in_maintenance", False) and not _observed():
            # First: in a forked child this resets the pool, so a connection the parent
            # took is no longer this pool's (its pid differs) and is never handed out.
            self._checkpid()
            if connection.pid == self.pid and not _reconnect_wanted(connection):
                _give(self.pool, connection)
                return
        super().release(connection)  # type: ignore[no-untyped-call]

    def _get(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except redis.ConnectionError as exc:
            # redis-py raises ConnectionError("No connection available.") from inside
            # `except queue.Empty`; a real connection failure has another context.
            if isinstance(exc.__context__, queue.Empty):
                raise _pool_timeout(self.max_connections, self.timeout) from None
            raise


class AsyncBlockingPool(redis.asyncio.BlockingConnectionPool):
    """The asyncio twin of `BlockingPool` (one per event loop, see `_loopbound`)."""

    failures: Callable[[], int] = staticmethod(_no_failures)
    replies: Callable[[], int] = staticmethod(_no_failures)
    probe: ProbeKey | None = None
    free_path = True

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._free = self.free_path and _free_path_possible(
            self, ("_condition", "_available_connections", "_in_use_connections")
        )

    def _queued(self) -> bool:
        """Is any task waiting for (or holding) the Condition? Then it goes first: a
        waiter woken by a release stays in `_waiters` until it has run."""
        condition = self._condition
        return bool(condition._waiters) or condition.locked()

    async def get_connection(self, *args: Any, **kwargs: Any) -> Any:
        if (
            self._free
            and self._available_connections
            and not self._queued()
            and not getattr(self, "_in_maintenance", False)
            and not _observed()
        ):
            connection = self._available_connections.pop()
            self._in_use_connections.add(connection)
            try:
                clean = connection.is_connected and not await connection.can_read()
            except (redis.ConnectionError, redis.TimeoutError, OSError):
                clean = False
            if clean:
                return connection
            await self.release(connection)  # the full path below reconnects it
        return await self._waiting_get(*args, **kwargs)

    async def _waiting_get(self, *args: Any, **kwargs: Any) -> Any:
        before = self.failures()
        deadline = time.monotonic() + (self.timeout or 0.0)
        while True:
            evidence = LocalSlowness(self.replies, self.probe)
            try:
                connection = await self._get(*args, **kwargs)
                break
            except redis.TimeoutError:
                if self.failures() != before or not await evidence.alocal():
                    raise
                if time.monotonic() >= deadline:
                    raise LocalSlownessError(_TOO_SLOW) from None
        if self.failures() != before:
            await self.release(connection)
            raise PoolTimeoutError(_FAILED_WHILE_WAITING)
        return connection

    async def release(self, connection: Any) -> None:
        if (
            self._free
            and not self._queued()
            and connection in self._in_use_connections
            and not getattr(self, "_in_maintenance", False)
            and not _observed()
            and not _reconnect_wanted(connection)
        ):
            self._in_use_connections.remove(connection)
            self._available_connections.append(connection)
            return
        # redis-py's release waits for the Condition's lock (busy while queued tasks
        # wake up); cancelled there, the connection would stay "in use" forever and the
        # pool would shrink by one for good, until no connection is left and every call
        # waits CACHE_POOL_TIMEOUT. Shielded, it is given back even if the caller is
        # cancelled meanwhile (a request timeout), which still gets its CancelledError.
        await asyncio.shield(super().release(connection))

    async def _get(self, *args: Any, **kwargs: Any) -> Any:
        try:
            return await super().get_connection(*args, **kwargs)  # type: ignore[no-untyped-call]
        except asyncio.CancelledError:
            self._pass_wake_up_on()
            raise
        except redis.ConnectionError as exc:
            # Raised `from` the asyncio.TimeoutError of the wait for a free connection;
            # a connect timeout is a redis.TimeoutError instead.
            if isinstance(exc.__cause__, TimeoutError) and not isinstance(
                exc.__cause__, redis.RedisError
            ):
                self._pass_wake_up_on()  # its time may have run out as it was woken
                raise _pool_timeout(self.max_connections, self.timeout or 0.0) from None
            raise

    def _pass_wake_up_on(self) -> None:
        """A task cancelled while waiting may have been the one a release woke: Python <
        3.13's Condition then loses that notify() (gh-112202), and the next queued task
        sleeps with a connection idle until CACHE_POOL_TIMEOUT. Wake one more (a spare
        wake-up only makes a waiter re-check that a connection is free)."""
        if self._condition._waiters and self.can_get_connection():
            task = asyncio.ensure_future(self._notify_one())
            _WAKING.add(task)  # the loop keeps only weak references to tasks
            task.add_done_callback(_WAKING.discard)

    async def _notify_one(self) -> None:
        async with self._condition:
            self._condition.notify()
