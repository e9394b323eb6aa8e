"""Logging set-up: one stderr handler whose output never contains a secret.

Two layers keep the bot token out of the logs at every level:

* noisy libraries are turned down — httpx and httpcore log every request URL (which holds
  ``/bot<token>/``) at INFO, python-telegram-bot logs its Bot API URL at DEBUG — so httpx and
  httpcore never go below WARNING and ``telegram`` never below INFO;
* every record is redacted anyway — when it is created (a log record factory, so any handler,
  pytest's ``caplog`` included, sees it clean), again by the handler's
  :class:`RedactingFilter` (message, arguments, exception and stack text) and finally by a
  formatter that redacts its output line — so the token stays hidden even if someone turns
  those loggers back up to DEBUG.

Beyond secrets: APScheduler's INFO chatter is hidden unless DEBUG (:data:`CHATTY_LOGGERS`);
handled, retried failures are logged as one line by :func:`log_failure` (traceback at DEBUG);
and a stderr whose reader went away silences the handler and asks the process to stop
(:class:`BotStreamHandler`, :mod:`bot.lifecycle`).
"""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

from bot.errors import redact

#: Loggers that print request URLs (with the token) and their minimum level.
QUIET_LOGGERS: dict[str, int] = {
    "httpx": logging.WARNING,
    "httpcore": logging.WARNING,
    "telegram": logging.INFO,
}

#: Libraries whose INFO lines are chatter ("Running job ...", "executed successfully", "Adding
#: job tentatively"): WARNING unless the log level is DEBUG. Their warnings (a poll "skipped:
#: maximum number of running instances reached", a missed run) still show.
CHATTY_LOGGERS: dict[str, int] = {"apscheduler": logging.WARNING}

FORMAT = "%(asctime)s %(levelname)-7s %(name)s: %(message)s"


def redact_record(record: logging.LogRecord, formatter: logging.Formatter | None = None) -> None:
    """Redact ``record`` in place: its rendered message, exception text and stack text.

    The message is rendered once (``msg % args``) and redacted; ``args`` is cleared so that no
    later handler renders the raw arguments again. The exception text is formatted and redacted
    into ``exc_text``, which formatters use instead of formatting ``exc_info`` themselves.
    """
    if record.args or not isinstance(record.msg, str):
        try:
            message = record.getMessage()
        except Exception:  # a broken format string must not lose the record (or leak args)
            message = f"{record.msg!r} (unformattable arguments)"
        record.msg = message
        record.args = None
    record.msg = redact(record.msg)
    if record.exc_info and not record.exc_text:
        record.exc_text = (formatter or _PLAIN).formatException(record.exc_info)
    if record.exc_text:
        record.exc_text = redact(record.exc_text)
    if record.stack_info:
        record.stack_info = redact(record.stack_info)


_PLAIN = logging.Formatter()


class RedactingFilter(logging.Filter):
    """A handler filter that passes every record, redacted (see :func:`redact_record`)."""

    def filter(self, record: logging.LogRecord) -> bool:
        redact_record(record)
        return True


class RedactingFormatter(logging.Formatter):
    """A formatter whose output is redacted as a whole (the last line of defence)."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


#: Record attributes that carry structured data into the JSON output (``extra={...}``).
STRUCTURED_FIELDS = ("cycle",)


class JsonFormatter(logging.Formatter):
    """One JSON object per line (``--log-format json``) for log collectors: time, level,
    logger, message, the structured fields of :data:`STRUCTURED_FIELDS` and the exception
    text. The whole line is redacted like the text format's, so no secret gets through."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for name in STRUCTURED_FIELDS:
            if hasattr(record, name):
                entry[name] = getattr(record, name)
        if record.exc_info and not record.exc_text:
            record.exc_text = self.formatException(record.exc_info)
        if record.exc_text:
            entry["exception"] = record.exc_text
        return redact(json.dumps(entry, default=str, ensure_ascii=False))


class BotStreamHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """The stderr handler. When its reader goes away (``run 2>&1 | head``) it goes quiet and
    asks the process to stop, instead of printing "--- Logging error ---" for every record."""

    silenced = False

    def emit(self, record: logging.LogRecord) -> None:
        if not self.silenced:
            super().emit(record)

    def handleError(self, record: logging.LogRecord) -> None:
        from bot.lifecycle import is_closed_pipe, output_closed

        exc = sys.exc_info()[1]
        if exc is not None and is_closed_pipe(exc):
            self.silenced = True
            output_closed(self.stream)
            return
        super().handleError(record)


def describe(exc: BaseException) -> str:
    """``ExceptionType: message`` on one line (redacted), for one-line error logs."""
    text = " ".join(str(exc).split()) or "(no message)"
    return redact(f"{type(exc).__name__}: {text}")


def log_failure(logger: logging.Logger, what: str, exc: BaseException, then: str) -> None:
    """One ERROR line for a handled failure: ``what failed (Type: message); then``.

    The traceback is attached only when ``logger`` is at DEBUG: a failure that repeats every
    poll (a full disk, a flaky server) gives one readable line per poll, not a screenful.
    """
    logger.error(
        "%s (%s); %s",
        what,
        describe(exc),
        then,
        exc_info=exc if logger.isEnabledFor(logging.DEBUG) else None,
    )


def _level(value: str | int) -> int:
    if isinstance(value, int):
        return value
    level = logging.getLevelName(value.strip().upper())
    if not isinstance(level, int):
        raise ValueError(f"unknown log level {value!r}; use DEBUG, INFO, WARNING or ERROR")
    return level


def setup_logging(
    level: str | int = "INFO", stream: TextIO | None = None, fmt: str = "text"
) -> logging.Handler:
    """Log to stderr (or ``stream``) at ``level`` with secrets redacted; returns the handler.

    ``fmt``: ``text`` (one readable line per record) or ``json`` (:class:`JsonFormatter`).

    Calling it again replaces the handler it installed before (tests, ``--log-level``).
    """
    numeric = _level(level)
    root = logging.getLogger()
    for handler in list(root.handlers):
        if getattr(handler, "_bot_handler", False):
            root.removeHandler(handler)
            handler.close()
    handler = BotStreamHandler(stream if stream is not None else sys.stderr)
    handler._bot_handler = True  # type: ignore[attr-defined]
    handler.addFilter(RedactingFilter())
    if fmt not in ("text", "json"):
        raise ValueError(f"unknown log format {fmt!r}; use text or json")
    handler.setFormatter(JsonFormatter() if fmt == "json" else RedactingFormatter(FORMAT))
    root.addHandler(handler)
    root.setLevel(numeric)
    for name, floor in QUIET_LOGGERS.items():
        logging.getLogger(name).setLevel(max(numeric, floor))
    for name, floor in CHATTY_LOGGERS.items():
        logging.getLogger(name).setLevel(
            numeric if numeric <= logging.DEBUG else max(numeric, floor)
        )
    _install_record_factory()
    logging.captureWarnings(True)
    return handler


def _install_record_factory() -> None:
    """Redact each record as it is created, whichever handler will see it."""
    current = logging.getLogRecordFactory()
    if getattr(current, "_bot_redacting", False):
        return

    def factory(*args: Any, **kwargs: Any) -> logging.LogRecord:
        record = current(*args, **kwargs)
        redact_record(record)
        return record

    factory._bot_redacting = True  # type: ignore[attr-defined]
    logging.setLogRecordFactory(factory)
