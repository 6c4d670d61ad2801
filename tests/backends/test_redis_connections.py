"""Credentials from the URL (password, ACL users), and secrets never in logs."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from pmm_memo import CacheManager, cached
from tests.conftest import make_cache
from tests.support.servers import ValkeyServer

SECRET = "s3cret-pass-9"


@pytest.fixture
def locked_server(tmp_path: Path) -> Iterator[ValkeyServer]:
    server = ValkeyServer(
        search=False, log_dir=tmp_path, extra_args=("--requirepass", SECRET)
    ).start()
    yield server
    server.stop()


def _calls_cached(url: str) -> tuple[int, int]:
    cache = make_cache("redis", url)
    calls: list[int] = []

    @cached(tenant="t", cache=cache)
    def f(x: int) -> int:
        calls.append(x)
        return x

    assert [f(1), f(1), f(2)] == [1, 1, 2]
    return len(calls), f.cache_info().errors


def test_password_in_url(locked_server: ValkeyServer) -> None:
    assert _calls_cached(f"redis://:{SECRET}@127.0.0.1:{locked_server.port}/0") == (2, 0)


def test_acl_user_in_url(locked_server: ValkeyServer) -> None:
    locked_server.client().execute_command(
        "ACL", "SETUSER", "app", "on", ">app-pass-123", "~cache:*", "~pmm_memo:*", "+@all"
    )
    assert _calls_cached(f"redis://app:app-pass-123@127.0.0.1:{locked_server.port}/0") == (2, 0)


def test_wrong_password_fails_open_and_is_never_logged(
    locked_server: ValkeyServer, caplog: pytest.LogCaptureFixture
) -> None:
    url = f"redis://:wrong-{SECRET}@127.0.0.1:{locked_server.port}/0"
    calls, errors = _calls_cached(url)
    assert calls == 3 and errors >= 1  # every call ran the function; nothing broke
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert "unavailable" in text or "failed" in text
    assert SECRET not in text
    report = CacheManager(make_cache("redis", url).config).health_check()
    assert report["healthy"] is False and SECRET not in str(report)


@pytest.mark.parametrize("option", ["decode_responses=True", "decode_responses=yes"])
def test_a_url_shared_with_a_decoding_client_still_caches(redis_url: str, option: str) -> None:
    """`?decode_responses=...` is for the application's own client on the same URL; the
    cache's clients read bytes whatever the URL says (was: every read an error)."""
    import asyncio

    url = f"{redis_url}?{option}"
    assert _calls_cached(url) == (2, 0)
    cache = make_cache("redis", url)

    @cached(tenant="t", cache=cache)
    async def g(x: int) -> bytes:
        return b"\xff" * x

    async def main() -> list[bytes]:
        return [await g(2), await g(2)]

    assert asyncio.run(main()) == [b"\xff\xff"] * 2
    assert (g.cache_info().hits, g.cache_info().errors) == (1, 0)
    cache.close()
