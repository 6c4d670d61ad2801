"""Timing helpers shared by the benchmark scripts."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from pathlib import Path

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
