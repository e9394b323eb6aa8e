"""A fake Telegram Bot API server on 127.0.0.1: real HTTP, real JSON shapes, scripted failures.

python-telegram-bot talks to it exactly as it talks to ``https://api.telegram.org``::

    fake = FakeTelegram().start()
    # requests go to {base_url}/bot{token}/{method}
    bot = telegram.Bot(FAKE_TOKEN, base_url=f"{fake.base_url}/bot")

Implemented methods: ``getMe``, ``sendMessage``, and ``getChat`` / ``getChatMember`` for the
chats a test declares with :meth:`FakeTelegram.add_chat` (any other chat: 400 "chat not
found"); GET or POST; query string, form or JSON body, as python-telegram-bot sends them.
Every ``sendMessage`` call is recorded in :attr:`calls`; every accepted one in
:attr:`messages` with chat id, text, parse mode and ``disable_notification``.

For the cockpit (commands and buttons) it also serves ``getUpdates`` from updates a test queues
(:meth:`FakeTelegram.message` / :meth:`FakeTelegram.callback`; long polling honours ``offset``
and ``timeout``; a second concurrent poller gets Telegram's 409 Conflict, counted in
:attr:`FakeTelegram.conflicts`), and records ``sendPhoto`` (multipart, the PNG bytes in
:attr:`FakeTelegram.photos`), ``answerCallbackQuery``, ``setMyCommands``, ``editMessage*`` and
``deleteWebhook`` calls in :attr:`FakeTelegram.requests` (``fake.requests_for(method)``).

Failures are scripted per chat or per call (``fake.fail(rate_limited(5), chat_id=42, times=2)``)
and answered with Telegram's own error bodies::

    429 {"ok": false, "error_code": 429, "description": "Too Many Requests: retry after 5",
         "parameters": {"retry_after": 5}}
    403 "Forbidden: bot was blocked by the user"        400 "Bad Request: chat not found"
    400 "Bad Request: group chat was upgraded to a supergroup chat" + parameters.migrate_to_chat_id
    500 "Internal Server Error"

``fail(..., skip=1)`` lets the first matching call through (part 2 of a long alert fails);
``html_only=True`` refuses only HTML-mode messages (``cant_parse_entities()``: the plain-text
resend is accepted); ``bad_json()`` answers a body that is not JSON. A misbehaving transport for
sendMessage answers: ``fake.trickle = 0.2`` sends the headers, then one body byte per 0.2 s;
``fake.stall = True`` sends the headers and then nothing (until :meth:`FakeTelegram.stop`).

With ``parse_mode=HTML`` the text is checked like Telegram does (supported tags only, balanced,
``<``/``&`` escaped, at most 4,096 characters after entity parsing); a bad one gets Telegram's
400 "can't parse entities". In enforcing mode (:class:`Limits`) it answers 429 when a sender goes
faster than Telegram allows and counts those answers in :attr:`rate_limited`.
"""

from __future__ import annotations

import email.policy
import html
import itertools
import json
import math
import re
import sys
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

#: A token shaped like a real one (so ``bot.errors.redact`` recognises it) but valid nowhere.
FAKE_TOKEN = "123456789:AAFakeTokenForTests-abcdefghijklmnopqrs"

MAX_MESSAGE_LENGTH = 4096

#: A JSON body, or raw bytes (a scripted non-JSON answer).
Answer = dict[str, Any] | bytes

# Tags Telegram accepts in HTML parse mode (https://core.telegram.org/bots/api#html-style).
_ALLOWED_TAGS = frozenset(
    [
        "b",
        "strong",
        "i",
        "em",
        "u",
        "ins",
        "s",
        "strike",
        "del",
        "span",
        "tg-spoiler",
        "a",
        "tg-emoji",
        "code",
        "pre",
        "blockquote",
    ]
)
_TAG_RE = re.compile(
    r"<(/?)([A-Za-z][A-Za-z0-9-]*)((?:\s+[A-Za-z-]+(?:\s*=\s*(?:\"[^\"]*\"|'[^']*'|[^\s>]+))?)*)\s*>"
)
_ENTITY_RE = re.compile(r"&(?:#[0-9]+|#x[0-9A-Fa-f]+|lt|gt|amp|quot);")


