"""Helpers shared by the rule tests (hand-made series, a config in a few lines), plus tests of
the shared window and wording helpers in ``bot.rules.windows`` / ``bot.rules.text``."""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

import pytest
import yaml

from bot.clock import FakeClock
from bot.config import Config, parse_config
from bot.engine import Engine
from bot.model import AlertDraft, DailySeries, History, Observation
from bot.rules import Rule
from bot.rules.text import fmt_range, fmt_value, plural
from bot.rules.windows import Cursor, Window, breach_step, parse_window

CLOCK = FakeClock(datetime(2030, 1, 1, tzinfo=UTC))

SYMBOLS: dict[str, Any] = {
    "RUT": {"source": "yahoo", "ticker": "^RUT", "name": "Russell 2000", "calendar": "XNYS"},
    "SPX": {"source": "yahoo", "ticker": "^GSPC", "name": "S&P 500", "calendar": "XNYS"},
    "RTY": {"source": "yahoo", "ticker": "RTY=F", "name": "RTY futures", "calendar": "CME"},
    "FED": {
        "source": "fred",
        "series": {"lower": "DFEDTARL", "upper": "DFEDTARU"},
        "name": "Fed funds target range",
    },
}


def make_config(*rules: Mapping[str, Any], timezone: str = "America/New_York") -> Config:
    """A valid config with the usual symbols and the given rules."""
    text = yaml.safe_dump(
        {
            "timezone": timezone,
            "sources": {"yahoo": {"type": "yahoo"}, "fred": {"type": "fred"}},
            "symbols": SYMBOLS,
            "rules": [dict(r) for r in rules],
        },
        sort_keys=False,
        allow_unicode=True,
    )
    return parse_config(text, "test.yaml", {})


def make_rule(**params: Any) -> Rule[Any]:
    """The single rule of a config built from ``params`` (``id`` defaults to ``r``)."""
    params.setdefault("id", "r")
    engine = Engine.from_config(make_config(params))
    return engine.rules[0]


def business_days(start: date, count: int) -> list[date]:
    """``count`` weekdays from ``start`` on."""
    days: list[date] = []
    day = start
    while len(days) < count:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def series(rows: Iterable[tuple[date | str, float]]) -> DailySeries:
    """A DailySeries from ``(date, close)`` pairs (ISO strings allowed)."""
    pairs = [(date.fromisoformat(d) if isinstance(d, str) else d, v) for d, v in rows]
    return DailySeries([d for d, _ in pairs], [v for _, v in pairs])


def close_at(symbol: str, day: date, value: float) -> Observation:
    """A final close, stamped 21:00 UTC of its session."""
    return Observation(symbol, datetime.combine(day, time(21), UTC), value, "close", day)


def closes(symbol: str, data: DailySeries) -> list[Observation]:
    """One close observation per row."""
    return [close_at(symbol, d, v) for d, v in zip(data.dates, data.values, strict=True)]


def price_at(symbol: str, moment: datetime, value: float) -> Observation:
    """An intraday print."""
    return Observation(symbol, moment, value, "price")


def prices(
    symbol: str, values: Sequence[float], start: datetime | None = None
) -> list[Observation]:
    """Intraday prints a minute apart."""
    start = start or datetime(2025, 9, 18, 14, 0, tzinfo=UTC)
    return [price_at(symbol, start + timedelta(minutes=i), v) for i, v in enumerate(values)]


def run_batch(
    rule: Rule[Any],
    observations: Sequence[Observation],
    history: History | None = None,
    state: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any], list[AlertDraft]]:
    """Evaluate the observations the rule wants in one call."""
    wanted = [o for o in observations if rule.wants(o)]
    return rule.evaluate(wanted, history or History(), state, CLOCK)


def run_one_by_one(
    rule: Rule[Any],
    observations: Sequence[Observation],
    history: History | None = None,
    state: Mapping[str, Any] | None = None,
) -> tuple[dict[str, Any] | None, list[AlertDraft]]:
    """Evaluate one observation per call, carrying the state — as the live loop does."""
    drafts: list[AlertDraft] = []
    current: Mapping[str, Any] | None = state
    for observation in observations:
        if not rule.wants(observation):
            continue
        new_state, found = rule.evaluate([observation], history or History(), current, CLOCK)
        drafts.extend(found)
        # Through JSON, as the store keeps it: proves the state is serialisable and complete.
        import json

        current = json.loads(json.dumps(new_state))
    return dict(current) if current is not None else None, drafts


# ---------------------------------------------------------------------------------------------
# windows.py / text.py
# ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "kind", "sessions"),
    [("1d", "sessions", 1), ("5d", "sessions", 5), ("252D", "sessions", 252), ("MTD", "mtd", 0)],
)
def test_parse_window(text: str, kind: str, sessions: int) -> None:
    window = parse_window(text)
    assert (window.kind, window.sessions) == (kind, sessions)


@pytest.mark.parametrize("bad", ["0d", "1w", "month", "", True, "5 days"])
def test_parse_window_rejects(bad: object) -> None:
    with pytest.raises(ValueError, match="window"):
        parse_window(bad)


