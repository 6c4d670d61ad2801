"""The public surface is small and pinned: changing it must be a conscious decision."""

from __future__ import annotations

import subprocess
import sys

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
