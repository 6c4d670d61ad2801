"""The exact read and the KNN query of a semantic lookup in one round trip.

A `@semantic_lookup` call first reads its own key (HMGET), then, when that misses,
searches (FT.SEARCH). When a function's exact reads keep missing (every call a paraphrase
or a new question: see `_memo_semantic.AHEAD_AFTER`), the two commands are written together
on one pooled connection and their two replies read back: one round trip instead of two.
On loopback that round trip was a third of a semantic hit at 1,000 entries
(benchmarks/peers.py: raw HMGET + FT.SEARCH 1.41x one FT.SEARCH, the two pipelined 1.08x).

This is redis-py's own pipeline protocol (`pack_commands`, one `send_packed_command`,
one `read_response` per command, the connection's retry policy), without the pipeline
object's command stack and callbacks, which cost as much as the round trip saved.

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


def _exchange(connection: Any, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
    connection.send_packed_command(connection.pack_commands(commands))
    return [_reply(connection) for _ in commands]


async def _aexchange(connection: Any, commands: tuple[tuple[Any, ...], ...]) -> list[Any]:
    await connection.send_packed_command(connection.pack_commands(commands))
    return [await _areply(connection) for _ in commands]


class ReadAhead:
    """`RedisBackend`'s combined read (a mixin; the cluster backend turns it off: its
    KNN runs on every primary, the key lives on one)."""

    reads_ahead = True

    if TYPE_CHECKING:
        client: redis.Redis
        _aclients: LoopBound[redis.asyncio.Redis]
        _index_ready: bool
        _read_fields: tuple[str, ...]

        def _knn_args(self, q: VectorQuery) -> list[Any]: ...
        def _neighbours(self, reply: Any, q: VectorQuery) -> list[Neighbour]: ...
        def _stored(self, key: str, raw: list[Any]) -> Stored | None: ...
        async def aclient(self) -> redis.asyncio.Redis: ...

    def _both_commands(self, key: str, query: VectorQuery) -> tuple[tuple[Any, ...], ...]:
        return (("HMGET", key, *self._read_fields), tuple(self._knn_args(query)))

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
        commands = self._both_commands(key, query)
        pool = self.client.connection_pool
        try:
            connection: Any = pool.get_connection()
        except redis.ConnectionError:
            return None
        try:
            replies = connection.retry.call_with_retry(
                lambda: _exchange(connection, commands), lambda _error: connection.disconnect()
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
        commands = self._both_commands(key, query)
        client = self._aclients.current()
        if client is None:
            client = await self.aclient()
        pool: Any = client.connection_pool
        try:
            connection: Any = await pool.get_connection()
        except redis.ConnectionError:
            return None
        try:
            replies = await connection.retry.call_with_retry(
                lambda: _aexchange(connection, commands), lambda _error: connection.disconnect()
            )
        except redis.ConnectionError:
            return None
        except BaseException:
            await connection.disconnect(nowait=True)  # as in get_knn
            raise
        finally:
            await pool.release(connection)
        return self._answers(key, query, replies)
