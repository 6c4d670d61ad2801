"""The exact read and the KNN query of a semantic lookup in one round trip.

A `@semantic_lookup` call first reads its own key (HMGET), then, when that misses,
searches (FT.SEARCH). When a function's exact reads keep missing (every call a paraphrase
or a new question: see `_memo_semantic.AHEAD_AFTER`), the two commands are written together
on one pooled connection and their two replies read back: one round trip instead of two.
On loopback that round trip was a third of a semantic hit at 1,000 entries
(benchmarks/peers.py: raw HMGET + FT.SEARCH 1.41x one FT.SEARCH, the two pipelined 1.08x).

This is redis-py's own pipeline protocol (one `send_packed_command`, one `read_response`
per command, the connection's retry policy), without the pipeline object's command stack
and callbacks, which cost as much as the round trip saved. The request is packed here
(`_Packer`: the same bytes as redis-py's `pack_commands`, a test pins them) into one
buffer: redis-py's packer costs more than the round trip's own work for the ~30 KNN
arguments, and hands a vector over its buffer cutoff (1536 floats) to the socket as a
chunk of its own, three writes (and as many server wake-ups) for one request.

Only the plain case is handled here. Anything else returns None and the caller does the
two steps the usual way, which knows what each failure means: an error reply (a key of
another type, a dropped index), a connection the server closed (a stale socket, a value
too large to send), an index not created yet. A timeout or a busy pool is raised, as a
read's would be. Any other exception between the send and the last reply (a signal
handler's, raised at any line: a soft time limit, an alarm) disconnects the connection
before it goes back to the pool: redis-py disconnects on what interrupts one of its
reads, not on what lands between them, and a reply still on its way would answer the
next command of any caller. A reply that arrives but does not decode (a damaged entry,
a neighbour with unreadable fields) is that half's exception: the other half still
counts, as in two steps, where a bad neighbour never hides the call's own entry.
"""

from __future__ import annotations

from collections.abc import Callable
from operator import attrgetter
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio

from ._base import Neighbour, ReadAndSearch, Stored, VectorQuery

if TYPE_CHECKING:
    from .._loopbound import LoopBound


def _reply(connection: Any) -> Any:
    """One reply; an error reply is returned, not raised: it is read whole, so the next
    reply on the connection is still in step."""
    try:
        return connection.read_response()
    except redis.ResponseError as exc:
        return exc


async def _areply(connection: Any) -> Any:
    try:
        return await connection.read_response()
    except redis.ResponseError as exc:
        return exc


def _exchange(connection: Any, request: bytes) -> list[Any]:
    connection.send_packed_command((request,))
    return [_reply(connection), _reply(connection)]


async def _aexchange(connection: Any, request: bytes) -> list[Any]:
    await connection.send_packed_command((request,))
    return [await _areply(connection), await _areply(connection)]


def _bulk(encoder: Any, arg: Any) -> bytes:
    """One argument as a RESP bulk string, encoded as redis-py encodes it."""
    raw = encoder.encode(arg)
    return b"$%d\r\n%s\r\n" % (len(raw), raw)


_SHAPES_KEPT = 256  # packed query shapes kept per backend (then all are forgotten)
# What of a VectorQuery the FT.SEARCH arguments are made of besides its vector (a test
# pins this to every other field of VectorQuery but those that say how the reply is
# read): with the index spec, the signing flag and the encoder, a shape.
SHAPE_FIELDS = (
    "tenant",
    "user",
    "fn",
    "scope",
    "embedder",  # not in the arguments today (one index per embedder): kept to be safe
    "text_h",
    "k",
    "with_values",
    "with_text",
    "with_created_at",
)
_shape_of = attrgetter(*SHAPE_FIELDS)
_Parts = tuple[tuple[Any, ...], bytes, tuple[Any, ...]]
_Packed = tuple[bytes, bytes, bytes]


