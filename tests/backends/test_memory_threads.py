"""The embedded backend's lock-free hit path under threads: readers reorder the LRU
while writers evict, expire, delete, count and clear, and nothing raises, no read returns
another key's value, and the entry count and byte accounting stay exact."""

from __future__ import annotations

import random
import sys
import threading
from collections.abc import Iterator

import pytest

from pmm_memo.backends._base import Entry
from pmm_memo.backends.memory import MemoryBackend

KEYS = [f"k{i}" for i in range(64)]


def _entry(key: str) -> Entry:
    return Entry(
        key=key,
        value=("value of", key),
        check=key.encode(),
        tenant="t",
        user="",
        fn="f",
        fn_name="f",
        created_at=0.0,
    )


@pytest.fixture
def tiny_switch_interval() -> Iterator[None]:
    """Switch threads as often as CPython allows, so interleavings actually happen."""
    before = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(before)


def test_lock_free_reads_beside_writers(tiny_switch_interval: None) -> None:
    # Half the keys fit: every write evicts; a short TTL makes reads expire entries too.
    backend = MemoryBackend(max_entries=len(KEYS) // 2)
    errors: list[BaseException] = []
    wrong: list[tuple[str, object]] = []
    reads = [0]
    stop = threading.Event()

    def reader(seed: int) -> None:
        rng = random.Random(seed)
        while not stop.is_set():
            key = rng.choice(KEYS)
            got = backend.get(key)
            if got is not None:
                reads[0] += 1
                if got.value != ("value of", key) or got.check != key.encode():
                    wrong.append((key, got.value))

    def writer(seed: int) -> None:
        rng = random.Random(seed)
        for i in range(3000):
            key = rng.choice(KEYS)
            backend.set(_entry(key), ttl_ms=rng.choice((1, 60_000)))
            if i % 7 == 0:
                backend.delete(rng.choice(KEYS))
            if i % 50 == 0:
                backend.count("t")  # scans every key while readers reorder them
            if i % 500 == 0:
                backend.clear("t", "f")

    def guarded(target: object, seed: int) -> None:
        try:
            target(seed)  # type: ignore[operator]
        except BaseException as exc:  # collected: the assertion below names them
            errors.append(exc)

    readers = [threading.Thread(target=guarded, args=(reader, i)) for i in range(4)]
    writers = [threading.Thread(target=guarded, args=(writer, 100 + i)) for i in range(3)]
    for t in readers + writers:
        t.start()
    for t in writers:
        t.join()
    stop.set()
    for t in readers:
        t.join()

    assert errors == []
    assert wrong == []
    assert reads[0] > 0  # the readers did hit while the writers ran
    records = list(backend._data.values())
    assert len(records) <= backend.max_entries
    assert backend.nbytes == sum(r.nbytes for r in records)  # no byte lost or counted twice
    assert all(r.entry.key == k for k, r in backend._data.items())


def test_expired_entry_is_removed_by_a_read_unless_rewritten() -> None:
    """A read that finds its record expired removes that record, never a fresh one
    a writer put in its place meanwhile."""
    now = [0.0]
    backend = MemoryBackend(clock=lambda: now[0])
    backend.set(_entry("a"), ttl_ms=1000)
    stale = backend._data["a"]
    now[0] = 2.0
    backend.set(_entry("a"), ttl_ms=1000)  # rewritten after expiring
    backend._expire("a", stale)  # a reader that looked up the old record
    assert backend.get("a") is not None
    backend._expire("a", backend._data["a"])
    assert backend.get("a") is None
    assert backend.nbytes == 0
