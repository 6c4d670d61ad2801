"""Semantic-lookup quality on public near-duplicate data (../shared/eval-data).

    python3 benchmarks/quality.py [--embedder offline|local] [--qqp-pairs N]
                                  [--replay-pairs N] [--data DIR]

1. GPTCache mock data (999 paraphrase pairs): store every `origin`, query every
   `similar`; per threshold: right hits, wrong hits, misses (comparable with GPTCache's
   published table, whose threshold is on its own ONNX distance score, not cosine).
   The 0.90 row is also replayed end to end through @semantic_lookup on the embedded
   backend, and must agree with the matrix computation.
2. Quora Question Pairs (80,854 labelled pairs): pair-level precision / recall /
   false-positive rate per threshold, and a cache replay (store every text_a, query
   every text_b: hit rate, right and wrong hits; "right" = the returned question is the
   same text or a labelled duplicate; QQP labels are incomplete, so "wrong" is an upper
   bound).

The data is read from the eval-data folder at run time; none of it is in the package.
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

import pmm_memo
from pmm_memo import Cache, CacheConfig, semantic_lookup
from pmm_memo.embedders import Embedder, OfflineEmbedder

THRESHOLDS = (0.80, 0.85, 0.90, 0.93, 0.95, 0.97, 0.99)
DEFAULT_DATA = Path(__file__).resolve().parent.parent.parent / "shared" / "eval-data"


def make_embedder(name: str) -> Embedder:
    if name == "local":
        from pmm_memo.embedders.local import LocalEmbedder

        return LocalEmbedder()
    return OfflineEmbedder(1536, batch_size=2000)


def embed_unique(embedder: Embedder, texts: list[str]) -> tuple[np.ndarray, dict[str, int]]:
    index: dict[str, int] = {}
    unique: list[str] = []
    for t in texts:
        if t not in index:
            index[t] = len(unique)
            unique.append(t)
    return embedder.embed(unique), index


def top1(
    queries: np.ndarray, stored: np.ndarray, chunk: int = 2048
) -> tuple[np.ndarray, np.ndarray]:
    best = np.empty(len(queries), dtype=np.int64)
    sims = np.empty(len(queries), dtype=np.float32)
    for start in range(0, len(queries), chunk):
        block = queries[start : start + chunk] @ stored.T
        idx = block.argmax(axis=1)
        best[start : start + chunk] = idx
        sims[start : start + chunk] = block[np.arange(len(idx)), idx]
    return best, sims


def mock_data(embedder: Embedder, data_dir: Path) -> None:
    pairs = json.loads((data_dir / "gptcache_mock_data.json").read_text())
    origins = [p["origin"] for p in pairs]
    similars = [p["similar"] for p in pairs]
    o_vecs, o_index = embed_unique(embedder, origins)
    s_vecs = embedder.embed(similars)
    best, sims = top1(s_vecs, o_vecs)
    expected = np.array([o_index[o] for o in origins])
    print(f"\n1. GPTCache mock data: {len(pairs)} pairs, {len(o_index)} distinct origins stored")
    print("   threshold | right hits | wrong hits | misses")
    rows = {}
    for t in THRESHOLDS:
        hit = sims >= t
        right = int((hit & (best == expected)).sum())
        wrong = int((hit & (best != expected)).sum())
        rows[t] = (right, wrong, int((~hit).sum()))
        print(f"   {t:9.2f} | {right:10d} | {wrong:10d} | {rows[t][2]:6d}")
    print(
        "   GPTCache published (ONNX + FAISS, its own score): 0.95 -> 425/25/549, "
        "0.9 -> 804/77/118, 0.8 -> 904/92/3"
    )
    replay = replay_through_decorator(embedder, origins, similars, 0.90)
    print(
        f"   end-to-end @semantic_lookup replay at 0.90: right {replay[0]}, wrong "
        f"{replay[1]}, misses {replay[2]} (matrix: {rows[0.90]})"
    )
    assert replay == rows[0.90], "the decorator disagrees with the matrix computation"


def replay_through_decorator(
    embedder: Embedder, origins: list[str], similars: list[str], threshold: float
) -> tuple[int, int, int]:
    cache = Cache(
        CacheConfig(embedder="offline", memory_max_entries=len(origins) * 2), embedder=embedder
    )
    calls: list[str] = []

    @semantic_lookup(threshold=threshold, tenant="eval", cache=cache, k=1)
    def answer(prompt: str) -> str:
        calls.append(prompt)
        return prompt

    with pmm_memo.refresh():  # store every origin, even one near another origin
        for o in origins:
            answer(o)
    right = wrong = misses = 0
    for o, s in zip(origins, similars, strict=True):
        before = len(calls)
        got = answer(s)
        if len(calls) > before:
            misses += 1
            answer.invalidate(s)  # keep the stored set equal to the origins
        elif got == o:
            right += 1
        else:
            wrong += 1
    return right, wrong, misses


def qqp(
    embedder: Embedder, data_dir: Path, pair_limit: int | None, replay_limit: int, seed: int = 7
) -> None:
    pairs = json.loads((data_dir / "gptcache_similar_qqp_full.json").read_text())
    rng = random.Random(seed)
    if pair_limit is not None and pair_limit < len(pairs):
        pairs = rng.sample(pairs, pair_limit)
    a_vecs, a_index = embed_unique(embedder, [p["text_a"] for p in pairs])
    b_vecs, b_index = embed_unique(embedder, [p["text_b"] for p in pairs])
    labels = np.array([p["label"] for p in pairs], dtype=bool)
    ai = np.array([a_index[p["text_a"]] for p in pairs])
    bi = np.array([b_index[p["text_b"]] for p in pairs])
    sims = np.einsum("ij,ij->i", a_vecs[ai], b_vecs[bi])
    print(
        f"\n2a. Quora pairs, pair level: {len(pairs)} pairs ({labels.sum()} duplicates, "
        f"{(~labels).sum()} non-duplicates)"
    )
    print("   threshold | precision | recall | false-positive rate")
    for t in THRESHOLDS:
        pred = sims >= t
        tp = int((pred & labels).sum())
        fp = int((pred & ~labels).sum())
        precision = tp / (tp + fp) if tp + fp else float("nan")
        print(
            f"   {t:9.2f} | {precision:9.3f} | {tp / labels.sum():6.3f} | "
            f"{fp / (~labels).sum():8.4f}"
        )

    sample = pairs if replay_limit >= len(pairs) else rng.sample(pairs, replay_limit)
    dup: set[tuple[str, str]] = set()
    for p in json.loads((data_dir / "gptcache_similar_qqp_full.json").read_text()):
        if p["label"] == 1:
            dup.add((p["text_a"], p["text_b"]))
            dup.add((p["text_b"], p["text_a"]))
    stored_vecs, stored_index = embed_unique(embedder, [p["text_a"] for p in sample])
    stored_texts = list(stored_index)
    queries = [p["text_b"] for p in sample]
    q_vecs = embedder.embed(queries)
    best, best_sims = top1(q_vecs, stored_vecs)
    print(
        f"\n2b. Quora cache replay: {len(stored_texts)} distinct text_a stored, "
        f"{len(queries)} text_b queried"
    )
    print("   threshold | hit rate | right hits | wrong hits (upper bound)")
    for t in THRESHOLDS:
        hit = best_sims >= t
        right = wrong = 0
        for q, j, h in zip(queries, best, hit, strict=True):
            if not h:
                continue
            found = stored_texts[j]
            if found == q or (found, q) in dup:
                right += 1
            else:
                wrong += 1
        print(f"   {t:9.2f} | {hit.mean():8.3f} | {right:10d} | {wrong:10d}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--embedder", choices=["offline", "local"], default="offline")
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument(
        "--qqp-pairs", type=int, default=None, help="pairs for the pair-level table (default: all)"
    )
    parser.add_argument("--replay-pairs", type=int, default=20000)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    embedder = make_embedder(args.embedder)
    print(f"embedder: {args.embedder} (dim {embedder.dim})")
    mock_data(embedder, args.data)
    qqp(embedder, args.data, args.qqp_pairs, args.replay_pairs)
    print(f"\n(done in {time.perf_counter() - start:.0f}s)")


if __name__ == "__main__":
    main()
