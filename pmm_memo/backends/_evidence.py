"""After a timeout: was the server down, or was this process too slow to see its answer?

Asyncio timeouts are event-loop time. A loop running 2,000 runnable tasks (or sharing two
cores with ten other processes) reaches a finished connect or an arrived reply only after
the timer that guards it has fired, although the server answered in microseconds; a
burst of connects on a starved loop then looked like an outage and opened the breaker
(issue 9 §1). The evidence used here, in order of cost:

1. `replies`: the server answered other calls of this process while this one waited
   (counted by `Cache`). Free, but absent on a cold start, when every call is connecting.
2. One independent probe: a fresh socket to the same address, off the event loop (a
   thread, so its timeout is the kernel's, not the loop's), sends an inline `PING` and
   waits `connect_timeout` for any reply (`+PONG`, `-NOAUTH`, a TLS alert: the server
   process spoke). A frozen (SIGSTOPped) server completes the TCP handshake in the kernel
   but never replies; a blackholed one never completes it; a dead one refuses it. The
   probe never sends credentials. Probes are shared: callers that time out together wait
   for the one probe in flight and reuse any result from a probe that started after their
   own wait began, so a burst costs one probe, not one per caller.

Signals considered and not used: process CPU time during the wait (the previous rule)
says nothing on a machine where other processes hold the cores: at load ~10 on 2 cores
this process got ~0.2 CPU-seconds per second while starved, under any fixed threshold;
"many operations started at once" is true of a healthy burst and of callers piling onto
a frozen server alike. Event-loop lag (the timeout fired well after its deadline) is
used only to decide whether a *command* timeout deserves a probe (see
`LoadAwareAsyncRetry`): an idle loop facing a frozen server then still pays one timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import os
import socket
import ssl
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

import redis
from redis.asyncio.retry import Retry as AsyncRetry
from redis.backoff import NoBackoff

T = TypeVar("T")

# (host, port, unix path, tls, timeout): where and how long to probe.
ProbeKey = tuple[str, int, str, bool, float]

# Attempts of one command on TimeoutError while the evidence says the process was slow.
COMMAND_ATTEMPTS = 3
# A wait that ended this many timeouts after it began overran its timer: the loop was late.
LATE_FACTOR = 1.5


class LocalSlownessError(redis.RedisError):
    """The server answers (a probe got a reply) but this process stayed too slow to
    finish the call within its timeouts until CACHE_POOL_TIMEOUT ran out.

    Load, not an outage: counted in `errors`, never opens the breaker."""


def _no_replies() -> int:
    return 0


def probe_key(pool: Any) -> ProbeKey | None:
    """The probe address of a redis-py pool (None when it has no single address)."""
    kw = pool.connection_kwargs
    timeout = float(kw.get("socket_connect_timeout") or kw.get("socket_timeout") or 1.0)
    tls = "ssl" in getattr(pool.connection_class, "__name__", "").lower()
    if kw.get("path"):
        return ("", 0, str(kw["path"]), False, timeout)
    if "host" not in kw:
        return None
    return (str(kw["host"]), int(kw.get("port", 6379)), "", tls, timeout)


class _Probe:
    """One address's probes: one at a time; results reused by callers who waited."""

    def __init__(self, key: ProbeKey) -> None:
        self.key = key
        self._lock = threading.Lock()
        self._started = -1.0
        self._answered = False

    def answered_since(self, since: float) -> bool:
        with self._lock:
            if self._started < since:
                self._started = time.monotonic()
                self._answered = _ping(self.key)
            return self._answered


def _ping(key: ProbeKey) -> bool:
    host, port, path, tls, timeout = key
    try:
        if path:
            sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            sock.settimeout(timeout)
            sock.connect(path)
        else:
            sock = socket.create_connection((host, port), timeout=timeout)
        with sock:
            if tls:
                context = ssl.create_default_context()
                context.check_hostname = False  # liveness only: nothing is sent but PING
                context.verify_mode = ssl.CERT_NONE
                with context.wrap_socket(sock, server_hostname=host) as wrapped:
                    wrapped.sendall(b"PING\r\n")
                    return bool(wrapped.recv(64))
            sock.sendall(b"PING\r\n")
            return bool(sock.recv(64))
    except ssl.SSLError:
        return True  # a TLS alert: the server process answered
    except OSError:
        return False


_lock = threading.Lock()
_probes: dict[ProbeKey, _Probe] = {}


