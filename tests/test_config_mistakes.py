"""Mistakes surface early and say what to do: at configure() time, in the CLI's exit
code, and without noise for commands that do not need what is missing."""

from __future__ import annotations

import pytest

import pmm_memo
from pmm_memo import CacheConfig
from pmm_memo._errors import ConfigError
from tests.test_cli import cli

NO_SCHEME = ("localhost:6379", "127.0.0.1:6379/0", "cache.internal")


@pytest.mark.parametrize("url", NO_SCHEME)
def test_url_without_scheme_is_rejected_at_once_with_the_fix(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_REDIS_URL", url)
    for make in (CacheConfig.from_env, pmm_memo.configure):
        with pytest.raises(ConfigError) as info:
            make()
        assert f"write redis://{url}" in str(info.value)
    result = cli("health", url=url)
    assert result.returncode == 2
    assert f"write redis://{url}" in result.stderr


# Passwords typed without percent-encoding whose character ends the credentials for
# urllib (and so for redis-py): the URL splits inside the password.
SPLIT = (
    "redis://app:Pw#zq91xx@127.0.0.1:6379/0",
    "rediss://app:Pw?zq91xx@127.0.0.1:6380/0",
    "redis://app:Pw/zq91xx@127.0.0.1:6379/0",
    "redis://app:123?zq91xx@127.0.0.1:6379/0",  # parses, with host "app": a wrong server
    "unix://app:Pw#zq91xx@/run/redis.sock",
)


@pytest.mark.parametrize("url", SPLIT)
def test_password_that_splits_the_url_is_rejected_at_once_without_showing_it(
    url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_REDIS_URL", url)
    for make in (CacheConfig.from_env, pmm_memo.configure):
        with pytest.raises(ConfigError, match="percent-encoded") as info:
            make()
        assert "zq91" not in str(info.value)
    result = cli("health", "--json", url=url)
    assert result.returncode == 2
    assert "percent-encoded" in result.stderr
    assert "zq91" not in result.stdout + result.stderr
    encoded = url.replace("#", "%23").replace("?", "%3F").replace("/zq", "%2Fzq")
    assert CacheConfig(redis_url=encoded).redis_url == encoded  # the fix it names works


# URLs redis-py itself refuses, with no password in them: its reason, not the
# percent-encoding advice, and at configuration rather than at every call.
UNPARSABLE = (
    ("redis://127.0.0.1:notaport/0", "notaport"),
    ("redis://127.0.0.1:99999/0", "out of range"),
    ("redis://127.0.0.1:6379/0?socket_timeout=abc", "socket_timeout"),
    ("rediss://u:pw-zq91@127.0.0.1:6380/0?socket_connect_timeout=x", "socket_connect_timeout"),
    ("redis://u:pw-zq91@[::1/0", "Invalid IPv6 URL"),  # urllib's refusal: once a traceback
)


@pytest.mark.parametrize(("url", "reason"), UNPARSABLE)
def test_url_redis_py_cannot_parse_is_rejected_at_once_with_its_reason(
    url: str, reason: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CACHE_REDIS_URL", url)
    for make in (CacheConfig.from_env, pmm_memo.configure):
        with pytest.raises(ConfigError, match=reason) as info:
            make()
        assert "percent-encoded" not in str(info.value)
        assert "zq91" not in str(info.value)
    result = cli("health", "--json", url=url)
    assert result.returncode == 2
    assert reason in result.stderr
    assert "zq91" not in result.stdout + result.stderr


@pytest.mark.parametrize("command", ["health", "stats"])
def test_cli_without_a_url_says_it_cannot_see_an_application_cache(command: str) -> None:
    for args in ((command,), (command, "--json")):
        result = cli(*args, env={"CACHE_EMBEDDER": "auto"})
        assert result.returncode == 0
        assert "cannot see an application's" in result.stderr
        if "--json" in args:
            assert "cannot see an application's" in result.stdout


def test_cli_commands_that_do_not_embed_do_not_warn_about_openai(redis_url: str) -> None:
    env = {"CACHE_EMBEDDER": "auto", "OPENAI_API_KEY": ""}
    for args in (("health",), ("stats",), ("health", "--json")):
        result = cli(*args, url=redis_url, env=env)
        assert result.returncode == 0, result.stderr
        assert "OPENAI_API_KEY" not in result.stderr  # no warning (the table may say why)
