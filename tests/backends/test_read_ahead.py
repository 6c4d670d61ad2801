"""RedisBackend.get_knn / aget_knn: the exact read and the KNN query in one round trip
answer what `get` and `knn` answer apart, hand back None for everything the two-step
path must judge, and leave the connection in step for the next command."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator
from typing import Any

import pytest
import redis

from pmm_memo import Cache, CacheConfig, refresh, semantic_lookup
from pmm_memo.backends import _read_ahead
from pmm_memo.backends._base import VectorQuery
from pmm_memo.backends.redis import RedisBackend
from tests.conftest import run
from tests.support.entry_meta import write_meta
from tests.support.proxy import FaultProxy
from tests.support.servers import ValkeyServer

Q = "How do I reset my password?"
NEAR = "how do i reset my password"


def _asking(cache: Cache) -> tuple[Any, RedisBackend]:
    """A semantic function of `cache` that has stored Q with its vector (the index exists
    now), and the cache's Redis backend."""

    @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
    def ask(prompt: str) -> str:
        return f"answer: {prompt}"

    ask(Q)
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    return ask, backend


@pytest.fixture(params=[None, "s" * 32], ids=["unsigned", "signed"])
def rig(
    redis_url: str, request: pytest.FixtureRequest
) -> Iterator[tuple[Cache, Any, RedisBackend]]:
    # One pooled connection: every command reuses it, so a reply left unread by the
    # combined read would answer the next command. Signed: the read also fetches what
    # the signature binds.
    cache = Cache(
        CacheConfig(
            redis_url=redis_url,
            embedder="offline",
            embedding_dimensions=64,
            max_connections=1,
            signing_key=request.param,
        )
    )
    ask, backend = _asking(cache)
    yield cache, ask, backend
    cache.close()


def _query(cache: Cache, ask: Any, text: str) -> tuple[str, VectorQuery]:
    memo = ask._memo()
    call = memo.keys.bind((text,), {}, False)
    sem = memo.semantic_of(cache, call)
    vector = cache.embed(sem.text.window, memo.counters)
    key = memo.key_of(cache, call)[0]
    # Every neighbour read, to compare them whole (see test_unread_neighbours).
    return key, dataclasses.replace(memo.query(cache, call, sem, vector), unread_below=None)


def _settled(found: Any) -> Any:
    """The neighbours of a decorator's (lazy) query with their values decoded, as the
    matcher decodes each one it may serve."""
    for n in found:
        n.settle()
    return found


def _apart(backend: RedisBackend, key: str, query: VectorQuery) -> tuple[Any, list[Any]]:
    return backend.get(key), _settled(backend.knn(query))


@pytest.mark.parametrize("text", [Q, NEAR, "What is the capital of France?"])
def test_answers_what_get_and_knn_answer(rig: Any, text: str) -> None:
    cache, ask, backend = rig
    key, query = _query(cache, ask, text)
    both = backend.get_knn(key, query)
    assert both is not None
    stored, found = both
    _settled(found)
    expected_stored, expected_found = _apart(backend, key, query)
    assert stored == expected_stored
    assert [(n.key, round(n.similarity, 6), n.value) for n in found] == [
        (n.key, round(n.similarity, 6), n.value) for n in expected_found
    ]
    assert found and found[0].value == f"answer: {Q}"
    assert (stored is not None) == (text == Q)


def test_async_twin_answers_the_same(rig: Any) -> None:
    cache, ask, backend = rig
    for text in (Q, NEAR):
        key, query = _query(cache, ask, text)
        got = run(backend.aget_knn(key, query))
        assert got is not None
        assert got[0] == backend.get(key)
        assert [n.key for n in got[1]] == [n.key for n in backend.knn(query)]


class _Writes:
    """A connection's socket that records what is written to it (the rest is its own)."""

    def __init__(self, sock: Any) -> None:
        self._sock = sock
        self.writes: list[bytes] = []

    def sendall(self, data: Any) -> None:
        self.writes.append(bytes(data))
        self._sock.sendall(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._sock, name)


