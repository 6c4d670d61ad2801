"""`CacheConfig`: every setting, its environment variable, its default and its validation.

One table (`_FIELDS`) drives `from_env`, validation and the README, so a variable cannot be
documented without being parsed, or parsed without being checked.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ._errors import ConfigError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _parse_bool(raw: str) -> bool:
    low = raw.strip().lower()
    if low in _TRUE:
        return True
    if low in _FALSE:
        return False
    raise ValueError("expected one of true/false/1/0/yes/no/on/off")


def _parse_int(raw: str) -> int:
    try:
        return int(raw.strip())
    except ValueError:
        raise ValueError("expected an integer") from None


def _parse_float(raw: str) -> float:
    try:
        value = float(raw.strip())
    except ValueError:
        raise ValueError("expected a number") from None
    return value


def _parse_str(raw: str) -> str:
    return raw


def _parse_optional_str(raw: str) -> str | None:
    return raw if raw != "" else None


@dataclass(frozen=True)
class _Field:
    env: str
    parse: Callable[[str], Any]
    doc: str


# name -> (environment variable, parser, one-line meaning). Order is the README's order.
_FIELDS: dict[str, _Field] = {
    "redis_url": _Field(
        "CACHE_REDIS_URL",
        _parse_optional_str,
        "Unset: embedded in-process backend. `redis://`, `rediss://` (TLS), `unix://`, or "
        "`redis+sentinel://host:port[,host:port]/service[/db]`: Redis; "
        "`redis+cluster://host:port[,host:port]` (or `rediss+cluster://`): Redis Cluster.",
    ),
    "index_name": _Field(
        "CACHE_INDEX_NAME",
        _parse_str,
        "RediSearch index name; each embedder gets `<name>:<embedder>` (e.g. "
        "`idx:cache:offline-1536-a2d7ca05`).",
    ),
    "key_prefix": _Field("CACHE_KEY_PREFIX", _parse_str, "Prefix of every entry key."),
    "embedding_dimensions": _Field(
        "CACHE_EMBEDDING_DIMENSIONS",
        _parse_int,
        "Vector size for OpenAI and offline embedders (a local model sets its own).",
    ),
    "default_ttl": _Field(
        "CACHE_DEFAULT_TTL", _parse_int, "Seconds an entry lives when `ttl=None`."
    ),
    "enable_embeddings": _Field(
        "CACHE_ENABLE_EMBEDDINGS",
        _parse_bool,
        "false: never embed; semantic lookups act as exact-only.",
    ),
    "max_text_length": _Field(
        "CACHE_MAX_TEXT_LENGTH",
        _parse_int,
        "Characters of a text that are embedded and stored (a longer text: its tail; the "
        "rest must be identical for a semantic hit).",
    ),
    "batch_size": _Field(
        "CACHE_BATCH_SIZE", _parse_int, "Texts per embedding request; keys per SCAN/UNLINK."
    ),
    "enabled": _Field(
        "CACHE_ENABLED", _parse_bool, "false: every decorator is a pure pass-through."
    ),
    "embedder": _Field(
        "CACHE_EMBEDDER",
        _parse_str,
        "`auto` (openai if OPENAI_API_KEY is set, else local if the `local` extra is "
        "installed, else offline), `openai`, `offline`, `local`.",
    ),
    "socket_timeout": _Field(
        "CACHE_SOCKET_TIMEOUT",
        _parse_float,
        "Seconds a Redis command may take before the call falls back to the function.",
    ),
    "connect_timeout": _Field(
        "CACHE_CONNECT_TIMEOUT", _parse_float, "Seconds to open a Redis connection."
    ),
    "max_connections": _Field(
        "CACHE_MAX_CONNECTIONS",
        _parse_int,
        "Redis connections per pool (one sync pool per process, one per event loop); "
        "callers beyond it wait for a free one.",
    ),
    "pool_timeout": _Field(
        "CACHE_POOL_TIMEOUT",
        _parse_float,
        "Seconds a call waits for a free pooled connection before going to the function "
        "(counted in `errors`; never opens the breaker).",
    ),
    "breaker_interval": _Field(
        "CACHE_BREAKER_INTERVAL",
        _parse_float,
        "After a Redis failure, seconds during which Redis is not tried at all.",
    ),
    "memory_max_entries": _Field(
        "CACHE_MEMORY_MAX_ENTRIES",
        _parse_int,
        "Entries the embedded backend keeps before evicting the least recently used.",
    ),
    "memory_max_bytes": _Field(
        "CACHE_MEMORY_MAX_BYTES",
        _parse_int,
        "Approximate bytes of results the embedded backend keeps before evicting (LRU).",
    ),
    "codec": _Field(
        "CACHE_CODEC",
        _parse_str,
        "`safe` (tagged JSON, never runs code) or `pickle` (needs CACHE_SIGNING_KEY).",
    ),
    "signing_key": _Field(
        "CACHE_SIGNING_KEY",
        _parse_optional_str,
        "HMAC-SHA256 key: every Redis entry is signed with its key, tenant, user, function "
        "and scope; an unsigned, badly signed or moved entry is a miss (required by the "
        "pickle codec).",
    ),
    "hash_secret": _Field(
        "CACHE_HASH_SECRET",
        _parse_optional_str,
        "Secret seed for the key hash and the entry digests: keys cannot be predicted or "
        "collided offline; entries written under another secret are never served "
        "(changing it re-keys every entry).",
    ),
    "max_value_bytes": _Field(
        "CACHE_MAX_VALUE_BYTES",
        _parse_int,
        "Encoded results larger than this are returned but not stored.",
    ),
    "lock_ttl": _Field(
        "CACHE_LOCK_TTL",
        _parse_float,
        "Seconds a cross-process single-flight lock lives (bounds a crashed owner's hold).",
    ),
    "lock_wait": _Field(
        "CACHE_LOCK_WAIT",
        _parse_float,
        "Seconds a process waits for another's result before computing it itself.",
    ),
    "vector_algorithm": _Field(
        "CACHE_VECTOR_ALGORITHM", _parse_str, "`HNSW` or `FLAT` for the index's vector field."
    ),
    "vector_type": _Field(
        "CACHE_VECTOR_TYPE", _parse_str, "`FLOAT32` or `FLOAT16` storage of embeddings."
    ),
    "hnsw_m": _Field("CACHE_HNSW_M", _parse_int, "HNSW graph degree (M)."),
    "hnsw_ef_construction": _Field(
        "CACHE_HNSW_EF_CONSTRUCTION", _parse_int, "HNSW EF_CONSTRUCTION."
    ),
    "hnsw_ef_runtime": _Field(
        "CACHE_HNSW_EF_RUNTIME", _parse_int, "HNSW EF_RUNTIME used by every KNN query."
    ),
    "knn_k": _Field(
        "CACHE_KNN_K",
        _parse_int,
        "Neighbours fetched per semantic lookup (more only helps if the nearest is rejected).",
    ),
    "require_search": _Field(
        "CACHE_REQUIRE_SEARCH",
        _parse_bool,
        "true: a Redis without the search module is an error instead of exact-only caching.",
    ),
    "openai_embedding_model": _Field(
        "CACHE_OPENAI_EMBEDDING_MODEL", _parse_str, "OpenAI embedding model."
    ),
    "openai_timeout": _Field(
        "CACHE_OPENAI_TIMEOUT",
        _parse_float,
        "Seconds an embedding request may take before the call falls back to the function.",
    ),
    "openai_max_retries": _Field(
        "CACHE_OPENAI_MAX_RETRIES", _parse_int, "Retries of a failed embedding request."
    ),
}

_VALID_EMBEDDERS = ("auto", "openai", "offline", "local")
_VALID_CODECS = ("safe", "pickle")


@dataclass(frozen=True)
class CacheConfig:
    """Every setting of a cache. Build it directly, or with `CacheConfig.from_env()`."""

    redis_url: str | None = None
    index_name: str = "idx:cache"
    key_prefix: str = "cache:"
    embedding_dimensions: int = 1536
    default_ttl: int = 3600
    enable_embeddings: bool = True
    max_text_length: int = 10000
    batch_size: int = 100
    enabled: bool = True
    embedder: str = "auto"
    socket_timeout: float = 0.25
    connect_timeout: float = 0.25
    # redis-py's BlockingConnectionPool default size. The wait is a safety net, generous
    # because on a healthy server it is only queueing (2,000 tasks on one loop wait for
    # their turn): an outage releases waiters at its first failure (see _connect).
    max_connections: int = 50
    pool_timeout: float = 10.0
    breaker_interval: float = 5.0
    memory_max_entries: int = 10000
    memory_max_bytes: int = 256 * 1024 * 1024
    codec: str = "safe"
    signing_key: str | None = None
    hash_secret: str | None = None
    max_value_bytes: int = 8 * 1024 * 1024
    lock_ttl: float = 60.0
    lock_wait: float = 60.0
    # FLAT, the origin project's schema, by measurement (benchmarks/peers.py, 10k entries
    # over 10 tenants): filtered queries as fast as HNSW with exact recall, 10x faster
    # to load, less memory. HNSW pays off from ~50k entries per index (README).
    vector_algorithm: str = "FLAT"
    vector_type: str = "FLOAT32"
    hnsw_m: int = 16
    hnsw_ef_construction: int = 200
    # 100: at 100k entries with a 10% tenant filter, recall@1 of near-duplicates was 1.000
    # at p50 1.5 ms on embedding-like vectors (benchmarks/bench_semantic.py); uniformly
    # random vectors, a worst case, need ~400 for 0.995.
    hnsw_ef_runtime: int = 100
    knn_k: int = 1
    require_search: bool = False
    openai_embedding_model: str = "text-embedding-3-small"
    openai_timeout: float = 10.0
    openai_max_retries: int = 2

    def __post_init__(self) -> None:
        _validate(self)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None) -> CacheConfig:
        """Read every `CACHE_*` variable; unset ones keep their defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for name, field in _FIELDS.items():
            raw = env.get(field.env)
            if raw is None:
                continue
            try:
                values[name] = field.parse(raw)
            except ValueError as exc:
                raise ConfigError(f"{field.env}={raw!r}: {exc}") from None
        return cls(**values)

    def replace(self, **changes: Any) -> CacheConfig:
        """A copy with some settings changed (validated like a new config)."""
        unknown = set(changes) - set(_FIELDS)
        if unknown:
            raise ConfigError(f"unknown CacheConfig setting(s): {', '.join(sorted(unknown))}")
        return dataclasses.replace(self, **changes)

    def __repr__(self) -> str:
        # Configurations end up in tracebacks, error trackers and logged settings: the
        # URL's password and the secrets never appear (set or not is all that shows).
        shown = []
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name in SECRET_FIELDS and value is not None:
                text = "'***'"
            elif f.name == "redis_url" and value is not None:
                text = repr(mask_url(value))
            else:
                text = repr(value)
            shown.append(f"{f.name}={text}")
        return f"CacheConfig({', '.join(shown)})"

    __str__ = __repr__

    @property
    def masked_redis_url(self) -> str | None:
        """The Redis URL with any password replaced by `***`, for logs and CLI output."""
        return mask_url(self.redis_url) if self.redis_url else None


