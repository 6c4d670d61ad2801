"""Reading and rewriting the packed `meta` field of a stored entry, as someone with
write access to the server would (for the corruption and forgery tests)."""

from __future__ import annotations

from typing import Any

from pmm_memo.backends._entry_meta import SEP, Meta, unpack_meta


def read_meta(client: Any, key: Any) -> Meta:
    meta = unpack_meta(client.hget(key, "meta"))
    assert meta is not None, f"{key!r} has no meta field"
    return meta


def write_meta(client: Any, key: Any, **parts: bytes) -> None:
    """Replace some of `key`'s meta parts (`fmt=b"9"`, `check=b"..."`...), keep the rest."""
    meta = read_meta(client, key)._replace(**parts)
    client.hset(key, "meta", SEP.join(meta))


def as_format_1(client: Any, key: Any) -> None:
    """Rewrite `key` exactly as pmm_memo wrote entries before `meta` (entry format 1):
    every envelope and identity field on its own, `fmt` 1 and format 1's checksum."""
    import xxhash

    meta = read_meta(client, key)
    value = client.hget(key, "value")
    fields = {
        "fmt": b"1",
        "codec": meta.codec,
        "sum": xxhash.xxh3_64_hexdigest(b"1\x00" + meta.codec + b"\x00" + value).encode(),
        "check": meta.check,
        "fn": meta.fn,
        "fn_name": meta.fn_name,
    }
    if meta.sig:
        fields["sig"] = meta.sig
    if meta.scope:
        fields["scope"] = meta.scope
    if meta.embedder:
        fields["embedder"] = meta.embedder
    client.hdel(key, "meta")
    client.hset(key, mapping=fields)
