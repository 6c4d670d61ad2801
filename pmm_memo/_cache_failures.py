"""How `Cache` classifies a backend failure: an outage (opens the circuit breaker), load
(no free pooled connection, a slow process: never an outage), or an answer the server
gave (an error reply: the server is reachable). Logged once per kind until recovery.

`_guarded`/`_aguarded` run one backend call under that policy. A mixin of `Cache` (see
`_cache` for the fail-open policy as a whole).
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from ._breaker import CircuitBreaker
from ._config import CacheConfig
from ._errors import IndexSchemaError, SearchUnavailableError
from ._stats import Counters
from .backends._base import Backend

logger = logging.getLogger("pmm_memo")
T = TypeVar("T")

# Configuration mistakes found while talking to the backend: they must be seen, so they
# are logged at ERROR (once) rather than as a transient outage.
_CONFIG_ERRORS = (IndexSchemaError, SearchUnavailableError)


class CacheFailures:
    """Failure classification, counting and once-only logging, for `Cache`."""

    config: CacheConfig
    breaker: CircuitBreaker
    counters: Counters
    replies: int
    _logged: set[str]
    _connection_errors: tuple[type[BaseException], ...]
    _busy_errors: tuple[type[BaseException], ...]
    _timeouts: tuple[type[BaseException], ...]

    def log_once(self, tag: str, level: int, message: str, *args: Any) -> None:
        """Log a message the first time `tag` is seen (until the next recovery)."""
        if tag in self._logged:
            return
        self._logged.add(tag)
        logger.log(level, message, *args)

    def _failed(
        self, op: str, exc: BaseException, counters: Counters, since: int | None = None
    ) -> None:
        """Count and classify a failure. `since`: `self.replies` when the operation
        started; if other operations got replies meanwhile, a timeout says this process
        was slow (a loaded event loop, a burst of connects), not that the server is down."""
        self._count(counters, "errors")
        if isinstance(exc, self._busy_errors) or (
            since is not None and self.replies != since and isinstance(exc, self._timeouts)
        ):
            # Every pooled connection was busy for CACHE_POOL_TIMEOUT: this process is
            # loaded, the server said nothing. Never an outage (the breaker stays as is).
            # A busy error says why itself; a bare timeout needs the evidence named (it
            # was: "the server failed while ... (the server is answering other calls)").
            why = "" if isinstance(exc, self._busy_errors) else " (other calls got replies)"
            self.log_once(
                "busy",
                logging.WARNING,
                "cache %s skipped: %s: %s%s; the call went to the function",
                op,
                type(exc).__name__,
                exc,
                why,
            )
            return
        if isinstance(exc, self._connection_errors):
            if self.breaker.record_failure():
                logger.warning(
                    "cache backend %s unavailable during %s (%s: %s); calling "
                    "functions directly, next try in %.1fs",
                    self.describe_backend(),
                    op,
                    type(exc).__name__,
                    exc,
                    self.breaker.interval,
                )
            return
        # Anything else means the server answered (with an error): it is reachable.
        # Saying so matters when this call was the breaker's probe, or the breaker would
        # never close again.
        self._succeeded()
        if isinstance(exc, _CONFIG_ERRORS):
            self.config_problem(exc)
            return
        self.log_once(
            f"error:{op}:{type(exc).__name__}",
            logging.WARNING,
            "cache %s failed (%s: %s); the call went to the function",
            op,
            type(exc).__name__,
            exc,
        )

    def config_problem(self, exc: BaseException) -> None:
        """An index problem (another schema, no search module): logged once at ERROR,
        for decorators and the manager alike."""
        self.log_once(
            f"config:{type(exc).__name__}",
            logging.ERROR,
            "%s; semantic lookups are exact-only until fixed",
            exc,
        )

    def _count(self, counters: Counters, field: str) -> None:
        """Count on the function's counters and, once, on the cache-wide ones."""
        setattr(counters, field, getattr(counters, field) + 1)
        if counters is not self.counters:
            setattr(self.counters, field, getattr(self.counters, field) + 1)

    def _succeeded(self) -> None:
        self.replies += 1
        if self.breaker.record_success():
            self._logged.clear()
            logger.info("cache backend %s reachable again", self.describe_backend())

    def describe_backend(self) -> str:
        masked = self.config.masked_redis_url
        return f"redis at {masked}" if masked else "memory"

    def _corrupt(self, key: str, exc: BaseException | str, counters: Counters) -> None:
        self._count(counters, "corrupt")
        logger.debug("ignoring unreadable entry %s: %s", key, exc)

    def _guarded(
        self, op: str, fn: Callable[[], T], default: T, counters: Counters | None = None
    ) -> T:
        if not self.breaker.allow():
            return default
        since = self.replies
        try:
            result = fn()
        except Exception as exc:
            self._failed(op, exc, counters or self.counters, since)
            return default
        self._succeeded()
        return result

    async def _aguarded(
        self,
        op: str,
        fn: Callable[[], Awaitable[T]],
        default: T,
        counters: Counters | None = None,
    ) -> T:
        if not self.breaker.allow():
            return default
        since = self.replies
        try:
            result = await fn()
        except Exception as exc:
            self._failed(op, exc, counters or self.counters, since)
            return default
        self._succeeded()
        return result


def _busy_errors(backend: Backend) -> tuple[type[BaseException], ...]:
    """Errors that mean "no free pooled connection", or "the server answers but this
    process was too slow" (load, not an outage)."""
    if backend.name != "redis":
        return ()
    import redis

    from .backends._connect import LocalSlownessError, PoolTimeoutError

    return (PoolTimeoutError, LocalSlownessError, redis.exceptions.MaxConnectionsError)


def _timeouts(backend: Backend) -> tuple[type[BaseException], ...]:
    if backend.name != "redis":
        return (TimeoutError,)
    import redis

    return (redis.TimeoutError, TimeoutError)


def _connection_errors(backend: Backend) -> tuple[type[BaseException], ...]:
    """Errors that mean "the server is unreachable" (they open the breaker)."""
    if backend.name != "redis":
        return (OSError,)
    import redis

    return (redis.ConnectionError, redis.TimeoutError, OSError)
