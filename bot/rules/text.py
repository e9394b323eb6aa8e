"""Wording helpers shared by rule messages: numbers, times, percentages."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from bot.model import Observation


def fmt_number(value: float, decimals: int = 2) -> str:
    """``2442.74`` → ``2,442.74``; whole levels lose their decimals (``2,500``)."""
    if float(value).is_integer() and abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:,.{decimals}f}"


def fmt_percent(value: float, decimals: int = 2) -> str:
    """Signed percentage: ``+10.25%`` / ``-3.10%``."""
    return f"{value:+.{decimals}f}%"


def fmt_time(moment: datetime, tz: ZoneInfo) -> str:
    """``2025-09-18 10:31 EDT`` in the configured time zone."""
    local = moment.astimezone(tz)
    return f"{local:%Y-%m-%d %H:%M} {local.tzname()}"


def event_time_key(observation: Observation) -> str:
    """A deterministic key for the moment of an observation (session date for closes)."""
    if observation.kind == "close" and observation.session is not None:
        return observation.session.isoformat()
    return observation.time.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
