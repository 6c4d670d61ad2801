"""`CacheConfig`: every setting, its environment variable, its default and its validation.

One table (`_FIELDS`, in `_config_fields`) drives `from_env`, validation and the README,
so a variable cannot be documented without being parsed, or parsed without being checked.
"""

from __future__ import annotations

import dataclasses
import math
import os
import re
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from ._config_fields import _FIELDS, _VALID_CODECS, _VALID_EMBEDDERS
from ._errors import ConfigError
from ._validate import MAX_TTL_SECONDS


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
        hidden = "@" in url or "password" in url.lower() or _QUERY_SECRET.search(url)
        return "***" if hidden else url
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
# Any query key naming a secret: redis-py passes every key on to the connection, so
# `ssl_password` (the TLS key's passphrase) is as secret as `password`.
_QUERY_SECRET = re.compile(r"([?&][^=&#]*(?:pass|pwd|secret|token)[^=&#]*=)[^&#]*", re.IGNORECASE)


def _check_url_parses(url: str) -> None:
    """redis-py reads redis://, rediss:// and unix:// URLs with urllib, where `#`, `/`,
    `?` and `@` end the credentials. A password typed with one of them unencoded split
    the URL there: every call then raised ValueError ("Port could not be cast to integer
    value as '<first part of the password>'"), or connected to the wrong host. Refused
    here, with the fix, and without the password. Anything else redis-py's own parser
    refuses (a port that is no number, `?socket_timeout=abc`) is refused here too, in
    its words, instead of at every call (urllib's own refusals too: an unclosed IPv6
    bracket raised a bare ValueError, a traceback in the CLI)."""
    try:
        parts = urllib.parse.urlsplit(url)
    except ValueError as exc:  # "Invalid IPv6 URL": it names no part of the URL
        raise ConfigError(
            f"CACHE_REDIS_URL (redis_url) {mask_url(url)!r} does not parse: {exc}"
        ) from None
    if parts.fragment or "@" in parts.path + parts.query:
        raise ConfigError(
            f"CACHE_REDIS_URL (redis_url) {mask_url(url)!r} does not parse: a user name "
            f"or password holding '#', '/', '?' or '@' must be percent-encoded (%23, %2F, "
            f"%3F, %40), e.g. with urllib.parse.quote(password, safe='')"
        )
    import redis.connection  # only with a Redis URL: the embedded backend never loads it

    try:
        redis.connection.parse_url(url)  # type: ignore[no-untyped-call]
    except ValueError as exc:  # its messages name a query key or the port, not secrets
        raise ConfigError(
            f"CACHE_REDIS_URL (redis_url) {mask_url(url)!r} does not parse: {exc}"
        ) from None


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
        if scheme in ("redis", "rediss", "unix"):
            _check_url_parses(cfg.redis_url)
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
    if cfg.default_ttl > MAX_TTL_SECONDS:
        raise _fail("default_ttl", f"must be <= {MAX_TTL_SECONDS} (100 years)", cfg.default_ttl)
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
