"""The exception tree, in one place so users can catch at the level they care about.

    PmmMemoError
    ├── ConfigError (ValueError)          bad CACHE_* value or option
    ├── UnencodableArgumentError (TypeError)  an argument has no stable key encoding
    ├── CodecError                        a result cannot be stored / an entry cannot be read
    ├── EmbeddingError                    an embedder returned an unusable vector or failed
    ├── IndexSchemaError                  the search index exists with another schema
    ├── SearchUnavailableError            semantic search was required but the server lacks it
    └── ShardUnavailableError             a Redis Cluster shard is down (its keys are skipped)

Cache *failures* (Redis down, timeouts, corrupt entries) never reach the caller of a
decorated function; these errors are for bad input and for explicit manager calls.
"""

from __future__ import annotations


class PmmMemoError(Exception):
    """Base class for every error pmm_memo raises on purpose."""


class ConfigError(PmmMemoError, ValueError):
    """A configuration value (environment variable or option) is invalid."""


class UnencodableArgumentError(PmmMemoError, TypeError):
    """An argument cannot be encoded into a key that is stable across processes."""


class CodecError(PmmMemoError):
    """A value cannot be serialised, or a stored entry cannot be trusted or decoded."""


class EmbeddingError(PmmMemoError):
    """An embedder failed or returned a vector of the wrong shape or with NaN/inf."""


class IndexSchemaError(PmmMemoError):
    """The search index already exists with a schema that differs from the configured one."""


class SearchUnavailableError(PmmMemoError):
    """The Redis server has no search module and CACHE_REQUIRE_SEARCH is true."""


class ShardUnavailableError(PmmMemoError):
    """One shard of a Redis Cluster timed out or refused connections; its keys are skipped
    (counted as errors) until its breaker interval ends, while other shards serve."""
