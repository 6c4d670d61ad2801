"""The value of module-level *data* a function reads by name, for its identity.

A function that reads `SETTINGS = {"lang": "French"}` computes something else than the
same text reading `{"lang": "English"}`: the data is part of what it computes, like an
argument. `_identity` takes immutable constants by value already; this module adds the
mutable plain data (lists, dicts, sets, and tuples/frozensets holding them), read once,
at the function's first call (see `_keys.KeyMaker`), not at decoration: a global bound in
`if __name__ == "__main__":` after the decorator ran exists by then.

Plain data: str, bytes, int, float, complex, bool, None, enum members, and
tuple/list/dict/set/frozenset of those (exact types), recursively, at most `MAX_ITEMS`
items in all and `MAX_DEPTH` levels deep; and any other value the argument encoder
encodes faithfully, up to `MAX_BYTES` encoded (see `data_token`). Encoded with the
canonical argument encoder (`_encoding.encode_value`: dict and set entries sorted by
their encoded bytes, so hash seed and insertion order never change the token). Anything
else (a client, a logger, a lock, an instance of a class without `__cache_key__`, a
table too large) is left out and named in one DEBUG line per function; functions,
classes and modules are identified by `_identity` itself.
"""

from __future__ import annotations

import enum
from typing import Any

MAX_ITEMS = 10_000  # items per global: bounds the one-time cost of the first call
MAX_DEPTH = 32
MAX_BYTES = 1 << 20  # encoded size of a non-plain value (an array, a model) that counts
_SCALARS = (str, bytes, int, float, complex, bool, type(None))
_CONTAINERS = (tuple, list, set, frozenset)


def _plain(value: Any, budget: list[int], depth: int) -> bool:
    budget[0] -= 1
    if budget[0] < 0 or depth > MAX_DEPTH:
        return False
    if type(value) in _SCALARS:
        return True
    if isinstance(value, enum.Enum):
        return True
    kind = type(value)
    if kind in _CONTAINERS:
        return all(_plain(item, budget, depth + 1) for item in value)
    if kind is dict:
        return all(
            _plain(k, budget, depth + 1) and _plain(v, budget, depth + 1) for k, v in value.items()
        )
    return False


def is_plain_data(value: Any) -> bool:
    """Is `value` plain data of at most `MAX_ITEMS` items (see the module docstring)?"""
    try:
        return _plain(value, [MAX_ITEMS], 0)
    except RuntimeError:  # mutated by another thread while being read
        return False


def _too_many(value: Any) -> bool:
    """More than `MAX_ITEMS` items in the containers (exact types) `value` nests, whatever
    their leaves: then the encoder is not asked to walk it either."""
    budget, stack = MAX_ITEMS, [value]
    try:
        while stack:
            item = stack.pop()
            kind = type(item)
            if kind is dict:
                item = [*item.keys(), *item.values()] if len(item) <= budget else None
            elif kind not in _CONTAINERS:
                continue
            if item is None or len(item) > budget:
                return True
            budget -= len(item)
            stack.extend(item)
    except RuntimeError:  # mutated by another thread while being read
        return True
    return False


def data_token(value: Any, name: str) -> bytes | None:
    """`data:` + the canonical encoding of the value, or None (left out).

    Plain data (above) always counts. Any other value the argument encoder encodes
    faithfully counts too (Decimal, dates, paths, named tuples, dataclasses, numpy
    arrays, pydantic models, objects with `__cache_key__`), up to `MAX_BYTES` encoded:
    `CONFIG = Settings(model="small")` decides answers as much as a dict would.
    Objects the encoder refuses (clients, loggers, locks) are left out."""
    plain = is_plain_data(value)
    if not plain and (getattr(value, "nbytes", 0) > MAX_BYTES or _too_many(value)):
        return None  # not read at all: the first call's one-time cost stays bounded
    from ._encoding import encode_value  # late: _encoding imports _identity lazily

    try:
        encoded = encode_value(value, name)
    except Exception:  # unencodable; changed size during iteration (another thread)
        return None
    return b"data:" + encoded if plain or len(encoded) <= MAX_BYTES else None
