"""The table of `CacheConfig` settings: each one's environment variable, parser and meaning.

Why a module of its own: this table is data (one row per setting, in the README's order)
and `_config` is behaviour (construction, validation, masking); `from_env`, the README
table and `pmm-memo config` all read these rows, so a variable cannot be documented
without being parsed. Parsers raise ValueError with what was expected; `from_env`
turns that into a ConfigError naming the variable.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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
        "RediSearch index name; each embedder gets `<name>:<embedder>:v2` (e.g. "
        "`idx:cache:offline-1536-a2d7ca05:v2`); a CACHE_KEY_PREFIX other than `cache:` "
        "adds its own part, `<name>:<prefix>-<digest>:<embedder>:v2`, so programs with "
        "their own prefixes never share an index.",
    ),
    "key_prefix": _Field("CACHE_KEY_PREFIX", _parse_str, "Prefix of every entry key."),
    "embedding_dimensions": _Field(
        "CACHE_EMBEDDING_DIMENSIONS",
        _parse_int,
        "Vector size for OpenAI and offline embedders (a local model sets its own).",
    ),
    "default_ttl": _Field(
        "CACHE_DEFAULT_TTL",
        _parse_int,
        "Seconds an entry lives when `ttl=None` (at most 100 years).",
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
        "After a Redis failure, seconds during which Redis is not tried at all; after the "
        "embedding API fails as down, seconds during which nothing is embedded.",
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
