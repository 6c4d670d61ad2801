"""Validation of decorator options, with errors that name the option and the value."""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

from ._errors import ConfigError

if TYPE_CHECKING:
    from ._cache import Cache

MAX_TENANT_LENGTH = 256
# The longest TTL, 100 years. Redis refuses an expiry it cannot hold in milliseconds:
# `ttl=sys.maxsize`, meant as "forever", failed every write there (and the hash, already
# written, was left without its expiry), while the embedded backend took it.
MAX_TTL_SECONDS = 100 * 365 * 24 * 3600


def tenant(value: Any) -> str:
    """Any non-empty str without control characters, up to 256 characters.

    Tenants may contain `:`, `*`, `[`, `{`, `|`, `,`, spaces and any unicode: keys escape
    them for SCAN, and search filters use digests, so no tenant can reach another's keys.
    """
    if not isinstance(value, str):
        raise ConfigError(f"tenant must be a str, got {type(value).__name__}: {value!r}")
    if not value:
        raise ConfigError("tenant must be a non-empty str")
    if len(value) > MAX_TENANT_LENGTH:
        raise ConfigError(
            f"tenant is {len(value)} characters long; the limit is {MAX_TENANT_LENGTH}"
        )
    bad = [c for c in value if ord(c) < 32 or ord(c) == 127 or 0xD800 <= ord(c) <= 0xDFFF]
    if bad:
        raise ConfigError(
            f"tenant {value!r} contains control or surrogate characters {''.join(bad)!r}"
        )
    return value


def ttl(value: Any) -> int | None:
    """Seconds (int or float > 0) -> milliseconds; None means the config default."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"ttl must be a number of seconds or None, got {value!r}")
    if not math.isfinite(value) or value <= 0:
        raise ConfigError(f"ttl must be > 0 seconds (entries always expire), got {value!r}")
    if value > MAX_TTL_SECONDS:
        raise ConfigError(
            f"ttl must be at most {MAX_TTL_SECONDS} seconds (100 years), got {value!r}"
        )
    return max(1, round(value * 1000))


def threshold(value: Any) -> float:
    """A cosine similarity in (0, 1]."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ConfigError(f"threshold must be a number in (0, 1], got {value!r}")
    if math.isnan(value) or not 0 < value <= 1:
        raise ConfigError(f"threshold must be a cosine similarity in (0, 1], got {value!r}")
    return float(value)


def positive_int(name: str, value: Any) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be an int > 0, got {value!r}")
    return value


def names(option: str, value: Any) -> tuple[str, ...]:
    """Parameter names: one name as a str (`ignore="client"`), or a tuple/list/set of them.
    A str is never split into characters."""
    if isinstance(value, str):
        return (value,)
    if not isinstance(value, tuple | list | set | frozenset):
        raise ConfigError(
            f"{option} must be a parameter name or a tuple of names, got "
            f"{type(value).__name__}: {value!r}"
        )
    bad = [v for v in value if not isinstance(v, str)]
    if bad:
        raise ConfigError(f"{option}={value!r}: names must be str, got {bad[0]!r}")
    return tuple(sorted(value) if isinstance(value, set | frozenset) else value)


def optional_callable(name: str, value: Any) -> Any:
    if value is not None and not callable(value):
        raise ConfigError(f"{name} must be callable or None, got {type(value).__name__}")
    return value


def cache_option(value: object) -> Cache | None:
    """`cache=`: a `Cache` or None. A URL or a CacheConfig given there was taken, and
    every call then raised AttributeError ("'str' object has no attribute 'enabled'")."""
    from ._cache import Cache  # at call time: _cache imports this module

    if value is None:
        return None
    if not isinstance(value, Cache):
        raise ConfigError(
            f"cache must be a pmm_memo.Cache (e.g. Cache(CacheConfig(redis_url=...))) or "
            f"None for the process-wide cache, got {type(value).__name__}"
        )
    return value
