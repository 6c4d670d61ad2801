"""Every example runs, offline, as a user would run it."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

EXAMPLES = sorted((Path(__file__).resolve().parent.parent / "examples").glob("*.py"))


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_example_runs(path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CACHE_", "OPENAI_"))}
    result = subprocess.run(
        [sys.executable, str(path)],
        capture_output=True,
        text=True,
        env=env,
        timeout=120,
        cwd=path.parent.parent,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.strip()
    if path.name == "quickstart.py":  # the demo shows what the README says it shows
        assert "cache_info: hits=2 misses=2 entries=2" in result.stdout, result.stdout
        assert "hits=0 semantic_hits=2 misses=3 entries=3" in result.stdout, result.stdout


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "quickstart.py",
        "llm_manager.py",
        "db_cache.py",
        "langchain_metrics.py",
    }


def test_quickstart_then_llm_manager_on_one_fresh_server(redis_url: str) -> None:
    """Two embedders (offline at 1536 and at 256 dimensions) on one Redis: each gets its
    own index; neither fails on the other's."""
    root = EXAMPLES[0].parent
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CACHE_", "OPENAI_"))}
    env["CACHE_REDIS_URL"] = redis_url
    for name in ("quickstart.py", "llm_manager.py", "quickstart.py"):
        result = subprocess.run(
            [sys.executable, str(root / name)],
            capture_output=True,
            text=True,
            env=env,
            timeout=120,
            cwd=root.parent,
        )
        assert result.returncode == 0, name + result.stdout + result.stderr
        assert "ERROR" not in result.stderr, name + result.stderr
    import redis

    client = redis.Redis.from_url(redis_url)
    names = sorted(n.decode() for n in client.execute_command("FT._LIST"))
    client.close()
    assert len(names) == 2 and all(n.startswith("idx:cache:offline-") for n in names), names
