"""Turning results into bytes and back, without ever running code when reading.

Codecs (the `codec` field of an entry):
- `str` / `bytes`: the result itself, for the common LLM case (no parsing at all).
- `json`: tagged JSON (`_json_tree`): JSON-native values as themselves, everything else
  tagged; classes are rebuilt only when this process already knows them, so reading never
  imports a module or resolves an arbitrary name.
- `pickle`: only with CACHE_CODEC=pickle, only for results the safe codecs cannot hold,
  and only with CACHE_SIGNING_KEY.

With a signing key every entry carries an HMAC-SHA256 over (format, codec, payload) *and
the entry's binding*: its Redis key, check digest, tenant, user, function tag and scope,
and the fields that decide a semantic hit: text digest, embedder, text and embedding
(`entry_binding`). Fields copied from alice's entry to bob's key, or relabelled with bob's
tenant/user/scope, no longer verify. An entry without a valid signature is a miss, and so
is a signed entry read by a cache without a signing key (it was written under another
configuration). The algorithm is fixed here, never read from the entry, so a forged entry
cannot downgrade it.
"""

from __future__ import annotations

import dataclasses
import hashlib
import hmac
import json
import pickle
from typing import Any

import xxhash

from ._errors import CodecError
from ._json_tree import from_tree, to_tree

FORMAT_VERSION = b"2"  # 2: the envelope packed in `meta` (see backends/_entry_meta)
_SIGNATURE_CONTEXT = b"pmm_memo/entry/v2\x00"  # v2: the signature binds the entry


def entry_binding(
    key: str,
    check: str,
    tenant: str,
    user: str,
    fn: str,
    scope: str | None,
    *,
    text_h: bytes | None = None,
    embedder: bytes | None = None,
    text: bytes | None = None,
    embedding: bytes | None = None,
) -> bytes:
    """What a signature binds an entry to besides its value (length-prefixed parts).

    The keyword parts are the stored fields a semantic lookup trusts to decide a hit
    (raw bytes as stored, None when absent, which differs from empty): `text_h` decides
    `threshold=1.0` hits, `embedder` which vector space the entry is in, `text` what the
    guards and the changed-sentence check compare, `embedding` the similarity the KNN
    search computes. Altering any of them makes the entry a miss, never a hit."""
    parts = (key, check, tenant, user, fn, "" if scope is None else scope)
    out = []
    for part in parts:
        data = part.encode("utf-8", "surrogatepass")
        out.append(b"%d:%s" % (len(data), data))
    for raw in (text_h, embedder, text):
        out.append(b"-" if raw is None else b"%d:%s" % (len(raw), raw))
    out.append(b"-" if embedding is None else hashlib.sha256(embedding).digest())
    return b"".join(out)


_CHECKSUM_HEADS = {c: b"".join((FORMAT_VERSION, b"\x00", c, b"\x00")) for c in (b"str", b"json")}


# Up to this size the payload is hashed in one call on a copy (cheaper than a streaming
# hasher object on every hit and write); beyond it, streamed without a copy.
_ONE_SHOT = 64 * 1024


def checksum(codec: bytes, payload: bytes) -> bytes:
    """Integrity digest of an entry's envelope (XXH3-64 over format, codec, payload)."""
    head = _CHECKSUM_HEADS.get(codec) or b"".join((FORMAT_VERSION, b"\x00", codec, b"\x00"))
    if len(payload) <= _ONE_SHOT:
        return xxhash.xxh3_64_hexdigest(head + payload).encode()
    h = xxhash.xxh3_64(head)  # streamed: a large payload (up to megabytes) is not copied
    h.update(payload)
    digest: str = h.hexdigest()
    return digest.encode()


@dataclasses.dataclass(frozen=True)
class Encoded:
    """A result ready to be stored: codec name, payload, checksum, optional signature."""

    codec: bytes
    payload: bytes
    sig: bytes | None
    checksum: bytes


