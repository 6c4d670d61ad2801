"""The local MiniLM embedder (extra `local`): ONNX Runtime, hash-checked files, offline."""

from __future__ import annotations

import json
import logging
import shutil
import sys
import threading
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from pmm_memo import Cache, CacheConfig, CacheManager, embedders, semantic_lookup
from pmm_memo._errors import EmbeddingError
from pmm_memo.embedders import choose_embedder, make_embedder
from pmm_memo.embedders import local as local_mod
from pmm_memo.embedders.local import LocalEmbedder

REFERENCE = Path(__file__).parent / "data" / "minilm_torch_reference.json"


@pytest.fixture(scope="module")
def local() -> LocalEmbedder:
    return LocalEmbedder()


@pytest.fixture(scope="module")
def reference() -> tuple[list[str], np.ndarray]:
    doc = json.loads(REFERENCE.read_text())
    return doc["texts"], np.asarray(doc["vectors"], dtype=np.float32)


def test_vectors_match_the_torch_model(
    local: LocalEmbedder, reference: tuple[list[str], np.ndarray]
) -> None:
    """Same model as sentence-transformers computed before the move off torch (int8
    weights: close, not bit-identical), and the same similarity structure."""
    texts, ref = reference
    got = local.embed(texts)
    assert got.shape == ref.shape == (len(texts), 384)
    cosines = np.einsum("ij,ij->i", got, ref)
    worst = int(cosines.argmin())
    assert cosines.min() > 0.995, (texts[worst][:60], float(cosines.min()))
    assert cosines.mean() > 0.999
    # Pairwise similarities (what a threshold is compared with) agree closely too.
    assert np.abs(got @ got.T - ref @ ref.T).max() < 0.02


def test_paraphrases_match_and_dimension_follows_model(local: LocalEmbedder) -> None:
    assert local.dim == 384
    v = local.embed(
        [
            "How do I reset my password?",
            "I forgot my password, how can I change it?",
            "What is the capital of France?",
        ]
    )
    assert float(v[0] @ v[1]) > 0.8  # different words, same meaning
    assert float(v[0] @ v[2]) < 0.3


def test_a_text_embeds_the_same_alone_or_in_any_batch(
    local: LocalEmbedder, reference: tuple[list[str], np.ndarray]
) -> None:
    """Padding and batch neighbours never change a text's vector (a cache needs one
    vector per text)."""
    texts = reference[0]
    together = local.embed(texts)
    alone = np.vstack([local.embed([t]) for t in texts])
    reversed_ = local.embed(texts[::-1])[::-1]
    np.testing.assert_allclose(together, alone, atol=1e-5)
    np.testing.assert_allclose(together, reversed_, atol=1e-5)


def test_threads_share_one_embedder(local: LocalEmbedder) -> None:
    texts = [f"question number {i} about topic {i % 7}" for i in range(40)]
    expected = local.embed(texts)
    results: dict[int, np.ndarray] = {}

    def work(i: int) -> None:
        results[i] = local.embed([texts[i]])[0]

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(texts))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    np.testing.assert_allclose(
        np.vstack([results[i] for i in range(len(texts))]), expected, atol=1e-5
    )


def test_async_twin(local: LocalEmbedder) -> None:
    import asyncio

    texts = ["one", "two words", "three words here"]
    np.testing.assert_allclose(asyncio.run(local.aembed(texts)), local.embed(texts), atol=1e-6)


def test_a_model_file_with_another_hash_is_refused_before_loading(tmp_path: Path) -> None:
    original = local_mod.model_file()
    tampered = tmp_path / "model.onnx"
    shutil.copyfile(original, tampered)
    with tampered.open("r+b") as fh:  # flip one byte in the middle of the weights
        fh.seek(tampered.stat().st_size // 2)
        byte = fh.read(1)
        fh.seek(-1, 1)
        fh.write(bytes([byte[0] ^ 0xFF]))
    with pytest.raises(EmbeddingError, match=r"sha256 .* refusing to load"):
        LocalEmbedder(model_path=tampered)
    truncated = tmp_path / "short.onnx"
    truncated.write_bytes(original.read_bytes()[:1000])
    with pytest.raises(EmbeddingError, match="refusing to load"):
        LocalEmbedder(model_path=truncated)
    with pytest.raises(EmbeddingError, match="cannot read"):
        LocalEmbedder(model_path=tmp_path / "missing.onnx")


def test_files_come_from_installed_packages_not_the_network() -> None:
    assert local_mod.installed()
    assert local_mod.tokenizer_file().is_file()
    assert (
        local_mod.verified(local_mod.model_file(), local_mod.MODEL_SHA256, "model")
        == local_mod.model_file()
    )
    assert "torch" not in sys.modules  # nothing on this path imports torch


def _ask_three(cache: Cache) -> list[Any]:
    calls: list[Any] = []

    @semantic_lookup(threshold=0.8, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        calls.append(prompt)
        return "Use the reset link on the login page."

    ask("How do I reset my password?")
    ask("I forgot my password, how can I change it?")
    ask("What is the capital of France?")
    return calls


@pytest.mark.parametrize("backend", ["memory", "redis"])
def test_semantic_lookup_with_local_model(
    local: LocalEmbedder, backend: str, request: pytest.FixtureRequest
) -> None:
    url = request.getfixturevalue("redis_url") if backend == "redis" else None
    cache = Cache(CacheConfig(embedder="local", redis_url=url), embedder=local)
    assert len(_ask_three(cache)) == 2
    assert cache.dimensions == 384


def test_auto_prefers_openai_then_local_then_offline(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-test-not-a-real-key")
    assert choose_embedder(CacheConfig())[0] == "openai"
    monkeypatch.delenv("OPENAI_API_KEY")
    assert choose_embedder(CacheConfig()) == (
        "local",
        "auto: no OPENAI_API_KEY; the `local` extra is installed",
    )
    assert choose_embedder(CacheConfig(embedder="offline")) == ("offline", "CACHE_EMBEDDER")
    monkeypatch.setattr(local_mod, "installed", lambda: False)
    assert choose_embedder(CacheConfig())[0] == "offline"
    monkeypatch.undo()
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    monkeypatch.setattr(embedders, "_announced", set())
    with caplog.at_level(logging.INFO, logger="pmm_memo"):
        caplog.clear()
        assert make_embedder(CacheConfig()).name == "local"
        assert make_embedder(CacheConfig()).name == "local"
    said = [r.getMessage() for r in caplog.records if r.getMessage().startswith("embedder:")]
    assert said == ["embedder: local (auto: no OPENAI_API_KEY; the `local` extra is installed)"]


def test_health_shows_the_choice(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    report = CacheManager(CacheConfig()).health_check()
    assert report["embedder"] == "local"
    assert report["embedder_choice"] == "auto: no OPENAI_API_KEY; the `local` extra is installed"
    report = CacheManager(CacheConfig(embedder="offline", embedding_dimensions=64)).health_check()
    assert (report["embedder"], report["embedder_choice"]) == ("offline", "CACHE_EMBEDDER")
