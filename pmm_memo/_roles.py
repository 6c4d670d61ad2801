"""Word order that changes who does what: "flights from Paris to London" is not "from
London to Paris", though both texts hold the same words and embed at cosine ~0.98.

Two rules, over the words both texts share (lower-cased; each must occur once in each
text, so "which" one moved is never a guess):

1. Role exchange. A word's role is the preposition before it, looking back over
   determiners ("from *the* city" -> from; no preposition -> none). When two shared
   words exchange their roles ("Paris" from -> to while "London" to -> from; "miles"
   none -> to while "km" to -> none in "convert miles to km" / "km to miles"), and
   their order too when one of them has no role, the texts ask opposite things. Two
   words side by side in both texts are one phrase reordered ("female solo
   travellers" / "solo female travellers"): no.
2. Transposition. The shared content words read the same in both texts but for two
   that traded places, with a shared content word between them ("India attacks
   Pakistan" / "Pakistan attacks India", "girls like introvert guys" / "guys like
   introvert girls"): subject and object traded places. A coordinator between them
   ("Dubai or Qatar", "cats and dogs", "A vs B") is symmetric and never counts.

"than" is special: "Is C# better than Java?" asks what "Is Java worse than C#?" asks. A
role exchange that involves "than" is therefore forgiven when an opposite pair also
flips (`_guards._flip`), and the other way round.

Pure functions; the tokens come from `_text_features.tokens`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Final

from ._lexicon import DETERMINERS, ROLE_MARKERS

_SENTENCE_END: Final = frozenset(".!?")
_COORDINATORS: Final = frozenset("and or nor vs versus v plus & ,".split())
# Function words: never a moved "content" word, never the pivot of a reversal.
_FUNCTION: Final = (
    ROLE_MARKERS
    | DETERMINERS
    | _COORDINATORS
    | frozenset(
        "i me we us you he him she it they them who whom whose which what when where why "
        "how is are was were be been being am do does did doing done have has had having "
        "can could will would shall should may might must not no so if then there here "
        "as also just very too really much many more most such own same other only "
        "one ones up out off down again once all both few s t don".split()
    )
)


# ({word occurring once: its index}, running count of coordinators up to each index)
Positions = tuple[dict[str, int], list[int]]


def analyse(tokens: Sequence[str]) -> tuple[dict[str, tuple[str, int]], Positions]:
    """`roles` and `positions` of one text, in one pass over its tokens."""
    counts: dict[str, int] = {}
    role_at: dict[str, tuple[str, int]] = {}
    coord: list[int] = []
    prev: list[str] = []  # lower-cased tokens of the current sentence so far
    n = 0
    for i, tok in enumerate(tokens):
        low = tok.lower()
        counts[low] = counts.get(low, 0) + 1
        if low in _SENTENCE_END:
            prev = []
            n += 1
            coord.append(n)
            continue
        n += low in _COORDINATORS
        coord.append(n)
        role = ""
        for before in reversed(prev):
            if before in DETERMINERS:
                continue
            if before in ROLE_MARKERS:
                role = before
            break
        role_at[low] = (role, i)
        prev.append(low)
    once = {w: r for w, r in role_at.items() if counts[w] == 1}
    return once, ({w: i for w, (_, i) in once.items()}, coord)


def roles(tokens: Sequence[str]) -> dict[str, tuple[str, int]]:
    """{word: (role, index)} for the lower-cased words of a text that occur once ("" =
    no role)."""
    return analyse(tokens)[0]


def role_exchange(
    q_roles: dict[str, tuple[str, int]], c_roles: dict[str, tuple[str, int]]
) -> str | None:
    """The role that two shared words exchange (e.g. "from"), or None if none do."""
    moved = [
        (q, c_roles[w])
        for w, q in q_roles.items()
        if w in c_roles and q[0] != c_roles[w][0] and w not in _FUNCTION
    ]
    for i, ((q_a, qi_a), (c_a, ci_a)) in enumerate(moved):
        for (q_b, qi_b), (c_b, ci_b) in moved[i + 1 :]:
            if q_a != c_b or q_b != c_a:
                continue
            if (qi_a < qi_b) == (ci_a < ci_b) and not (q_a and q_b):
                continue  # same order, one without a role: "learning sites for Python" /
                # "sites for learning Python"; "from Paris to London" / "to Paris from
                # London" (both with roles) still counts
            if abs(qi_a - qi_b) == 1 and abs(ci_a - ci_b) == 1:
                continue  # one phrase reordered: "female solo" / "solo female"
            return q_a or q_b
    return None


_MAX_SHARED: Final = 64  # beyond this a text is a document: rule 2 is not applied


def reversal(q_tokens: list[str], c_tokens: list[str]) -> bool:
    """Do the shared content words read the same but for two that traded places around
    a third, with no coordinator between them in either text? (Not applied past 64
    shared words: a document, whose changed sentences `_candidates` compares alone.)"""
    return reversal_of(positions(q_tokens), positions(c_tokens))


def reversal_of(q: Positions, c: Positions) -> bool:
    """`reversal` of two texts' `positions` (which a caller may keep per text)."""
    q_pos, q_coord = q
    c_pos, c_coord = c
    shared = [w for w in q_pos if w in c_pos and w not in _FUNCTION]
    if not 3 <= len(shared) <= _MAX_SHARED:
        return False
    q_seq = sorted(shared, key=q_pos.__getitem__)
    c_seq = sorted(shared, key=c_pos.__getitem__)
    differ = [i for i, (a, b) in enumerate(zip(q_seq, c_seq, strict=True)) if a != b]
    if len(differ) != 2 or differ[1] - differ[0] < 2:
        return False  # not one transposition with a shared word between
    a, b = q_seq[differ[0]], q_seq[differ[1]]
    if c_seq[differ[0]] != b or c_seq[differ[1]] != a:
        return False
    return not (_between(q_coord, q_pos[a], q_pos[b]) or _between(c_coord, c_pos[b], c_pos[a]))


def positions(tokens: Sequence[str]) -> Positions:
    """({word occurring once: its index}, running count of coordinators up to each index)."""
    return analyse(tokens)[1]


def _between(coord: list[int], lo: int, hi: int) -> bool:
    """Is there a coordinator (or a sentence end) strictly between indices lo < hi?"""
    return coord[hi - 1] > coord[lo]
