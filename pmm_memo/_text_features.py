"""What the guards (`_guards`) read from one text, extracted once per text.

Why one record: a semantic hit runs every guard on the query and on the candidate's
stored text. Extracted guard by guard, each text paid one cache look-up and one pass of
lower-casing per guard (seven), and three regular-expression substitutions to tokenise
even when the text holds nothing they could change. `features` tokenises once, lower-
cases once, and keeps everything the six guards compare in one cached `Features`.

The definitions (what a number, a name, a unit ... is) are documented in `_guards`.
Pure and I/O-free.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from functools import lru_cache
from typing import NamedTuple

from . import _roles
from ._lexicon import CURRENCY_SIGNS, MAGNITUDES, OPPOSITES, UNITS

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

_OPPOSITE_INDEX: dict[str, list[int]] = {}
for _i, (_one, _other) in enumerate(OPPOSITES):
    for _w in _one | _other:
        _OPPOSITE_INDEX.setdefault(_w, []).append(_i)


def tokens(text: str) -> tuple[str, ...]:
    """The tokens of `text`: "Einstein's" -> "Einstein"; "don't" -> "dont" (one token, a
    negation); "100°C" -> "100 celsius" (a unit, not a name "C")."""
    # Each substitution needs an apostrophe or a degree sign: most texts skip them all.
    if "'" in text or "\u2019" in text:
        text = _POSSESSIVE.sub("", _DECADE_APOSTROPHE.sub(r"\1s", text))
        text = text.translate(_APOSTROPHES)
    if "°" in text:
        text = _DEGREES.sub(_degrees, text)
    return tuple(_TOKEN.findall(text))


def _degrees(match: re.Match[str]) -> str:
    return " celsius" if match.group(1).lower() == "c" else " fahrenheit"


def _number(low: str) -> str | None:
    """The number a lower-cased token stands for, or None."""
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


def numbers_of(lows: list[str]) -> list[str]:
    """The numbers among lower-cased tokens, in order (see `_guards.numbers`)."""
    out: list[str] = []
    prev_number = False  # was the previous token a plain number (can be scaled)?
    prev_low = ""
    for low in lows:
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
        n = _number(low)
        if n is not None:
            out.append(n)
        prev_number = n is not None and _NUMBER.match(n) is not None
        prev_low = low
    return out


def names_of(toks: tuple[str, ...], lows: list[str]) -> set[str]:
    """Lower-cased names: capitalised words not opening a sentence, words with symbols."""
    out: set[str] = set()
    start = True
    for tok, low in zip(toks, lows, strict=True):
        if tok in _SENTENCE_END:
            start = True
            continue
        symbol = tok.endswith(("++", "#")) or tok.startswith(".")
        capitalised = not start and tok[0].isupper() and low not in _NOT_NAMES
        if symbol or capitalised:
            out.add(low)
        start = False
    return out


def units_of(text: str, lows: list[str]) -> set[str]:
    """Canonical names of the units and currencies named in `text` ("km", "dollar")."""
    out = {CURRENCY_SIGNS[ch] for ch in CURRENCY_SIGNS if ch in text}
    for low in lows:
        unit = UNITS.get(low)
        if unit is None and low[:1].isdigit():
            attached = _WITH_UNIT.match(low)  # "5km", "16gb"
            unit = UNITS.get(attached.group(1)) if attached else None
        if unit is not None:
            out.add(unit)
    return out


def negated_of(lows: list[str]) -> bool:
    """Does a negation occur, leaving out "or not" ("whether or not", "why or why not":
    that asks both ways, it negates nothing)?"""
    for i, low in enumerate(lows):
        if low in _NEGATIONS and not (low == "not" and "or" in lows[max(0, i - 2) : i]):
            return True
    return False


def _sides(words: frozenset[str], names: set[str]) -> dict[int, tuple[bool, bool]]:
    """{opposite pair index: (names one side, names the other)} for the pairs the words
    touch; names ("New York") are not words here."""
    out: dict[int, tuple[bool, bool]] = {}
    for word in words - names:
        for i in _OPPOSITE_INDEX.get(word, ()):
            one, other = OPPOSITES[i]
            seen = out.get(i, (False, False))
            out[i] = (seen[0] or word in one, seen[1] or word in other)
    return out


class Features(NamedTuple):
    """Everything the guards compare in one text (read only: shared between calls)."""

    numbers: tuple[str, ...]
    entities: frozenset[str]  # names, less unit and currency names (the `units` guard's)
    words: frozenset[str]  # lower-cased tokens
    negated: bool
    units: frozenset[str]
    sides: dict[int, tuple[bool, bool]]  # see `_sides`
    roles: dict[str, tuple[str, int]]  # `_roles.roles`
    positions: _roles.Positions  # `_roles.positions`


# Two texts per hit (the query's and the stored one's): as many hits' worth of features
# as the Cache keeps query vectors (`_cache_embedding.VECTOR_MEMO`, 256), so a question
# asked again finds both its vector and its guards' features kept.
FEATURES_KEPT = 512


@lru_cache(maxsize=FEATURES_KEPT)
def features(text: str) -> Features:
    """The features of `text`, kept for the last FEATURES_KEPT texts."""
    toks = tokens(text)
    lows = [t.lower() for t in toks]
    names = names_of(toks, lows)
    words = frozenset(lows)
    roles, positions = _roles.analyse(toks)
    return Features(
        numbers=tuple(numbers_of(lows)),
        entities=frozenset(n for n in names if n not in UNITS),
        words=words,
        negated=negated_of(lows),
        units=frozenset(units_of(text, lows)),
        sides=_sides(words, names),
        roles=roles,
        positions=positions,
    )
