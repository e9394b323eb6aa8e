"""Wording helpers shared by rule messages: numbers, times, percentages."""

from __future__ import annotations

import functools
from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from bot.model import Observation


def fmt_number(value: float, decimals: int = 2) -> str:
    """``2442.74`` → ``2,442.74``; whole levels lose their decimals (``2,500``)."""
    if float(value).is_integer() and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{decimals}f}"


def fmt_value(value: float) -> str:
    """A price or close, always with cents: ``2,299.00`` (levels use :func:`fmt_number`)."""
    return f"{value:,.2f}"


def fmt_percent(value: float, decimals: int = 2) -> str:
    """Signed percentage: ``+10.25%`` / ``-3.10%``."""
    return f"{value:+.{decimals}f}%"


@functools.lru_cache(maxsize=1024)
def fmt_time(moment: datetime, tz: ZoneInfo) -> str:
    """``2025-09-18 10:31 EDT`` in the configured time zone."""
    local = moment.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def fmt_when(moment: datetime, tz: ZoneInfo, day: date | None = None) -> str:
    """When an event happened, for people: ``2025-09-18 10:31 EDT``, or for a date-only event
    (``day`` given: a FRED row) just its date ``2015-12-16`` — never the previous evening."""
    return day.isoformat() if day is not None else fmt_time(moment, tz)


def local_moment(moment: datetime, tz: ZoneInfo, day: date | None = None) -> datetime:
    """``moment`` in ``tz``; a date-only event (``day``) as that date's 00:00 in ``tz``."""
    return datetime.combine(day, time(0), tz) if day is not None else moment.astimezone(tz)


def event_time_key(observation: Observation) -> str:
    """A deterministic key for the moment of an observation (the session date for closes and
    date-only rows)."""
    if observation.session is not None and (observation.kind == "close" or observation.date_only):
        return observation.session.isoformat()
    return observation.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def fmt_signed(value: float, decimals: int = 2) -> str:
    """Signed points with thousands separators: ``+23.75`` / ``-1,204.10``."""
    return f"{value:+,.{decimals}f}"


def fmt_rate(value: float) -> str:
    """A policy rate in percent, always two decimals: ``4.25``."""
    return f"{value:.2f}"


def fmt_range(lower: float | None, upper: float) -> str:
    """A target range ``4.25–4.50%`` (or a single rate ``5.33%`` when there is no lower bound)."""
    if lower is None or lower == upper:
        return f"{fmt_rate(upper)}%"
    return f"{fmt_rate(lower)}–{fmt_rate(upper)}%"


def fmt_count(value: int) -> str:
    """``1463`` → ``1,463``."""
    return f"{value:,d}"


def plural(count: int, word: str) -> str:
    """``1 day`` / ``1,463 days``."""
    return f"{fmt_count(count)} {word}{'' if count == 1 else 's'}"
