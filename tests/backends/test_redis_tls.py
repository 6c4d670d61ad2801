"""rediss:// through a real TLS handshake (the PyPI Valkey build has no TLS, so the
tests' proxy terminates TLS in front of it; the client side is what is under test)."""

from __future__ import annotations

import shutil
import ssl
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from pmm_memo import cached
from tests.conftest import make_cache
from tests.support.proxy import FaultProxy
from tests.support.servers import ValkeyServer


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> Path:
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.fail("openssl is needed to make a throwaway certificate for the TLS test")
    folder = tmp_path_factory.mktemp("tls")
    subprocess.run(
        [
            openssl,
            "req",
            "-x509",
            "-newkey",
            "rsa:2048",
            "-nodes",
            "-days",
            "1",
            "-subj",
            "/CN=127.0.0.1",
            "-addext",
            "subjectAltName=IP:127.0.0.1",
            "-keyout",
            str(folder / "key.pem"),
            "-out",
            str(folder / "cert.pem"),
        ],
        check=True,
        capture_output=True,
    )
    return folder


@pytest.fixture
def tls_proxy(search_server: ValkeyServer, certificate: Path) -> Iterator[FaultProxy]:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(certificate / "cert.pem", certificate / "key.pem")
    proxy = FaultProxy(search_server.port, tls=ctx)
    yield proxy
    proxy.close()


def test_rediss_url_caches_over_tls(
    redis_url: str, tls_proxy: FaultProxy, certificate: Path
) -> None:
    url = f"{tls_proxy.url}?ssl_ca_certs={certificate / 'cert.pem'}"
    assert url.startswith("rediss://")
    cache = make_cache("redis", url, socket_timeout=2, connect_timeout=2)
    calls: list[int] = []

    @cached(tenant="t", cache=cache)
    def f(x: int) -> int:
        calls.append(x)
        return x * 3

    assert [f(2), f(2)] == [6, 6]
    assert calls == [2] and f.cache_info().hits == 1 and f.cache_info().errors == 0


def test_untrusted_certificate_fails_open(redis_url: str, tls_proxy: FaultProxy) -> None:
    cache = make_cache("redis", tls_proxy.url, socket_timeout=2, connect_timeout=2)
    calls: list[int] = []

    @cached(tenant="t", cache=cache)
    def f(x: int) -> int:
        calls.append(x)
        return x

    assert [f(1), f(1)] == [1, 1]  # verification fails: no cache, never an exception
    assert calls == [1, 1] and f.cache_info().errors >= 1