# ---------------------------------------------------------------------------------------------
# Scripted failures
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Failure:
    """One error answer: HTTP status, Telegram ``description`` and optional ``parameters``."""

    status: int
    description: str
    parameters: dict[str, Any] | None = None
    #: Answer these bytes instead of a JSON error body (a proxy's HTML page, broken JSON).
    raw: bytes | None = None

    def body(self) -> dict[str, Any]:
        data: dict[str, Any] = {
            "ok": False,
            "error_code": self.status,
            "description": self.description,
        }
        if self.parameters:
            data["parameters"] = self.parameters
        return data


def rate_limited(retry_after: int) -> Failure:
    """HTTP 429 asking the client to wait ``retry_after`` seconds."""
    return Failure(
        429, f"Too Many Requests: retry after {retry_after}", {"retry_after": retry_after}
    )


def blocked() -> Failure:
    """HTTP 403: the user blocked the bot."""
    return Failure(403, "Forbidden: bot was blocked by the user")


def kicked() -> Failure:
    """HTTP 403: the bot was removed from the group."""
    return Failure(403, "Forbidden: bot was kicked from the group chat")


def chat_not_found() -> Failure:
    """HTTP 400: no such chat (wrong id, or the bot never joined)."""
    return Failure(400, "Bad Request: chat not found")


def migrated(new_chat_id: int) -> Failure:
    """HTTP 400: the group became a supergroup with a new id."""
    return Failure(
        400,
        "Bad Request: group chat was upgraded to a supergroup chat",
        {"migrate_to_chat_id": new_chat_id},
    )


def cant_parse_entities(problem: str = 'Unsupported start tag "br" at byte offset 3') -> Failure:
    """HTTP 400: the text is not valid Telegram HTML (the message is fine as plain text)."""
    return Failure(400, f"Bad Request: can't parse entities: {problem}")


def bad_json(status: int = 200) -> Failure:
    """An answer whose body is not JSON (a proxy's error page, a truncated answer)."""
    return Failure(status, "", raw=b"<html><body>502 Bad Gateway</body></html>")


def server_error(status: int = 500) -> Failure:
    """A 5xx answer (Telegram's own servers failing)."""
    phrases = {500: "Internal Server Error", 502: "Bad Gateway", 503: "Service Unavailable"}
    return Failure(status, phrases.get(status, "Server Error"))


@dataclass
class _Script:
    failure: Failure
    chat_id: int | str | None  # None: any chat
    remaining: int | None  # None: forever
    skip: int = 0  # matching calls still let through before this script applies
    html_only: bool = False  # applies only to messages sent with parse_mode=HTML


# ---------------------------------------------------------------------------------------------
# Enforced rate limits
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Limits:
    """Telegram's flood limits as the fake enforces them.

    * per chat: ~1 message/s sustained with short bursts allowed — a leaky bucket that holds
      ``chat_burst`` messages and drains ``chat_per_second`` per second;
    * per group (negative id or ``@channel``): at most ``group_per_minute`` in *any* 60 s window;
    * overall: at most ``overall_per_second`` in *any* 1 s window.

    Windows are strict sliding windows, the most demanding reading of Telegram's FAQ: a sender
    that passes them passes any gentler one. ``time_factor`` < 1 shortens every period (for fast
    benchmarks: 0.1 means ten times the rates).
    """

    chat_per_second: float = 1.0
    chat_burst: float = 3.0
    group_per_minute: int = 20
    overall_per_second: int = 30
    time_factor: float = 1.0


class _Enforcer:
    """Decides whether one more message may go out now; remembers what went out."""

    def __init__(self, limits: Limits) -> None:
        self.limits = limits
        self._chat_level: dict[int | str, tuple[float, float]] = {}  # chat → (level, at)
        self._group_times: dict[int | str, deque[float]] = {}
        self._overall_times: deque[float] = deque()

    def admit(self, chat_id: int | str, now: float) -> float:
        """0 when the message may go (and count it), else seconds until it could."""
        lim = self.limits
        f = lim.time_factor
        waits: list[float] = []

        rate = lim.chat_per_second / f
        level, at = self._chat_level.get(chat_id, (0.0, now))
        level = max(0.0, level - (now - at) * rate)
        if level + 1 > lim.chat_burst + 1e-9:
            waits.append((level + 1 - lim.chat_burst) / rate)

        overall_window = 1.0 * f
        _expire(self._overall_times, now - overall_window)
        if len(self._overall_times) >= lim.overall_per_second:
            waits.append(self._overall_times[0] + overall_window - now)

        is_group = _is_group(chat_id)
        group_window = 60.0 * f
        if is_group:
            times = self._group_times.setdefault(chat_id, deque())
            _expire(times, now - group_window)
            if len(times) >= lim.group_per_minute:
                waits.append(times[0] + group_window - now)

        if waits:
            return max(max(waits), 1e-3)
        self._chat_level[chat_id] = (level + 1, now)
        self._overall_times.append(now)
        if is_group:
            self._group_times[chat_id].append(now)
        return 0.0


