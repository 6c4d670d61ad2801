"""Guards: cheap text checks that veto a semantic candidate the embedding cannot tell apart.

Why: sentence embeddings place "What is 15% of 200?" and "What is 25% of 200?" (or
"iPhone 6" / "iPhone 7", "learn C" / "learn C++", "I like it" / "I don't like it",
"5 miles" / "5 km", "gain weight" / "lose weight", "from Paris to London" / "from London
to Paris") at cosine 0.9+, above any threshold that still lets paraphrases hit; no
threshold separates them. A guard compares the query's text with the candidate's stored
text and says whether the candidate may answer the query. Guards only ever turn a hit
into a miss.

They run only on candidates already at or above the threshold (never on exact hits or
on misses), in microseconds. Each is measured in benchmarks/quality.py (what it removes,
what right hits it costs); the README has the table.

- `numbers`: the ordered sequences of numbers must be equal. A number is a token with a
  digit ("15", "15%" -> 15, "1,000" -> 1000, "3.10" as written, "7th" -> 7, "10k" ->
  10000, "i7", "x86", "mp3"), or a number word ("two" … "twenty", "thirty" … "ninety",
  "third" … "twelfth", decades "twenties" … "nineties" -> "20s" … "90s", as written "50s"
  ("50's" too: a decade, not 50);
  "one"/"first"/"second" are left out: they are rarely numbers in questions). A
  magnitude word multiplies the number before it ("3 million" -> 3000000, "two
  thousand" -> 2000, "a billion" -> 1000000000) and stands for itself alone ("millions
  of" -> "million").
- `entities`: names must agree. A name is a capitalised word that does not start a
  sentence ("Dubai", "Qatar", "Python", "AWS") or a word with a symbol ("C++", "C#",
  ".NET"); a name written in either text must appear in the other (case-insensitively,
  so "python" and "Python" agree). Order is the `roles` guard's job.
- `negation`: both texts negate, or neither does ("not", "no", "never", "n't", "without",
  "none", "nothing", "nobody", "neither", "nor", "cannot").
- `units`: each text names a unit of measure or currency the other does not ("miles" /
  "km", "Celsius" / "Fahrenheit", "hours" / "minutes", "$" / "€"; `_lexicon.UNITS`).
  One text naming units and the other none is allowed ("How long is a marathon?").
- `opposites`: each text holds one side of an opposite pair and not the other
  ("older" / "newer", "increase" / "decrease", "before" / "after", "max" / "min", "gain" /
  "lose", "men" / "women"; `_lexicon.OPPOSITES`).
- `roles`: two shared words trade roles or places (`_roles`: "from Paris to London" /
  "from London to Paris", "India attacks Pakistan" / "Pakistan attacks India").
  "A better than B" and "B worse than A" pass both `roles` and `opposites`: a swap
  around "than" and a flipped opposite cancel out.

Names accepted by `semantic_lookup(guards=...)`: a tuple of the above, or `()` for none.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import Final

from . import _roles
from ._errors import ConfigError
from ._lexicon import CURRENCY_SIGNS, MAGNITUDES, OPPOSITES, UNITS

GUARDS: Final = ("numbers", "entities", "negation", "units", "opposites", "roles")
# All of them by default: measured in benchmarks/quality.py (README, "Choosing a
# threshold"): what each removes and what right hits it costs.
DEFAULT_GUARDS: Final = GUARDS

# A leading "." only after a space or the start (".NET"), never "girlfriend.What".
_TOKEN = re.compile(r"(?:(?<!\w)\.)?[^\W_]+(?:[.,][0-9]+)*(?:\+\+|#)?|[.!?,&:]", re.UNICODE)
_SENTENCE_END = frozenset(".!?:")  # "India: What are ..." starts again after the colon
_ORDINAL = re.compile(r"^([0-9]+)(?:st|nd|rd|th)$")
_NUMBER = re.compile(r"^[0-9]+(?:[.,][0-9]+)*$")
_THOUSANDS = re.compile(r"^[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?$")
_KILO = re.compile(r"^([0-9]+(?:\.[0-9]+)?)k$")
_WITH_UNIT = re.compile(r"^[0-9]+(?:[.,][0-9]+)*([a-z]+)$")
_DEGREES = re.compile(r"°\s*([cf])\b", re.IGNORECASE)

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
# Decades: "in his fifties" is "in his 50s", not "in his forties".
_DECADES = "_ _ twenties thirties forties fifties sixties seventies eighties nineties".split()
_NUMBER_WORDS.update({w: f"{10 * i}s" for i, w in enumerate(_DECADES) if w != "_"})

_NEGATIONS = frozenset(
    "not no non never without none nothing nobody neither nor cannot cant dont doesnt didnt "
    "isnt arent wasnt werent wont wouldnt shouldnt couldnt hasnt havent hadnt".split()
)
_APOSTROPHES = str.maketrans({"'": "", "\u2019": ""})
_POSSESSIVE = re.compile(r"['\u2019]s\b")
# A decade with an apostrophe ("1990's", "her 40's") is the decade "1990s"/"40s", never
# the year 1990 or the age 40; other numbers' "'s" are possessives ("Note 3's camera").
_DECADE_APOSTROPHE = re.compile(r"\b([0-9]0|[0-9]{3}0)['\u2019]s\b")
_NOT_NAMES = frozenset({"i", "ok", "okay"})  # capitalised in the middle of a sentence


@lru_cache(maxsize=256)  # a query is checked against up to k candidates: tokenise once
def _tokens_cached(text: str) -> tuple[str, ...]:
    # "Einstein's" -> "Einstein"; "don't" -> "dont" (one token, a negation); "100°C" ->
    # "100 celsius" (a unit, not a name "C").
    text = _POSSESSIVE.sub("", _DECADE_APOSTROPHE.sub(r"\1s", text))
    text = _DEGREES.sub(_degrees, text.translate(_APOSTROPHES))
    return tuple(_TOKEN.findall(text))


def _degrees(match: re.Match[str]) -> str:
    return " celsius" if match.group(1).lower() == "c" else " fahrenheit"


def _number(token: str) -> str | None:
    low = token.lower()
    if low in _NUMBER_WORDS:
        return _NUMBER_WORDS[low]
    if low.isalpha() or not any(ch.isdigit() for ch in low):
        return None  # isalpha(): most tokens, a word, told apart at C speed
    ordinal = _ORDINAL.match(low)
    if ordinal:
        return str(int(ordinal.group(1)))
    kilo = _KILO.match(low)
    if kilo:
        return _scaled(kilo.group(1), 1000)
    if _NUMBER.match(low):
        if _THOUSANDS.match(low):
            low = low.replace(",", "")
        low = low.replace(",", ".")
        # Decimals stay as written: "3.10" and "3.1" are different versions.
        return low if "." in low else str(int(low))
    return low  # a code with digits: "i7", "x86", "mp3", "6s"


def _scaled(number: str, factor: int) -> str | None:
    """`number` times `factor` as an integer string ("1.5", 10**6 -> "1500000"), or None
    when `number` is not a plain decimal (a version "3.1.2", a code)."""
    try:
        value = Decimal(number) * factor
    except InvalidOperation:
        return None
    return str(int(value)) if value == value.to_integral_value() else str(value.normalize())


def numbers(text: str) -> list[str]:
    """The numbers of `text`, in order, normalised ("1,000" -> "1000", "7th" -> "7",
    "3 million" -> "3000000")."""
    out: list[str] = []
    prev_number = False  # was the previous token a plain number (can be scaled)?
    prev_low = ""
    for tok in _tokens_cached(text):
        low = tok.lower()
        factor = MAGNITUDES.get(low)
        if factor is not None:
            scaled = _scaled(out[-1], factor) if prev_number else None
            if scaled is not None:
                out[-1] = scaled
            elif prev_low in ("a", "one"):
                out.append(str(factor))
            else:
                out.append(low.rstrip("s"))  # "millions of" -> "million"
            prev_number, prev_low = False, low
            continue
        n = _number(tok)
        if n is not None:
            out.append(n)
        prev_number = n is not None and _NUMBER.match(n) is not None
        prev_low = low
    return out


def names(text: str) -> set[str]:
    """Lower-cased names: capitalised words not opening a sentence, words with symbols."""
    out: set[str] = set()
    start = True
    for tok in _tokens_cached(text):
        if tok in _SENTENCE_END:
            start = True
            continue
        symbol = tok.endswith(("++", "#")) or tok.startswith(".")
        capitalised = not start and tok[0].isupper() and tok.lower() not in _NOT_NAMES
        if symbol or capitalised:
            out.add(tok.lower())
        start = False
    return out


@lru_cache(maxsize=256)  # the entities and opposites guards both read it
def _names_of(text: str) -> frozenset[str]:
    return frozenset(names(text))


def units(text: str) -> set[str]:
    """Canonical names of the units and currencies named in `text` ("km", "dollar")."""
    out = {CURRENCY_SIGNS[ch] for ch in CURRENCY_SIGNS if ch in text}
    for tok in _tokens_cached(text):
        low = tok.lower()
        unit = UNITS.get(low)
        if unit is None and low[:1].isdigit():
            attached = _WITH_UNIT.match(low)  # "5km", "16gb"
            unit = UNITS.get(attached.group(1)) if attached else None
        if unit is not None:
            out.add(unit)
    return out


def _words(text: str) -> set[str]:
    return {t.lower() for t in _tokens_cached(text)}


@lru_cache(maxsize=256)
def _numbers_of(text: str) -> tuple[str, ...]:
    return tuple(numbers(text))


def same_numbers(query: str, cached: str) -> bool:
    return _numbers_of(query) == _numbers_of(cached)


def _named_in(names_: frozenset[str], words: frozenset[str]) -> bool:
    """Is every name also a word of the other text, up to a plural ("Olympics")?"""
    for name in names_:
        if name in words or name + "s" in words or name + "es" in words:
            continue
        if name.endswith("s") and (name[:-1] in words or name[:-2] in words):
            continue
        return False
    return True


@lru_cache(maxsize=256)
def _entities_of(text: str) -> tuple[frozenset[str], frozenset[str]]:
    """(names, words) of `text`; currency and unit names ("Rs", "INR") are the `units`
    guard's, not names here."""
    return frozenset(n for n in _names_of(text) if n not in UNITS), frozenset(_words(text))


