"""A TCP relay on 127.0.0.1 that can *freeze* connections, for database fault tests.

A frozen connection is the half-open failure a NAT, a firewall or a stalled host produces: the
relay keeps reading from both ends (so each side's kernel sees its bytes acknowledged and no
keepalive or ``tcp_user_timeout`` fires) but forwards nothing, and it never closes or resets
anything. Held bytes are delivered on :meth:`TcpProxy.thaw`, as TCP would once the path heals.

    proxy = TcpProxy("127.0.0.1", 5432).start()     # clients connect to proxy.port
    proxy.freeze_on(b"some bytes")                   # freeze the connection that sends these
    proxy.frozen.wait(10)                            # ... once it has forwarded them
    proxy.freeze_all()                               # every connection, new ones too
    proxy.thaw()
    proxy.close()

A plain module (pytest only auto-loads ``conftest.py``).
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit, urlunsplit


class _Flow:
    """One client connection and its upstream connection, pumped by two threads."""

    def __init__(self, proxy: TcpProxy, client: socket.socket, upstream: socket.socket) -> None:
        self.proxy = proxy
        self.client = client
        self.upstream = upstream
        self.frozen = False
        self.held: dict[str, list[bytes | None]] = {"up": [], "down": []}  # None: EOF

    def start(self) -> None:
        for name, src, dst in (
            ("up", self.client, self.upstream),
            ("down", self.upstream, self.client),
        ):
            threading.Thread(target=self._pump, args=(name, src, dst), daemon=True).start()

    def _pump(self, name: str, src: socket.socket, dst: socket.socket) -> None:
        while True:
            try:
                data: bytes | None = src.recv(65536) or None
            except OSError:
                data = None
            with self.proxy.lock:
                if name == "up" and data and self.proxy.trigger and self.proxy.trigger in data:
                    self.proxy.trigger = None
                    self._send(dst, data)  # the server gets the trigger; nothing after it
                    self.frozen = True
                    self.proxy.frozen.set()
                    continue
                if self.frozen:
                    self.held[name].append(data)
                    if data is None:
                        return
                    continue
            if not self._send(dst, data):
                return

    @staticmethod
    def _send(dst: socket.socket, data: bytes | None) -> bool:
        """Forward ``data`` (None: end of stream); False once this direction is finished."""
        try:
            if data is None:
                dst.shutdown(socket.SHUT_WR)
                return False
            dst.sendall(data)
            return True
        except OSError:
            return False

    def thaw(self) -> None:
        """Deliver what was held, then forward as usual (called with the proxy lock held)."""
        self.frozen = False
        for name, dst in (("up", self.upstream), ("down", self.client)):
            for data in self.held[name]:
                self._send(dst, data)
            self.held[name] = []

    def close(self) -> None:
        for sock in (self.client, self.upstream):
            with contextlib.suppress(OSError):
                sock.close()


class TcpProxy:
    """Relays 127.0.0.1:``port`` (a free port) to ``host``:``upstream_port``."""

    def __init__(self, host: str, upstream_port: int) -> None:
        self.host = host
        self.upstream_port = upstream_port
        self.lock = threading.Lock()
        self.trigger: bytes | None = None
        self.frozen = threading.Event()  # set when a connection has been frozen
        self.freeze_new = False
        self.flows: list[_Flow] = []
        self.accepted = 0
        self._listener = socket.create_server(("127.0.0.1", 0))
        self.port: int = self._listener.getsockname()[1]

    @classmethod
    def to_url(cls, url: str) -> TcpProxy:
        """A proxy (started) to the host and port of a ``scheme://user@host:port/…`` URL."""
        parts = urlsplit(url)
        return cls(parts.hostname or "127.0.0.1", parts.port or 5432).start()

    def via(self, url: str) -> str:
        """``url`` with its host and port replaced by this proxy's."""
        parts = urlsplit(url)
        user, _, _ = parts.netloc.rpartition("@")
        host = f"127.0.0.1:{self.port}"
        return urlunsplit(parts._replace(netloc=f"{user}@{host}" if user else host))

    def frozen_ports(self) -> list[int]:
        """The local ports of the upstream sockets of frozen connections (what the server sees
        as the client's port: ``pg_stat_activity.client_port``)."""
        with self.lock:
            return [f.upstream.getsockname()[1] for f in self.flows if f.frozen]

    def start(self) -> TcpProxy:
        """Start accepting (returns at once)."""
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return  # closed
            try:
                upstream = socket.create_connection((self.host, self.upstream_port), timeout=5)
                upstream.settimeout(None)
            except OSError:
                client.close()
                continue
            flow = _Flow(self, client, upstream)
            with self.lock:
                self.accepted += 1
                flow.frozen = self.freeze_new
                self.flows.append(flow)
            flow.start()

    def freeze_on(self, pattern: bytes) -> None:
        """Freeze the next connection whose client sends ``pattern``, right after forwarding it
        (the server acts on it; its answer, and everything after, is held)."""
        with self.lock:
            self.frozen.clear()
            self.trigger = pattern

    def freeze_all(self) -> None:
        """Freeze every connection, and every connection accepted from now on."""
        with self.lock:
            self.freeze_new = True
            for flow in self.flows:
                flow.frozen = True
            self.frozen.set()

    def thaw(self) -> None:
        """Forward again, held bytes first, on every connection."""
        with self.lock:
            self.freeze_new = False
            self.trigger = None
            for flow in self.flows:
                flow.thaw()
            self.frozen.clear()

    def close(self) -> None:
        """Stop listening and drop every connection."""
        with contextlib.suppress(OSError):
            self._listener.shutdown(socket.SHUT_RDWR)  # wakes the blocked accept()
        with contextlib.suppress(OSError):
            self._listener.close()
        with self.lock:
            for flow in self.flows:
                flow.close()
            self.flows.clear()
