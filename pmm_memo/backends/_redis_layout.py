"""The layout of a Redis cache entry and how it is written and read back.

An entry is a hash at `cache:<tenant>:<qhash>`: the seed's `text`, `tenant`, `user`,
`created_at`, `embedding`, plus `fmt`/`codec`/`value`/`sig`/`sum` (the envelope, see
`_codec`), `check` (collision digest), `fn`/`fn_name`, `scope`, `text_h` (digest of the
whole normalised text, see `_semantic`), `min_sim` (feedback), and with a vector only:
`embedder`/`emb` (the vector's embedder label and its digest, which the index FILTER of
that embedder's index matches) and `part` (the search filter's digests, see `_index`).

`RedisEntries` (a mixin of `RedisBackend`) turns an `Entry` into that hash and a reply
back into a verified value; the helpers here are shared by the search and cluster code.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio
from redis.typing import EncodableT

from .._codec import FORMAT_VERSION, Codec, entry_binding
from .._digests import PART_KEY, Partitions, check_digest
from .._embedder_id import embedder_tag
from ._base import Entry, Stored
from ._limits import ServerLimits

if TYPE_CHECKING:
    from ._index import IndexSpec

_READ_FIELDS = ("fmt", "codec", "value", "sig", "sum", "check")  # envelope + check digest
_ENVELOPE = 5  # the first five are what Codec.decode takes
_FILTER_FIELDS = ("tenant", "user", "fn", "scope")  # re-checked on every hit
_MATCH_FIELDS = ("text_h", "embedder")  # read by the matcher (see _candidates)
_TEXT_FIELDS = ("text",)
_PEOPLE_FIELDS = ("created_at",)  # VectorQuery.with_created_at
_FEEDBACK_FIELDS = ("min_sim",)  # Entry.min_similarity
# Signed (with the value) when signing: every field that could turn a miss into a hit.
# `min_sim` is not: report_wrong_hit's script raises it server-side (no key there), it
# only ever makes hits rarer, and lowering it only restores the writer's own threshold
# for this (still fully verified) entry; it never makes an altered entry servable.
_SEMANTIC_BOUND = ("text_h", "embedder", "text", "embedding")
_BOUND_FIELDS = _FILTER_FIELDS + _SEMANTIC_BOUND
_HEX32 = re.compile(rb"[0-9a-f]{32}")
_GLOB_SPECIAL = re.compile(r"([*?\[\]\\])")


def glob_escape(text: str) -> str:
    """Escape SCAN MATCH specials so a tenant like `a*` matches only itself."""
    return _GLOB_SPECIAL.sub(r"\\\1", text)


def _b(text: str) -> bytes:
    # surrogatepass: any Python str a caller passes must be storable.
    return text.encode("utf-8", "surrogatepass")


def _u(raw: Any) -> str:
    if raw is None:
        return ""
    return raw.decode("utf-8", "surrogatepass") if isinstance(raw, bytes) else str(raw)


class RedisEntries:
    """Entry <-> hash, for `RedisBackend` (codec, signature binding, vector dtype)."""

    codec: Codec
    _vector_dtype: str
    _limits: ServerLimits
    _parts: Partitions | None = None

    if TYPE_CHECKING:

        @property
        def index(self) -> IndexSpec | None: ...

    def partitions(self) -> Partitions:
        """The `part` tag digests, keyed as the index says (CACHE_HASH_SECRET)."""
        parts = self._parts
        if parts is None:
            spec = self.index
            parts = self._parts = Partitions(PART_KEY if spec is None else spec.part_key)
        return parts

    @staticmethod
    def check_of(material: bytes) -> str:
        return check_digest(material)

    def _mapping(self, entry: Entry, vectors: bool) -> dict[EncodableT, EncodableT]:
        check = entry.check if isinstance(entry.check, str) else entry.check.decode()
        m: dict[EncodableT, EncodableT] = {
            "check": check,
            "tenant": _b(entry.tenant),
            "user": _b(entry.user),
            "fn": entry.fn,
            "fn_name": _b(entry.fn_name),
            "created_at": int(entry.created_at),
        }
        if entry.text is not None:
            m["text"] = _b(entry.text)
        if entry.scope is not None:
            m["scope"] = entry.scope
        if entry.min_similarity > 0:
            m["min_sim"] = repr(float(entry.min_similarity))
        if entry.text_h is not None:
            m["text_h"] = entry.text_h
        if entry.embedding is not None and vectors and entry.embedder is not None:
            # A vector is stored only with its embedder: without the label no index
            # would hold it, and it could never be told apart from another space's.
            m["embedding"] = entry.embedding.astype(self._vector_dtype).tobytes()
            m["embedder"] = _b(entry.embedder)
            m["emb"] = embedder_tag(entry.embedder)
            m["part"] = self.partitions().tags(entry.tenant, entry.user, entry.fn, entry.scope)
        binding = b""
        if self.codec.signs:  # bound to exactly what is stored (see _SEMANTIC_BOUND)
            text_h, embedder, text, embedding = (_raw(m.get(f)) for f in _SEMANTIC_BOUND)
            binding = entry_binding(
                entry.key,
                check,
                entry.tenant,
                entry.user,
                entry.fn,
                entry.scope,
                text_h=text_h,
                embedder=embedder,
                text=text,
                embedding=embedding,
            )
        enc = self.codec.encode(entry.value, binding)  # CodecError: returned unstored
        m.update({"fmt": FORMAT_VERSION, "codec": enc.codec, "value": enc.payload})
        m["sum"] = enc.checksum
        if enc.sig is not None:
            m["sig"] = enc.sig
        self._limits.check(m)  # CodecError: over the server's own size limits
        return m

    def _binding(self, key: Any, check: Any, fields: list[Any]) -> bytes:
        """entry_binding() of an entry as read back (empty when not signing); `fields`:
        the raw values of _BOUND_FIELDS, in that order (None: absent)."""
        if not self.codec.signs:
            return b""
        tenant, user, fn, scope = (_u(x) for x in fields[: len(_FILTER_FIELDS)])
        text_h, embedder, text, embedding = (_raw(x) for x in fields[len(_FILTER_FIELDS) :])
        return entry_binding(
            _u(key),
            _u(check),
            tenant,
            user,
            fn,
            scope,
            text_h=text_h,
            embedder=embedder,
            text=text,
            embedding=embedding,
        )

    def _decode(self, fields: Callable[[str], Any], binding: bytes) -> Any:
        fmt, codec, value, sig, check_sum = (fields(f) for f in _READ_FIELDS[:_ENVELOPE])
        return self.codec.decode(fmt, codec, value, sig, check_sum, binding)

    def _stored(self, key: str, raw: list[Any]) -> Stored | None:
        if raw.count(None) == len(raw):  # a miss (C-speed: this runs on every read)
            return None
        check = raw[_ENVELOPE]
        binding = self._binding(key, check, raw[_ENVELOPE + 1 :])
        fmt, codec, payload, sig, check_sum = raw[:_ENVELOPE]
        value = self.codec.decode(fmt, codec, payload, sig, check_sum, binding)
        return Stored(value, _u(check) if check is not None else None)


def _command(client: redis.Redis, *args: Any) -> Any:
    """A raw command (redis-py leaves execute_command untyped)."""
    return client.execute_command(*args)  # type: ignore[no-untyped-call]


async def _acommand(client: redis.asyncio.Redis, *args: Any) -> Any:
    return await client.execute_command(*args)  # type: ignore[no-untyped-call]


def _raw(value: Any) -> bytes | None:
    """A field's bytes as stored (the server returns what HSET was given, as bytes)."""
    if value is None or isinstance(value, bytes):
        return value
    return str(value).encode("utf-8", "surrogatepass")


