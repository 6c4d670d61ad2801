"""Tenants whose names hold a hash tag: the server's own slot rule, one warning per tenant
on a cluster (none on a single server), and correct caching either way."""

from __future__ import annotations

import logging

import pytest
from redis.crc import key_slot

from pmm_memo import CacheManager, cached
from pmm_memo.backends._cluster_tags import hash_tag
from tests.conftest import make_cache
from tests.support.servers import ValkeyCluster

HEX = "0123456789abcdef" * 2

# (tenant, the tag its keys carry or None)
TENANTS = [
    ("acme{eu}", "eu"),
    ("{acme}", "acme"),
    ("a{b}{c}", "b"),
    ("{{a}}", "{a"),
    ("t{ü}", "ü"),
    ("{}", None),  # empty: the whole key is hashed
    ("a{", None),  # no closing brace in the key at all
    ("}x{", None),
    ("x}|@tenant:{*", None),
    ("plain", None),
]


@pytest.mark.parametrize(("tenant", "tag"), TENANTS)
def test_hash_tag_follows_the_servers_slot_rule(
    tenant: str, tag: str | None, cluster_server: ValkeyCluster
) -> None:
    key = f"cache:{tenant}:{HEX}"
    assert hash_tag(key) == tag
    hashed = (tag if tag is not None else key).encode()
    with cluster_server.nodes[0].client() as c:
        assert int(c.execute_command("CLUSTER KEYSLOT", key)) == key_slot(hashed)


def _warnings(caplog: pytest.LogCaptureFixture) -> list[str]:
    return [r.getMessage() for r in caplog.records if "hash tag" in r.getMessage()]


def test_tagged_tenant_is_warned_once_and_still_cached(
    cluster_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    cache = make_cache("redis", cluster_url)

    @cached(tenant="acme{eu}", cache=cache)
    def pinned(x: int) -> int:
        return x * 3

    @cached(tenant="x}|@tenant:{*", cache=cache)
    def spread(x: int) -> int:
        return x * 5

    for _ in range(2):
        assert [pinned(i) for i in range(40)] == [i * 3 for i in range(40)]
        assert [spread(i) for i in range(40)] == [i * 5 for i in range(40)]
    assert pinned.cache_info().hits == 40 and spread.cache_info().hits == 40
    manager = CacheManager(cache=cache)
    manager.put_cache("acme{eu}", None, "k", "some text")  # same tenant: no second warning
    manager.put_cache("{b2b}", None, "k", "some text")
    warned = _warnings(caplog)
    assert len(warned) == 2
    assert "'acme{eu}'" in warned[0] and "{eu}" in warned[0]
    assert f"slot {key_slot(b'eu')}" in warned[0]
    assert "without a {...} pair" in warned[0]
    assert "'{b2b}'" in warned[1]
    # What the warning is about: one slot for the tagged tenant, many for the other.
    assert {key_slot(pinned.cache_key(i).encode()) for i in range(40)} == {key_slot(b"eu")}
    assert len({key_slot(spread.cache_key(i).encode()) for i in range(40)}) > 30
    cache.close()


def test_single_server_does_not_warn(redis_url: str, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="pmm_memo")
    cache = make_cache("redis", redis_url)

    @cached(tenant="acme{eu}", cache=cache)
    def f(x: int) -> int:
        return x

    assert [f(i) for i in range(3)] == [0, 1, 2]
    assert _warnings(caplog) == []
    cache.close()