def _expire(times: deque[float], before: float) -> None:
    while times and times[0] <= before:
        times.popleft()


def _is_group(chat_id: int | str) -> bool:
    return isinstance(chat_id, str) or chat_id < 0


# ---------------------------------------------------------------------------------------------
# Records
# ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SentMessage:
    """A message the fake accepted."""

    message_id: int
    chat_id: int | str
    text: str
    parse_mode: str | None
    disable_notification: bool
    received: float  # time.monotonic() when it arrived
    params: dict[str, Any] = field(default_factory=dict)

    @property
    def plain(self) -> str:
        """The text as a user sees it (HTML tags removed, entities decoded)."""
        return _plain_text(self.text) if (self.parse_mode or "").upper() == "HTML" else self.text


@dataclass(frozen=True)
class SentPhoto:
    """A photo the fake accepted (``sendPhoto``): the uploaded bytes and the other fields."""

    message_id: int
    chat_id: int | str
    photo: bytes
    caption: str | None
    params: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Call:
    """Any request the fake received: method, chat, the status it answered, the text."""

    method: str
    chat_id: int | str | None
    status: int
    text: str | None
    received: float


# ---------------------------------------------------------------------------------------------
# The server
# ---------------------------------------------------------------------------------------------


class FakeTelegram:
    """A Bot API server in a background thread. Use :func:`fake_telegram` in tests."""

    def __init__(
        self,
        token: str = FAKE_TOKEN,
        *,
        limits: Limits | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.token = token
        self.limits = limits
        self.clock = clock
        self.bot_id = int(token.split(":", 1)[0]) if token.split(":", 1)[0].isdigit() else 1
        self.messages: list[SentMessage] = []
        self.calls: list[Call] = []
        self.rate_limited = 0  # 429s answered by the enforcer (not the scripted ones)
        self.delay = 0.0  # seconds to wait before every answer
        self.chat_delays: dict[int | str, float] = {}
        # Called (in the server thread) with the parsed parameters of every sendMessage before
        # it is answered: lets a test look at the bot's state while a send is in flight.
        self.before_answer: Callable[[dict[str, Any]], None] | None = None
        # Misbehaving transport for sendMessage answers: ``trickle`` seconds between the bytes
        # of the body (headers at once), or ``stall``: headers, then nothing until stop().
        self.trickle: float | None = None
        self.stall = False
        self._released = threading.Event()
        self._scripts: list[_Script] = []
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._enforcer = _Enforcer(limits) if limits else None
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None
        #: chats getChat/getChatMember know (add_chat): key → (chat JSON, the bot's member JSON)
        self.chats: dict[int | str, tuple[dict[str, Any], dict[str, Any]]] = {}
        # getUpdates: queued updates, the pollers in flight, 409s answered
        self.updates: list[dict[str, Any]] = []
        self.conflicts = 0
        self.photos: list[SentPhoto] = []
        self.requests: list[tuple[str, dict[str, Any]]] = []  # other recorded methods
        self._update_ids = itertools.count(1)
        self._updates_cond = threading.Condition(self._lock)
        self._polling = 0

    # -- lifecycle -----------------------------------------------------------------------------

    def start(self) -> FakeTelegram:
        """Listen on a free port of 127.0.0.1 and serve in a daemon thread."""
        fake = self

        class Handler(_Handler):
            server_fake = fake

        self._server = _Server(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self._released.clear()
        self._thread = threading.Thread(
            target=self._server.serve_forever,
            kwargs={"poll_interval": 0.05},  # stop() waits for one poll at most
            name="fake-telegram",
            daemon=True,
        )
        self._thread.start()
        return self

    def stop(self) -> None:
        """Stop serving and close the socket (stalled answers are let go)."""
        self._released.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeTelegram:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    @property
    def port(self) -> int:
        assert self._server is not None, "start() the fake first"
        return int(self._server.server_address[1])

    @property
    def base_url(self) -> str:
        """The Bot API root (``telegram.base_url`` in config): requests go to
        ``{base_url}/bot{token}/{method}``. python-telegram-bot wants ``f"{base_url}/bot"``."""
        return f"http://127.0.0.1:{self.port}"

    # -- scripting -----------------------------------------------------------------------------

    def fail(
        self,
        failure: Failure,
        *,
        chat_id: int | str | None = None,
        times: int | None = 1,
        skip: int = 0,
        html_only: bool = False,
    ) -> None:
        """Answer the next ``times`` sendMessage calls (to ``chat_id``, or to any chat) with
        ``failure``; ``times=None`` answers every call so. Scripts are used in the order added.

        ``skip``: let that many matching calls through first (fail part 2 of a long alert);
        ``html_only``: only calls with ``parse_mode=HTML`` match (plain text is accepted)."""
        with self._lock:
            self._scripts.append(
                _Script(failure, _chat_key(chat_id), times, skip=skip, html_only=html_only)
            )

    def block(self, chat_id: int | str) -> None:
        """The user blocked the bot: every message to ``chat_id`` gets 403 from now on."""
        self.fail(blocked(), chat_id=chat_id, times=None)

    def forget_chat(self, chat_id: int | str) -> None:
        """``chat_id`` does not exist: 400 "chat not found" from now on."""
        self.fail(chat_not_found(), chat_id=chat_id, times=None)

    def migrate(self, chat_id: int | str, new_chat_id: int) -> None:
        """The group ``chat_id`` became supergroup ``new_chat_id``; the old id answers 400."""
        self.fail(migrated(new_chat_id), chat_id=chat_id, times=None)

    def add_chat(
        self,
        chat_id: int | str,
        *,
        type: str = "supergroup",
        title: str = "Traders",
        status: str = "administrator",
        can_post_messages: bool = True,
    ) -> None:
        """Make ``chat_id`` known to getChat / getChatMember: a chat of ``type`` (``private``,
        ``group``, ``supergroup``, ``channel``) where the bot's membership is ``status``
        (``creator``, ``administrator``, ``member``, ``restricted``, ``left``, ``kicked``).
        An ``@name`` id is a chat with that username and a numeric id of its own."""
        numeric = chat_id if isinstance(chat_id, int) else -1000000000000 - len(self.chats)
        chat: dict[str, Any] = {"id": numeric, "type": type}
        if type == "private":
            chat["first_name"] = title
        else:
            chat["title"] = title
        if isinstance(chat_id, str):
            chat["username"] = chat_id.lstrip("@")
        member: dict[str, Any] = {"status": status, "user": self._me()}
        if status == "administrator":
            rights = (
                "can_be_edited can_manage_chat can_delete_messages can_manage_video_chats "
                "can_restrict_members can_promote_members can_change_info can_invite_users "
                "can_post_stories can_edit_stories can_delete_stories"
            )
            member.update(dict.fromkeys(rights.split(), False), is_anonymous=False)
            if type == "channel":
                member["can_post_messages"] = can_post_messages
        elif status == "restricted":
            rights = (
                "is_member can_send_messages can_send_audios can_send_documents "
                "can_send_photos can_send_videos can_send_video_notes can_send_voice_notes "
                "can_send_polls can_send_other_messages can_add_web_page_previews "
                "can_change_info can_invite_users can_pin_messages can_manage_topics"
            )
            member.update(dict.fromkeys(rights.split(), False), until_date=0, is_member=True)
            member["can_send_messages"] = can_post_messages
        elif status == "kicked":
            member["until_date"] = 0
        elif status == "creator":
            member["is_anonymous"] = False
        with self._lock:
            self.chats[_chat_key(chat_id)] = (chat, member)  # type: ignore[index]

    # -- updates (what users do) --------------------------------------------------------------

    def message(
        self,
        chat_id: int,
        text: str,
        *,
        user_id: int = 1001,
        chat_type: str | None = None,
        thread_id: int | None = None,
    ) -> int:
        """Queue a user's message (a command) in ``chat_id``; its update id."""
        chat_type = chat_type or ("private" if chat_id > 0 else "supergroup")
        chat: dict[str, Any] = {"id": chat_id, "type": chat_type}
        if chat_type == "private":
            chat["first_name"] = "Trader"
        else:
            chat["title"] = f"Group {chat_id}"
            if thread_id is not None:
                chat["is_forum"] = True
        message: dict[str, Any] = {
            "message_id": next(self._ids),
            "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
            "chat": chat,
            "date": int(time.time()),
            "text": text,
        }
        if text.startswith("/"):
            length = len(text.split()[0])
            message["entities"] = [{"type": "bot_command", "offset": 0, "length": length}]
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        return self.push_update({"message": message})

    def callback(
        self,
        chat_id: int,
        data: str,
        *,
        user_id: int = 1001,
        message_id: int = 1,
        thread_id: int | None = None,
    ) -> int:
        """Queue a press of an inline button whose ``callback_data`` is ``data``; its update id."""
        chat: dict[str, Any] = {"id": chat_id, "type": "private" if chat_id > 0 else "supergroup"}
        message: dict[str, Any] = {
            "message_id": message_id,
            "from": {"id": self.bot_id, "is_bot": True, "first_name": "Fake Alert Bot"},
            "chat": chat,
            "date": int(time.time()),
            "text": "alert",
        }
        if thread_id is not None:
            message["message_thread_id"] = thread_id
            message["is_topic_message"] = True
        query = {
            "id": f"cbq{next(self._ids)}",
            "from": {"id": user_id, "is_bot": False, "first_name": f"User{user_id}"},
            "chat_instance": "1",
            "message": message,
            "data": data,
        }
        return self.push_update({"callback_query": query})

    def push_update(self, update: dict[str, Any]) -> int:
        """Queue a raw update (``update_id`` is assigned); wakes a waiting ``getUpdates``."""
        with self._updates_cond:
            update_id = next(self._update_ids)
            self.updates.append({"update_id": update_id, **update})
            self._updates_cond.notify_all()
        return update_id

    def redeliver(self, update: dict[str, Any]) -> None:
        """Queue ``update`` again with its own id, as Telegram does with an update no poller
        confirmed (the poller died after handling it, before its next ``getUpdates``)."""
        with self._updates_cond:
            self.updates.append(dict(update))
            self.updates.sort(key=lambda u: int(u["update_id"]))
            self._updates_cond.notify_all()

    def requests_for(self, method: str) -> list[dict[str, Any]]:
        """Parameters of the recorded calls of ``method`` (e.g. ``answerCallbackQuery``)."""
        with self._lock:
            return [params for name, params in self.requests if name.lower() == method.lower()]

    def pending_updates(self) -> int:
        """Updates queued and not yet confirmed by a later ``getUpdates`` offset."""
        with self._lock:
            return len(self.updates)

    def clear_failures(self) -> None:
        with self._lock:
            self._scripts.clear()

    # -- reading what happened -----------------------------------------------------------------

    def sent_to(self, chat_id: int | str) -> list[SentMessage]:
        """Accepted messages to one chat, in arrival order."""
        key = _chat_key(chat_id)
        with self._lock:
            return [m for m in self.messages if m.chat_id == key]

    def texts(self, chat_id: int | str | None = None) -> list[str]:
        """Texts (as sent, HTML included) of accepted messages, to one chat or all."""
        with self._lock:
            messages = list(self.messages)
        key = _chat_key(chat_id)
        return [m.text for m in messages if key is None or m.chat_id == key]

    def calls_to(self, chat_id: int | str) -> list[Call]:
        key = _chat_key(chat_id)
        with self._lock:
            return [c for c in self.calls if c.method == "sendMessage" and c.chat_id == key]

    def reset(self) -> None:
        """Forget messages, calls, scripts and counters (not the limits' memory)."""
        with self._lock:
            self.messages.clear()
            self.calls.clear()
            self._scripts.clear()
            self.rate_limited = 0

    # -- request handling (called from the server threads) -------------------------------------

    def handle(self, path: str, params: dict[str, Any]) -> tuple[int, Answer]:
        """Answer one Bot API request: (HTTP status, JSON body)."""
        match = re.fullmatch(r"/bot([^/]+)/([A-Za-z]+)/?", path)
        if match is None:
            return 404, {"ok": False, "error_code": 404, "description": "Not Found"}
        token, method = match.group(1), match.group(2)
        if token != self.token:
            return 401, {"ok": False, "error_code": 401, "description": "Unauthorized"}
        if method.lower() == "getme":
            return 200, {"ok": True, "result": self._me()}
        if method.lower() == "sendmessage":
            return self._send_message(params)
        if method.lower() in ("getchat", "getchatmember"):
            return self._chat_info(method.lower(), params)
        if method.lower() == "getupdates":
            return self._get_updates(params)
        if method.lower() == "sendphoto":
            return self._send_photo(params)
        if method.lower() in _RECORDED:
            with self._lock:
                self.requests.append((method, dict(params)))
            if method.lower().startswith("edit"):
                chat_id = _chat_key(params.get("chat_id")) or 0
                text = str(params.get("text") or "alert")
                message_id = int(params.get("message_id") or 0)
                return 200, {"ok": True, "result": self._message_json(message_id, chat_id, text)}
            return 200, {"ok": True, "result": True}
        return 404, {"ok": False, "error_code": 404, "description": "Not Found: method not found"}

    def _me(self) -> dict[str, Any]:
        return {
            "id": self.bot_id,
            "is_bot": True,
            "first_name": "Fake Alert Bot",
            "username": "fake_alert_bot",
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
        }

    def _chat_info(self, method: str, params: dict[str, Any]) -> tuple[int, Answer]:
        with self._lock:
            known = self.chats.get(_chat_key(params.get("chat_id")))  # type: ignore[arg-type]
        if known is None:
            return 400, chat_not_found().body()
        chat, member = known
        if method == "getchat":
            return 200, {
                "ok": True,
                "result": {**chat, "accent_color_id": 0, "max_reaction_count": 11},
            }
        if str(params.get("user_id")) != str(self.bot_id):
            return 400, Failure(400, "Bad Request: user not found").body()
        return 200, {"ok": True, "result": member}

    def _send_message(self, params: dict[str, Any]) -> tuple[int, Answer]:
        now = self.clock()
        raw_chat = params.get("chat_id")
        text = params.get("text")
        if raw_chat in (None, ""):
            return self._record(None, text, now, Failure(400, "Bad Request: chat_id is empty"))
        chat_id = _chat_key(raw_chat)
        assert chat_id is not None
        if self.before_answer is not None:
            self.before_answer(params)
        delay = self.chat_delays.get(chat_id, self.delay)
        if delay:
            time.sleep(delay)
            now = self.clock()
        parse_mode = params.get("parse_mode")
        html_mode = isinstance(parse_mode, str) and parse_mode.upper() == "HTML"
        with self._lock:
            script = self._take_script(chat_id, html_mode)
            if script is not None:
                return self._record_locked(chat_id, text, now, script)
            if not text:
                return self._record_locked(
                    chat_id, text, now, Failure(400, "Bad Request: message text is empty")
                )
            if html_mode:
                problem = _check_html(text)
                if problem:
                    failure = Failure(400, f"Bad Request: can't parse entities: {problem}")
                    return self._record_locked(chat_id, text, now, failure)
                plain = _plain_text(text)
            else:
                plain = text
            if _utf16_len(plain) > MAX_MESSAGE_LENGTH:
                failure = Failure(400, "Bad Request: message is too long")
                return self._record_locked(chat_id, text, now, failure)
            if self._enforcer is not None:
                wait = self._enforcer.admit(chat_id, now)
                if wait:
                    self.rate_limited += 1
                    failure = rate_limited(max(1, math.ceil(wait)))
                    return self._record_locked(chat_id, text, now, failure)
            message_id = next(self._ids)
            self.messages.append(
                SentMessage(
                    message_id=message_id,
                    chat_id=chat_id,
                    text=text,
                    parse_mode=parse_mode if isinstance(parse_mode, str) else None,
                    disable_notification=_truthy(params.get("disable_notification")),
                    received=now,
                    params=dict(params),
                )
            )
            self.calls.append(Call("sendMessage", chat_id, 200, text, now))
        return 200, {"ok": True, "result": self._message_json(message_id, chat_id, text)}

    def _get_updates(self, params: dict[str, Any]) -> tuple[int, Answer]:
        """Long polling: confirm updates below ``offset``, wait up to ``timeout`` s for more.

        As Telegram does, a new ``getUpdates`` terminates one still waiting: the older gets
        409 Conflict (counted in :attr:`conflicts`)."""
        offset = int(params.get("offset") or 0)
        wait = float(params.get("timeout") or 0)
        deadline = time.monotonic() + min(wait, 5.0)
        with self._updates_cond:
            self._polling += 1
            generation = self._polling
            self._updates_cond.notify_all()
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
            while not self.updates and not self._released.is_set():
                if self._polling != generation:
                    self.conflicts += 1
                    return 409, {
                        "ok": False,
                        "error_code": 409,
                        "description": "Conflict: terminated by other getUpdates request; "
                        "make sure that only one bot instance is running",
                    }
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._updates_cond.wait(min(left, 0.05))
            limit = int(params.get("limit") or 100)
            result = list(self.updates[:limit])
        return 200, {"ok": True, "result": result}

    def _send_photo(self, params: dict[str, Any]) -> tuple[int, Answer]:
        chat_id = _chat_key(params.get("chat_id"))
        photo = params.get("photo")
        if chat_id is None or not isinstance(photo, bytes) or not photo:
            return 400, {"ok": False, "error_code": 400, "description": "Bad Request: no photo"}
        caption = params.get("caption")
        with self._lock:
            message_id = next(self._ids)
            self.photos.append(
                SentPhoto(
                    message_id,
                    chat_id,
                    photo,
                    caption if isinstance(caption, str) else None,
                    {k: v for k, v in params.items() if k != "photo"},
                )
            )
            self.calls.append(Call("sendPhoto", chat_id, 200, None, self.clock()))
        answer = self._message_json(message_id, chat_id, "")
        answer.pop("text")
        answer["photo"] = [
            {
                "file_id": f"photo{message_id}",
                "file_unique_id": f"u{message_id}",
                "width": 1,
                "height": 1,
            }
        ]
        return 200, {"ok": True, "result": answer}

    def _take_script(self, chat_id: int | str, html_mode: bool) -> Failure | None:
        for script in self._scripts:
            if script.chat_id is not None and script.chat_id != chat_id:
                continue
            if script.html_only and not html_mode:
                continue
            if script.skip > 0:
                script.skip -= 1
                continue
            if script.remaining is not None:
                script.remaining -= 1
                if script.remaining <= 0:
                    self._scripts.remove(script)
            return script.failure
        return None

    def _record(
        self, chat_id: int | str | None, text: Any, now: float, failure: Failure
    ) -> tuple[int, Answer]:
        with self._lock:
            return self._record_locked(chat_id, text, now, failure)

    def _record_locked(
        self, chat_id: int | str | None, text: Any, now: float, failure: Failure
    ) -> tuple[int, Answer]:
        self.calls.append(
            Call(
                "sendMessage", chat_id, failure.status, text if isinstance(text, str) else None, now
            )
        )
        return failure.status, failure.raw if failure.raw is not None else failure.body()

    def _message_json(self, message_id: int, chat_id: int | str, text: str) -> dict[str, Any]:
        if isinstance(chat_id, str):
            chat: dict[str, Any] = {
                "id": -1000000000000 - (abs(hash(chat_id)) % 10**9),
                "type": "channel",
                "title": chat_id.lstrip("@"),
                "username": chat_id.lstrip("@"),
            }
        elif chat_id > 0:
            chat = {"id": chat_id, "type": "private", "first_name": "Trader"}
        elif str(chat_id).startswith("-100"):
            chat = {"id": chat_id, "type": "supergroup", "title": f"Group {chat_id}"}
        else:
            chat = {"id": chat_id, "type": "group", "title": f"Group {chat_id}"}
        return {
            "message_id": message_id,
            "from": {
                "id": self.bot_id,
                "is_bot": True,
                "first_name": "Fake Alert Bot",
                "username": "fake_alert_bot",
            },
            "chat": chat,
            "date": int(time.time()),
            # Real Telegram answers with the parsed text (entities separately); good enough here.
            "text": _plain_text(text),
        }


#: Methods the fake accepts and records in :attr:`FakeTelegram.requests` (answered ``true``).
_RECORDED = frozenset(
    m.lower()
    for m in (
        "answerCallbackQuery",
        "setMyCommands",
        "deleteMyCommands",
        "deleteWebhook",
        "editMessageText",
        "editMessageReplyMarkup",
        "editMessageCaption",
    )
)


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: Any, client_address: Any) -> None:
        """Clients closing keep-alive connections are normal; anything else is printed."""
        if isinstance(sys.exc_info()[1], ConnectionError):
            return
        super().handle_error(request, client_address)


class _Handler(BaseHTTPRequestHandler):
    """Parses a Bot API request (GET query, form or JSON body) and lets the fake answer it."""

    server_fake: FakeTelegram
    protocol_version = "HTTP/1.1"  # keep-alive, like api.telegram.org
    disable_nagle_algorithm = True  # headers and body go out in two writes: don't wait 40 ms
    timeout = 30

    def do_GET(self) -> None:
        self._serve()

    def do_POST(self) -> None:
        self._serve()

    def _serve(self) -> None:
        url = urlsplit(self.path)
        params: dict[str, Any] = dict(parse_qsl(url.query, keep_blank_values=True))
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        content_type = (self.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        try:
            if body and content_type == "application/json":
                data = json.loads(body)
                if isinstance(data, dict):
                    params.update(data)
            elif body and content_type == "multipart/form-data":
                params.update(_multipart(self.headers.get("Content-Type") or "", body))
            elif body:
                params.update(parse_qsl(body.decode("utf-8"), keep_blank_values=True))
        except (ValueError, UnicodeDecodeError):
            self._answer(400, {"ok": False, "error_code": 400, "description": "Bad Request"})
            return
        fake = self.server_fake
        status, payload = fake.handle(url.path, params)
        if url.path.lower().endswith("/sendmessage") and (fake.stall or fake.trickle):
            self._misbehave(status, payload)
            return
        self._answer(status, payload)

    def _answer(self, status: int, payload: Answer) -> None:
        raw = isinstance(payload, bytes)
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "text/html" if raw else "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _misbehave(self, status: int, payload: Answer) -> None:
        """Headers at once, then the body a byte at a time (``trickle``) or never (``stall``)."""
        fake = self.server_fake
        data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.flush()
        try:
            if fake.stall:
                fake._released.wait(60)
                return
            for i in range(len(data)):
                self.wfile.write(data[i : i + 1])
                self.wfile.flush()
                if fake._released.wait(fake.trickle or 0):
                    return
        except ConnectionError:
            return  # the client gave up: that is the point
        finally:
            self.close_connection = True

    def log_message(self, format: str, *args: Any) -> None:
        """Quiet: the default handler prints every request (with the token) to stderr."""


# ---------------------------------------------------------------------------------------------
# HTML as Telegram parses it
# ---------------------------------------------------------------------------------------------


def _check_html(text: str) -> str | None:
    """Telegram's complaint about ``text`` in HTML parse mode, or None if it would accept it."""
    stack: list[str] = []
    i = 0
    while i < len(text):
        ch = text[i]
        offset = len(text[:i].encode())
        if ch == "<":
            m = _TAG_RE.match(text, i)
            if m is None:
                return f'Unsupported start tag "" at byte offset {offset}'
            closing, name = m.group(1) == "/", m.group(2).lower()
            if name not in _ALLOWED_TAGS:
                return f'Unsupported start tag "{name}" at byte offset {offset}'
            if closing:
                if not stack or stack[-1] != name:
                    expected = f'"</{stack[-1]}>"' if stack else "no end tag"
                    return (
                        f"Unmatched end tag at byte offset {offset}, expected {expected}, "
                        f'found "</{name}>"'
                    )
                stack.pop()
            else:
                stack.append(name)
            i = m.end()
        elif ch == "&":
            m = _ENTITY_RE.match(text, i)
            if m is None:
                return f"Character entity expected at byte offset {offset}"
            i = m.end()
        else:
            i += 1
    if stack:
        return f'Can\'t find end tag corresponding to start tag "{stack[-1]}"'
    return None


def _multipart(content_type: str, body: bytes) -> dict[str, Any]:
    """The fields of a multipart/form-data body: file parts as bytes, the others as text."""
    message = BytesParser(policy=email.policy.HTTP).parsebytes(
        f"Content-Type: {content_type}\r\n\r\n".encode() + body
    )
    fields: dict[str, Any] = {}
    for part in message.iter_parts():
        name = part.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = part.get_payload(decode=True)
        payload = payload if isinstance(payload, bytes) else b""
        fields[name] = payload if part.get_filename() else payload.decode("utf-8")
    # python-telegram-bot uploads a file as ``attach://<name>`` plus a part of that name
    for key, value in list(fields.items()):
        if isinstance(value, str) and value.startswith("attach://"):
            fields[key] = fields.get(value.removeprefix("attach://"), value)
    return fields


def _plain_text(text: str) -> str:
    return html.unescape(_TAG_RE.sub("", text))


def _utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


def _chat_key(chat_id: Any) -> int | str | None:
    """Chat ids arrive as strings in forms: numbers become ints, ``@name`` stays a string."""
    if chat_id is None:
        return None
    if isinstance(chat_id, int):
        return chat_id
    text = str(chat_id).strip()
    return int(text) if re.fullmatch(r"-?\d+", text) else text


def _truthy(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    return str(value).strip().lower() in ("true", "1")


# ---------------------------------------------------------------------------------------------
# pytest
# ---------------------------------------------------------------------------------------------


@pytest.fixture
def fake_telegram() -> Iterator[FakeTelegram]:
    """A running :class:`FakeTelegram` (token :data:`FAKE_TOKEN`), stopped after the test."""
    fake = FakeTelegram().start()
    try:
        yield fake
    finally:
        fake.stop()
