"""A fake Yahoo chart API on 127.0.0.1, plus the scripted HTTP server the other fakes share.

Use in tests (``pytest_plugins = ["tests.fakes.yahoo"]`` in the root conftest provides the
``yahoo_fake`` fixture; a module can also write ``with YahooFake() as fake:``)::

    def test_x(yahoo_fake):
        yahoo_fake.chart("^RUT", [chart_response(price=2490.0), chart_response(price=2505.0)])
        ... YahooSource(base_url=yahoo_fake.base_url) ...
        assert yahoo_fake.count(yahoo_fake.chart_path("^RUT")) == 2

A script is a list of replies served in order (the last one repeats). A reply is a dict/list
(JSON, 200), a str (text, 200) or a :class:`Reply` with status, headers and a server-side delay.
Bodies are built by :func:`chart_response` / :func:`chart_error` in Yahoo's real wire format.
"""

from __future__ import annotations

import json
import re
import socket
import threading
import zlib
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from datetime import time as clock_time
from typing import Any, Self
from zoneinfo import ZoneInfo

import pytest
from pytest_httpserver import HTTPServer
from werkzeug import Request, Response

# ---------------------------------------------------------------------------------------------
# Generic scripted server
# ---------------------------------------------------------------------------------------------


@dataclass
class Reply:
    """One scripted HTTP answer."""

    body: Any = ""
    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    content_type: str | None = None  # default: JSON for dict/list bodies, text/plain otherwise
    delay: float = 0.0  # seconds the server waits before answering (timeouts, concurrency)


ReplyLike = Reply | dict[str, Any] | list[Any] | str | bytes


def as_reply(reply: ReplyLike) -> Reply:
    """Normalise a script entry to a :class:`Reply`."""
    return reply if isinstance(reply, Reply) else Reply(body=reply)


@dataclass
class Seen:
    """A request the fake received."""

    path: str
    query: dict[str, str]
    headers: dict[str, str]


@dataclass
class _Route:
    path: str
    query: dict[str, str]
    replies: list[Reply]
    served: int = 0


class _QuickStopHTTPServer(HTTPServer):
    """pytest-httpserver's server, polling for shutdown every 20 ms instead of 500 ms so a
    per-test server costs milliseconds to stop (``thread_target`` is meant to be overridden)."""

    def thread_target(self) -> None:
        assert self.server is not None
        self.server.serve_forever(poll_interval=0.02)


