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


def test_examples_exist() -> None:
    assert {p.name for p in EXAMPLES} >= {
        "quickstart.py",
        "llm_manager.py",
        "db_cache.py",
        "langchain_metrics.py",
    }
