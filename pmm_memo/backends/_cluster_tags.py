"""Hash tags in entry keys on a Redis Cluster: tenants whose name pins them to one slot.

Redis Cluster hashes only the part of a key between the first `{` and the first `}`
after it, when that part is not empty (the cluster specification's "hash tags"). Entry
keys are `cache:<tenant>:<qhash>` (API.md), with no tag of ours, so a tenant's entries
spread over all 16384 slots and every primary. A tenant named like `acme{eu}` puts a tag
into every one of its keys: all its entries hash to one slot, live on one node, and the
tenant cannot grow past that node.

That is not wrong (every read and write stays correct) and some users co-locate keys
with tags on purpose, so it is not refused; but it defeats what a cluster is for, so
the backend logs one warning per tenant (at its first write), naming the tenant, the
tag, the slot and the fix. `key_prefix` and `index_name` with braces are refused at
configuration instead (`_config`): they would pin every tenant.
"""

from __future__ import annotations

import logging
import threading

from redis.crc import key_slot

from .. import _forksafe

logger = logging.getLogger("pmm_memo")


def hash_tag(key: str) -> str | None:
    """The part of `key` that Redis Cluster hashes instead of the whole key, or None."""
    start = key.find("{")
    if start < 0:
        return None
    end = key.find("}", start + 1)
    if end <= start + 1:  # no closing brace, or `{}`: the whole key is hashed
        return None
    return key[start + 1 : end]


class TenantTags:
    """Remembers the tenants seen in writes; warns once for each one with a hash tag."""

    def __init__(self) -> None:
        self._seen: set[str] = set()
        self._lock = threading.Lock()
        _forksafe.track(self)  # a child forked while another thread held the lock

    def _fork_lock(self) -> threading.Lock:
        return self._lock

    def _after_fork_in_child(self) -> None:
        self._lock = threading.Lock()

    def note(self, tenant: str, key: str) -> None:
        """Called per write: one set lookup unless the tenant is new."""
        if tenant in self._seen:
            return
        with self._lock:
            if tenant in self._seen:
                return
            self._seen.add(tenant)
        tag = hash_tag(key)
        if tag is None:
            return
        logger.warning(
            "cache tenant %r: its keys contain the hash tag {%s}, so on a Redis Cluster all "
            "its entries hash to slot %d on one node and the tenant cannot grow past that "
            "node; name the tenant without a {...} pair to spread it over every node",
            tenant,
            tag,
            key_slot(tag.encode("utf-8", "surrogatepass")),
        )
