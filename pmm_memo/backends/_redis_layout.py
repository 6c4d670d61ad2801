"""The layout of a Redis cache entry and how it is written and read back.

An entry is a hash at `cache:<tenant>:<qhash>`: the seed's `text`, `tenant`, `user`,
`created_at`, `embedding`, plus `value` (the encoded result, see `_codec`), `meta` (the
envelope and identity packed into one field: format, codec, checksum, signature, check
digest, function tag and name, scope, embedder label; see `_entry_meta`), `text_h`
(digest of the whole normalised text, see `_semantic`), `min_sim` (feedback), and with a
vector only: `emb` (the embedder label's digest, which the FILTER of that embedder's
index matches) and `part` (the search filter's digests, see `_index`). Only fields the
server indexes or updates itself stand alone.

`RedisEntries` (a mixin of `RedisBackend`) turns an `Entry` into that hash and a reply
back into a verified value; the helpers here are shared by the search and cluster code.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import partial
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio
from redis.typing import EncodableT

from .._codec import FORMAT_VERSION, Codec, entry_binding
from .._digests import PART_KEY, Partitions, check_digest
from .._embedder_id import embedder_tag
from .._errors import CodecError
from ._base import Entry, Neighbour, Stored, VectorQuery
from ._entry_meta import NO_META, Meta, pack_meta, unpack_meta
from ._limits import ServerLimits

if TYPE_CHECKING:
    from ._index import IndexSpec

_READ_FIELDS = ("meta", "value")  # what an exact read needs (unsigned)
_FILTER_FIELDS = ("tenant", "user")  # re-checked on every hit, with meta's fn and scope
_MATCH_FIELDS = ("text_h", "meta")  # read by the matcher (see _candidates)
_TEXT_FIELDS = ("text",)
_PEOPLE_FIELDS = ("created_at",)  # VectorQuery.with_created_at
_FEEDBACK_FIELDS = ("min_sim",)  # Entry.min_similarity
# Signed (with the value) when signing: every field that could turn a miss into a hit,
# besides those inside `meta` (check, fn, scope, embedder: see `entry_binding`).
# `min_sim` is not: report_wrong_hit's script raises it server-side (no key there), it
# only ever makes hits rarer, and lowering it only restores the writer's own threshold
# for this (still fully verified) entry; it never makes an altered entry servable.
_SEMANTIC_BOUND = ("text_h", "text", "embedding")
_BOUND_FIELDS = _FILTER_FIELDS + _SEMANTIC_BOUND
_BOUND_KEYS = tuple(f.encode() for f in _BOUND_FIELDS)  # reply fields are keyed by bytes
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
        check = entry.check if isinstance(entry.check, bytes) else entry.check.encode()
        m: dict[EncodableT, EncodableT] = {
            "tenant": _b(entry.tenant),
            "user": _b(entry.user),
            "created_at": int(entry.created_at),
        }
        if entry.text is not None:
            m["text"] = _b(entry.text)
        if entry.min_similarity > 0:
            m["min_sim"] = repr(float(entry.min_similarity))
        if entry.text_h is not None:
            m["text_h"] = entry.text_h
        embedder = None
        if entry.embedding is not None and vectors and entry.embedder is not None:
            # A vector is stored only with its embedder: without the label no index
            # would hold it, and it could never be told apart from another space's.
            m["embedding"] = entry.embedding.astype(self._vector_dtype).tobytes()
            embedder = _b(entry.embedder)
            m["emb"] = embedder_tag(entry.embedder)
            m["part"] = self.partitions().tags(entry.tenant, entry.user, entry.fn, entry.scope)
        binding = b""
        if self.codec.signs:  # bound to exactly what is stored (see _SEMANTIC_BOUND)
            text_h, text, embedding = (_raw(m.get(f)) for f in _SEMANTIC_BOUND)
            binding = entry_binding(
                entry.key,
                check.decode(),
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
        m["meta"] = pack_meta(
            FORMAT_VERSION,
            enc.codec,
            enc.checksum,
            enc.sig,
            check,
            _b(entry.fn),
            None if entry.scope is None else _b(entry.scope),
            embedder,
            _b(entry.fn_name),
        )
        m["value"] = enc.payload
        self._limits.check(m)  # CodecError: over the server's own size limits
        return m

    def _binding(self, key: Any, meta: Meta, fields: list[Any]) -> bytes:
        """entry_binding() of an entry as read back (empty when not signing); `fields`:
        the raw values of _BOUND_FIELDS, in that order (None: absent)."""
        if not self.codec.signs:
            return b""
        tenant, user = (_u(x) for x in fields[: len(_FILTER_FIELDS)])
        text_h, text, embedding = (_raw(x) for x in fields[len(_FILTER_FIELDS) :])
        return entry_binding(
            _u(key),
            _u(meta.check),
            tenant,
            user,
            _u(meta.fn),
            _u(meta.scope),
            text_h=text_h,
            embedder=meta.embedder or None,
            text=text,
            embedding=embedding,
        )

    def _decode(self, key: Any, meta: Meta, value: Any, bound: list[Any]) -> Any:
        """The verified value of an entry read back: `meta` unpacked, `value` as stored,
        `bound` the raw _BOUND_FIELDS (read only when signing). Raises CodecError."""
        binding = self._binding(key, meta, bound)
        return self.codec.decode(
            meta.fmt, meta.codec, value, meta.sig or None, meta.checksum, binding
        )

    def _neighbour(
        self, key: Any, similarity: float, f: dict[bytes, Any], q: VectorQuery
    ) -> Neighbour:
        """A KNN result from its fields (by bytes name: the search reply's, or the
        cluster's own read), its value verified when the query asks for values. A
        neighbour whose fields are not UTF-8 (damage, or a foreign writer) is a corrupt
        one in its place: never served, and it fails no other neighbour's search."""
        try:
            return self._read_neighbour(key, similarity, f, q)
        except UnicodeDecodeError:
            name = key.decode("utf-8", "replace") if isinstance(key, bytes) else str(key)
            return Neighbour(name, similarity, "", "", None, None, None, None, corrupt=True)

    def _read_neighbour(
        self, key: Any, similarity: float, f: dict[bytes, Any], q: VectorQuery
    ) -> Neighbour:
        get = f.get
        text, created_at = get(b"text"), get(b"created_at")
        # No `meta`: an entry of the previous format, never a candidate (no function,
        # scope or embedder to match) until its own miss rewrites it.
        meta = unpack_meta(get(b"meta"))
        n = Neighbour(
            key=_u(key),
            similarity=similarity,
            tenant=_u(get(b"tenant")),
            user=_u(get(b"user")),
            fn=None if meta is None else _u(meta.fn) or None,
            scope=None if meta is None else _u(meta.scope) or None,
            text=None if text is None or not q.with_text else _u(text),
            created_at=float(created_at) if created_at else None,
            min_similarity=_float_or_zero(get(b"min_sim")),
            text_h=_u(get(b"text_h")) or None,
            embedder=None if meta is None else _u(meta.embedder) or None,
        )
        if q.with_values:
            if meta is None:
                n.corrupt = True
                return n
            bound = [get(x) for x in _BOUND_KEYS]
            if q.lazy_values:
                n.pending = partial(self._decode, key, meta, get(b"value"), bound)
            else:
                try:
                    n.value = self._decode(key, meta, get(b"value"), bound)
                except CodecError:
                    n.corrupt = True
            n.check = _u(meta.check) or None
        return n

    def _entry(self, key: str, reply: dict[Any, Any]) -> Entry | None:
        """The whole entry from its HGETALL reply (`fetch`). Raises CodecError for any
        damage (a field that is not UTF-8, a number or a vector that does not read): one
        error type for a bad entry, as `get` raises, whatever field it is in."""
        try:
            return self._read_entry(key, reply)
        except ValueError as exc:  # UnicodeDecodeError is one
            raise CodecError(f"{key}: a stored field does not read back ({exc})") from exc

    def _read_entry(self, key: str, reply: dict[Any, Any]) -> Entry | None:
        raw: dict[str, bytes] = {_u(k): v for k, v in reply.items()}
        if not raw:
            return None
        meta = present_meta(raw.get("meta"))
        if meta is None:  # the previous format: absent for this one, as in `get`
            return None
        value = self._decode(key, meta, raw.get("value"), [raw.get(f) for f in _BOUND_FIELDS])
        emb = raw.get("embedding")
        vector = None
        if emb:
            import numpy as np

            vector = np.frombuffer(emb, dtype=self._vector_dtype).astype(np.float32)
        return Entry(
            key=key,
            value=value,
            check=_u(meta.check),
            tenant=_u(raw.get("tenant")),
            user=_u(raw.get("user")),
            fn=_u(meta.fn),
            fn_name=_u(meta.fn_name),
            created_at=float(_u(raw.get("created_at")) or 0),
            text=_u(raw["text"]) if "text" in raw else None,
            scope=_u(meta.scope) or None,
            embedding=vector,
            min_similarity=_float_or_zero(raw.get("min_sim")),
            text_h=_u(raw.get("text_h")) or None,
            embedder=_u(meta.embedder) or None,
        )

    def _stored(self, key: str, raw: list[Any]) -> Stored | None:
        """An exact read's verified value (None: a miss, see `present_meta`). Raises
        CodecError, also for fields that are not UTF-8 (damage: counted corrupt)."""
        meta = present_meta(raw[0])
        if meta is None:
            return None
        try:
            value = self._decode(key, meta, raw[1], raw[2:])
            return Stored(value, _u(meta.check))
        except UnicodeDecodeError as exc:
            raise CodecError(f"{key}: a stored field is not UTF-8 ({exc.reason})") from exc


def present_meta(raw: Any) -> Meta | None:
    """The `meta` of an entry read by key. None when it has none: absent, or an entry of
    the previous format (one field each), which that miss's own store rewrites. A `meta`
    that does not unpack is damage: CodecError, like any other."""
    meta = unpack_meta(raw)
    if meta is None and raw is not None:
        raise CodecError(NO_META)
    return meta


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
        if flat is None:
            continue  # its key expired while the search ran: a null array, no entry
        pairs = iter(flat)  # field, value, field, value...: a dict without two slices
        yield reply[i], _bytes_keys(dict(zip(pairs, pairs, strict=False)))
