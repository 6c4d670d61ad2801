"""A sqlite3 query cached under the `pmm_db` tenant and invalidated after a write.

`ignore=("conn",)` leaves the connection out of the key (it cannot be encoded, and it
does not change the answer); `invalidate` drops exactly one query's entry after a write.
"""

from __future__ import annotations

import sqlite3
import time

import pmm_memo
from pmm_memo import cached

QUERIES = 0


@cached(tenant="pmm_db", ttl=600, ignore=("conn",))
def songs_by(conn: sqlite3.Connection, artist: str) -> list[tuple[int, str]]:
    global QUERIES
    QUERIES += 1
    time.sleep(0.05)  # pretend the database is far away
    rows = conn.execute("SELECT id, title FROM songs WHERE artist = ? ORDER BY id", (artist,))
    return [(int(i), str(t)) for i, t in rows]


def add_song(conn: sqlite3.Connection, artist: str, title: str) -> None:
    conn.execute("INSERT INTO songs (artist, title) VALUES (?, ?)", (artist, title))
    conn.commit()
    songs_by.invalidate(conn, artist)  # only this artist's entry becomes stale


def main() -> None:
    pmm_memo.configure(embedder="offline")
    conn = sqlite3.connect(":memory:")
    conn.execute("CREATE TABLE songs (id INTEGER PRIMARY KEY, artist TEXT, title TEXT)")
    add_song(conn, "Земфира", "Искала")
    add_song(conn, "Queen", "Bohemian Rhapsody")
    print(songs_by(conn, "Queen"), songs_by(conn, "Queen"))
    add_song(conn, "Queen", "Under Pressure")
    print(songs_by(conn, "Queen"))
    print(songs_by(conn, "Земфира"))
    print(f"queries run: {QUERIES}  cache_info: {songs_by.cache_info()[:5]}")
    assert QUERIES == 3


if __name__ == "__main__":
    main()
