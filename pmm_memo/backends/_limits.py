"""What a Redis server refuses because of one entry, so that it is that entry's problem
(returned uncached, counted `uncacheable` or `corrupt`) and never looks like an outage.

Sizes. Redis and Valkey refuse a request with an argument longer than
`proto-max-bulk-len` (default 512 MB, often lowered: `--proto-max-bulk-len 1mb`) or a
query longer than `client-query-buffer-limit` (default 1 GB). They answer
"ERR Protocol error: invalid bulk length" and close the connection, so the client sees
either that reply (a ResponseError) or, when the close comes while it is still sending,
a broken pipe (a ConnectionError, which would open the circuit breaker and turn every
cached key into a miss for CACHE_BREAKER_INTERVAL). So:
- the limits are asked once, with CONFIG GET, before the first write, and an entry over
  them is never sent (CodecError: returned uncached);
- where CONFIG is refused (an ACL without `+config|get`, a renamed CONFIG, a managed
  service), a connection lost while sending an entry of at least `MIN_SERVER_LIMIT`
  bytes, to a server that then answers PING, is that entry's refusal: the size is
  remembered and no entry that large is sent again by this process. Neither limit can be
  set below 1 MB, so a smaller entry is never refused for its size and a lost connection
  while sending it stays an outage.

Replies. A server with `client-output-buffer-limit normal <hard> ...` (default 0: no
limit) closes the connection instead of sending a reply over `hard` bytes: an entry that
large could be written but never read, and every read of it would look like an outage.
So such an entry is not written (CodecError), and one found anyway (written under
another limit, or by a process that could not ask) is, when a read of it loses the
connection while the server answers PING and its stored value is over the limit (or,
with the limit unknown, at least `MIN_SERVER_LIMIT`), that entry's problem: `corrupt`,
removed, and its size remembered like a refused write's.

Types. A key of another type at an entry's key (another program SET a string there)
makes HMGET answer WRONGTYPE: that entry is unreadable (`corrupt`, a miss; the write of
the recomputed result replaces it, UNLINK first), not a failed server, and in a batch
of reads it must not hide the other keys' entries.

Sources: redis.conf / valkey.conf ("proto-max-bulk-len", "client-query-buffer-limit",
both with a 1mb minimum; "client-output-buffer-limit"), the RESP protocol spec (bulk
strings), CONFIG GET.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import redis
import redis.asyncio
from redis.typing import EncodableT

from .._errors import CodecError

logger = logging.getLogger("pmm_memo")

# The smallest value either limit accepts (CONFIG SET refuses less): a request shorter
# than this is never refused for its size.
MIN_SERVER_LIMIT = 1024 * 1024
# Room for what a write sends besides the fields: the key, the TTL, the field names, the
# script SHA and RESP framing (a few hundred bytes; generous on purpose).
HEADROOM = 64 * 1024


_LIMITS = ("proto-max-bulk-len", "client-query-buffer-limit", "client-output-buffer-limit")


def _config(reply: Any, name: str) -> list[str]:
    """A CONFIG GET reply's values of `name`, one per node that answered (a cluster
    client may answer per node, {node: {name: value}})."""
    values: list[str] = []
    if isinstance(reply, dict):
        for key, value in reply.items():
            if isinstance(value, dict):  # per node
                values += [_text(v) for k, v in value.items() if _text(k) == name]
            elif _text(key) == name:
                values.append(_text(value))
    return values


def _smallest(values: list[str]) -> int | None:
    """The smallest positive integer among `values` (None: none; 0 means "no limit")."""
    parsed = [int(v) for v in values if v.strip().isdigit() and int(v) > 0]
    return min(parsed) if parsed else None


def _normal_hard_limit(value: str) -> str:
    """`client-output-buffer-limit` is "normal <hard> <soft> <seconds> replica ...":
    the hard limit of normal clients, in bytes ("0": none)."""
    words = value.split()
    return words[words.index("normal") + 1] if "normal" in words[:-1] else "0"


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def entry_size(mapping: Mapping[EncodableT, EncodableT]) -> tuple[int, int]:
    """(largest field value, all field values) in bytes as sent."""
    largest = total = 0
    for value in mapping.values():
        if isinstance(value, bytes):
            size = len(value)
        elif isinstance(value, str):
            size = len(value) if value.isascii() else len(value.encode("utf-8", "surrogatepass"))
        else:
            size = 32  # a number
        largest = max(largest, size)
        total += size
    return largest, total


class ServerLimits:
    """One server's request limits in bytes (None: not known), and the smallest entry it
    was seen to refuse. Plain data: a forked child keeps what its parent learned."""

    def __init__(self) -> None:
        self.learned = False
        self.bulk: int | None = None  # proto-max-bulk-len
        self.query: int | None = None  # client-query-buffer-limit
        self.reply: int | None = None  # client-output-buffer-limit, normal, hard
        self.refused: int | None = None  # bytes of the smallest entry refused

    def learn(self, client: Any, where: str) -> None:
        """Ask the server once. A refusal (ACL, renamed CONFIG) is an answer: the limits
        stay unknown. A connection failure is not: it propagates (the write it precedes
        fails the same way, at the cost of one timeout, not two) and is asked again."""
        try:
            replies = [client.config_get(name) for name in _LIMITS]
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            raise
        except redis.RedisError as exc:  # NOPERM, unknown command, a proxy's refusal
            self._unknown(where, exc)
            return
        self._take(replies, where)

    async def alearn(self, client: Any, where: str) -> None:
        """`learn` with an asyncio client (the loop's own: no second client is built)."""
        try:
            replies = [await client.config_get(name) for name in _LIMITS]
        except (redis.ConnectionError, redis.TimeoutError, OSError):
            raise
        except redis.RedisError as exc:
            self._unknown(where, exc)
            return
        self._take(replies, where)

    def _unknown(self, where: str, exc: BaseException) -> None:
        logger.info(
            "%s does not answer CONFIG GET (%s): its size limits are learned from "
            "the first entry it refuses",
            where,
            exc,
        )
        self.learned = True

    def _take(self, replies: list[Any], where: str) -> None:
        bulk, query, output = (_config(r, n) for r, n in zip(replies, _LIMITS, strict=True))
        self.bulk, self.query = _smallest(bulk), _smallest(query)
        self.reply = _smallest([_normal_hard_limit(v) for v in output])
        self.learned = True
        logger.debug(
            "%s: proto-max-bulk-len=%s, client-query-buffer-limit=%s, normal "
            "client-output-buffer-limit=%s",
            where,
            self.bulk,
            self.query,
            self.reply,
        )

    def check(self, mapping: Mapping[EncodableT, EncodableT]) -> int:
        """The entry's size in bytes; CodecError when this server would refuse it."""
        largest, total = entry_size(mapping)
        if self.bulk is not None and largest > self.bulk:  # a limit per argument
            raise CodecError(
                f"a {largest}-byte field is over the server's proto-max-bulk-len "
                f"({self.bulk} bytes)"
            )
        if self.reply is not None and self.reply < total + HEADROOM:
            raise CodecError(
                f"a {total}-byte entry could not be read back: the server closes "
                f"connections whose reply passes its client-output-buffer-limit for normal "
                f"clients ({self.reply} bytes, less {HEADROOM} for the rest of the reply)"
            )
        if self.query is not None and self.query < total + HEADROOM:
            raise CodecError(
                f"a {total}-byte entry is over the server's client-query-buffer-limit "
                f"({self.query} bytes, less {HEADROOM} for the rest of the command)"
            )
        if self.refused is not None and total >= self.refused:
            raise CodecError(
                f"a {total}-byte entry: the server refused one of {self.refused} bytes"
            )
        return total

    def may_refuse(self, size: int) -> bool:
        """Could a server refuse an entry of `size` bytes for its size?"""
        return size + HEADROOM >= MIN_SERVER_LIMIT

    def refused_size(self, size: int, exc: BaseException) -> CodecError:
        """Remember that an entry of `size` bytes was refused; the error to raise."""
        if self.refused is None or size < self.refused:
            self.refused = size
        return CodecError(f"the server refused a {size}-byte entry ({exc})")

    def unsendable(self, size: int) -> bool:
        """Could the server refuse to send a reply holding a `size`-byte value?"""
        if self.reply is not None:
            return size + HEADROOM > self.reply
        return self.may_refuse(size)


# Error replies that mean "this request is too big for this server" (see module doc).
_SIZE_REFUSALS = ("invalid bulk length", "invalid multibulk length", "query buffer")


def size_refusal(exc: redis.ResponseError) -> bool:
    """Did the server refuse this write for the entry's size?"""
    text = str(exc).lower()
    return any(marker in text for marker in _SIZE_REFUSALS)


def wrong_type(exc: BaseException) -> bool:
    """Is this the server saying the key holds another type (not a cache entry)?"""
    return isinstance(exc, redis.ResponseError) and str(exc).startswith("WRONGTYPE")


def foreign_key(key: str, exc: BaseException) -> CodecError:
    """The entry error for a key of another type."""
    return CodecError(f"{key} holds another type of value, not a cache entry ({exc})")


class RedisRefusals:
    """Learning the limits and telling a refused entry from an outage, for `RedisBackend`."""

    client: redis.Redis
    _limits: ServerLimits
    _read_fields: tuple[str, ...]

    if TYPE_CHECKING:

        def url_masked(self) -> str: ...

        async def aclient(self) -> redis.asyncio.Redis: ...

    def _learn_limits(self) -> None:
        """Ask the server its request limits, once (see _limits)."""
        if not self._limits.learned:
            self._limits.learn(self.client, self.url_masked())

    def _refused(self, exc: redis.RedisError, size: int) -> CodecError | None:
        """The entry's error when the server refused a write of `size` bytes for its size
        (see _limits); None when `exc` says something about the server instead. A lost
        connection is the entry's fault only if the entry could be over a limit and the
        server answers PING right after."""
        if isinstance(exc, redis.ResponseError):
            return self._limits.refused_size(size, exc) if size_refusal(exc) else None
        if not self._limits.may_refuse(size):
            return None
        try:
            answers = bool(self.client.ping())
        except redis.RedisError:
            return None
        return self._limits.refused_size(size, exc) if answers else None

    async def _arefused(self, exc: redis.RedisError, size: int) -> CodecError | None:
        if isinstance(exc, redis.ResponseError):
            return self._limits.refused_size(size, exc) if size_refusal(exc) else None
        if not self._limits.may_refuse(size):
            return None
        try:
            answers = bool(await (await self.aclient()).ping())
        except redis.RedisError:
            return None
        return self._limits.refused_size(size, exc) if answers else None

    async def _alearn_limits(self) -> None:
        if not self._limits.learned:
            await self._limits.alearn(await self.aclient(), self.url_masked())

    def _hmget(self, key: str) -> list[Any]:
        """An entry's read fields; CodecError when the entry, not the server, is the
        problem (a key of another type; a value the server will not send)."""
        try:
            return list(self.client.hmget(key, self._read_fields))
        except redis.ResponseError as exc:
            if wrong_type(exc):
                raise foreign_key(key, exc) from exc
            raise
        except redis.ConnectionError as exc:
            try:
                size = int(self.client.hstrlen(key, "value")) if self.client.ping() else 0
            except redis.RedisError:
                raise exc from None
            if not self._limits.unsendable(size):
                raise
            self._limits.refused_size(size, exc)
            self.client.unlink(key)  # it can never be read: gone, like any corrupt entry
            raise _unsendable(key, size, exc) from exc

    async def _aunreadable(
        self, key: str, client: redis.asyncio.Redis, exc: redis.RedisError
    ) -> CodecError | None:
        """`_hmget`'s judgement for asyncio reads (kept out of the hit path): the entry's
        error, or None when `exc` says something about the server."""
        if isinstance(exc, redis.ResponseError):
            return foreign_key(key, exc) if wrong_type(exc) else None
        try:
            size = int(await client.hstrlen(key, "value")) if await client.ping() else 0
            if not self._limits.unsendable(size):
                return None
            await client.unlink(key)
        except redis.RedisError:
            return None
        self._limits.refused_size(size, exc)
        return _unsendable(key, size, exc)


def _unsendable(key: str, size: int, exc: BaseException) -> CodecError:
    return CodecError(
        f"{key}: the server closes the connection instead of sending its {size}-byte "
        f"value (client-output-buffer-limit?); removed ({exc})"
    )
