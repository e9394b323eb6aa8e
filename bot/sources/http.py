"""The one HTTP helper every HTTP source uses: session, deadlines, size caps, retries, 429
cool-down, HTML.

Why not ``urllib3.util.Retry`` mounted on the session: it sleeps with :func:`time.sleep`
(tests must inject the sleep), it cannot put a whole source into a cool-down that later polls
respect, and it cannot tell an HTML error page served with HTTP 200 from data. The loop here is
short and does exactly those three things; requests/urllib3 still do all the HTTP.

Why the body is streamed by hand: ``requests``' ``timeout`` bounds each socket read, not the
request, so a server trickling one byte a second holds a fetch forever; and ``.content`` holds
the whole (decompressed) body, so a gzip bomb inflates to gigabytes. :meth:`HttpClient.get`
reads the body in pieces against a total deadline (``timeout``) and a decoded size cap
(``max_bytes``), so one attempt costs at most about ``timeout`` and ``max_bytes`` whatever the
server does.

Length (over 400 lines): the retry loop, the streamed body with its deadline and size cap, and
the cool-down are one request's life; every HTTP source shares them, none repeats them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import random
import re
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from datetime import UTC, datetime, timedelta
from email.utils import parsedate_to_datetime
from typing import ClassVar

import requests
import urllib3
from pydantic import ByteSize, Field
from requests.adapters import HTTPAdapter
from urllib3.connection import HTTPConnection, HTTPSConnection
from urllib3.connectionpool import HTTPConnectionPool, HTTPSConnectionPool
from urllib3.response import HTTPResponse

from bot.clock import Clock
from bot.config import Duration, SourceParams
from bot.errors import SourceError
from bot.sources.base import USER_AGENT, Source

log = logging.getLogger(__name__)

Sleep = Callable[[float], None]

# A Retry-After beyond this is treated as this: a typo'd header must not silence a source for
# weeks. One day is long enough for Stooq's daily hit limit.
MAX_COOLDOWN = timedelta(days=1)
# urllib3 keeps this many connections per host; the poller never runs more than 32 threads.
POOL_SIZE = 32
# Decoded bytes asked of urllib3 per read: small enough that a gzip bomb never inflates more
# than this at once (urllib3 bounds decompression by the amount asked), big enough that a
# multi-megabyte CSV is a few hundred reads.
READ_CHUNK = 64 * 1024
DEFAULT_MAX_BYTES = 8_000_000
MAX_REDIRECTS = 5


# -- the deadline while waiting for the response head -----------------------------------------
#
# http.client reads the status line and headers itself, one socket read at a time, so a server
# trickling its headers is bounded by nothing but the per-read timeout. While a request waits
# for its head, a timer shuts the socket down at the attempt's deadline; the blocked read then
# ends at once. The deadline travels in a thread-local: each poller thread runs one request.

_REQUEST_DEADLINE = threading.local()


@contextlib.contextmanager
def _head_deadline(sock: socket.socket | None) -> Iterator[None]:
    at: float | None = getattr(_REQUEST_DEADLINE, "at", None)
    if at is None or sock is None:
        yield
        return
    timer = threading.Timer(max(at - time.monotonic(), 0.0), _shut_down, args=(sock,))
    timer.daemon = True
    timer.start()
    try:
        yield
    finally:
        timer.cancel()


def _shut_down(sock: socket.socket) -> None:
    with contextlib.suppress(OSError):  # already closed: nothing left to interrupt
        sock.shutdown(socket.SHUT_RDWR)


class _DeadlineHTTPConnection(HTTPConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3 does
        with _head_deadline(self.sock):
            return super().getresponse()


class _DeadlineHTTPSConnection(HTTPSConnection):
    def getresponse(self) -> HTTPResponse:  # type: ignore[override]  # as urllib3 does
        with _head_deadline(self.sock):
            return super().getresponse()


#: Environment variables requests reads when ``trust_env`` is on (proxies, CA bundles, netrc).
_REQUESTS_ENV = (
    "HTTP_PROXY",
    "HTTPS_PROXY",
    "ALL_PROXY",
    "NO_PROXY",
    "REQUESTS_CA_BUNDLE",
    "CURL_CA_BUNDLE",
    "NETRC",
)


def _environment_configures_requests() -> bool:
    """Whether the environment sets anything requests would use (proxies, CA bundle, netrc)."""
    env = {key.upper() for key, value in os.environ.items() if value}
    if env.intersection(_REQUESTS_ENV):
        return True
    return any(os.path.exists(os.path.expanduser(f"~/{name}")) for name in (".netrc", "_netrc"))


class _DeadlineHTTPPool(HTTPConnectionPool):
    ConnectionCls = _DeadlineHTTPConnection


class _DeadlineHTTPSPool(HTTPSConnectionPool):
    ConnectionCls = _DeadlineHTTPSConnection


class HttpSourceParams(SourceParams):
    """Options of every HTTP source (``sources.<name>:`` in YAML)."""

    attempts: int = Field(default=3, ge=1, le=10)
    """Tries per fetch on timeouts, connection errors and HTTP 5xx (1 = no retry)."""
    backoff: Duration = timedelta(seconds=1)
    """First retry delay; doubles per retry, with jitter."""
    max_backoff: Duration = timedelta(seconds=30)
    """Upper bound of one retry delay."""
    cooldown: Duration = timedelta(minutes=15)
    """How long the source pauses after HTTP 429 when the server sends no Retry-After."""
    max_bytes: ByteSize = Field(default=ByteSize(DEFAULT_MAX_BYTES), ge=1024)
    """Largest response body accepted, counted after decompression (``8MB``, ``512KiB``)."""


def looks_like_html(text: str, content_type: str = "") -> bool:
    """Whether a body is an HTML page (an error page, a captcha) rather than JSON or CSV."""
    if "html" in content_type.lower():
        return True
    # JSON starts with { or [, CSV with a header word; anything starting with a tag is a page.
    return text.lstrip()[:1] == "<"


_TITLE_RE = re.compile(r"<title[^>]*>(.*?)</title>", re.IGNORECASE | re.DOTALL)


def html_title(text: str) -> str | None:
    """The ``<title>`` of an HTML page, shortened, for error messages."""
    match = _TITLE_RE.search(text[:4096])
    if not match:
        return None
    title = " ".join(match.group(1).split())
    return title[:80] or None


def build_url(url: str, params: Mapping[str, str] | None = None) -> str:
    """``url`` with ``params`` encoded into its query string, as requests will send it."""
    return requests.Request("GET", url, params=dict(params or {})).prepare().url or url


def parse_retry_after(value: str | None, now: datetime) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (delta-seconds or an HTTP date)."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class CoolingDown(SourceError):
    """No request was sent: the source is in a cool-down after a rate limit. Not a new
    failure (the one that started the cool-down was reported), so it is logged quietly."""


class HttpClient:
    """GETs for one source, with retries, back-off and a per-source 429 cool-down.

    Thread-safe: the poller calls one source from several threads at once. The shared
    ``requests.Session`` pools connections (urllib3's pool is thread-safe); the cool-down is
    guarded by a lock.
    """

    def __init__(
        self,
        source_name: str,
        params: HttpSourceParams,
        clock: Clock,
        *,
        sleep: Sleep = time.sleep,
        jitter: Callable[[], float] = random.random,
        session: requests.Session | None = None,
    ) -> None:
        self.source_name = source_name
        self.params = params
        self.clock = clock
        self.sleep = sleep
        self.jitter = jitter
        self.session = session or requests.Session()
        if session is None and not _environment_configures_requests():
            # requests looks up proxies and ~/.netrc in the environment on every request (6-8%
            # of a poll's CPU); with nothing configured there, that lookup finds nothing.
            self.session.trust_env = False
        self.session.headers["User-Agent"] = USER_AGENT
        adapter = HTTPAdapter(pool_connections=4, pool_maxsize=POOL_SIZE)
        adapter.poolmanager.pool_classes_by_scheme = {
            "http": _DeadlineHTTPPool,
            "https": _DeadlineHTTPSPool,
        }
        self.session.mount("http://", adapter)
        self.session.mount("https://", adapter)
        self.session.max_redirects = MAX_REDIRECTS
        self.session.hooks["response"].append(_drop_redirect_body)
        self._lock = threading.Lock()
        self._cooldown_until: datetime | None = None

    # -- cool-down -------------------------------------------------------------------------

    @property
    def cooldown_until(self) -> datetime | None:
        """End of the current cool-down (UTC), or ``None`` when the source may be asked."""
        with self._lock:
            until = self._cooldown_until
        return until if until is not None and self.clock.now() < until else None

    def enter_cooldown(self, seconds: float | None, *, reason: str) -> datetime:
        """Pause the source for ``seconds`` (default: ``params.cooldown``); returns the end."""
        delay = timedelta(seconds=seconds) if seconds is not None else self.params.cooldown
        delay = min(max(delay, timedelta(0)), MAX_COOLDOWN)
        until = self.clock.now() + delay
        with self._lock:
            # Several threads may hit 429 at once; keep the latest end, never shorten it.
            if self._cooldown_until is None or until > self._cooldown_until:
                self._cooldown_until = until
            until = self._cooldown_until
        # DEBUG: the error that caused it is logged once by the poller and says "cooling down".
        log.debug(
            "source %s: %s; cooling down until %s (no requests until then)",
            self.source_name,
            reason,
            until.isoformat(timespec="seconds"),
        )
        return until

    def _check_cooldown(self, symbol: str | None, url: str) -> None:
        until = self.cooldown_until
        if until is not None:
            remaining = (until - self.clock.now()).total_seconds()
            raise CoolingDown(
                f"source {self.source_name} is cooling down after a rate limit until "
                f"{until.isoformat(timespec='seconds')}; no request sent",
                symbol=symbol,
                url=url,
                retryable=True,
                status=429,
                retry_after=remaining,
            )

    # -- requests --------------------------------------------------------------------------

    def backoff_delay(self, retry: int) -> float:
        """Delay before retry number ``retry`` (1-based): exponential with "equal jitter"
        (half fixed, half random) so parallel clients do not retry in lock-step."""
        base = self.params.backoff.total_seconds() * (2 ** (retry - 1))
        capped = min(base, self.params.max_backoff.total_seconds())
        return capped / 2 + self.jitter() * capped / 2

    def get(
        self,
        url: str,
        *,
        symbol: str | None,
        params: Mapping[str, str] | None = None,
        error_detail: Callable[[str], str | None] | None = None,
        accept_html: bool = False,
    ) -> str:
        """GET ``url`` and return the body as text; every failure is a :class:`SourceError`.

        Retries (``params.attempts``) timeouts, connection errors and HTTP 5xx with back-off.
        HTTP 429 starts a cool-down (``Retry-After`` or ``params.cooldown``) during which every
        call fails at once without a request. An HTML body is an error whatever the status.
        ``error_detail`` may extract a readable reason from a 4xx body (e.g. Yahoo's JSON).
        ``accept_html``: an HTML body is the data (a source reading web pages checks it itself).
        """
        full_url = build_url(url, params)
        self._check_cooldown(symbol, full_url)
        attempts = self.params.attempts
        for attempt in range(1, attempts + 1):
            try:
                return self._attempt(full_url, symbol, error_detail, accept_html)
            except SourceError as exc:
                transient = exc.retryable and exc.status != 429
                if not transient or attempt == attempts:
                    if transient and attempts > 1:
                        raise SourceError(
                            f"{_strip_prefix(exc)} (gave up after {attempts} attempts)",
                            symbol=symbol,
                            url=full_url,
                            retryable=True,
                            status=exc.status,
                        ) from exc
                    raise
                delay = self.backoff_delay(attempt)
                # DEBUG: the poller logs the outcome once; a retry that works is not news.
                log.debug(
                    "source %s: %s; retry %d/%d in %.2fs",
                    self.source_name,
                    exc,
                    attempt,
                    attempts - 1,
                    delay,
                )
                self.sleep(delay)
        raise AssertionError("unreachable")  # pragma: no cover

    def _attempt(
        self,
        url: str,
        symbol: str | None,
        error_detail: Callable[[str], str | None] | None,
        accept_html: bool = False,
    ) -> str:
        timeout = self.params.timeout.total_seconds()
        # One deadline for the whole attempt: connect, first byte and body all count.
        deadline = time.monotonic() + timeout
        _REQUEST_DEADLINE.at = deadline
        try:
            response = self.session.get(url, timeout=(timeout, timeout), stream=True)
        except requests.Timeout:
            raise _timed_out(timeout, symbol, url) from None
        except requests.ConnectionError as exc:
            if time.monotonic() >= deadline:  # the head watchdog cut the connection
                raise _timed_out(timeout, symbol, url) from None
            raise SourceError(
                f"connection failed: {_short_reason(exc)}", symbol=symbol, url=url, retryable=True
            ) from None
        except requests.RequestException as exc:
            raise SourceError(
                f"request failed: {_short_reason(exc)}", symbol=symbol, url=url
            ) from None
        finally:
            _REQUEST_DEADLINE.at = None
        try:
            body = self._read_body(response, deadline, timeout, symbol, url)
        finally:
            response.close()  # an abandoned body must not keep its connection busy

        status = response.status_code
        # Decode explicitly: letting requests guess the charset of a big CSV is slow, and every
        # format we read is UTF-8 (or its ASCII subset).
        text = body.decode("utf-8", errors="replace")
        del body
        content_type = response.headers.get("Content-Type", "")
        if status == 429:
            wait = parse_retry_after(response.headers.get("Retry-After"), self.clock.now())
            until = self.enter_cooldown(wait, reason=f"HTTP 429 for {symbol or url}")
            raise SourceError(
                "HTTP 429 Too Many Requests; source cooling down until "
                f"{until.isoformat(timespec='seconds')}",
                symbol=symbol,
                url=url,
                retryable=True,
                status=429,
                retry_after=(until - self.clock.now()).total_seconds(),
            )
        if status >= 500:
            raise SourceError(
                f"HTTP {status} {response.reason or ''}".rstrip(),
                symbol=symbol,
                url=url,
                retryable=True,
                status=status,
            )
        if not accept_html and looks_like_html(text, content_type):
            title = html_title(text)
            raise SourceError(
                f"got an HTML page instead of data (HTTP {status}"
                + (f", title {title!r}" if title else "")
                + ")",
                symbol=symbol,
                url=url,
                status=status,
            )
        if status >= 400:
            detail = error_detail(text) if error_detail else None
            raise SourceError(
                f"HTTP {status} {response.reason or ''}".rstrip()
                + (f": {detail}" if detail else ""),
                symbol=symbol,
                url=url,
                status=status,
            )
        if not text.strip():
            raise SourceError(f"empty response (HTTP {status})", symbol=symbol, url=url)
        return text

    def _read_body(
        self,
        response: requests.Response,
        deadline: float,
        timeout: float,
        symbol: str | None,
        url: str,
    ) -> bytes:
        """The decoded body, read piecewise against ``deadline`` and ``params.max_bytes``.

        ``read1`` returns whatever one socket read brings (a trickle cannot make it wait for a
        full buffer), and before each read the socket timeout is cut to the time left, so the
        attempt ends by ``deadline`` (plus scheduling noise) whatever the server does.
        """
        cap = int(self.params.max_bytes)
        encoding = response.headers.get("Content-Encoding", "").strip().lower()
        declared = response.headers.get("Content-Length", "").strip()
        if encoding in ("", "identity") and declared.isdigit() and int(declared) > cap:
            raise _too_large(cap, symbol, url, f"Content-Length {int(declared):,}")
        raw = response.raw
        body = bytearray()
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise _timed_out(timeout, symbol, url, got=len(body))
            _set_socket_timeout(raw, min(remaining, timeout))
            try:
                chunk = raw.read1(READ_CHUNK, decode_content=True)
            except (TimeoutError, urllib3.exceptions.TimeoutError):
                raise _timed_out(timeout, symbol, url, got=len(body)) from None
            except urllib3.exceptions.DecodeError as exc:
                raise SourceError(
                    f"undecodable {encoding or 'response'} body: {_short_reason(exc)}",
                    symbol=symbol,
                    url=url,
                ) from None
            except (urllib3.exceptions.HTTPError, OSError) as exc:
                raise SourceError(
                    f"connection failed while reading the body: {_short_reason(exc)}",
                    symbol=symbol,
                    url=url,
                    retryable=True,
                ) from None
            if not chunk:
                return bytes(body)
            body += chunk
            if len(body) > cap:
                raise _too_large(cap, symbol, url, "body")

    def close(self) -> None:
        """Close pooled connections."""
        self.session.close()


class HttpSource(Source):
    """Base of sources that speak HTTP: owns one :class:`HttpClient` (``self.http``)."""

    params_model: ClassVar[type[SourceParams]] = HttpSourceParams

    def __init__(
        self,
        name: str,
        params: SourceParams,
        clock: Clock,
        *,
        sleep: Sleep = time.sleep,
        session: requests.Session | None = None,
    ) -> None:
        super().__init__(name, params, clock)
        if not isinstance(params, HttpSourceParams):
            # Built by hand with the plain base model: take the defaults for the HTTP options.
            params = HttpSourceParams.model_validate(params.model_dump())
        self.http_params: HttpSourceParams = params
        self.http = HttpClient(name, params, clock, sleep=sleep, session=session)

    def close(self) -> None:
        self.http.close()


def _drop_redirect_body(response: requests.Response, *args: object, **kwargs: object) -> None:
    """Response hook: close a redirect's body unread. requests reads it whole (to free the
    connection) before following the redirect, which no cap would bound."""
    if response.is_redirect:
        response.close()


def _timed_out(timeout: float, symbol: str | None, url: str, *, got: int = -1) -> SourceError:
    progress = f" ({got:,} bytes received)" if got >= 0 else ""
    return SourceError(
        f"timed out after {timeout:g}s{progress}", symbol=symbol, url=url, retryable=True
    )


def _too_large(cap: int, symbol: str | None, url: str, what: str) -> SourceError:
    # Not retryable: the same URL will send the same oversized answer again.
    return SourceError(
        f"response too large: {what} exceeds max_bytes {cap:,}", symbol=symbol, url=url
    )


def _set_socket_timeout(raw: object, seconds: float) -> None:
    """Cut the next socket read of ``raw`` (a urllib3 response) to ``seconds``.

    Best effort: without a reachable socket the per-read ``timeout`` still applies and the
    deadline is checked after every read.
    """
    sock = getattr(getattr(raw, "connection", None), "sock", None)
    if sock is not None:
        with contextlib.suppress(OSError):  # a socket closed under us: the read will say so
            sock.settimeout(max(seconds, 0.001))


def _short_reason(exc: Exception) -> str:
    # requests nests urllib3 errors several levels deep; the innermost reason is the readable
    # part ("Connection refused"), the rest repeats the URL.
    reason: BaseException = exc
    while reason.args and isinstance(reason.args[0], BaseException):
        reason = reason.args[0]
    text = str(getattr(reason, "reason", None) or reason)
    return text[:200]


def _strip_prefix(exc: SourceError) -> str:
    """The message of ``exc`` without its ``symbol url:`` prefix."""
    parts = [p for p in (exc.symbol, exc.url) if p]
    prefix = f"{' '.join(parts)}: " if parts else ""
    return exc.message.removeprefix(prefix)
