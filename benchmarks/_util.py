"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pmm_memo._timing import (  # noqa: E402 - after the path set-up above
    aper_call_samples,
    fmt_us,
    per_call_samples,
    percentile,
    ratio_of_rounds,
    row,
)

__all__ = [
    "aalternating",
    "alternating",
    "aper_call_samples",
    "fmt_us",
    "per_call_samples",
    "percentile",
    "ratio_of_rounds",
    "redis_server",
    "row",
]


@contextlib.contextmanager
def redis_server(url: str | None, search: bool = True) -> Iterator[str]:
    """The given URL, or a Valkey (+RediSearch) started from the PyPI packages."""
    if url:
        yield url
        return
    import tempfile

    from tests.support.servers import ValkeyServer

    with tempfile.TemporaryDirectory() as tmp:
        server = ValkeyServer(search=search, log_dir=Path(tmp)).start()
        try:
            yield server.url
        finally:
            server.stop()


Rounds = list[list[float]]


def alternating(
    ours: Callable[[], Any], base: Callable[[], Any], calls: int, rounds: int, batch: int = 10
) -> tuple[Rounds, Rounds]:
    """Per-call samples of `ours` and `base` in `rounds` rounds of `calls // rounds` calls
    each, who goes first alternating, so a noisy moment hits both alike (for
    `ratio_of_rounds`)."""
    mine: Rounds = []
    theirs: Rounds = []
    for r in range(rounds):
        if r % 2:
            b = per_call_samples(base, calls // rounds, batch)
            a = per_call_samples(ours, calls // rounds, batch)
        else:
            a = per_call_samples(ours, calls // rounds, batch)
            b = per_call_samples(base, calls // rounds, batch)
        mine.append(a)
        theirs.append(b)
    return mine, theirs


async def aalternating(
    ours: Callable[[], Awaitable[Any]],
    base: Callable[[], Awaitable[Any]],
    calls: int,
    rounds: int,
    batch: int = 10,
) -> tuple[Rounds, Rounds]:
    """`alternating` for coroutine functions, on the running event loop."""
    mine: Rounds = []
    theirs: Rounds = []
    for r in range(rounds):
        if r % 2:
            b = await aper_call_samples(base, calls // rounds, batch)
            a = await aper_call_samples(ours, calls // rounds, batch)
        else:
            a = await aper_call_samples(ours, calls // rounds, batch)
            b = await aper_call_samples(base, calls // rounds, batch)
        mine.append(a)
        theirs.append(b)
    return mine, theirs