class ScriptedServer:
    """A threaded pytest-httpserver answering from per-path scripts and recording requests.

    Threaded, so concurrent clients are served concurrently (``max_in_flight`` records how many
    requests were being answered at once) and a delayed reply does not block other requests.
    """

    def __init__(self) -> None:
        self.server = _QuickStopHTTPServer(host="127.0.0.1", port=0, threaded=True)
        self._routes: list[_Route] = []
        self._lock = threading.Lock()
        self._release = threading.Event()
        self.seen: list[Seen] = []
        self.in_flight = 0
        self.max_in_flight = 0
        self.server.expect_request(re.compile(".*")).respond_with_handler(self._handle)

    def start(self) -> ScriptedServer:
        self.server.start()
        return self

    def release(self) -> None:
        """Let every delayed handler answer now (tests hold replies, then release them)."""
        self._release.set()

    def stop(self) -> None:
        """Release delayed handlers, then stop the server."""
        self._release.set()
        if self.server.is_running():
            self.server.stop()
        self.server.clear()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:PORT`` (no trailing slash)."""
        return self.server.url_for("/").rstrip("/")

    def script(
        self, path: str, replies: Sequence[ReplyLike], *, query: Mapping[str, str] | None = None
    ) -> None:
        """Serve ``replies`` in order at ``path`` (for requests whose query contains ``query``);
        the last reply repeats. A later script for the same path and query replaces it."""
        route = _Route(path, dict(query or {}), [as_reply(r) for r in replies])
        if not route.replies:
            raise ValueError("a script needs at least one reply")
        with self._lock:
            self._routes = [
                r for r in self._routes if not (r.path == route.path and r.query == route.query)
            ]
            self._routes.append(route)

    def requests(self, path: str | None = None) -> list[Seen]:
        """Requests received (at ``path``, if given)."""
        with self._lock:
            return [s for s in self.seen if path is None or s.path == path]

    def count(self, path: str | None = None) -> int:
        """How many requests were received (at ``path``, if given)."""
        return len(self.requests(path))

    def _route_for(self, path: str, query: Mapping[str, str]) -> _Route | None:
        candidates = [
            r
            for r in self._routes
            if r.path == path and all(query.get(k) == v for k, v in r.query.items())
        ]
        # The most specific match wins (most query keys).
        return max(candidates, key=lambda r: len(r.query), default=None)

    def _handle(self, request: Request) -> Response:
        query = {k: v for k, v in request.args.items()}
        with self._lock:
            self.seen.append(Seen(request.path, query, dict(request.headers.items())))
            route = self._route_for(request.path, query)
            if route is None:
                reply = Reply({"error": f"no script for {request.path}"}, status=404)
            else:
                reply = route.replies[min(route.served, len(route.replies) - 1)]
                route.served += 1
            self.in_flight += 1
            self.max_in_flight = max(self.max_in_flight, self.in_flight)
        try:
            if reply.delay:
                self._release.wait(reply.delay)
            return _response(reply)
        finally:
            with self._lock:
                self.in_flight -= 1


def _response(reply: Reply) -> Response:
    body = reply.body
    if isinstance(body, dict | list):
        payload: str | bytes = json.dumps(body)
        content_type = reply.content_type or "application/json;charset=utf-8"
    else:
        payload = body
        content_type = reply.content_type or "text/plain; charset=utf-8"
    return Response(
        payload, status=reply.status, headers=dict(reply.headers), content_type=content_type
    )


@pytest.fixture
def scripted_server() -> Iterator[ScriptedServer]:
    """A started :class:`ScriptedServer`, stopped after the test."""
    server = ScriptedServer().start()
    yield server
    server.stop()


# ---------------------------------------------------------------------------------------------
# Yahoo wire format
# ---------------------------------------------------------------------------------------------

DEFAULT_TIME = datetime(2025, 1, 10, 20, 59, 58, tzinfo=UTC)

SAD_PANDA_HTML = """<!DOCTYPE html>
<html lang="en-us"><head>
<meta http-equiv="content-type" content="text/html; charset=UTF-8">
<title>Yahoo</title></head>
<body><div id="sad-panda"><h1>Will be right back...</h1>
<p>Thank you for your patience. Our engineers are working quickly to resolve the issue.</p>
</div></body></html>
"""

BarTime = date | datetime | int


def _epoch(value: datetime | int) -> int:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("use timezone-aware datetimes in fakes")
        return int(value.timestamp())
    return int(value)


def chart_response(
    price: float | None = 2500.0,
    time: datetime | int | None = None,
    bars: Sequence[tuple[BarTime, float | None]] = (),
    tz: str = "America/New_York",
    *,
    symbol: str = "^RUT",
    bar_time: clock_time | None = None,
    previous_close: float = 1234.5,
    instrument_type: str = "INDEX",
    granularity: str = "1d",
    omit_meta: Sequence[str] = (),
) -> dict[str, Any]:
    """A ``/v8/finance/chart`` body as Yahoo sends it.

    ``price``/``time``: ``meta.regularMarketPrice``/``regularMarketTime`` (``None`` price is
    sent as null). ``bars``: ``(day, close)`` pairs; a ``date`` is stamped at ``bar_time`` in
    ``tz`` (default 09:30, like index bars; pass ``datetime.time(0, 0)`` for futures-style
    midnight stamps), a datetime or epoch is sent as given; a ``None`` close is sent as null,
    like Yahoo does for bars without trades. ``chartPreviousClose`` is deliberately unrelated
    to the bars (as in real responses). ``omit_meta`` drops meta keys to test missing fields.
    """
    zone = ZoneInfo(tz)
    stamp_at = bar_time if bar_time is not None else clock_time(9, 30)
    when = DEFAULT_TIME if time is None else time
    stamps: list[int] = []
    closes: list[float | None] = []
    for day, close in bars:
        if isinstance(day, datetime | int):
            stamps.append(_epoch(day))
        else:
            stamps.append(int(datetime.combine(day, stamp_at, tzinfo=zone).timestamp()))
        closes.append(close)
    local = datetime.fromtimestamp(_epoch(when), zone)
    offset = int(local.utcoffset().total_seconds())  # type: ignore[union-attr]
    meta: dict[str, Any] = {
        "currency": "USD",
        "symbol": symbol,
        "exchangeName": "WCB",
        "fullExchangeName": "Chicago Options",
        "instrumentType": instrument_type,
        "firstTradeDate": 558279000,
        "regularMarketTime": _epoch(when),
        "hasPrePostMarketData": False,
        "gmtoffset": offset,
        "timezone": local.tzname(),
        "exchangeTimezoneName": tz,
        "regularMarketPrice": price,
        "chartPreviousClose": previous_close,
        "priceHint": 2,
        "dataGranularity": granularity,
        "range": "",
        "validRanges": ["1d", "5d", "1mo", "3mo", "6mo", "1y", "2y", "5y", "10y", "ytd", "max"],
    }
    for key in omit_meta:
        meta.pop(key, None)
    result: dict[str, Any] = {"meta": meta}
    if bars:
        result["timestamp"] = stamps
        result["indicators"] = {
            "quote": [
                {
                    "open": list(closes),
                    "high": list(closes),
                    "low": list(closes),
                    "close": list(closes),
                    "volume": [0 if c is None else 1000 for c in closes],
                }
            ],
            "adjclose": [{"adjclose": list(closes)}],
        }
    else:
        result["indicators"] = {"quote": [{}]}
    return {"chart": {"result": [result], "error": None}}


def chart_error(
    code: str = "Not Found", description: str = "No data found, symbol may be delisted"
) -> dict[str, Any]:
    """A ``chart.error`` body (Yahoo sends it with HTTP 404 or 200)."""
    return {"chart": {"result": None, "error": {"code": code, "description": description}}}


class YahooFake(ScriptedServer):
    """The fake chart API: script replies per ticker, count requests per ticker."""

    @staticmethod
    def chart_path(ticker: str) -> str:
        """Where a ticker's chart requests arrive (decoded: ``/v8/finance/chart/^RUT``)."""
        return f"/v8/finance/chart/{ticker}"

    def chart(self, ticker: str, replies: Sequence[ReplyLike] | ReplyLike) -> None:
        """Serve ``replies`` (one or a sequence) for ``ticker``'s chart requests."""
        if isinstance(replies, Reply | dict | str | bytes):
            replies = [replies]
        self.script(self.chart_path(ticker), replies)

    def quote(
        self, ticker: str, price: float, time: datetime | int | None = None, **kw: Any
    ) -> None:
        """Serve one fixed quote for ``ticker``."""
        self.chart(ticker, chart_response(price=price, time=time, symbol=ticker, **kw))

    def chart_requests(self, ticker: str) -> list[Seen]:
        """Requests received for ``ticker``."""
        return self.requests(self.chart_path(ticker))