def test_period_keys_and_bounds() -> None:
    day = date(2025, 11, 3)
    assert Window("mtd").period_key(day) == "2025-11"
    assert Window("qtd").period_key(day) == "2025-Q4"
    assert Window("ytd").period_key(day) == "2025"
    assert Window("qtd").period_start(day) == date(2025, 10, 1)
    assert Window("qtd").period_end(day) == date(2026, 1, 1)
    assert Window("mtd").period_end(date(2025, 12, 31)) == date(2026, 1, 1)


def test_base_index_uses_only_earlier_rows() -> None:
    data = series([("2025-08-28", 1), ("2025-08-29", 2), ("2025-09-02", 3), ("2025-09-03", 4)])
    assert Window("mtd").base_index(data, date(2025, 9, 3)) == 1  # last close of August
    assert Window("sessions", 1).base_index(data, date(2025, 9, 3)) == 2  # previous close
    assert Window("sessions", 3).base_index(data, date(2025, 9, 3)) == 0
    assert Window("sessions", 4).base_index(data, date(2025, 9, 3)) == -1  # not enough rows


def test_breach_step_once_per_period_and_per_episode() -> None:
    fired: dict[str, str | None] = {"up": None, "down": None}
    mtd = Window("mtd")
    assert breach_step(fired, mtd, date(2025, 9, 2), True, False) == ["up"]
    assert breach_step(fired, mtd, date(2025, 9, 3), False, False) == []
    assert breach_step(fired, mtd, date(2025, 9, 4), True, False) == []  # same month
    assert breach_step(fired, mtd, date(2025, 10, 1), True, False) == ["up"]
    rolling: dict[str, str | None] = {"up": None, "down": None}
    five = Window("sessions", 5)
    assert breach_step(rolling, five, date(2025, 9, 2), True, False) == ["up"]
    assert breach_step(rolling, five, date(2025, 9, 3), True, False) == []
    assert breach_step(rolling, five, date(2025, 9, 4), False, False) == []  # re-arms
    assert breach_step(rolling, five, date(2025, 9, 5), True, False) == ["up"]


def test_cursor_matches_bisection() -> None:
    data = series((d, 1.0) for d in business_days(date(2025, 1, 1), 60))
    cursor = Cursor(data)
    probe = date(2024, 12, 25)
    for _ in range(120):
        assert cursor.on_or_before(probe) == data.index_on_or_before(probe)
        assert cursor.before(probe) == data.index_before(probe)
        probe += timedelta(days=1)
    assert cursor.on_or_before(date(2025, 1, 6)) == data.index_on_or_before(date(2025, 1, 6))


def test_wording_helpers() -> None:
    assert fmt_range(4.25, 4.5) == "4.25–4.50%"
    assert fmt_range(None, 5.33) == "5.33%"
    assert fmt_value(2299) == "2,299.00"
    assert plural(1, "day") == "1 day"
    assert plural(1463, "day") == "1,463 days"


def test_vectorised_window_helpers_agree_with_the_scalar_ones() -> None:
    """The fast paths' numpy helpers give what Window.period_start/base_index give."""
    import numpy as np

    from bot.rules.batch import base_indices, period_start_ordinals

    days = business_days(date(2019, 12, 20), 400)
    data = series((d, float(i + 1)) for i, d in enumerate(days))
    asked = [days[0] - timedelta(days=3), *days[::7], days[-1] + timedelta(days=40)]
    ordinals = np.array([d.toordinal() for d in asked], dtype=np.int64)
    for text in ("mtd", "qtd", "ytd"):
        window = parse_window(text)
        starts = period_start_ordinals(window, ordinals).tolist()
        assert starts == [window.period_start(d).toordinal() for d in asked], text
    for text in ("1d", "5d", "30d", "mtd", "qtd", "ytd"):
        window = parse_window(text)
        assert base_indices(window, data, ordinals).tolist() == [
            window.base_index(data, d) for d in asked
        ], text


def test_series_arrays_follow_appends() -> None:
    """DailySeries.arrays() is cached, and renewed when a row is added or replaced."""
    data = series([("2025-01-02", 1.0), ("2025-01-03", 2.0)])
    assert data.arrays()[1].tolist() == [1.0, 2.0]
    data.append(date(2025, 1, 3), 5.0)  # replaces the last row
    assert data.arrays()[1].tolist() == [1.0, 5.0]
    data.append(date(2025, 1, 6), 6.0)
    ordinals, values = data.arrays()
    assert values.tolist() == [1.0, 5.0, 6.0]
    assert ordinals.tolist()[-1] == date(2025, 1, 6).toordinal()


def test_episode_rows_keeps_breaches_and_the_first_row_back_inside() -> None:
    import numpy as np

    from bot.rules.batch import episode_rows

    valid = np.array([False, True, True, True, True, True, True])
    beyond = np.array([False, False, True, True, False, False, True])
    assert episode_rows(valid, beyond).tolist() == [0, 1, 2, 3, 4, 6]