class _Packer:
    """The HMGET + FT.SEARCH request of a combined read, packed as redis-py packs it.

    Everything but the key and the vector is the same for every call of one function
    with the same scope and user (the `part` filter): it is packed once per such shape
    (SHAPE_FIELDS and the encoder's settings) for one index spec (a packer serves one:
    the backend makes a new one when its spec changes). Bounded; a dict operation is
    atomic under the GIL and the values are immutable bytes (safe across threads and
    forks)."""

    __slots__ = ("_fields", "_shapes", "spec")

    def __init__(self, read_fields: tuple[str, ...], spec: Any) -> None:
        self._fields = read_fields
        self.spec = spec
        self._shapes: dict[tuple[Any, ...], _Packed] = {}

    def _pack(self, encoder: Any, before: tuple[Any, ...], after: tuple[Any, ...]) -> _Packed:
        """(HMGET up to its key, the rest of HMGET and FT.SEARCH up to its vector, the
        rest of FT.SEARCH)."""
        return (
            b"*%d\r\n" % (2 + len(self._fields)) + _bulk(encoder, "HMGET"),
            b"".join(_bulk(encoder, f) for f in self._fields)
            + b"*%d\r\n" % (len(before) + 1 + len(after))
            + b"".join(_bulk(encoder, a) for a in before),
            b"\r\n" + b"".join(_bulk(encoder, a) for a in after),
        )

    def request(
        self,
        encoder: Any,
        key: str,
        query: VectorQuery,
        parts: Callable[[VectorQuery], _Parts],
        vector_of: Callable[[VectorQuery], bytes],
    ) -> bytes:
        shape = (encoder.encoding, encoder.encoding_errors, *_shape_of(query))
        packed = self._shapes.get(shape)
        if packed is None:
            before, vector, after = parts(query)
            packed = self._pack(encoder, before, after)
            if len(self._shapes) >= _SHAPES_KEPT:
                self._shapes.clear()
            self._shapes[shape] = packed
        else:
            vector = vector_of(query)
        head, middle, tail = packed
        return b"".join((head, _bulk(encoder, key), middle, b"$%d\r\n" % len(vector), vector, tail))


class ReadAhead:
    """`RedisBackend`'s combined read (a mixin; the cluster backend turns it off: its
    KNN runs on every primary, the key lives on one)."""

    reads_ahead = True

    if TYPE_CHECKING:
        client: redis.Redis
        _aclients: LoopBound[redis.asyncio.Redis]
        _index_ready: bool
        _read_fields: tuple[str, ...]

        @property
        def index(self) -> Any: ...
        def _knn_parts(self, q: VectorQuery) -> _Parts: ...
        def _knn_vector(self, q: VectorQuery) -> bytes: ...
        def _neighbours(self, reply: Any, q: VectorQuery) -> list[Neighbour]: ...
        def _stored(self, key: str, raw: list[Any]) -> Stored | None: ...
        async def aclient(self) -> redis.asyncio.Redis: ...

    _packer: _Packer | None = None

    def _request(self, encoder: Any, key: str, query: VectorQuery) -> bytes:
        """The two commands, packed into one buffer (see `_Packer`)."""
        packer = self._packer
        spec = self.index
        if packer is None or packer.spec is not spec:
            packer = self._packer = _Packer(self._read_fields, spec)
        return packer.request(encoder, key, query, self._knn_parts, self._knn_vector)

    def _answers(self, key: str, query: VectorQuery, replies: list[Any]) -> ReadAndSearch | None:
        raw, reply = replies
        if isinstance(raw, redis.ResponseError) or isinstance(reply, redis.ResponseError):
            return None  # the two-step path tells a foreign key from a dropped index
        stored: Stored | Exception | None
        found: list[Neighbour] | Exception
        try:
            stored = self._stored(key, list(raw))
        except Exception as exc:  # `get` would raise it; the neighbours still count
            stored = exc
        try:
            found = self._neighbours(reply, query)
        except Exception as exc:  # `knn` would raise it; the call's own entry still wins
            found = exc
        return stored, found

    def get_knn(self, key: str, query: VectorQuery) -> ReadAndSearch | None:
        """`get(key)` and `knn(query)` in one round trip, or None: not done (see the
        module docstring; the caller then reads and searches in two steps). Raises
        redis.TimeoutError and the pool's errors like `get`."""
        if not self._index_ready:
            return None
        pool = self.client.connection_pool
        try:
            connection: Any = pool.get_connection()
        except redis.ConnectionError:
            return None
        try:
            request = self._request(connection.encoder, key, query)
            replies = connection.retry.call_with_retry(
                lambda: _exchange(connection, request), lambda _error: connection.disconnect()
            )
        except redis.ConnectionError:
            return None
        except BaseException:
            connection.disconnect()  # replies may be on their way (module doc)
            raise
        finally:
            pool.release(connection)
        return self._answers(key, query, replies)

    async def aget_knn(self, key: str, query: VectorQuery) -> ReadAndSearch | None:
        if not self._index_ready:
            return None
        client = self._aclients.current()
        if client is None:
            client = await self.aclient()
        pool: Any = client.connection_pool
        try:
            connection: Any = await pool.get_connection()
        except redis.ConnectionError:
            return None
        try:
            request = self._request(connection.encoder, key, query)
            replies = await connection.retry.call_with_retry(
                lambda: _aexchange(connection, request), lambda _error: connection.disconnect()
            )
        except redis.ConnectionError:
            return None
        except BaseException:
            await connection.disconnect(nowait=True)  # as in get_knn
            raise
        finally:
            await pool.release(connection)
        return self._answers(key, query, replies)