def _after_fork_in_child() -> None:
    global _lock, _probes
    _lock, _probes = threading.Lock(), {}  # a probing thread of the parent is gone


os.register_at_fork(after_in_child=_after_fork_in_child)


def server_answered_since(key: ProbeKey, since: float) -> bool:
    """Did the server at `key` answer a probe started at or after `since` (monotonic)?
    Blocks up to about two probe timeouts (its own, and one already in flight)."""
    with _lock:
        probe = _probes.setdefault(key, _Probe(key))
    return probe.answered_since(since)


async def aserver_answered_since(key: ProbeKey, since: float) -> bool:
    """`server_answered_since` in a thread of its own: its timeout is the kernel's, and
    the event loop keeps running (a thread per probe: probes are rare, and no executor
    to leave broken in a forked child)."""
    result: concurrent.futures.Future[bool] = concurrent.futures.Future()

    def run() -> None:
        if not result.set_running_or_notify_cancel():
            return  # the awaiting task was cancelled first
        try:
            answered = server_answered_since(key, since)
        except BaseException as exc:  # handed to the awaiting task
            result.set_exception(exc)
        else:
            result.set_result(answered)

    threading.Thread(target=run, name="pmm_memo-probe", daemon=True).start()
    return await asyncio.wrap_future(result)


class LocalSlowness:
    """Evidence, gathered after a timeout, that the wait started at construction failed
    because this process was slow, not because the server was down (see module doc)."""

    __slots__ = ("_probe", "_replies", "_seen", "started")

    def __init__(self, replies: Callable[[], int], probe: ProbeKey | None) -> None:
        self._replies, self._probe = replies, probe
        self.started, self._seen = time.monotonic(), replies()

    def late(self, timeout: float) -> bool:
        """Did the wait end well past its own timeout (an event loop that ran late)?"""
        return time.monotonic() - self.started > LATE_FACTOR * timeout

    def replied(self) -> bool:
        """Did the server answer other calls of this process meanwhile?"""
        return self._replies() != self._seen

    def local(self) -> bool:
        """Blocking: may run a probe (call it off the event loop)."""
        if self.replied():
            return True
        return self._probe is not None and server_answered_since(self._probe, self.started)

    async def alocal(self) -> bool:
        if self.replied():
            return True
        return self._probe is not None and await aserver_answered_since(self._probe, self.started)


class LoadAwareAsyncRetry(AsyncRetry):
    """One immediate retry on ConnectionError (a stale pooled socket). On TimeoutError:
    when the timer fired late (event-loop lag) and the server is shown to answer, tried
    again until `budget` (CACHE_POOL_TIMEOUT) runs out, then `LocalSlownessError`; when
    only other calls' replies vouch for the server, up to COMMAND_ATTEMPTS attempts (a
    command slow on a fast server is not retried for long). An idle loop facing a frozen
    server is never late: it pays one timeout and no probe, as before."""

    def __init__(self, replies: Callable[[], int] | None = None) -> None:
        errors = (redis.ConnectionError, redis.TimeoutError)
        super().__init__(NoBackoff(), 1, supported_errors=errors)
        self._replies = replies or _no_replies
        self.probe: ProbeKey | None = None  # set once the pool exists (see _connect)
        self.budget = 0.0  # seconds (CACHE_POOL_TIMEOUT); set with the probe
        self.timeout = 0.0  # the longer of the socket and connect timeouts; likewise

    async def call_with_retry(
        self,
        do: Callable[[], Awaitable[T]],
        fail: Callable[..., Any],
        is_retryable: Callable[[Exception], bool] | None = None,
        with_failure_count: bool = False,
    ) -> T:
        failures = 0
        first = time.monotonic()
        while True:
            evidence = LocalSlowness(self._replies, self.probe)
            try:
                return await do()
            except (redis.ConnectionError, redis.TimeoutError) as error:
                if is_retryable is not None and not is_retryable(error):
                    raise
                failures += 1
                await (fail(error, failures) if with_failure_count else fail(error))
                if not isinstance(error, redis.TimeoutError):
                    if failures > 1:
                        raise
                    continue
                if evidence.late(self.timeout) and await evidence.alocal():
                    if time.monotonic() - first < self.budget:
                        continue
                    raise LocalSlownessError(f"{error} (the server answers a probe)") from error
                if failures >= COMMAND_ATTEMPTS or not evidence.replied():
                    raise
