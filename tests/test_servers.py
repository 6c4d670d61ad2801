"""The test servers (`tests/support/servers`) are the processes the tests started."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.servers import ValkeyServer


def test_a_port_another_server_holds_is_refused(tmp_path: Path) -> None:
    """Was: the other server's PING reply counted as ours starting, so a test would have
    flushed (and stopped) a server it does not own."""
    theirs = ValkeyServer(search=False, log_dir=tmp_path).start()
    try:
        ours = ValkeyServer(search=False, port=theirs.port, log_dir=tmp_path)
        with pytest.raises(RuntimeError, match="another server"):
            ours.start()
        assert ours.proc is None
        with theirs.client() as c:
            assert int(c.info("server")["process_id"]) == theirs.proc.pid  # type: ignore[union-attr]
    finally:
        theirs.stop()


def test_a_server_starts_empty_wherever_it_is_started(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Was: the working directory's dump.rdb (another server's save) was loaded."""
    old = tmp_path / "old"
    old.mkdir()
    monkeypatch.chdir(old)
    saver = ValkeyServer(search=False, log_dir=old).start()
    try:
        with saver.client() as c:
            c.set("left-behind", "1")
            c.save()
    finally:
        saver.stop()
    assert (old / "dump.rdb").exists()
    fresh = ValkeyServer(search=False, log_dir=tmp_path).start()
    try:
        with fresh.client() as c:
            assert c.dbsize() == 0
    finally:
        fresh.stop()
