"""What a semantic lookup compares, so that the whole text decides a match.

Pure and I/O-free. A call's text becomes a `SemanticText`:

- normalised (`normalise`): Unicode NFC, line endings as "\\n", leading and trailing
  whitespace removed. Nothing else: case ("US"/"us"), inner whitespace (indentation is
  syntax in code) and compatibility forms (NFKC would turn "x²" into "x2") can carry
  meaning, so they are kept. `threshold=1.0` means "the same text after this
  normalisation", decided by `digest`, never by a float cosine;
- the *window* is what is embedded and stored in the entry's `text`: the whole
  normalised text when it has at most CACHE_MAX_TEXT_LENGTH (L) characters, else its
  tail (questions sit at the end of long prompts) of at most L characters. The tail
  starts at a content-defined cut (`_cut`): the first position at or after len - L where
  a hash of the 16 characters before it hits 1 in L/8. A cut that depends only on nearby
  content, not on the text's length, keeps two prompts with the same document and
  questions of different lengths on the same cut, so their rests can be equal;
- `rest` is a digest of the normalised text before the window. It goes into the scope
  digest, so two texts that differ outside the window never meet in a search: the part
  that was not embedded decides the match exactly.
- Empty or whitespace-only text has no `SemanticText` (None): it is never embedded,
  never stored with a vector, and never matches anything semantically.

Slicing is by code point, so a window never splits a character; a text holding lone
surrogates (which Python allows) is digested with `surrogatepass`, like keys.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from dataclasses import dataclass
from functools import lru_cache

_TEXT_KEY = b"pmm_memo/text/v1"


def normalise(text: str) -> str:
    """The form two texts are compared in (see the module docstring)."""
    text = unicodedata.normalize("NFC", text)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    return text.strip()


def text_digest(text: str) -> str:
    """32-hex digest of an (already normalised) text or text part."""
    data = text.encode("utf-8", "surrogatepass")
    return hashlib.blake2b(data, digest_size=16, key=_TEXT_KEY).hexdigest()


@dataclass(frozen=True, slots=True)
class SemanticText:
    window: str  # what is embedded and stored; at most max_chars characters
    digest: str  # digest of the whole normalised text
    rest: str | None  # digest of the normalised text before the window; None: no rest

    def scope_suffix(self) -> bytes:
        """What this text adds to the scope material (the part that was not embedded)."""
        return b"" if self.rest is None else b"|rest|" + self.rest.encode()


# A text asked again (a popular question, a retry, each call that reads ahead) is
# prepared once: normalising and digesting it were most of a lookup's work before its
# query. A pure function of (text, max_chars) with an immutable result, so a kept one is
# exactly what preparing it again would give. Texts over PREPARED_MAX_CHARS characters
# are not kept (a few long prompts would hold more memory than the work is worth), nor
# str subclasses: a kept one is found by the text's equality, which a subclass may define
# otherwise (case-folded, say), and would then be given another text's digest.
PREPARED_KEPT = 256
PREPARED_MAX_CHARS = 10_000


def prepare(text: str, max_chars: int) -> SemanticText | None:
    """The SemanticText of `text`, or None when it is empty after normalisation."""
    if type(text) is str and len(text) <= PREPARED_MAX_CHARS:
        return _prepare_kept(text, max_chars)
    return _prepare(text, max_chars)


def _prepare(text: str, max_chars: int) -> SemanticText | None:
    norm = normalise(text)
    if not norm:
        return None
    if len(norm) <= max_chars:
        return SemanticText(norm, text_digest(norm), None)
    cut = _cut(norm, max_chars)
    return SemanticText(norm[cut:], text_digest(norm), text_digest(norm[:cut]))


_prepare_kept = lru_cache(maxsize=PREPARED_KEPT)(_prepare)


_CONTEXT = 16  # characters before a position that decide whether it is a cut
_BASE = 257
_MOD = (1 << 31) - 1
_DROP = pow(_BASE, _CONTEXT, _MOD)


def _cut(norm: str, max_chars: int) -> int:
    """Where the window starts in a text longer than `max_chars` (see module docstring).

    A position p in [len - L, len - L/2] is a cut when a rolling hash of the 16
    characters before it is 0 modulo L/8 (else L/64, else 2, for texts so repetitive
    that no position qualifies); the first one wins. Failing all, the window is the last
    L characters. Expected cost: ~L/8 + 16 steps of integer arithmetic.
    """
    start = len(norm) - max_chars
    last = len(norm) - max(1, max_chars // 2)  # the window keeps at least half of L
    lo = max(0, start - _CONTEXT)
    primary = max(2, max_chars // 8)
    h = 0
    hashes: list[int] = []
    for i in range(lo, last):
        h = (h * _BASE + ord(norm[i])) % _MOD
        if i - _CONTEXT >= lo:
            h = (h - ord(norm[i - _CONTEXT]) * _DROP) % _MOD
        if i + 1 >= start:  # h is the hash of norm[i+1-16 : i+1]: it decides position i+1
            if h % primary == 0:
                return i + 1
            hashes.append(h)
    for spacing in (max_chars // 64, 2):
        if spacing >= 2:
            for offset, value in enumerate(hashes):
                if value % spacing == 0:
                    return start + offset
    return start


# A sentence or line ends after . ! ? (and their full-width forms) followed by
# whitespace, or at a line break.
_BOUNDARY = re.compile("(?<=[.!?\u3002\uff01\uff1f])\\s+|\n+")


def changed_spans(query: str, stored: str) -> tuple[str, str] | None:
    """The sentences in which two windows differ, when they share the rest.

    A long shared context (a document followed by a question) makes any embedding of
    the whole window similar, whatever the question: the part that differs must be
    similar on its own. Returns (query part, stored part), each widened to whole
    sentences/lines, or None when there is nothing more to compare: the texts are
    equal, or the differing sentences are the whole of both texts (the whole-window
    similarity already judged them).
    """
    if query == stored:
        return None
    n = min(len(query), len(stored))
    p = _shared(query, stored, n, False)
    s = _shared(query, stored, n - p, True)
    start = 0
    for m in _BOUNDARY.finditer(query, 0, p):
        start = m.end()
    # The sentence end after the change, measured from the end (the suffix is shared).
    tail = 0
    for m in _BOUNDARY.finditer(query, len(query) - s):
        tail = len(query) - m.start()
        break
    if start == 0 and tail == 0:
        return None
    return query[start : len(query) - tail], stored[start : len(stored) - tail]


def _shared(a: str, b: str, limit: int, from_end: bool) -> int:
    """How many characters (at most `limit`) `a` and `b` share at their start (or end).

    By halving, each step one slice comparison done in C: a window with a long shared
    document before its question was compared a character per Python step."""
    la, lb = len(a), len(b)
    lo, hi = 0, limit  # lo characters are known shared; no more than hi are
    while lo < hi:
        mid = (lo + hi + 1) // 2
        same = (
            a[la - mid : la - lo] == b[lb - mid : lb - lo] if from_end else a[lo:mid] == b[lo:mid]
        )
        if same:
            lo = mid
        else:
            hi = mid - 1
    return lo