@pytest.mark.parametrize("algorithm", ["FLAT", "HNSW"])
def test_the_request_is_one_write_of_what_redis_py_would_send(
    redis_url: str, algorithm: str
) -> None:
    """The two commands go out as one write (redis-py's packer makes three of them: the
    vector is over its buffer cutoff), byte for byte what redis-py's `pack_commands`
    makes of the same arguments; each shape of query (filter, fields, EF_RUNTIME, key)
    has its own packed bytes, never another's."""
    cache = Cache(
        CacheConfig(
            redis_url=redis_url,
            embedder="offline",
            embedding_dimensions=1536,
            max_connections=1,
            vector_algorithm=algorithm,
            index_name=f"idx:packed:{algorithm.lower()}",
            key_prefix=f"packed{algorithm.lower()}:",
        )
    )
    try:
        ask, backend = _asking(cache)
        key, query = _query(cache, ask, NEAR)
        replace = dataclasses.replace
        shapes = [
            (key, query),
            (key, replace(query, with_text=False, text_h="0" * 32)),
            (key, replace(query, k=5, user="ünïcode user")),
            (key, replace(query, with_values=False)),
            (key, replace(query, with_created_at=True, lazy_values=False)),
            (key, replace(query, scope="another scope", fn="another fn")),
            (key, replace(query, tenant="another tenant")),
            ("packed:tënant:" + "ab" * 16, query),
            (key, query),
            (key, "a new spec"),  # e.g. the algorithm adopted from the server's index
            (key, query),
        ]
        pool = backend.client.connection_pool
        connection = pool.get_connection()
        pool.release(connection)
        for k, q in shapes:
            if isinstance(q, str):
                assert backend._index is not None
                ef = backend._index.ef_runtime + 1
                backend._index = replace(backend._index, ef_runtime=ef)  # HNSW: EF_RUNTIME
                continue
            expected = connection.pack_commands(
                [("HMGET", k, *backend._read_fields), backend._knn_args(q)]
            )
            sock = connection._sock
            connection._sock = recorder = _Writes(sock)
            try:
                assert backend.get_knn(k, q) is not None
            finally:
                connection._sock = sock
            assert recorder.writes == [b"".join(expected)]
        assert backend.client.echo("next") == b"next"
    finally:
        cache.close()


def test_a_query_shape_names_every_field_its_arguments_are_made_of() -> None:
    """A packed shape is keyed by these fields: a VectorQuery field added later must be
    added there too (or here, if the FT.SEARCH arguments do not depend on it), or two
    queries differing in it would share one packed request."""
    fields = {f.name for f in dataclasses.fields(VectorQuery)}
    how_read = {"lazy_values", "unread_below", "own_text_h"}  # the reply's, not the query's
    assert set(_read_ahead.SHAPE_FIELDS) == fields - {"vector"} - how_read


def test_unread_neighbours(rig: Any) -> None:
    """A decorator's query leaves a neighbour below its threshold unread (the matcher
    turns it away unread), unless it holds the query's own text (which answers whatever
    its similarity): in one round trip as in two steps."""
    cache, ask, backend = rig
    memo = ask._memo()
    far = "What is the capital of France?"
    key, query = _query(cache, ask, far)
    query = dataclasses.replace(query, unread_below=0.9)
    own = memo.semantic_of(cache, memo.keys.bind((Q,), {}, False)).text.digest
    for q, read in [(query, False), (dataclasses.replace(query, own_text_h=own), True)]:
        both = backend.get_knn(key, q)
        assert both is not None and not isinstance(both[1], Exception)
        for found in (both[1], backend.knn(q)):
            (n,) = _settled(found)
            assert n.key == ask.cache_key(Q) and n.similarity < 0.9
            assert (n.corrupt, n.text, n.value) == (
                (False, Q, f"answer: {Q}") if read else (True, None, None)
            )
    _, near = _query(cache, ask, NEAR)
    (n,) = _settled(backend.knn(dataclasses.replace(near, unread_below=0.9)))
    assert n.similarity >= 0.9 and n.value == f"answer: {Q}"  # above it: read