def same_entities(query: str, cached: str) -> bool:
    q_names, q_words = _entities_of(query)
    c_names, c_words = _entities_of(cached)
    return _named_in(q_names, c_words) and _named_in(c_names, q_words)


@lru_cache(maxsize=256)
def negated(text: str) -> bool:
    """Does `text` hold a negation, leaving out "or not" ("whether or not", "why or why
    not"): that asks both ways, it negates nothing."""
    prev: list[str] = []
    for tok in _tokens_cached(text):
        low = tok.lower()
        if low in _NEGATIONS and not (low == "not" and "or" in prev[-2:]):
            return True
        prev.append(low)
    return False


def same_negation(query: str, cached: str) -> bool:
    return negated(query) == negated(cached)


@lru_cache(maxsize=256)
def _units_of(text: str) -> frozenset[str]:
    return frozenset(units(text))


def same_units(query: str, cached: str) -> bool:
    q, c = _units_of(query), _units_of(cached)
    return not (q - c and c - q)


@lru_cache(maxsize=256)
def _opposite_sides(text: str) -> dict[int, tuple[bool, bool]]:
    """{opposite pair index: (names one side, names the other)} for the pairs `text`
    touches; names ("New York") are not words here."""
    out: dict[int, tuple[bool, bool]] = {}
    for word in _words(text) - _names_of(text):
        for i in _OPPOSITE_INDEX.get(word, ()):
            one, other = OPPOSITES[i]
            seen = out.get(i, (False, False))
            out[i] = (seen[0] or word in one, seen[1] or word in other)
    return out


