"""Value types users write in YAML: durations, thresholds, dates, times, quiet hours, chat ids.

Each is a parser (``parse_*``, usable on its own) plus an ``Annotated`` pydantic type that runs
it before validation and serialises the value back the way users write it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, datetime, time, timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|sec|m|min|h|d|w)?\s*$")
_DURATION_UNITS = {
    None: 1.0,
    "ms": 0.001,
    "s": 1.0,
    "sec": 1.0,
    "m": 60.0,
    "min": 60.0,
    "h": 3600.0,
    "d": 86400.0,
    "w": 604800.0,
}


def parse_duration(value: Any) -> timedelta:
    """Parse ``"60s"``, ``"5m"``, ``"2h"``, ``"252d"``, ``"1w"`` or a number of seconds."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a duration such as 60s, 5m, 2h or 1d, got {value!r}")
    if isinstance(value, int | float):
        return timedelta(seconds=float(value))
    match = _DURATION_RE.match(str(value))
    if not match:
        raise ValueError(f"expected a duration such as 60s, 5m, 2h or 1d, got {value!r}")
    return timedelta(seconds=float(match.group(1)) * _DURATION_UNITS[match.group(2)])


def format_duration(value: timedelta) -> str:
    """``timedelta(minutes=5)`` → ``"5m"`` (the way users write durations)."""
    seconds = value.total_seconds()
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"


Duration = Annotated[
    timedelta, BeforeValidator(parse_duration), PlainSerializer(format_duration, return_type=str)
]

#: The shortest polling interval: the scheduler's resolution. ``0s`` would poll every second.
MIN_POLL = timedelta(seconds=1)


def parse_poll_interval(value: Any) -> timedelta:
    """A duration of at least :data:`MIN_POLL`."""
    interval = parse_duration(value)
    if interval < MIN_POLL:
        raise ValueError(f"must be at least {format_duration(MIN_POLL)}, got {value!r}")
    return interval


PollInterval = Annotated[
    timedelta,
    BeforeValidator(parse_poll_interval),
    PlainSerializer(format_duration, return_type=str),
]

_DATE_RE = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


def parse_date(value: Any) -> date:
    """``"2026-12-31"`` → a date. The YAML loader keeps dates as text (YAML 1.2), so an
    impossible one such as ``2026-02-30`` is reported here, at its line, with the reason."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    text = value.strip() if isinstance(value, str) else None
    match = _DATE_RE.match(text) if text is not None else None
    if match is None:
        raise ValueError(f"expected a date such as 2026-12-31, got {describe(value)}")
    try:
        return date(int(match.group(1)), int(match.group(2)), int(match.group(3)))
    except ValueError as exc:
        raise ValueError(
            f"expected a date such as 2026-12-31, got {describe(value)} ({exc})"
        ) from None


DateValue = Annotated[date, BeforeValidator(parse_date), PlainSerializer(str, return_type=str)]


@dataclass(frozen=True)
class Threshold:
    """A distance: a percentage (``"1%"``) or points (``20``, ``"20pt"``)."""

    amount: float
    percent: bool

    def of(self, base: float) -> float:
        """The distance in points relative to ``base``."""
        return abs(base) * self.amount / 100.0 if self.percent else self.amount

    def __str__(self) -> str:
        return f"{self.amount:g}%" if self.percent else f"{self.amount:g} pt"


_THRESHOLD_RE = re.compile(r"^\s*([-+]?\d+(?:\.\d+)?)\s*(%|pt|pts|points?)?\s*$")


def parse_threshold(value: Any) -> Threshold:
    """Parse ``"1%"`` (percent), ``20``/``"20pt"`` (points)."""
    if isinstance(value, Threshold):
        return value
    if isinstance(value, bool):
        raise ValueError(f"expected a percentage such as 1% or points such as 20, got {value!r}")
    if isinstance(value, int | float):
        return Threshold(float(value), percent=False)
    match = _THRESHOLD_RE.match(str(value))
    if not match:
        raise ValueError(f"expected a percentage such as 1% or points such as 20, got {value!r}")
    return Threshold(float(match.group(1)), percent=match.group(2) == "%")


ThresholdValue = Annotated[
    Threshold, BeforeValidator(parse_threshold), PlainSerializer(str, return_type=str)
]

_CLOCK_RE = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


def parse_clock_time(value: Any) -> time:
    """Parse ``"16:15"`` into a :class:`datetime.time`."""
    if isinstance(value, time):
        return value
    match = _CLOCK_RE.match(str(value).strip())
    if not match:
        raise ValueError(f'expected a time of day such as "16:15", got {value!r}')
    return time(int(match.group(1)), int(match.group(2)))


ClockTime = Annotated[time, BeforeValidator(parse_clock_time)]


@dataclass(frozen=True)
class QuietHours:
    """A daily window such as ``22:00-07:00`` (may wrap midnight) in the configured time zone."""

    start: time
    end: time

    def contains(self, moment: time) -> bool:
        if self.start <= self.end:
            return self.start <= moment < self.end
        return moment >= self.start or moment < self.end

    def __str__(self) -> str:
        return f"{self.start:%H:%M}-{self.end:%H:%M}"


def parse_quiet_hours(value: Any) -> QuietHours:
    if isinstance(value, QuietHours):
        return value
    parts = str(value).split("-")
    if len(parts) != 2:
        raise ValueError(f'expected a window such as "22:00-07:00", got {value!r}')
    try:
        return QuietHours(parse_clock_time(parts[0]), parse_clock_time(parts[1]))
    except ValueError:
        raise ValueError(f'expected a window such as "22:00-07:00", got {value!r}') from None


QuietHoursValue = Annotated[
    QuietHours, BeforeValidator(parse_quiet_hours), PlainSerializer(str, return_type=str)
]


def _as_list(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


StrList = Annotated[list[str], BeforeValidator(_as_list)]

_CHAT_RE = re.compile(r"^(-?\d+|@[A-Za-z][A-Za-z0-9_]{3,})$")


def parse_chat_id(value: Any) -> int | str | None:
    """A Telegram chat id: an integer (negative for groups) or ``@channelname``.

    Empty (an unset ``${TELEGRAM_CHAT_ID}``) is ``None``: fine while Telegram is off, an error
    once a token is set (checked by :class:`TelegramConfig`).
    """
    if value is None:
        return None
    if isinstance(value, bool | float):
        raise ValueError(f"expected a chat id (number or @channelname), got {value!r}")
    if isinstance(value, int):
        return value
    text = str(value).strip()
    if not text:
        return None
    if not _CHAT_RE.match(text):
        raise ValueError(f"expected a chat id (number or @channelname), got {text!r}")
    return int(text) if text.lstrip("-").isdigit() else text


ChatId = Annotated[int | str | None, BeforeValidator(parse_chat_id)]


def describe(value: Any) -> str:
    """How a wrong value is named in a message: text quoted, ``nothing``, ``a mapping``…"""
    if isinstance(value, str):
        return repr(value)
    if value is None:
        return "nothing"
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return repr(value)


def redact_url(url: str) -> str:
    """Hide the password part of a database URL."""
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1<redacted>@", url)
