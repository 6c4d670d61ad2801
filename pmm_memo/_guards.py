"""Guards: cheap text checks that veto a semantic candidate the embedding cannot tell apart.

Why: sentence embeddings place "What is 15% of 200?" and "What is 25% of 200?" (or
"iPhone 6" / "iPhone 7", "learn C" / "learn C++", "I like it" / "I don't like it") at
cosine 0.9+, above any threshold that still lets paraphrases hit; no threshold separates
them. A guard compares the query's text with the candidate's stored text and says
whether the candidate may answer the query. Guards only ever turn a hit into a miss.

They run only on candidates already at or above the threshold (never on exact hits or
on misses), in microseconds. Each is measured in benchmarks/quality.py (what it removes,
what right hits it costs); the README has the table.

- `numbers`: the ordered sequences of numbers must be equal. A number is a token with a
  digit ("15", "15%" -> 15, "1,000" -> 1000, "3.10" as written, "7th" -> 7, "i7", "x86",
  "mp3"), or a number word ("two" … "twenty", "thirty" … "ninety", "third" … "twelfth";
  "one"/"first"/"second" are left out: they are rarely numbers in questions).
- `entities`: names must agree. A name is a capitalised word that does not start a
  sentence ("Dubai", "Qatar", "Python", "AWS") or a word with a symbol ("C++", "C#",
  ".NET"); a name written in either text must appear in the other (case-insensitively,
  so "python" and "Python" agree).
- `negation`: both texts negate, or neither does ("not", "no", "never", "n't", "without",
  "none", "nothing", "nobody", "neither", "nor", "cannot").

Names accepted by `semantic_lookup(guards=...)`: a tuple of the above, or `()` for none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from typing import Final

from ._errors import ConfigError

GUARDS: Final = ("numbers", "entities", "negation")
# All three by default: measured in benchmarks/quality.py (README, "Choosing a threshold"),
# they remove every hard negative at the default threshold for ~8% of right hits.
DEFAULT_GUARDS: Final = ("numbers", "entities", "negation")

_TOKEN = re.compile(r"\.?[^\W_]+(?:[.,][0-9]+)*(?:\+\+|#)?|[.!?]", re.UNICODE)
_SENTENCE_END = frozenset(".!?")
_ORDINAL = re.compile(r"^([0-9]+)(?:st|nd|rd|th)$")
_NUMBER = re.compile(r"^[0-9]+(?:[.,][0-9]+)*$")
_THOUSANDS = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$")

_WORDS = (
    "zero _ two three four five six seven eight nine ten eleven twelve thirteen "
    "fourteen fifteen sixteen seventeen eighteen nineteen twenty"
).split()
_NUMBER_WORDS: dict[str, str] = {w: str(i) for i, w in enumerate(_WORDS) if w != "_"}
_NUMBER_WORDS.update(
    {
        w: str(10 * i)
        for i, w in enumerate("_ _ _ thirty forty fifty sixty seventy eighty ninety".split())
        if w != "_"
    }
)
_ORDINAL_WORDS = (
    "_ _ _ third fourth fifth sixth seventh eighth ninth tenth eleventh twelfth".split()
)
_NUMBER_WORDS.update({w: str(i) for i, w in enumerate(_ORDINAL_WORDS) if w != "_"})

_NEGATIONS = frozenset(
    "not no never without none nothing nobody neither nor cannot cant dont doesnt didnt "
    "isnt arent wasnt werent wont wouldnt shouldnt couldnt hasnt havent hadnt".split()
)
_APOSTROPHES = str.maketrans({"'": "", "\u2019": ""})
_POSSESSIVE = re.compile(r"['\u2019]s\b")
_NOT_NAMES = frozenset({"i", "ok", "okay"})  # capitalised in the middle of a sentence


def _tokens(text: str) -> list[str]:
    # "Einstein's" -> "Einstein"; "don't" -> "dont" (one token, a negation).
    return _TOKEN.findall(_POSSESSIVE.sub("", text).translate(_APOSTROPHES))


def _number(token: str) -> str | None:
    low = token.lower()
    if low in _NUMBER_WORDS:
        return _NUMBER_WORDS[low]
    if not any(ch.isdigit() for ch in low):
        return None
    ordinal = _ORDINAL.match(low)
    if ordinal:
        return str(int(ordinal.group(1)))
    if _NUMBER.match(low):
        if _THOUSANDS.match(low):
            low = low.replace(",", "")
        low = low.replace(",", ".")
        # Decimals stay as written: "3.10" and "3.1" are different versions.
        return low if "." in low else str(int(low))
    return low  # a code with digits: "i7", "x86", "mp3", "6s"


def numbers(text: str) -> list[str]:
    """The numbers of `text`, in order, normalised ("1,000" -> "1000", "7th" -> "7")."""
    out = []
    for tok in _tokens(text):
        n = _number(tok)
        if n is not None:
            out.append(n)
    return out


def names(text: str) -> set[str]:
    """Lower-cased names: capitalised words not opening a sentence, words with symbols."""
    out: set[str] = set()
    start = True
    for tok in _tokens(text):
        if tok in _SENTENCE_END:
            start = True
            continue
        symbol = tok.endswith(("++", "#")) or tok.startswith(".")
        capitalised = not start and tok[0].isupper() and tok.lower() not in _NOT_NAMES
        if symbol or capitalised:
            out.add(tok.lower())
        start = False
    return out


def _words(text: str) -> set[str]:
    return {t.lower() for t in _tokens(text)}


def same_numbers(query: str, cached: str) -> bool:
    return numbers(query) == numbers(cached)


def same_entities(query: str, cached: str) -> bool:
    q_words, c_words = _words(query), _words(cached)
    return names(query) <= c_words and names(cached) <= q_words


def same_negation(query: str, cached: str) -> bool:
    return bool(_words(query) & _NEGATIONS) == bool(_words(cached) & _NEGATIONS)


_CHECKS: dict[str, Callable[[str, str], bool]] = {
    "numbers": same_numbers,
    "entities": same_entities,
    "negation": same_negation,
}


class Guards:
    """The guards one decorated function applies, in a fixed order."""

    __slots__ = ("checks", "names")

    def __init__(self, names_: Iterable[str]) -> None:
        self.names = tuple(names_)
        self.checks = tuple(_CHECKS[n] for n in self.names)

    def __bool__(self) -> bool:
        return bool(self.checks)

    def veto(self, query: str, cached: str) -> str | None:
        """The name of the first guard that rejects the pair, or None if all allow it."""
        for name, check in zip(self.names, self.checks, strict=True):
            if not check(query, cached):
                return name
        return None


def parse(value: object) -> Guards:
    """`semantic_lookup(guards=...)` -> Guards; ConfigError (an unknown name) or TypeError
    (not a name or a tuple of names) naming what is wrong."""
    if isinstance(value, str):
        value = (value,)
    if not isinstance(value, tuple | list | frozenset | set):
        raise TypeError(
            f"guards must be a tuple of guard names ({', '.join(GUARDS)}) or (), "
            f"not {type(value).__name__}"
        )
    chosen = []
    for name in value:
        if name not in _CHECKS:
            raise ConfigError(f"unknown guard {name!r}: choose from {', '.join(GUARDS)}")
        if name not in chosen:
            chosen.append(name)
    return Guards(sorted(chosen, key=GUARDS.index))