_OPPOSITE_INDEX: dict[str, list[int]] = {}
for _i, (_one, _other) in enumerate(OPPOSITES):
    for _w in _one | _other:
        _OPPOSITE_INDEX.setdefault(_w, []).append(_i)


def opposite_flip(query: str, cached: str) -> bool:
    """Do both texts name a side of an opposite pair, but not the same sides ("best" /
    "worst", "advantages and disadvantages" / "disadvantages")?"""
    q, c = _opposite_sides(query), _opposite_sides(cached)
    return any(i in c and sides != c[i] for i, sides in q.items())


@lru_cache(maxsize=256)
def _roles_of(text: str) -> dict[str, tuple[str, int]]:
    return _roles.roles(_tokens_cached(text))  # read only: shared by every call with `text`


@lru_cache(maxsize=256)
def _positions_of(text: str) -> _roles.Positions:
    return _roles.positions(_tokens_cached(text))  # read only, as above


def _role_exchange(query: str, cached: str) -> str | None:
    return _roles.role_exchange(_roles_of(query), _roles_of(cached))


def same_opposites(query: str, cached: str) -> bool:
    # "A better than B" / "B worse than A": the swap around "than" cancels the flip.
    return not opposite_flip(query, cached) or _role_exchange(query, cached) == "than"


def same_roles(query: str, cached: str) -> bool:
    exchanged = _role_exchange(query, cached)
    if exchanged is not None:
        return exchanged == "than" and opposite_flip(query, cached)
    return not _roles.reversal_of(_positions_of(query), _positions_of(cached))


_CHECKS: dict[str, Callable[[str, str], bool]] = {
    "numbers": same_numbers,
    "entities": same_entities,
    "negation": same_negation,
    "units": same_units,
    "opposites": same_opposites,
    "roles": same_roles,
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
