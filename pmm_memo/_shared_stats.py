"""Per-tenant counters shared by every process that uses the same Redis.

The hit path must not pay a round trip for statistics, so nothing is sent per call:
each decorated function keeps its own in-process `Counters`, registered here with its
tenant, and a daemon thread sends the per-tenant deltas once a second as HINCRBYs in one
pipeline (and once more at exit). Keys live under `pmm_memo:stats:<tenant>`, outside
CACHE_KEY_PREFIX, so clearing a tenant's entries never clears its history.
"""

from __future__ import annotations

import atexit
import logging
import os
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import _forksafe
from ._stats import Counters

logger = logging.getLogger("pmm_memo")

STATS_PREFIX = "pmm_memo:stats:"
# Every key pmm_memo writes expires: a tenant's statistics live this long after its last
# flush (each flush refreshes it), so a tenant nobody uses any more leaves nothing behind.
STATS_TTL_S = 30 * 24 * 3600
FIELDS = ("hits", "misses", "semantic_hits", "errors", "corrupt", "uncacheable")


@dataclass
class _Registered:
    tenant: str
    counters: Counters
    sent: dict[str, int] = field(default_factory=lambda: dict.fromkeys(FIELDS, 0))


class SharedStats:
    def __init__(self, client_factory: Callable[[], Any] | None, interval: float = 1.0) -> None:
        self._client_factory = client_factory  # None: in-process only (memory backend)
        self._interval = interval
        self._lock = threading.Lock()
        self._registered: list[_Registered] = []
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        self._stop = threading.Event()
        _forksafe.track(self)

    def _fork_lock(self) -> threading.Lock:
        return self._lock

    def _after_fork_in_child(self) -> None:
        # The child's counters start as copies of the parent's: what the parent has not
        # sent yet is the parent's to send. Marking it sent here keeps a child from
        # sending it again (each exiting gunicorn worker re-sent the master's deltas).
        # The flusher thread did not survive the fork: start the child's own now, or
        # the child's counts would reach Redis only at exit.
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = None
        for r in self._registered:
            r.sent = {name: getattr(r.counters, name) for name in FIELDS}
        if self._registered:
            self._ensure_thread()

    def register(self, tenant: str, counters: Counters) -> None:
        with self._lock:
            if any(r.counters is counters for r in self._registered):
                return
            self._registered.append(_Registered(tenant, counters))
        self._ensure_thread()

    def local(self, tenant: str | None = None) -> dict[str, dict[str, int]]:
        """This process's totals per tenant."""
        out: dict[str, dict[str, int]] = {}
        with self._lock:
            for r in self._registered:
                if tenant is not None and r.tenant != tenant:
                    continue
                row = out.setdefault(r.tenant, dict.fromkeys(FIELDS, 0))
                for name in FIELDS:
                    row[name] += getattr(r.counters, name)
        return out

    def _deltas(self) -> dict[str, dict[str, int]]:
        deltas: dict[str, dict[str, int]] = {}
        with self._lock:
            for r in self._registered:
                for name in FIELDS:
                    now = getattr(r.counters, name)
                    # A cache_clear() resets counters: start counting again from zero.
                    before = r.sent[name] if now >= r.sent[name] else 0
                    if now != before:
                        row = deltas.setdefault(r.tenant, {})
                        row[name] = row.get(name, 0) + now - before
                    r.sent[name] = now
        return deltas

    def flush(self) -> None:
        """Send what has not been sent yet (fail open: lost deltas are only statistics)."""
        if self._client_factory is None:
            return
        deltas = self._deltas()
        if not deltas:
            return
        try:
            pipe = self._client_factory().pipeline(transaction=False)
            for tenant, row in deltas.items():
                for name, delta in row.items():
                    pipe.hincrby(STATS_PREFIX + tenant, name, delta)
                pipe.expire(STATS_PREFIX + tenant, STATS_TTL_S)
            pipe.execute()
        except Exception as exc:
            logger.debug("statistics not sent: %s", exc)

    def shared(self, tenant: str | None = None) -> dict[str, dict[str, int]] | None:
        """Totals across processes (None for in-process backends)."""
        if self._client_factory is None:
            return None
        self.flush()
        client = self._client_factory()
        keys = (
            [STATS_PREFIX + tenant]
            if tenant is not None
            else list(client.scan_iter(match=STATS_PREFIX + "*", count=1000))
        )
        out: dict[str, dict[str, int]] = {}
        for key in keys:
            raw = client.hgetall(key)
            name = key.decode() if isinstance(key, bytes) else key
            row = {(k.decode() if isinstance(k, bytes) else k): int(v) for k, v in raw.items()}
            out[name[len(STATS_PREFIX) :]] = {f: row.get(f, 0) for f in FIELDS}
        return out

    def _ensure_thread(self) -> None:
        if self._client_factory is None:
            return
        if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._thread is not None and self._thread.is_alive() and self._pid == os.getpid():
                return
            self._pid = os.getpid()  # after a fork the thread is gone: start another
            self._thread = threading.Thread(target=self._run, name="pmm_memo-stats", daemon=True)
            self._thread.start()
            _at_exit.add(self)

    def _run(self) -> None:
        while not self._stop.wait(self._interval):
            self.flush()

    def close(self) -> None:
        self._stop.set()
        self.flush()


_at_exit: weakref.WeakSet[SharedStats] = weakref.WeakSet()


@atexit.register
def _flush_all() -> None:
    for stats in list(_at_exit):
        stats.flush()