def test_damaged_entry_is_its_codec_error(rig: Any, redis_url: str) -> None:
    cache, ask, backend = rig
    key, query = _query(cache, ask, Q)
    client = redis.Redis.from_url(redis_url)
    write_meta(client, key, checksum=b"0" * 16)
    both = backend.get_knn(key, query)
    assert both is not None
    assert isinstance(both[0], Exception) and "checksum" in str(both[0]).lower()
    assert backend.client.ping()  # still in step


def test_an_unreadable_neighbour_is_corrupt_in_its_place(rig: Any, redis_url: str) -> None:
    """A neighbour whose fields do not decode is a corrupt neighbour (never served), in
    both paths; the exact read beside it still answers; the connection stays in step."""
    cache, ask, backend = rig
    with refresh():
        ask(NEAR)  # its own entry; Q's is its neighbour
    key, query = _query(cache, ask, NEAR)
    redis.Redis.from_url(redis_url).hset(ask.cache_key(Q), "tenant", b"\xff not utf-8")
    apart = _settled(backend.knn(query))
    for both in (backend.get_knn(key, query), run(backend.aget_knn(key, query))):
        assert both is not None
        stored, found = both
        assert stored is not None and not isinstance(stored, Exception)
        assert stored.value == f"answer: {NEAR}"
        assert not isinstance(found, Exception)
        _settled(found)
        assert [(n.key, n.corrupt) for n in found] == [(n.key, n.corrupt) for n in apart]
        damaged = [n for n in found if n.key == ask.cache_key(Q)]
        assert len(damaged) == 1 and damaged[0].corrupt and damaged[0].value is None
    assert backend.client.echo("next") == b"next"


def test_error_replies_go_the_two_step_way_and_keep_the_connection_in_step(
    rig: Any, redis_url: str
) -> None:
    cache, ask, backend = rig
    client = redis.Redis.from_url(redis_url)
    key, query = _query(cache, ask, "a key of another type")
    client.set(key, "a string, not a hash")  # HMGET: WRONGTYPE
    assert backend.get_knn(key, query) is None
    assert run(backend.aget_knn(key, query)) is None
    assert backend.client.echo("next") == b"next"  # the second reply was read too
    key, query = _query(cache, ask, NEAR)
    assert backend.index is not None
    client.execute_command("FT.DROPINDEX", backend.index.name)  # FT.SEARCH: no such index
    assert backend.get_knn(key, query) is None
    assert backend.client.echo("next") == b"next"


def test_no_index_yet_is_none(redis_url: str) -> None:
    cache = Cache(CacheConfig(redis_url=redis_url, embedder="offline", embedding_dimensions=64))
    backend = cache.backend
    assert isinstance(backend, RedisBackend)
    import numpy as np

    query = VectorQuery(tenant="t", vector=np.ones(64, dtype=np.float32), k=2)
    assert backend.get_knn("cache:t:x", query) is None  # the two-step path creates it
    cache.close()


def test_stale_socket_is_redialled(rig: Any, redis_url: str) -> None:
    cache, ask, backend = rig
    key, query = _query(cache, ask, Q)
    client = redis.Redis.from_url(redis_url)
    client.client_kill_filter(_type="normal", skipme=True)  # every pooled socket dies
    both = backend.get_knn(key, query)
    assert both is not None and both[0] is not None


