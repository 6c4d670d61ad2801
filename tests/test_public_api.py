"""The public surface is small and pinned: changing it must be a conscious decision."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap

import pytest

import pmm_memo


def test_all_is_pinned() -> None:
    assert sorted(pmm_memo.__all__) == sorted(
        [
            "Cache",
            "CacheConfig",
            "CacheInfo",
            "CacheManager",
            "CachedFunction",
            "CodecError",
            "ConfigError",
            "EmbeddingError",
            "IndexSchemaError",
            "PmmMemoError",
            "SearchUnavailableError",
            "UnencodableArgumentError",
            "__version__",
            "allow_type",
            "bypass",
            "cached",
            "configure",
            "default_cache",
            "disabled",
            "refresh",
            "semantic_lookup",
        ]
    )
    for name in pmm_memo.__all__:
        assert getattr(pmm_memo, name) is not None


def test_errors_form_one_tree() -> None:
    for name in (
        "CodecError",
        "ConfigError",
        "EmbeddingError",
        "IndexSchemaError",
        "SearchUnavailableError",
        "UnencodableArgumentError",
    ):
        assert issubclass(getattr(pmm_memo, name), pmm_memo.PmmMemoError)
    assert issubclass(pmm_memo.ConfigError, ValueError)
    assert issubclass(pmm_memo.UnencodableArgumentError, TypeError)


def test_import_does_not_load_optional_clients() -> None:
    """`import pmm_memo` stays light: clients and numpy load when first needed."""
    code = (
        "import sys, pmm_memo; "
        "print(sorted(m for m in ('redis', 'openai', 'torch') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_exact_caching_does_not_load_numpy(backend: str, request: pytest.FixtureRequest) -> None:
    """numpy (~250 ms to import) loads only when a vector is needed, on either backend."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("CACHE_", "OPENAI_"))}
    if backend == "redis":
        env["CACHE_REDIS_URL"] = request.getfixturevalue("redis_url")
    env["CACHE_EMBEDDER"] = "offline"
    env["CACHE_EMBEDDING_DIMENSIONS"] = "64"
    code = textwrap.dedent(
        """
        import asyncio, sys
        from pmm_memo import cached, semantic_lookup

        @cached(tenant="t_numpy")
        def f(a: int, b: str = "x") -> dict[str, object]:
            return {"a": a, "b": [b]}

        @cached(tenant="t_numpy")
        async def af(a: int) -> int:
            return a

        assert f(1) == f(1) == {"a": 1, "b": ["x"]}
        assert asyncio.run(af(2)) == asyncio.run(af(2)) == 2
        f.cache_key(3); f.invalidate(1); f.cache_info(); f.cache_clear()
        print("exact", "numpy" in sys.modules)

        @semantic_lookup(0.9, tenant="t_numpy")
        def ask(q: str) -> str:
            return q.upper()

        assert ask("hello there") == "HELLO THERE"
        print("semantic", "numpy" in sys.modules)
        """
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=120
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["exact", "False", "semantic", "True"]