def mask_url(url: str) -> str:
    """Hide the passwords of a URL (`redis://user:secret@h` -> `redis://user:***@h`,
    `?password=secret` -> `?password=***`, as redis-py also reads it from the query).

    String surgery rather than urlsplit: Sentinel URLs list several host:port pairs,
    which urlsplit cannot parse, and a mask must never fail. Text that is not a URL at
    all (a mistyped value) is shown only as far as it cannot hold a password."""
    scheme, sep, rest = url.partition("://")
    if not sep:
        return url if "@" not in url and "password" not in url.lower() else "***"
    rest = _QUERY_SECRET.sub(r"\1***", rest)
    # The last "@" ends the credentials: a password typed without percent-encoding may
    # itself hold "/", ":" or "@", and masking too much beats showing a secret.
    userinfo, at, hosts = rest.rpartition("@")
    if not at:
        return f"{scheme}://{rest}"
    user = userinfo.partition(":")[0] if ":" in userinfo else ""
    return f"{scheme}://{user}:***@{hosts}"


# Fields whose values never appear in a repr or an error message.
SECRET_FIELDS = frozenset({"signing_key", "hash_secret"})
_QUERY_SECRET = re.compile(r"([?&](?:password|pass|pwd)=)[^&#]*", re.IGNORECASE)