@pytest.fixture
def yahoo_fake() -> Iterator[YahooFake]:
    """A started :class:`YahooFake` on 127.0.0.1, stopped after the test."""
    with YahooFake() as fake:
        yield fake


# ---------------------------------------------------------------------------------------------
# A raw HTTP server that misbehaves on the wire (trickles, stalls, bombs)
# ---------------------------------------------------------------------------------------------

Behaviour = Callable[[socket.socket, "RawHttpServer", bytes], None]


class RawHttpServer:
    """A bare TCP server on 127.0.0.1: each connection's request is read, then ``behaviour``
    writes whatever bytes it likes (a well-formed head, then a trickle, a stall, a bomb).

    ``behaviour(conn, server, request)`` (``request``: the request head as received) must
    return soon after ``server.stopping`` is set; ``sent`` counts the body bytes behaviours
    report via :meth:`count_sent`, ``paths`` the request paths seen.
    """

    def __init__(self, behaviour: Behaviour) -> None:
        self.behaviour = behaviour
        self.stopping = threading.Event()
        self.sent = 0
        self.closed_by_client = 0
        self.paths: list[str] = []
        self._lock = threading.Lock()
        self._sock = socket.create_server(("127.0.0.1", 0))
        self._sock.settimeout(0.05)
        self._threads: list[threading.Thread] = []
        self._acceptor = threading.Thread(target=self._accept, daemon=True)

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self._sock.getsockname()[1]}"

    def client_closed(self) -> None:
        """Record that a client closed its (kept-alive) connection."""
        with self._lock:
            self.closed_by_client += 1

    def count_sent(self, n: int) -> None:
        with self._lock:
            self.sent += n

    def __enter__(self) -> Self:
        self._acceptor.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stopping.set()
        self._acceptor.join(2)
        for thread in self._threads:
            thread.join(2)
        self._sock.close()

    def _accept(self) -> None:
        while not self.stopping.is_set():
            try:
                conn, _ = self._sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            thread = threading.Thread(target=self._serve, args=(conn,), daemon=True)
            self._threads.append(thread)
            thread.start()

    def _serve(self, conn: socket.socket) -> None:
        with conn:
            conn.settimeout(2)
            request = b""
            try:
                while b"\r\n\r\n" not in request:
                    data = conn.recv(4096)
                    if not data:
                        return
                    request += data
                with self._lock:
                    self.paths.append(request.split(b" ", 2)[1].decode())
                self.behaviour(conn, self, request)
            except OSError:
                pass  # the client gave up (the point of most of these tests)


