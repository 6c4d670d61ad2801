"""A deterministic, offline, lexical embedder: the default when no OpenAI key is set.

Honest scope: it measures *wording* overlap, not meaning. "How do I reset my password?"
and "how do i reset my password" score ~1.0; a typo, a dropped word or swapped word order
still score high; a paraphrase with different words scores low, and two sentences that
share many words but differ in one crucial word ("not") can score high. Use OpenAI or
the local MiniLM model for semantic similarity.

Method: feature hashing (the "hashing trick"). Features are lower-cased words (minus a
short stop-word list, at reduced weight) with the character trigrams of each word (which
make typos and inflections overlap), numbers, and symbols. Each feature is hashed with
XXH3 into one of `dim` buckets with a hash-derived sign; counts are dampened (sqrt) and
the vector normalised. No model, no download, no randomness: the same text gives the same
vector everywhere.

What is kept because it carries meaning (a text that differs only there must not get the
same vector): numbers as whole tokens with their sign, currency and percent ("-5",
"$100", "5%", "3.14"; no trigrams, so 100 and 1000 do not overlap), a word's `++`/`#`
suffix ("C++", "C#") and leading dot (".NET"), operators and math/currency/other
symbols ("+", "<=", "!=", "€", "≠", "🍕"). What is dropped: sentence punctuation
(. , ; : ! ? quotes, brackets) and the hyphen inside a hyphenated word, which change how
a text reads, not what it asks.
"""

from __future__ import annotations

import re
import unicodedata

import numpy as np
import xxhash

from ._base import BaseEmbedder

_CURRENCY = "$€£¥₹₽¢₩₪₫₺₴₦₱฿₿"
_MINUS = "\u2212"  # MINUS SIGN, read as "-"
_TOKEN = re.compile(
    # A number, with its sign when the sign is not a binary minus ("x -5", not "x-5").
    rf"(?P<num>(?<![\w.])[-+±\u2212]?[{_CURRENCY}]?\d+(?:[.,]\d+)*(?:[%‰{_CURRENCY}](?!\w))?)"
    r"|(?P<word>(?<![\w.])\.(?=[^\W\d])\w+|\w+(?:\+\+|#(?!\w))?)"  # .net, c++, c#, f#
    r"|(?P<op>!=|==|<=|>=|->|=>|\*\*|&&|\|\||<<|>>|//|\S)",
    re.UNICODE,
)
# Characters in category P* (punctuation) that are operators in most texts.
_OPERATOR_PUNCT = frozenset("%&*/#@-\\")
_STOP = frozenset(
    "a an the of to in on at for by with and or is are was were be been it its this that "
    "do does did i you he she we they my your our their me us what how why when where "
    "which who can could would should will".split()
)
_WORD_WEIGHT = 1.0
_STOP_WEIGHT = 0.25
_TRIGRAM_WEIGHT = 0.4
_NUMBER_WEIGHT = 2.0  # a different number is a different question
_SYMBOL_WEIGHT = 1.0
_SEED = 0x706D6D  # fixed forever: changing it changes every stored offline vector


def _meaningful_op(op: str, text: str, start: int, end: int) -> bool:
    """Is this non-word token a symbol that carries meaning (not plain punctuation)?"""
    if len(op) > 1:
        return True  # one of the listed multi-character operators
    if op == "-" and start > 0 and end < len(text) and text[start - 1].isalpha():
        return not text[end].isalpha()  # the hyphen of "e-mail" is spelling
    return op in _OPERATOR_PUNCT or unicodedata.category(op)[0] == "S"


def tokens(text: str) -> list[tuple[str, str]]:
    """(kind, token) pairs: kind is "w" (word), "n" (number) or "s" (symbol)."""
    low = text.lower()
    out: list[tuple[str, str]] = []
    for m in _TOKEN.finditer(low):
        kind = m.lastgroup
        tok = m.group()
        if kind == "num":
            out.append(("n", tok.replace(_MINUS, "-")))
        elif kind == "word":
            out.append(("w", tok))
        elif _meaningful_op(tok, low, m.start(), m.end()):
            out.append(("s", tok.replace(_MINUS, "-")))
    return out


class OfflineEmbedder(BaseEmbedder):
    name = "offline"
    # The feature set's version: vectors of another version are another space (see
    # embedder identity in `pmm_memo._embedder_id`).
    model = "hash-v2"

    def __init__(self, dim: int = 1536, batch_size: int = 1000) -> None:
        super().__init__(dim, batch_size)
        self._hash = xxhash.xxh3_64_intdigest

    def _features(self, text: str) -> dict[int, float]:
        feats: dict[int, float] = {}
        h = self._hash

        def add(feature: str, weight: float) -> None:
            key = h(feature.encode("utf-8", "surrogatepass"), _SEED)
            feats[key] = feats.get(key, 0.0) + weight

        toks = tokens(text)
        if not toks:
            toks = [("w", text.strip().lower() or "<empty>")]
        for kind, tok in toks:
            if kind == "n":
                add("n:" + tok, _NUMBER_WEIGHT)
                continue
            if kind == "s":
                add("s:" + tok, _SYMBOL_WEIGHT)
                continue
            if tok in _STOP:
                add("w:" + tok, _STOP_WEIGHT)
                continue
            add("w:" + tok, _WORD_WEIGHT)
            padded = f"<{tok}>"
            for i in range(len(padded) - 2):
                add("c:" + padded[i : i + 3], _TRIGRAM_WEIGHT)
        return feats

    def _embed_batch(self, texts: list[str]) -> np.ndarray:
        dim = self.dim
        rows: list[int] = []
        cols: list[int] = []
        vals: list[float] = []
        for r, text in enumerate(texts):
            for key, count in self._features(text).items():
                rows.append(r)
                cols.append(key % dim)
                # Top hash bit is the sign: collisions cancel on average instead of adding.
                vals.append(count**0.5 * (1.0 if key >> 63 else -1.0))
        flat = np.asarray(rows, dtype=np.int64) * dim + np.asarray(cols, dtype=np.int64)
        out = np.bincount(
            flat, weights=np.asarray(vals, dtype=np.float64), minlength=len(texts) * dim
        ).reshape(len(texts), dim)
        # Features can cancel (two hashed into one bucket with opposite signs): give such
        # a text one bucket of its own instead of an all-zero vector.
        for r in np.flatnonzero(~out.any(axis=1)).tolist():
            bucket = self._hash(texts[r].encode("utf-8", "surrogatepass"), _SEED + 1) % dim
            out[r, bucket] = 1.0
        return out.astype(np.float32)

    async def _aembed_batch(self, texts: list[str]) -> object:
        # Microseconds per text: a thread hop would cost more than it saves.
        return self._embed_batch(texts)
