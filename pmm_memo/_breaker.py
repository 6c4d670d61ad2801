"""Circuit breaker: after a backend failure, stop trying for an interval.

Without it every call during an outage would wait a full socket timeout; with it an
outage costs at most one timeout per interval. After the interval, exactly one caller
(the one that wins `allow()`) tries the backend again; success closes the breaker.
Kept apart from storage so it is testable with a fake clock.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

from . import _forksafe


class CircuitBreaker:
    def __init__(self, interval: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.interval = interval
        self._clock = clock
        self._lock = threading.Lock()
        _forksafe.track(self)
        self._open_until = 0.0  # 0 -> closed
        self._probing = False
        # Open or half-open. A plain attribute, not a property: the hit path reads it on
        # every call. Written only under the lock, together with _open_until.
        self.is_open = False
        # Failures recorded so far. A caller queued for a pooled connection compares it
        # before and after its wait: a failure meanwhile means the server just failed, and
        # the caller gives up instead of paying a timeout of its own (see _connect).
        self.failures = 0

    def allow(self) -> bool:
        """May the backend be tried now? Cheap when closed (one attribute read)."""
        if self._open_until == 0.0:
            return True
        with self._lock:
            if self._open_until == 0.0:
                return True
            now = self._clock()
            if now < self._open_until:
                return False
            if self._probing and now < self._open_until + self.interval:
                return False  # a probe is out; give it one interval to report back
            # Half-open: this caller is the probe. A probe that never reports (a caller
            # that died, a path that forgot) only delays the next one by an interval.
            self._probing = True
            return True

    def record_success(self) -> bool:
        """Returns True when this success closed an open breaker (a recovery)."""
        if self._open_until == 0.0:
            return False
        with self._lock:
            was_open = self._open_until != 0.0
            self._open_until = 0.0
            self._probing = False
            self.is_open = False
            return was_open

    # -- fork safety (see _forksafe) ----------------------------------------------------

    def _fork_lock(self) -> threading.Lock:
        return self._lock

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def record_failure(self) -> bool:
        """Returns True when this failure opened a closed breaker (a new outage)."""
        with self._lock:
            self.failures += 1
            was_closed = self._open_until == 0.0
            self._open_until = self._clock() + self.interval
            self._probing = False
            self.is_open = True
            return was_closed