def _fail(name: str, message: str, value: object) -> ConfigError:
    if name in SECRET_FIELDS or name == "redis_url":
        shown = f"a {type(value).__name__}"  # never the value: it may be a secret
    else:
        shown = repr(value)
    return ConfigError(f"{_FIELDS[name].env} ({name}) {message}, got {shown}")


def _validate(cfg: CacheConfig) -> None:
    # Types first: a dataclass does not check them, and a str where an int belongs would
    # otherwise fail much later, far from the mistake.
    for field in dataclasses.fields(cfg):
        value = getattr(cfg, field.name)
        expected = field.type
        if expected == "bool" and not isinstance(value, bool):
            raise _fail(field.name, "must be a bool", value)
        if expected == "int" and (isinstance(value, bool) or not isinstance(value, int)):
            raise _fail(field.name, "must be an int", value)
        if expected == "float" and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise _fail(field.name, "must be a number", value)
        if expected == "str" and not isinstance(value, str):
            raise _fail(field.name, "must be a str", value)
        if expected == "str | None" and value is not None and not isinstance(value, str):
            raise _fail(field.name, "must be a str or None", value)

    if cfg.redis_url is not None:
        scheme, sep, _ = cfg.redis_url.partition("://")
        if not sep:
            raise ConfigError(
                f"CACHE_REDIS_URL (redis_url) {mask_url(cfg.redis_url)!r} has no scheme: "
                f"write redis://{mask_url(cfg.redis_url)} (rediss:// for TLS, unix:///path "
                f"for a socket)"
            )
        schemes = ("redis", "rediss", "unix", "redis+sentinel", "redis+cluster", "rediss+cluster")
        if scheme not in schemes:
            raise ConfigError(
                f"CACHE_REDIS_URL (redis_url) must start with redis://, rediss://, unix://, "
                f"redis+sentinel:// or redis+cluster://, got {mask_url(cfg.redis_url)!r}"
            )
        if scheme == "redis+sentinel":
            from .backends._connect import parse_sentinel_url

            parse_sentinel_url(cfg.redis_url)  # a malformed one fails now, not at first use
        if scheme.endswith("+cluster"):
            from .backends._cluster_connect import parse_cluster_url

            parse_cluster_url(cfg.redis_url)
            for name in ("key_prefix", "index_name"):
                # A hash tag would pin every entry (or every shard's index) to one slot.
                if "{" in getattr(cfg, name) or "}" in getattr(cfg, name):
                    raise _fail(
                        name, "must not contain { or } on a Redis Cluster", getattr(cfg, name)
                    )
    if not cfg.index_name or any(c.isspace() for c in cfg.index_name):
        raise _fail("index_name", "must be a non-empty name without spaces", cfg.index_name)
    if not cfg.key_prefix or any(c in cfg.key_prefix for c in "*?[]\\ "):
        raise _fail(
            "key_prefix", "must be non-empty, without glob characters or spaces", cfg.key_prefix
        )
    positive_ints = (
        "embedding_dimensions",
        "default_ttl",
        "max_text_length",
        "batch_size",
        "memory_max_entries",
        "memory_max_bytes",
        "max_value_bytes",
        "hnsw_m",
        "hnsw_ef_construction",
        "hnsw_ef_runtime",
        "knn_k",
        "max_connections",
    )
    for name in positive_ints:
        if getattr(cfg, name) <= 0:
            raise _fail(name, "must be > 0", getattr(cfg, name))
    if cfg.embedding_dimensions > 32768:
        raise _fail("embedding_dimensions", "must be <= 32768", cfg.embedding_dimensions)
    if cfg.openai_max_retries < 0:
        raise _fail("openai_max_retries", "must be >= 0", cfg.openai_max_retries)
    for name in (
        "socket_timeout",
        "connect_timeout",
        "pool_timeout",
        "breaker_interval",
        "openai_timeout",
        "lock_ttl",
        "lock_wait",
    ):
        value = getattr(cfg, name)
        if not math.isfinite(value) or value <= 0:
            raise _fail(name, "must be a finite number of seconds > 0", value)
    if cfg.embedder not in _VALID_EMBEDDERS:
        raise _fail("embedder", f"must be one of {', '.join(_VALID_EMBEDDERS)}", cfg.embedder)
    if cfg.codec not in _VALID_CODECS:
        raise _fail("codec", f"must be one of {', '.join(_VALID_CODECS)}", cfg.codec)
    if cfg.codec == "pickle" and not cfg.signing_key:
        raise ConfigError(
            "CACHE_CODEC=pickle needs CACHE_SIGNING_KEY: unsigned pickles would let anyone "
            "who can write to Redis run code in this process"
        )
    if cfg.signing_key is not None and len(cfg.signing_key) < 16:
        raise ConfigError("CACHE_SIGNING_KEY (signing_key) must be at least 16 characters")
    if cfg.vector_algorithm not in ("FLAT", "HNSW"):
        raise _fail("vector_algorithm", "must be FLAT or HNSW", cfg.vector_algorithm)
    if cfg.vector_type not in ("FLOAT32", "FLOAT16"):
        raise _fail("vector_type", "must be FLOAT32 or FLOAT16", cfg.vector_type)


def config_table() -> list[tuple[str, str, str]]:
    """(variable, default, meaning) rows, for the README and `pmm-memo config`."""
    defaults = CacheConfig()
    rows = []
    for name, field in _FIELDS.items():
        default = getattr(defaults, name)
        shown = (
            "unset"
            if default is None
            else str(default).lower()
            if isinstance(default, bool)
            else str(default)
        )
        rows.append((field.env, shown, field.doc))
    return rows
