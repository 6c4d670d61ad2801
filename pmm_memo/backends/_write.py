"""One entry written as one server-side command: a Lua script that replaces the hash and
sets its TTL.

Why a script: the transaction it replaces (MULTI, UNLINK, HSET, PEXPIRE, EXEC) is five
commands for the client to pack and seven replies to parse, which was most of a miss's
client CPU (and slower still in `redis.asyncio`). The script keeps every guarantee of the
transaction: it runs atomically, so no reader ever sees the key without its TTL or with
a field left over from the entry it replaces (UNLINK first), and a crash cannot split it.

Servers that refuse scripts (an ACL without `@scripting`, a proxy without EVAL, a server
older than Redis 7) get the
transaction instead, decided once per backend at the first refusal: a write never fails
because scripts are unavailable. NOSCRIPT (a restarted or flushed script cache) is
answered with EVAL, which also reloads the script.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from typing import Any

import redis
import redis.asyncio
from redis.typing import EncodableT

# ARGV: ttl_ms, then field name, value, name, value... (HSET's own arguments, passed on
# as they are). The shebang (Redis >= 7, Valkey) makes the server check maxmemory before
# the script runs, as it does for HSET: without it a script's writes would go past a
# noeviction limit.
SCRIPT = """#!lua
local key = KEYS[1]
redis.call('UNLINK', key)
redis.call('HSET', key, unpack(ARGV, 2))
return redis.call('PEXPIRE', key, ARGV[1])
"""
SHA = hashlib.sha1(SCRIPT.encode(), usedforsecurity=False).hexdigest()


def _refused(exc: redis.ResponseError) -> bool:
    """Does the server refuse scripts as such (rather than fail this one write)?"""
    if isinstance(exc, redis.exceptions.NoPermissionError):  # redis-py strips "NOPERM"
        return True
    text = str(exc).lower()
    # "compiling": a server older than Redis 7 that does not know the shebang.
    return "noperm" in text or "unknown command" in text or "error compiling script" in text


def _args(key: str, mapping: Mapping[EncodableT, EncodableT], ttl_ms: int) -> list[Any]:
    """EVALSHA arguments after the SHA: name/value pairs, large values last (redis-py
    re-copies its output buffer for every argument until it passes 6 KB, so a large
    value early would be copied once per later argument).

    Why pairs rather than the names in one argument for the script to split: splitting
    them in Lua (a pattern match and a table built per write) cost the server more
    (~5 µs of ~20 µs a write) than the extra arguments cost the client to pack."""
    small: list[EncodableT] = []
    big: list[EncodableT] = []
    for field, value in mapping.items():
        if isinstance(value, bytes | str) and len(value) > 64:
            big += (field, value)
        else:
            small += (field, value)
    return [1, key, ttl_ms, *small, *big]


def _transaction(pipe: Any, key: str, mapping: Mapping[EncodableT, EncodableT], ttl_ms: int) -> Any:
    """The script's commands queued on a MULTI/EXEC pipeline (sync or async): the
    fallback for servers that refuse scripts."""
    pipe.unlink(key)
    pipe.hset(key, mapping=dict(mapping))
    pipe.pexpire(key, ttl_ms)
    return pipe


class EntryWriter:
    """Writes one entry (UNLINK + HSET + PEXPIRE, atomically) with one command."""

    def __init__(self) -> None:
        self.scripts = True  # False once the server refused them

    def write(
        self, client: redis.Redis, key: str, mapping: Mapping[EncodableT, EncodableT], ttl_ms: int
    ) -> None:
        if self.scripts:
            args = _args(key, mapping, ttl_ms)
            try:
                client.execute_command("EVALSHA", SHA, *args)  # type: ignore[no-untyped-call]
                return
            except redis.exceptions.NoScriptError:
                client.execute_command("EVAL", SCRIPT, *args)  # type: ignore[no-untyped-call]
                return
            except redis.ResponseError as exc:
                if not _refused(exc):
                    raise
                self.scripts = False
        _transaction(client.pipeline(transaction=True), key, mapping, ttl_ms).execute()

    async def awrite(
        self,
        client: redis.asyncio.Redis,
        key: str,
        mapping: Mapping[EncodableT, EncodableT],
        ttl_ms: int,
    ) -> None:
        if self.scripts:
            args = _args(key, mapping, ttl_ms)
            try:
                await client.execute_command("EVALSHA", SHA, *args)  # type: ignore[no-untyped-call]
                return
            except redis.exceptions.NoScriptError:
                await client.execute_command("EVAL", SCRIPT, *args)  # type: ignore[no-untyped-call]
                return
            except redis.ResponseError as exc:
                if not _refused(exc):
                    raise
                self.scripts = False
        await _transaction(client.pipeline(transaction=True), key, mapping, ttl_ms).execute()