class Codec:
    """Encodes results for a shared store (Redis); the memory backend keeps objects."""

    def __init__(
        self,
        *,
        allow_pickle: bool = False,
        signing_key: str | bytes | None = None,
        max_bytes: int = 8 * 1024 * 1024,
    ) -> None:
        if allow_pickle and not signing_key:
            raise CodecError("the pickle codec needs a signing key")
        key = signing_key.encode() if isinstance(signing_key, str) else signing_key
        self._key = key
        self._allow_pickle = allow_pickle
        self.max_bytes = max_bytes

    @property
    def signs(self) -> bool:
        """Are entries signed (and must the binding be read back to verify them)?"""
        return self._key is not None

    def _sign(self, codec: bytes, payload: bytes, binding: bytes) -> bytes | None:
        if self._key is None:
            return None
        msg = b"".join(
            (
                _SIGNATURE_CONTEXT,
                FORMAT_VERSION,
                b"\x00%d:%s%d:" % (len(codec), codec, len(payload)),
                payload,
                binding,
            )
        )
        return hmac.new(self._key, msg, hashlib.sha256).hexdigest().encode()

    def encode(self, value: Any, binding: bytes = b"") -> Encoded:
        """Raises CodecError when the value cannot be stored (the caller still gets it)."""
        t = type(value)
        if t is str:
            codec, payload = b"str", value.encode("utf-8", "surrogatepass")
        elif t is bytes:
            codec, payload = b"bytes", value
        else:
            try:
                tree = to_tree(value)
                codec = b"json"
                payload = json.dumps(
                    tree, ensure_ascii=False, separators=(",", ":"), allow_nan=False
                ).encode("utf-8", "surrogatepass")
            except (CodecError, RecursionError, ValueError) as exc:
                if not self._allow_pickle:
                    raise CodecError(
                        str(exc) if isinstance(exc, CodecError) else f"cannot encode result: {exc}"
                    ) from None
                try:
                    codec, payload = b"pickle", pickle.dumps(value, protocol=5)
                except Exception as pexc:
                    raise CodecError(f"result cannot be pickled: {pexc}") from None
        if len(payload) > self.max_bytes:
            raise CodecError(
                f"result is {len(payload)} bytes encoded, over CACHE_MAX_VALUE_BYTES="
                f"{self.max_bytes}"
            )
        sig = self._sign(codec, payload, binding)
        return Encoded(codec, payload, sig, checksum(codec, payload))

    def decode(
        self,
        fmt: bytes | None,
        codec: bytes | None,
        payload: bytes | None,
        sig: bytes | None,
        check_sum: bytes | None,
        binding: bytes = b"",
    ) -> Any:
        """Raises CodecError for anything it does not trust or understand. `binding`:
        `entry_binding(...)` of where the entry was found (checked when signing)."""
        if fmt != FORMAT_VERSION:
            raise CodecError(f"unknown entry format {fmt!r}")
        if codec is None or payload is None:
            raise CodecError("entry lacks its codec or payload")
        # A truncated payload or a swapped codec field can still parse -- as a different
        # value. The checksum makes any such damage a miss (the HMAC, when configured,
        # is what stops deliberate tampering).
        if check_sum is None or not hmac.compare_digest(check_sum, checksum(codec, payload)):
            raise CodecError("entry checksum is missing or does not match its payload")
        if self._key is not None:
            expected = self._sign(codec, payload, binding)
            if sig is None or expected is None or not hmac.compare_digest(sig, expected):
                raise CodecError("entry signature is missing or wrong (or the entry moved)")
        elif sig:
            raise CodecError("entry is signed but this cache has no CACHE_SIGNING_KEY")
        if codec == b"str":
            try:
                return payload.decode("utf-8", "surrogatepass")
            except UnicodeDecodeError as exc:
                raise CodecError(f"bad text payload: {exc}") from None
        if codec == b"bytes":
            return payload
        if codec == b"json":
            try:
                return from_tree(json.loads(payload))
            except CodecError:
                raise
            except Exception as exc:
                # Whatever rebuilding a stored tree raises is an entry this process cannot
                # read (a Decimal or timedelta the type refuses, nesting deeper than this
                # stack, a class whose validation changed since): damage, one miss. Any
                # other type would fail a whole KNN search for one neighbour.
                raise CodecError(f"bad json payload: {type(exc).__name__}: {exc}") from None
        if codec == b"pickle":
            # Reached only with a verified HMAC from our own key (checked above).
            if not self._allow_pickle or self._key is None:
                raise CodecError("pickled entry found but the pickle codec is not enabled")
            try:
                return pickle.loads(payload)  # noqa: S301 - HMAC-verified above
            except Exception as exc:
                raise CodecError(f"bad pickle payload: {exc}") from None
        raise CodecError(f"unknown codec {codec!r}")
