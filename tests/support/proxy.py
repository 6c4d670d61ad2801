"""A loopback TCP proxy the tests control, to put faults between a client and Redis.

Modes: "pass" (forward), "delay" (hold each chunk `delay` seconds), "blackhole" (accept
and read, forward nothing, answer nothing: a frozen network), "drop" (close every
connection), "reset" (close every connection with an RST). Loopback only.
"""

from __future__ import annotations

import contextlib
import socket
import ssl
import struct
import threading
import time


class FaultProxy:
    def __init__(self, target_port: int, tls: ssl.SSLContext | None = None) -> None:
        """`tls`: terminate TLS here (the server behind speaks plain RESP)."""
        self.target_port = target_port
        self.tls = tls
        self.mode = "pass"
        self.delay = 0.0
        self._listener = socket.socket()
        self._listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        self._listener.bind(("127.0.0.1", 0))
        self._listener.listen(128)
        self.port = int(self._listener.getsockname()[1])
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._stopped = threading.Event()
        threading.Thread(target=self._accept, daemon=True).start()

    @property
    def url(self) -> str:
        return f"{'rediss' if self.tls else 'redis'}://127.0.0.1:{self.port}/0"

    def set(self, mode: str, delay: float = 0.0) -> None:
        assert mode in ("pass", "delay", "blackhole", "drop", "reset"), mode
        self.mode, self.delay = mode, delay
        if mode in ("drop", "reset"):
            self._close_all(rst=mode == "reset")

    def _close_all(self, rst: bool) -> None:
        with self._lock:
            conns, self._conns = self._conns, []
        for s in conns:
            with contextlib.suppress(OSError):
                if rst:
                    s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                s.close()

    def _accept(self) -> None:
        while not self._stopped.is_set():
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.mode in ("drop", "reset"):
                if self.mode == "reset":
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                client.close()
                continue
            threading.Thread(target=self._connect, args=(client,), daemon=True).start()

    def _connect(self, client: socket.socket) -> None:
        if self.tls is not None:
            try:
                client.settimeout(5)
                client = self.tls.wrap_socket(client, server_side=True)
                client.settimeout(None)
            except (OSError, ssl.SSLError):
                client.close()  # a failed handshake (e.g. a client that distrusts us)
                return
        try:
            upstream = socket.create_connection(("127.0.0.1", self.target_port), timeout=2)
        except OSError:
            client.close()  # the server is down: so is the proxied connection
            return
        upstream.settimeout(None)
        with self._lock:
            self._conns += [client, upstream]
        for a, b in ((client, upstream), (upstream, client)):
            threading.Thread(target=self._pump, args=(a, b), daemon=True).start()

    def _pump(self, src: socket.socket, dst: socket.socket) -> None:
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                while self.mode == "blackhole" and not self._stopped.is_set():
                    time.sleep(0.01)  # swallow time: nothing moves either way
                if self.mode == "delay":
                    time.sleep(self.delay)
                dst.sendall(data)
        except OSError:
            pass
        finally:
            for s in (src, dst):
                with contextlib.suppress(OSError):
                    s.close()

    def close(self) -> None:
        self._stopped.set()
        with contextlib.suppress(OSError):
            self._listener.close()
        self._close_all(rst=False)