def http_head(status: str = "200 OK", **headers: str | int) -> bytes:
    """A response head; keyword names become headers (``content_length`` → Content-Length)."""
    lines = [f"HTTP/1.1 {status}"]
    lines += [f"{k.replace('_', '-').title()}: {v}" for k, v in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def trickle(body: bytes, every: float) -> Behaviour:
    """Send the head at once, then ``body`` one byte per ``every`` seconds."""

    def behave(conn: socket.socket, server: RawHttpServer, request: bytes) -> None:
        conn.sendall(http_head(content_type="application/json", content_length=len(body)))
        for i in range(len(body)):
            if server.stopping.wait(every):
                return
            conn.sendall(body[i : i + 1])

    return behave


def trickle_headers(every: float, count: int = 40) -> Behaviour:
    """Send the status line, then a header one byte per ``every`` seconds (``count`` bytes)."""

    def behave(conn: socket.socket, server: RawHttpServer, request: bytes) -> None:
        conn.sendall(b"HTTP/1.1 200 OK\r\nX-Slow: ")
        for _ in range(count):
            if server.stopping.wait(every):
                return
            conn.sendall(b"a")
        conn.sendall(b"\r\nContent-Length: 2\r\n\r\n{}")

    return behave


def stall_after_headers(prefix: bytes = b"", length: int = 1000) -> Behaviour:
    """Send the head (announcing ``length`` bytes) and ``prefix``, then nothing."""

    def behave(conn: socket.socket, server: RawHttpServer, request: bytes) -> None:
        conn.sendall(http_head(content_type="application/json", content_length=length) + prefix)
        server.stopping.wait()

    return behave


def gzip_bomb(inflated: int) -> bytes:
    """A gzip member of ``inflated`` zero bytes (about 1/1000 of that on the wire), built
    without ever holding the inflated data."""
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    block = bytes(1 << 20)
    parts = [packer.compress(block) for _ in range(inflated // len(block))]
    parts.append(packer.flush())
    return b"".join(parts)


def send_all(head: bytes, body: bytes) -> Behaviour:
    """Send ``head`` and ``body`` at once."""

    def behave(conn: socket.socket, server: RawHttpServer, request: bytes) -> None:
        conn.sendall(head + body)

    return behave


def endless_chunks(total: int, chunk: int = 64 * 1024) -> Behaviour:
    """A chunked body (no Content-Length) of up to ``total`` bytes, counted in ``sent``."""

    def behave(conn: socket.socket, server: RawHttpServer, request: bytes) -> None:
        conn.sendall(http_head(content_type="application/json", transfer_encoding="chunked"))
        piece = f"{chunk:x}\r\n".encode() + b" " * chunk + b"\r\n"
        for _ in range(total // chunk):
            if server.stopping.is_set():
                return
            conn.sendall(piece)
            server.count_sent(chunk)
        conn.sendall(b"0\r\n\r\n")

    return behave


def keep_alive(head: bytes, body: bytes) -> Behaviour:
    """Answer every request on the connection with ``head`` + ``body`` and keep it open;
    count in ``server.closed_by_client`` when the client closes it (a pooled connection
    released by ``Session.close``)."""

    def behave(conn: socket.socket, server: RawHttpServer, request: bytes) -> None:
        conn.sendall(head + body)
        conn.settimeout(0.05)
        while not server.stopping.is_set():
            try:
                data = conn.recv(4096)
            except TimeoutError:
                continue
            if not data:
                server.client_closed()
                return
            if b"\r\n\r\n" in data:
                conn.sendall(head + body)

    return behave


def redirect_once(redirect: bytes, final: bytes) -> Behaviour:
    """Answer ``/final`` with ``final``; any other path with ``redirect`` (a 3xx to it)."""

    def behave(conn: socket.socket, server: RawHttpServer, request: bytes) -> None:
        conn.sendall(final if request.startswith(b"GET /final ") else redirect)

    return behave