def test_server_down_is_none_then_timeout_raises(tmp_path: Any) -> None:
    server = ValkeyServer(search=True, log_dir=tmp_path).start()
    try:
        cache = Cache(
            CacheConfig(
                redis_url=server.url,
                embedder="offline",
                embedding_dimensions=64,
                socket_timeout=0.3,
            )
        )
        ask, backend = _asking(cache)
        key, query = _query(cache, ask, NEAR)
        server.freeze()
        try:
            with pytest.raises(redis.TimeoutError):  # counted as a failed read by Cache
                backend.get_knn(key, query)
        finally:
            server.thaw()
        server.kill()
        # Refused: not judged here (the two-step path counts it once, opens the breaker).
        assert backend.get_knn(key, query) is None
        cache.close()
    finally:
        server.stop()


class Interrupted(Exception):
    """What a signal handler raises (a soft time limit, an alarm): at any line."""


def test_an_exception_between_send_and_read_leaves_no_reply_behind(
    search_server: ValkeyServer, redis_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Replies still on their way (a slow network: the fault proxy holds each chunk) when
    an exception lands after the send: the connection must not go back to the pool as
    is, or the next command would read the exact read's reply as its own."""
    proxy = FaultProxy(search_server.port)
    cache = Cache(
        CacheConfig(
            redis_url=proxy.url,
            embedder="offline",
            embedding_dimensions=64,
            max_connections=1,
            socket_timeout=5.0,
        )
    )
    try:
        ask, backend = _asking(cache)
        key, query = _query(cache, ask, Q)
        proxy.set("delay", 0.2)

        def interrupted(connection: Any) -> Any:
            raise Interrupted

        async def ainterrupted(connection: Any) -> Any:
            raise Interrupted

        monkeypatch.setattr(_read_ahead, "_reply", interrupted)
        monkeypatch.setattr(_read_ahead, "_areply", ainterrupted)
        with pytest.raises(Interrupted):
            backend.get_knn(key, query)
        assert backend.client.echo("next") == b"next"

        async def main() -> Any:
            with pytest.raises(Interrupted):
                await backend.aget_knn(key, query)
            client = await backend.aclient()
            return await client.echo("next")

        assert run(main()) == b"next"
    finally:
        cache.close()
        proxy.close()


def test_a_neighbour_that_expired_during_the_search_is_absent(tmp_path: Any) -> None:
    """RediSearch answers a document whose key expired while the query ran with its id
    and a null array in place of its fields. That neighbour is absent (as on a cluster,
    whose own read skips it); the others still answer, in two steps and ahead (was: the
    whole reply raised TypeError: every lookup near an entry at its TTL missed and
    counted an error). The server's active expiry is off, so the key is still there,
    expired, when the search reaches it."""
    server = ValkeyServer(
        search=True, log_dir=tmp_path, extra_args=("--enable-debug-command", "yes")
    ).start()
    try:
        cache = Cache(
            CacheConfig(redis_url=server.url, embedder="offline", embedding_dimensions=64)
        )

        @semantic_lookup(threshold=0.9, tenant="t", cache=cache)
        def ask(prompt: str) -> str:
            return f"answer: {prompt}"

        client = server.client()
        client.execute_command("DEBUG", "SET-ACTIVE-EXPIRE", "0")
        backend = cache.backend
        assert isinstance(backend, RedisBackend)
        for ahead in (False, True):
            with refresh():
                ask(Q)
                ask("What is the capital of France?")
            client.pexpire(ask.cache_key("What is the capital of France?"), 1)
            time.sleep(0.05)
            key, query = _query(cache, ask, NEAR)
            both = backend.get_knn(key, query) if ahead else (None, backend.knn(query))
            assert both is not None and not isinstance(both[1], Exception), both
            assert [n.value for n in _settled(both[1])] == [f"answer: {Q}"]
        client.pexpire(ask.cache_key("What is the capital of France?"), 1)
        time.sleep(0.05)
        assert ask(NEAR) == f"answer: {Q}"
        info = ask.cache_info()
        assert (info.errors, info.semantic_hits) == (0, 1)
        cache.close()
    finally:
        server.stop()