def _float_or_zero(raw: Any) -> float:
    """A stored `min_sim`; anything unreadable counts as none (0.0), never a crash."""
    if raw is None:
        return 0.0
    try:
        value = float(_u(raw))
    except ValueError:
        return 0.0
    return value if 0.0 <= value <= 2.0 else 0.0


def _bytes_keys(fields: dict[Any, Any]) -> dict[bytes, Any]:
    """A document's fields keyed by bytes (a client decoding responses gives str)."""
    if isinstance(next(iter(fields), b""), bytes):  # one client: all bytes or all str
        return fields
    return {k if isinstance(k, bytes) else str(k).encode(): v for k, v in fields.items()}


def _iter_docs(reply: Any) -> Iterator[tuple[Any, dict[bytes, Any]]]:
    """(key, fields by bytes name) of an FT.SEARCH reply, RESP2 list or redis-py >= 8
    dict form. The hit path: the RESP2 pairs become a dict at C speed (`zip`)."""
    if isinstance(reply, dict):
        docs: list[dict[Any, Any]] = reply.get(b"results") or reply.get("results") or []
        for doc in docs:
            key = doc.get(b"id") or doc.get("id")
            fields = doc.get(b"extra_attributes") or doc.get("extra_attributes") or {}
            yield key, _bytes_keys(fields)
        return
    if not isinstance(reply, list | tuple):
        return
    for i in range(1, len(reply) - 1, 2):
        flat = reply[i + 1]
        yield reply[i], _bytes_keys(dict(zip(flat[::2], flat[1::2], strict=False)))
