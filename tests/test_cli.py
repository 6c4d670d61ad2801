"""The CLI as users and scripts run it: subprocesses against the test server."""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

from pmm_memo import CacheManager
from pmm_memo import cli as cli_module
from tests.conftest import make_cache
from tests.support.openai_server import FakeOpenAI
from tests.support.servers import ValkeyServer


def cli(
    *args: str, url: str | None = None, stdin: str | None = None, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {
        **os.environ,
        "CACHE_EMBEDDER": "offline",
        "CACHE_EMBEDDING_DIMENSIONS": "64",
        **(env or {}),
    }
    full_env.pop("CACHE_REDIS_URL", None)
    if url:
        full_env["CACHE_REDIS_URL"] = url
    # stdin is always a pipe (never the developer's terminal), so "no terminal to ask"
    # behaves the same everywhere.
    return subprocess.run(
        [sys.executable, "-m", "pmm_memo", *args],
        capture_output=True,
        text=True,
        input=stdin or "",
        env=full_env,
        timeout=120,
    )


def as_json(result: subprocess.CompletedProcess[str]) -> Any:
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_health_json_and_exit_codes(server_url: str, plain_url: str) -> None:
    redis_url = server_url
    report = as_json(cli("health", "--json", url=redis_url))
    assert report["redis_connected"] and report["search_available"]
    plain = as_json(cli("health", "--json", url=plain_url))
    assert plain["search_available"] is False
    dead = cli("health", "--json", url="redis://:s3cret@127.0.0.1:1/0")
    assert dead.returncode == 1
    assert json.loads(dead.stdout)["redis_connected"] is False
    assert "s3cret" not in dead.stdout + dead.stderr
    table = cli("health", url=redis_url)
    assert table.returncode == 0 and "redis_connected" in table.stdout


def test_bad_configuration_is_exit_2() -> None:
    result = cli("health", env={"CACHE_DEFAULT_TTL": "soon"})
    assert result.returncode == 2 and "CACHE_DEFAULT_TTL" in result.stderr
    assert cli("nonsense").returncode == 2


def test_stats_search_and_clear(server_url: str) -> None:
    redis_url = server_url
    manager = CacheManager(cache=make_cache("redis", redis_url))
    vec = manager.cache.embedder.embed(["How do I reset my password?"])[0]
    manager.put_cache("pmm_bot", "alice", "q1", "How do I reset my password?", embedding=vec)
    for i in range(30):
        manager.put_cache("pmm_bot", None, f"k{i}", f"text {i}")
    manager.put_cache("pmm_db", None, "x", "keep me")

    stats = as_json(cli("stats", "--json", url=redis_url))
    assert stats["tenants"]["pmm_bot"]["entries"] == 31
    assert stats["tenants"]["pmm_db"]["entries"] == 1
    assert "pmm_bot" in cli("stats", "--tenant", "pmm_bot", url=redis_url).stdout

    hits = as_json(
        cli(
            "search",
            "how do i reset my password",
            "--tenant",
            "pmm_bot",
            "-k",
            "3",
            "--json",
            url=redis_url,
        )
    )
    assert hits[0]["text"] == "How do I reset my password?" and hits[0]["similarity"] > 0.99
    assert (
        as_json(cli("search", "x", "--tenant", "pmm_bot", "--user", "bob", "--json", url=redis_url))
        == []
    )

    refused = cli("clear", "--tenant", "pmm_bot", url=redis_url)  # no terminal, no --yes
    assert refused.returncode == 1 and "--yes" in refused.stderr
    assert manager.count_entries("pmm_bot") == 31
    cleared = as_json(cli("clear", "--tenant", "pmm_bot", "--yes", "--json", url=redis_url))
    assert cleared == {"tenant": "pmm_bot", "removed": 31}
    assert manager.count_entries("pmm_db") == 1


def test_demo_and_bench_on_both_backends(server_url: str) -> None:
    redis_url = server_url
    for url in (None, redis_url):
        demo = as_json(cli("demo", "--json", url=url))
        assert demo["caching_works"] is True
        bench = as_json(cli("bench", "--calls", "200", "--json", url=url))
        assert bench["pmm_memo_median_us"] > 0 and bench["baseline_median_us"] > 0


def test_global_options_before_or_after_the_command(redis_url: str) -> None:
    for argv in (
        ("--json", "health"),
        ("health", "--json"),
        ("--json", "--redis-url", redis_url, "health"),
        ("health", "--redis-url", redis_url, "--json"),
        ("--redis-url", redis_url, "health", "--json"),
    ):
        report = as_json(cli(*argv, url=None if "--redis-url" in argv else redis_url))
        assert report["redis_connected"] is True, argv
    # Given after the sub-command, the option is not lost to the top-level default.
    table = cli("--redis-url", redis_url, "health")
    assert table.returncode == 0 and not table.stdout.lstrip().startswith("{")


def test_stored_text_cannot_steer_the_terminal(redis_url: str) -> None:
    """User names and texts are anyone's input: escape sequences, newlines and bidi
    overrides in them are printed escaped, never sent to the terminal as they are."""
    manager = CacheManager(cache=make_cache("redis", redis_url))
    text = "reset\x1b[2J my password\nFAKE ROW\u202e"
    vec = manager.cache.embedder.embed([text])[0]
    manager.put_cache("pmm_bot", "eve\x1b]0;owned\x07", "q1", text, embedding=vec)
    out = cli("search", text, "--tenant", "pmm_bot", url=redis_url).stdout
    assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
    assert "\\x1b[2J" in out and "FAKE ROW" in out
    assert len(out.strip().splitlines()) == 3  # header, rule, one row: no injected line
    hits = as_json(cli("search", text, "--tenant", "pmm_bot", "--json", url=redis_url))
    assert hits[0]["user"] == "eve\x1b]0;owned\x07"  # JSON keeps the data, escaped


def test_search_with_a_failing_embedder_says_so(redis_url: str, openai_server: FakeOpenAI) -> None:
    """The OpenAI embedder refused (401) or timed out: one line naming the embedder and
    the failure, exit 1; it was a Python traceback."""
    env = {"CACHE_EMBEDDER": "openai", "CACHE_OPENAI_MAX_RETRIES": "0"}
    openai_server.fail_status = 401
    result = cli("search", "a question never embedded", "--tenant", "t", url=redis_url, env=env)
    assert result.returncode == 1
    assert "Traceback" not in result.stderr
    assert "pmm-memo: EmbeddingError: embedder 'openai+cache' failed: AuthenticationError" in (
        result.stderr
    )
    assert "sk-test-not-a-real-key" not in result.stdout + result.stderr


def test_redis_url_option_overrides_a_malformed_environment_value(redis_url: str) -> None:
    """--redis-url "overrides CACHE_REDIS_URL", but the environment's value was checked
    first: a malformed one refused the very URL given to fix it (exit 2)."""
    result = cli("health", "--json", "--redis-url", redis_url, url="localhost:6379")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["redis_connected"] is True
    bad = cli("health", "--redis-url", "localhost:6379", url=redis_url)
    assert bad.returncode == 2 and "has no scheme" in bad.stderr


def test_json_output_is_strict_json() -> None:
    """`--json` is for scripts: a float that is not finite (a similarity against a
    damaged vector) is null, never Python's `NaN`, which `jq` refuses."""
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        payload = [{"similarity": float("nan"), "rate": float("inf"), "n": (1, 2.5)}]
        cli_module._emit(argparse.Namespace(json=True), payload, "")

    def refuse(constant: str) -> Any:
        raise ValueError(f"not JSON: {constant}")

    parsed = json.loads(out.getvalue(), parse_constant=refuse)
    assert parsed == [{"similarity": None, "rate": None, "n": [1, 2.5]}]


def test_a_refused_password_is_not_called_unreachable(tmp_path: Path) -> None:
    """Only a connection that failed is "cannot reach": a server that refused the
    password answered, and the fix is the credentials, not the network."""
    server = ValkeyServer(
        search=False, log_dir=tmp_path, extra_args=("--requirepass", "right-password")
    ).start()
    try:
        for url in (
            f"redis://:wrong-password@127.0.0.1:{server.port}/0",
            f"redis://127.0.0.1:{server.port}/0",  # no password at all
        ):
            result = cli("stats", url=url)
            assert result.returncode == 1
            assert "refused the credentials" in result.stderr, result.stderr
            assert "cannot reach" not in result.stderr and "wrong-password" not in result.stderr
    finally:
        server.stop()
