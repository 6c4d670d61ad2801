"""CacheConfig: defaults, environment parsing, and errors that name the variable."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from pmm_memo import CacheConfig, ConfigError
from pmm_memo._config import config_table, mask_url


def test_defaults_match_the_contract() -> None:
    cfg = CacheConfig.from_env({})
    assert cfg.redis_url is None
    assert cfg.index_name == "idx:cache"
    assert cfg.key_prefix == "cache:"
    assert cfg.embedding_dimensions == 1536
    assert cfg.default_ttl == 3600
    assert cfg.enable_embeddings is True
    assert cfg.max_text_length == 10000
    assert cfg.batch_size == 100
    assert cfg.enabled is True
    assert cfg.embedder == "auto"
    assert cfg.socket_timeout < 1 and cfg.connect_timeout < 1


def test_environment_is_parsed() -> None:
    cfg = CacheConfig.from_env(
        {
            "CACHE_REDIS_URL": "redis://:pw@127.0.0.1:6390/2",
            "CACHE_DEFAULT_TTL": "60",
            "CACHE_ENABLE_EMBEDDINGS": "no",
            "CACHE_ENABLED": "0",
            "CACHE_SOCKET_TIMEOUT": "0.1",
            "CACHE_VECTOR_ALGORITHM": "FLAT",
            "CACHE_EMBEDDER": "offline",
        }
    )
    assert cfg.redis_url == "redis://:pw@127.0.0.1:6390/2"
    assert (cfg.default_ttl, cfg.enable_embeddings, cfg.enabled) == (60, False, False)
    assert cfg.socket_timeout == 0.1 and cfg.vector_algorithm == "FLAT"


@pytest.mark.parametrize(
    ("var", "raw", "match"),
    [
        ("CACHE_DEFAULT_TTL", "soon", "CACHE_DEFAULT_TTL='soon': expected an integer"),
        ("CACHE_DEFAULT_TTL", "-5", "CACHE_DEFAULT_TTL .*must be > 0"),
        ("CACHE_DEFAULT_TTL", "0", "must be > 0"),
        ("CACHE_EMBEDDING_DIMENSIONS", "1.5", "CACHE_EMBEDDING_DIMENSIONS"),
        ("CACHE_EMBEDDING_DIMENSIONS", "100000", "<= 32768"),
        ("CACHE_ENABLED", "maybe", "CACHE_ENABLED='maybe': expected one of true/false"),
        ("CACHE_ENABLE_EMBEDDINGS", "", "CACHE_ENABLE_EMBEDDINGS"),
        ("CACHE_REDIS_URL", "http://x", "must start with redis://"),
        ("CACHE_REDIS_URL", "memcached://x", "CACHE_REDIS_URL"),
        ("CACHE_BATCH_SIZE", "0", "CACHE_BATCH_SIZE"),
        ("CACHE_MAX_TEXT_LENGTH", "ten", "CACHE_MAX_TEXT_LENGTH"),
        ("CACHE_SOCKET_TIMEOUT", "nan", "CACHE_SOCKET_TIMEOUT"),
        ("CACHE_SOCKET_TIMEOUT", "-1", "CACHE_SOCKET_TIMEOUT"),
        ("CACHE_BREAKER_INTERVAL", "inf", "CACHE_BREAKER_INTERVAL"),
        ("CACHE_EMBEDDER", "gpt", "CACHE_EMBEDDER .*must be one of"),
        ("CACHE_CODEC", "marshal", "CACHE_CODEC"),
        ("CACHE_CODEC", "pickle", "needs CACHE_SIGNING_KEY"),
        ("CACHE_VECTOR_ALGORITHM", "IVF", "CACHE_VECTOR_ALGORITHM"),
        ("CACHE_VECTOR_TYPE", "FLOAT64", "CACHE_VECTOR_TYPE"),
        ("CACHE_KEY_PREFIX", "ca*che:", "CACHE_KEY_PREFIX"),
        ("CACHE_INDEX_NAME", "idx cache", "CACHE_INDEX_NAME"),
        ("CACHE_SIGNING_KEY", "short", "at least 16"),
        ("CACHE_KNN_K", "0", "CACHE_KNN_K"),
    ],
)
def test_garbage_values_name_the_variable(var: str, raw: str, match: str) -> None:
    with pytest.raises(ConfigError, match=match):
        CacheConfig.from_env({var: raw})


def test_direct_construction_is_validated() -> None:
    with pytest.raises(ConfigError, match="default_ttl"):
        CacheConfig(default_ttl="60")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="enabled"):
        CacheConfig(enabled=1)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="unknown CacheConfig setting"):
        CacheConfig().replace(nonsense=1)


def test_password_is_masked() -> None:
    assert mask_url("redis://user:secret@h:6379/0") == "redis://user:***@h:6379/0"
    assert mask_url("rediss://:secret@h/0") == "rediss://:***@h/0"
    assert mask_url("redis://h:6379") == "redis://h:6379"
    with pytest.raises(ConfigError) as info:
        CacheConfig(redis_url="http://u:secret@h")
    assert "secret" not in str(info.value)


def test_readme_documents_every_variable() -> None:
    readme = (Path(__file__).resolve().parent.parent / "README.md").read_text()
    table = re.search(r"<!-- config-table -->\n(.*?)<!-- /config-table -->", readme, re.S)
    assert table is not None
    for var, default, meaning in config_table():
        assert f"| {var} | {default} | {meaning} |" in table.group(1), var
