"""Secrets stay secret: no password, signing key or hash secret, in any form a user can
write it, appears in a repr, a log line, an exception, CLI output (`--json` too),
`health_check()` or a stored entry. Everything this module's runs log and print is
collected and searched for every secret used."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import pytest

from pmm_memo import Cache, CacheConfig, CacheManager, cached, semantic_lookup
from pmm_memo._errors import ConfigError
from tests.support.servers import ValkeyServer
from tests.test_cli import cli

PASSWORD = "pw-Secr3t/@:x"  # characters that must be percent-encoded in a URL
SIGNING_KEY = "signing-key-0123456789-secret"
HASH_SECRET = "hash-secret-9876543210"
SECRETS = (PASSWORD, quote(PASSWORD, safe=""), SIGNING_KEY, HASH_SECRET)


@pytest.fixture
def locked(tmp_path: Path) -> Iterator[ValkeyServer]:
    server = ValkeyServer(
        search=False, log_dir=tmp_path, extra_args=("--requirepass", PASSWORD)
    ).start()
    yield server
    server.stop()


def _urls(server: ValkeyServer) -> list[str]:
    enc = quote(PASSWORD, safe="")
    base = f"127.0.0.1:{server.port}/0"
    return [
        f"redis://:{enc}@{base}",
        f"redis://default:{enc}@{base}",
        f"redis://{base}?password={enc}",
    ]


def _assert_clean(text: str) -> None:
    for secret in SECRETS:
        assert secret not in text, f"secret {secret!r} leaked"


def test_no_secret_anywhere(
    locked: ValkeyServer, caplog: pytest.LogCaptureFixture, capsys: pytest.CaptureFixture[str]
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for url in _urls(locked):
        settings = {
            "redis_url": url,
            "codec": "pickle",
            "signing_key": SIGNING_KEY,
            "hash_secret": HASH_SECRET,
            "embedder": "offline",
            "embedding_dimensions": 32,
        }
        config = CacheConfig(**settings)
        seen += [repr(config), str(config), f"{config}", repr([config])]
        cache = Cache(config)
        try:

            @cached(tenant="secrets", cache=cache)
            def f(x: int) -> dict[str, int]:
                return {"x": x}

            @semantic_lookup(0.9, tenant="secrets", cache=cache)
            def ask(prompt: str) -> str:
                return prompt.upper()

            assert f(1) == f(1) == {"x": 1}
            assert ask("what is the signing policy") == "WHAT IS THE SIGNING POLICY"
            assert f.cache_info().errors == 0  # the password really was used
            manager = CacheManager(config)
            seen += [repr(manager.health_check()), repr(manager.get_cache_stats())]
            manager.close()
            # Stored entries: every field of every key the cache wrote.
            client = locked.client()
            for key in client.scan_iter(match="*"):
                seen.append(repr(key))
                if client.type(key) == b"hash":
                    seen.append(repr(client.hgetall(key)))
        finally:
            cache.close()
        # Wrong password: the failure is logged and reported, never with the secret.
        wrong = url.replace(quote(PASSWORD, safe=""), quote(PASSWORD + "-wrong", safe=""))
        bad = Cache(CacheConfig(**{**settings, "redis_url": wrong}))
        try:

            @cached(tenant="secrets", cache=bad)
            def g(x: int) -> int:
                return x

            assert g(1) == 1 and g.cache_info().errors >= 1
            seen.append(repr(CacheManager(bad.config).health_check()))
        finally:
            bad.close()
        # The CLI, as tables and as JSON, healthy and not.
        for target in (url, wrong):
            for args in (("health",), ("health", "--json"), ("stats", "--json")):
                result = cli(*args, url=target, env={"CACHE_HASH_SECRET": HASH_SECRET})
                seen += [result.stdout, result.stderr]
    # Exceptions: bad values of every secret-bearing setting.
    for bad_settings in (
        {"redis_url": f"127.0.0.1:{locked.port}?password={PASSWORD}"},
        {"redis_url": f":{PASSWORD}@127.0.0.1"},
        {"redis_url": PASSWORD.encode()},
        {"signing_key": PASSWORD.encode()},
        {"hash_secret": 12345, "redis_url": f"redis://:{PASSWORD}@h"},
        {"codec": "pickle", "signing_key": None, "redis_url": f"mysql://:{PASSWORD}@h"},
    ):
        with pytest.raises(ConfigError) as info:
            CacheConfig(**bad_settings)  # type: ignore[arg-type]
        seen.append(str(info.value))
    captured = capsys.readouterr()
    seen += [captured.out, captured.err]
    seen += [r.getMessage() for r in caplog.records]
    seen += [str(r.exc_info) for r in caplog.records if r.exc_info]
    _assert_clean("\n".join(seen))


def test_other_secrets_redis_py_reads_from_the_query_are_masked() -> None:
    """redis-py passes every query key on to the connection: `ssl_password` (the TLS
    key's passphrase) was shown as typed in the health report, the CLI and errors."""
    from pmm_memo._config import mask_url

    for url in (
        f"rediss://127.0.0.1:6380/0?ssl_keyfile=/k.pem&ssl_password={HASH_SECRET}",
        f"rediss://127.0.0.1:6380/0?SSL_PASSWORD={HASH_SECRET}&ssl_cert_reqs=none",
        f"redis://127.0.0.1:6379/0?auth_token={HASH_SECRET}",
        f"redis://127.0.0.1:6379/0?client_secret={HASH_SECRET}#frag",
    ):
        masked = mask_url(url)
        _assert_clean(masked)
        assert "127.0.0.1" in masked and "=***" in masked
        config = CacheConfig(redis_url=url.partition("#")[0])
        _assert_clean(repr(config))
        _assert_clean(str(config.masked_redis_url))
    assert mask_url("redis://h:1/0?socket_timeout=5") == "redis://h:1/0?socket_timeout=5"
    _assert_clean(mask_url(f"127.0.0.1:6379/0?auth_token={HASH_SECRET}"))  # no scheme
