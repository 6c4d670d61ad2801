"""Key digests: the XXH3-128 `<qhash>` of an entry key, and the keyed BLAKE2b digests
stored beside entries (check) and filtered on by searches (function, scope and partition
tags).

Why two hashes: XXH3 is fast but not collision-resistant, and an attacker who controls
prompts could search for a collision; the check digest (keyed BLAKE2b-64 of the same key
material) is compared on every hit, so a collision is a miss, never another caller's answer.
Pure and I/O-free.
"""

from __future__ import annotations

import hashlib
from typing import Any

import xxhash

_CHECK_KEY = b"pmm_memo/check/v1"
_SCOPE_KEY = b"pmm_memo/scope/v1"
PART_KEY = b"pmm_memo/part/v1"


def hash_seed(secret: str | None) -> int:
    """XXH3 seed from CACHE_HASH_SECRET (0 when unset, which keeps keys reproducible)."""
    if not secret:
        return 0
    return int.from_bytes(hashlib.blake2b(secret.encode(), digest_size=8).digest(), "big")


def qhash(material: bytes, seed: int = 0) -> str:
    """The 32-hex XXH3-128 digest used in keys."""
    digest: str = xxhash.xxh3_128_hexdigest(material, seed=seed)
    return digest


# Keyed states are set up once per key; copying one skips the key schedule on every hit.
_check_states: dict[bytes, Any] = {}


def check_digest(material: bytes, key: bytes = _CHECK_KEY) -> str:
    """Independent digest stored beside an entry to reject hash collisions (keyed
    BLAKE2b-64 of the key material)."""
    state = _check_states.get(key)
    if state is None:
        if len(_check_states) >= 16:  # one key per configured secret: a few at most
            _check_states.clear()
        state = _check_states[key] = hashlib.blake2b(digest_size=8, key=key)
    h = state.copy()
    h.update(material)
    digest: str = h.hexdigest()
    return digest


def short_digest(value: str, purpose: bytes = _SCOPE_KEY) -> str:
    """Hex digest of a string, used as an exact-match tag value for search filters."""
    return hashlib.blake2b(
        value.encode("utf-8", "surrogatepass"), digest_size=12, key=purpose
    ).hexdigest()


def scope_digest(material: bytes, key: bytes = _SCOPE_KEY) -> str:
    """Hex digest of a call's scope material (its non-text arguments)."""
    return hashlib.blake2b(material, digest_size=12, key=key).hexdigest()


def _component(value: str | None) -> bytes:
    """One length-prefixed component (None: a byte no length can start with), so no two
    component lists give the same material whatever characters they hold."""
    if value is None:
        return b"\xff"
    raw = value.encode("utf-8", "surrogatepass")
    return len(raw).to_bytes(4, "big") + raw


class Partitions:
    """The `part` tags of a search index: keyed digests of who may see an entry.

    A semantic lookup filters on one tag, the digest of (tenant, user, function, scope),
    instead of four clauses; `CacheManager.knn_search` filters on the digest of the
    tenant, or of (tenant, user). An entry stores all three in one multi-value TAG. Keyed
    by CACHE_HASH_SECRET like the function and scope tags (see `Digests`), so a search
    under another secret finds nothing. A filter only narrows the search: every hit is
    still re-checked against the stored plain fields.
    """

    __slots__ = ("_calls", "_state")

    CALLS_KEPT = 4096  # partitions whose `call` tag is kept (then all are forgotten)

    def __init__(self, key: bytes = PART_KEY) -> None:
        # Copying a keyed state skips BLAKE2b's key schedule on every digest.
        self._state = hashlib.blake2b(digest_size=12, key=key)
        # A decorated function asks for the same few partitions on every lookup and
        # store: each one's digest is computed once (a dict look-up after that).
        self._calls: dict[tuple[str, str, str | None, str | None], str] = {}

    def _digest(self, *components: str | None) -> str:
        h = self._state.copy()
        h.update(b"".join(map(_component, components)))
        digest: str = h.hexdigest()
        return digest

    def tenant(self, tenant: str) -> str:
        return self._digest("t", tenant)

    def user(self, tenant: str, user: str) -> str:
        return self._digest("u", tenant, user)

    def call(self, tenant: str, user: str, fn: str | None, scope: str | None) -> str:
        """The tag of one decorated function's calls (same user, same non-text args)."""
        calls = self._calls
        tag = calls.get((tenant, user, fn, scope))
        if tag is None:
            tag = self._digest("p", tenant, user, fn, scope)
            if len(calls) >= self.CALLS_KEPT:
                calls.clear()  # bounded; a dict operation is atomic under the GIL
            calls[(tenant, user, fn, scope)] = tag
        return tag

    def tags(self, tenant: str, user: str, fn: str | None, scope: str | None) -> str:
        """The stored multi-value TAG: call, (tenant, user) and tenant digests."""
        return (
            f"{self.call(tenant, user, fn, scope)},{self.user(tenant, user)},{self.tenant(tenant)}"
        )


class Digests:
    """The entry digests of one cache: check, function tag, scope tag (and the key of
    the index's partition tags, `Partitions`).

    With CACHE_HASH_SECRET they are keyed by the secret as well as the exact key is
    seeded by it, so an entry written under another secret never verifies (exact) and
    is never found by a search (semantic: the function and scope filters differ).
    Without a secret they are the fixed-key digests (reproducible everywhere).
    """

    __slots__ = ("_check", "_scope", "_scope_state", "_scopes", "part_key")

    # A decorated function's calls share a few scopes (often one: the same non-text
    # arguments), digested on every lookup: each is kept (up to SCOPES_KEPT, then all
    # are forgotten), keyed by its exact material; long materials are not kept.
    SCOPES_KEPT = 4096
    SCOPE_KEPT_BYTES = 1024

    def __init__(self, secret: str | None) -> None:
        if secret:
            s = hashlib.blake2b(secret.encode("utf-8", "surrogatepass"), digest_size=32).digest()
            self._check = _CHECK_KEY + b"\x00" + s
            self._scope = _SCOPE_KEY + b"\x00" + s
            self.part_key = PART_KEY + b"\x00" + s  # for `Partitions` (index tags)
        else:
            self._check, self._scope, self.part_key = _CHECK_KEY, _SCOPE_KEY, PART_KEY
        # `scope_digest` with the key schedule done once: a semantic call digests its
        # scope on every lookup; copying a keyed state is a third of a new one.
        self._scope_state = hashlib.blake2b(digest_size=12, key=self._scope)
        self._scopes: dict[bytes, str] = {}

    def check(self, material: bytes) -> str:
        return check_digest(material, self._check)

    def fn(self, identity: str) -> str:
        """The `fn` tag of a function identity."""
        return short_digest(identity, self._scope)

    def scope(self, material: bytes) -> str:
        """`scope_digest(material, <this cache's scope key>)`."""
        scopes = self._scopes
        tag = scopes.get(material)
        if tag is None:
            h = self._scope_state.copy()
            h.update(material)
            tag = h.hexdigest()
            if len(material) <= self.SCOPE_KEPT_BYTES:
                if len(scopes) >= self.SCOPES_KEPT:
                    scopes.clear()  # bounded; a dict operation is atomic under the GIL
                scopes[material] = tag
        return tag
