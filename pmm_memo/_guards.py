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

from collections.abc import Callable, Iterable
from functools import lru_cache
from typing import Final

from . import _roles
from ._errors import ConfigError
from ._text_features import (
    FEATURES_KEPT,
    Features,
    features,
    names_of,
    negated_of,
    numbers_of,
    tokens,
    units_of,
)

GUARDS: Final = ("numbers", "entities", "negation", "units", "opposites", "roles")
# All of them by default: measured in benchmarks/quality.py (README, "Choosing a
# threshold"): what each removes and what right hits it costs.
DEFAULT_GUARDS: Final = GUARDS


def numbers(text: str) -> list[str]:
    """The numbers of `text`, in order, normalised ("1,000" -> "1000", "7th" -> "7",
    "3 million" -> "3000000")."""
    return numbers_of([t.lower() for t in tokens(text)])


def names(text: str) -> set[str]:
    """Lower-cased names: capitalised words not opening a sentence, words with symbols."""
    toks = tokens(text)
    return names_of(toks, [t.lower() for t in toks])


def units(text: str) -> set[str]:
    """Canonical names of the units and currencies named in `text` ("km", "dollar")."""
    return units_of(text, [t.lower() for t in tokens(text)])


def negated(text: str) -> bool:
    """Does `text` hold a negation, leaving out "or not" ("whether or not", "why or why
    not"): that asks both ways, it negates nothing."""
    return negated_of([t.lower() for t in tokens(text)])


# -- the guards, on two texts' features --------------------------------------------------


def _named_in(names_: frozenset[str], words: frozenset[str]) -> bool:
    """Is every name also a word of the other text, up to a plural ("Olympics")?"""
    for name in names_:
        if name in words or name + "s" in words or name + "es" in words:
            continue
        if name.endswith("s") and (name[:-1] in words or name[:-2] in words):
            continue
        return False
    return True


def _numbers(q: Features, c: Features) -> bool:
    return q.numbers == c.numbers


def _entities(q: Features, c: Features) -> bool:
    return _named_in(q.entities, c.words) and _named_in(c.entities, q.words)


def _negation(q: Features, c: Features) -> bool:
    return q.negated == c.negated


def _units(q: Features, c: Features) -> bool:
    return not (q.units - c.units and c.units - q.units)


def _flip(q: Features, c: Features) -> bool:
    """Do both texts name a side of an opposite pair, but not the same sides ("best" /
    "worst", "advantages and disadvantages" / "disadvantages")?"""
    c_sides = c.sides
    return any(i in c_sides and sides != c_sides[i] for i, sides in q.sides.items())


def _opposites(q: Features, c: Features) -> bool:
    # "A better than B" / "B worse than A": the swap around "than" cancels the flip.
    return not _flip(q, c) or _roles.role_exchange(q.roles, c.roles) == "than"


def _roles_kept(q: Features, c: Features) -> bool:
    exchanged = _roles.role_exchange(q.roles, c.roles)
    if exchanged is not None:
        return exchanged == "than" and _flip(q, c)
    return not _roles.reversal_of(q.positions, c.positions)


def same_numbers(query: str, cached: str) -> bool:
    return _numbers(features(query), features(cached))


def same_entities(query: str, cached: str) -> bool:
    return _entities(features(query), features(cached))


def same_negation(query: str, cached: str) -> bool:
    return _negation(features(query), features(cached))


def same_opposites(query: str, cached: str) -> bool:
    return _opposites(features(query), features(cached))


def same_roles(query: str, cached: str) -> bool:
    return _roles_kept(features(query), features(cached))


_CHECKS: dict[str, Callable[[Features, Features], bool]] = {
    "numbers": _numbers,
    "entities": _entities,
    "negation": _negation,
    "units": _units,
    "opposites": _opposites,
    "roles": _roles_kept,
}


class Guards:
    """The guards one decorated function applies, in a fixed order."""

    __slots__ = ("_pairs", "checks", "names")

    def __init__(self, names_: Iterable[str]) -> None:
        self.names = tuple(names_)
        self.checks = tuple(_CHECKS[n] for n in self.names)
        self._pairs = tuple(zip(self.names, self.checks, strict=True))

    def __bool__(self) -> bool:
        return bool(self.checks)

    def veto(self, query: str, cached: str) -> str | None:
        """The name of the first guard that rejects the pair, or None if all allow it."""
        return _veto(self._pairs, query, cached)


@lru_cache(maxsize=FEATURES_KEPT // 2)  # pairs of windows: half as many as texts
def _veto(
    pairs: tuple[tuple[str, Callable[[Features, Features], bool]], ...], query: str, cached: str
) -> str | None:
    """`Guards.veto`, kept for the last pairs judged: a question asked again meets
    the same stored neighbour (a pure function of the guards and the two texts)."""
    q, c = features(query), features(cached)  # each text's features: one look-up
    for name, check in pairs:
        if not check(q, c):
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
