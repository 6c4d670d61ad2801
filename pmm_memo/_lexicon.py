"""Closed word classes the guards compare: magnitudes, units, opposites, role markers.

Why closed lists: a sentence embedding puts "5 miles" and "5 km", "How to gain weight"
and "How to lose weight", "3 million" and "3 billion" at cosine 0.9+, because each pair
differs in one word of the same kind. The words that flip an answer this way form small
closed classes of English, so a guard can name them all instead of learning them. Lists
are lower-case word forms (inflections spelled out: no stemmer, no surprises).

Sources: the SI and US customary unit names, ISO 4217 currency names and signs, and the
common English antonym pairs of comparatives, directions, quantities and actions.
"""

from __future__ import annotations

from typing import Final

# -- magnitudes (folded into numbers: "3 million" -> 3000000) ---------------------------
MAGNITUDES: Final[dict[str, int]] = {
    "hundred": 100,
    "hundreds": 100,
    "thousand": 1000,
    "thousands": 1000,
    "lakh": 100_000,
    "lakhs": 100_000,
    "million": 10**6,
    "millions": 10**6,
    "crore": 10**7,
    "crores": 10**7,
    "billion": 10**9,
    "billions": 10**9,
    "trillion": 10**12,
    "trillions": 10**12,
}


def _table(rows: str) -> dict[str, str]:
    """'canonical: form form ...' lines -> {form: canonical} (the canonical is a form)."""
    out: dict[str, str] = {}
    for line in rows.strip().splitlines():
        canonical, _, forms = line.partition(":")
        canonical = canonical.strip()
        out[canonical] = canonical
        for form in forms.split():
            out[form] = canonical
    return out


# -- units of measure and currencies: any two different ones answer differently --------
UNITS: Final[dict[str, str]] = _table(
    """
    mm: millimeter millimeters millimetre millimetres
    cm: centimeter centimeters centimetre centimetres
    meter: meters metre metres
    km: kms kilometer kilometers kilometre kilometres
    inch: inches
    foot: feet ft
    yard: yards yd yds
    mile: miles
    mg: milligram milligrams
    gram: grams
    kg: kgs kilogram kilograms kilo kilos
    pound: pounds lb lbs
    ounce: ounces oz
    ton: tons tonne tonnes
    celsius: centigrade
    fahrenheit:
    kelvin:
    ml: milliliter milliliters millilitre millilitres
    liter: liters litre litres
    gallon: gallons
    pint: pints
    cup: cups
    tablespoon: tablespoons tbsp
    teaspoon: teaspoons tsp
    seconds: secs
    minute: minutes mins
    hour: hours hrs hr
    day: days
    week: weeks
    month: months
    year: years
    decade: decades
    century: centuries
    byte: bytes
    kb: kilobyte kilobytes
    mb: megabyte megabytes
    gb: gigabyte gigabytes
    tb: terabyte terabytes
    mph:
    kph: kmh
    hz: hertz
    khz: kilohertz
    mhz: megahertz
    ghz: gigahertz
    watt: watts
    kw: kilowatt kilowatts
    kwh:
    volt: volts
    amp: amps ampere amperes
    calorie: calories kcal
    joule: joules
    acre: acres
    hectare: hectares
    dollar: dollars usd bucks
    euro: euros eur
    gbp: sterling
    yen: jpy
    rupee: rupees inr rs
    yuan: rmb cny renminbi
    """
)
# Currency signs are not word characters: looked for in the raw text. "£" is the same
# word as "pound" (GBP) here: "5 pounds" does not say which pound.
CURRENCY_SIGNS: Final[dict[str, str]] = {
    "$": "dollar",
    "€": "euro",
    "£": "pound",
    "¥": "yen",
    "₹": "rupee",
    "₩": "won",
    "₽": "ruble",
}

# -- opposites: a text with one side and not the other asks the opposite question -------
# Each row: forms of one side | forms of the other side.
_OPPOSITES = """
increase increases increased increasing | decrease decreases decreased decreasing
gain gains gained gaining | lose loses losing lost loss
win wins winning won | lose loses losing lost
before | after
max maximum maximize maximise maximizing | min minimum minimize minimise minimizing
more | less fewer
most | least
old older oldest | young younger youngest
old older oldest | new newer newest
high higher highest | low lower lowest
big bigger biggest large larger largest | small smaller smallest
better best | worse worst
good | bad
long longer longest | short shorter shortest
fast faster fastest quick quicker quickest | slow slower slowest
cheap cheaper cheapest | expensive costlier costliest pricier priciest
heavy heavier heaviest | light lighter lightest
hot hotter hottest | cold colder coldest
easy easier easiest | hard harder hardest difficult
strong stronger strongest | weak weaker weakest
rich richer richest | poor poorer poorest
early earlier earliest | late later latest
first | last
advantage advantages pros | disadvantage disadvantages cons drawbacks
strength strengths | weakness weaknesses
positive | negative
true | false
correct | incorrect
legal | illegal
possible | impossible
like likes liked | dislike dislikes disliked
love loves loved | hate hates hated
agree agrees agreed | disagree disagrees disagreed
success successful | failure fail fails failed unsuccessful
pass passed | fail failed
accept accepts accepted | reject rejects rejected
include includes included | exclude excludes excluded
buy buys buying bought purchase | sell sells selling sold
import imports imported importing | export exports exported exporting
upload uploads uploaded uploading | download downloads downloaded downloading
input inputs | output outputs
encrypt encrypts encrypted encrypting encryption | decrypt decrypts decrypted decrypting decryption
encode encodes encoded encoding | decode decodes decoded decoding
compress compressed compression | decompress decompressed decompression
install installs installed installing | uninstall uninstalls uninstalled uninstalling
enable enables enabled enabling | disable disables disabled disabling
add adds added adding addition | remove removes removed removing delete deletes deleted
add adds added adding addition | subtract subtracts subtracted subtracting subtraction
multiply multiplies multiplied multiplying multiplication | divide divides divided dividing division
open opens opened opening | close closes closed closing
start starts started starting | stop stops stopped stopping
start starts started starting begin began beginning | end ends ended ending finish finished
for | against
push pushes pushed pushing | pull pulls pulled pulling
online | offline
inside internal | outside external
above | below
over | under
top | bottom
north northern | south southern
east eastern | west western
ascending | descending
horizontal horizontally | vertical vertically
past | future
dark | light
male males man men | female females woman women
boy boys | girl girls
son sons | daughter daughters
husband husbands | wife wives
father fathers | mother mothers
brother brothers | sister sisters
king kings | queen queens
"""


def _opposites() -> tuple[tuple[frozenset[str], frozenset[str]], ...]:
    rows = []
    for line in _OPPOSITES.strip().splitlines():
        one, _, other = line.partition("|")
        rows.append((frozenset(one.split()), frozenset(other.split())))
    return tuple(rows)


OPPOSITES: Final = _opposites()
# Comparatives: "A better than B" asks what "B worse than A" asks (see _roles).
COMPARATIVE_OPPOSITES: Final = frozenset(
    i for i, (one, other) in enumerate(OPPOSITES) if any(w.endswith(("er", "st")) for w in one)
)

# -- role markers: the preposition before a word says which part it plays ---------------
ROLE_MARKERS: Final = frozenset(
    "to from into onto than about for of by with in on at over under after before "
    "towards toward per".split()
)
# Skipped when looking back from a word to its role marker ("from *the* city").
DETERMINERS: Final = frozenset(
    "a an the my your his her its our their this that these those some any each every "
    "another".split()
)
