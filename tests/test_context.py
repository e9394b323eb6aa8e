"""``bot.context``: each fact on small hand-built series whose answer is known by construction."""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from bot.context import longest_phrase, ordinal, rate_facts, series_facts, symbol_facts
from bot.model import DailySeries


def daily(start: str, values: list[float], step: int = 1) -> DailySeries:
    """One row every ``step`` calendar days from ``start``."""
    first = date.fromisoformat(start)
    return DailySeries([first + timedelta(days=step * i) for i in range(len(values))], values)


def rows(pairs: list[tuple[str, float]]) -> DailySeries:
    return DailySeries([date.fromisoformat(d) for d, _ in pairs], [v for _, v in pairs])


def test_a_tie_is_not_a_record_close() -> None:
    s = daily("2024-03-01", [10, 12, 12, 11])
    facts = symbol_facts(s)
    assert facts is not None
    assert facts.record.value == 12 and facts.record.date == date(2024, 3, 2)
    assert facts.record.days_since == 2 and facts.record.sessions_since == 2
    assert facts.record.count_ytd == 2  # the first row and 12; the tie is not one
    assert series_facts(s).record_rows == [0, 1]


def test_a_record_on_the_first_row() -> None:
    s = daily("2024-03-01", [10, 9, 8])
    facts = symbol_facts(s)
    assert facts is not None
    assert facts.record.date == date(2024, 3, 1) and facts.record.value == 10
    assert facts.record.history_start == date(2024, 3, 1)
    assert facts.record.days_since == 2 and facts.record.sessions_since == 2
    assert facts.record.pct_from == pytest.approx(-20.0)
    assert facts.record.count_ytd == 1
    assert facts.record.drought_rank == 1  # the only stretch is the open one


def test_a_record_today() -> None:
    facts = symbol_facts(daily("2024-03-01", [10, 11, 12]))
    assert facts is not None
    assert facts.record.days_since == 0 and facts.record.sessions_since == 0
    assert facts.record.pct_from == 0.0 and facts.record.count_ytd == 3


def test_drought_rank_of_a_stretch_still_open() -> None:
    # Records on days 0, 10 and 15 (stretches of 10 and 5 days), then none.
    values = [100.0] + [90.0] * 9 + [101.0] + [95.0] * 4 + [102.0] + [96.0] * 30
    s = daily("2024-01-01", values)
    sf = series_facts(s)
    assert sf.record_rows == [0, 10, 15] and sf.gaps == [10, 5]
    day = date(2024, 1, 1)
    # 7 days after the last record: only the 10-day stretch was longer -> 2nd.
    at7 = symbol_facts(s, day + timedelta(days=22))
    assert at7 is not None and at7.record.days_since == 7 and at7.record.drought_rank == 2
    # 10 days: ties share the better rank -> 1st.
    at10 = symbol_facts(s, day + timedelta(days=25))
    assert at10 is not None and at10.record.drought_rank == 1
    # 3 days: both completed stretches were longer -> 3rd.
    at3 = symbol_facts(s, day + timedelta(days=18))
    assert at3 is not None and at3.record.drought_rank == 3
    # The table of every row agrees with the per-row answer.
    ranks = sf.drought_ranks().tolist()
    assert ranks == [sf.drought_rank(i) for i in range(len(s))]
    assert sf.stretch_rank(3, 10) == 1 and sf.stretch_rank(3, 6) == 2


def test_drought_counts_calendar_days_and_sessions_skip_holidays() -> None:
    # 2024-07-04 is a holiday (no row); a weekend in between.
    s = rows(
        [
            ("2024-07-01", 100.0),
            ("2024-07-02", 99.0),
            ("2024-07-03", 98.0),
            ("2024-07-05", 97.0),
            ("2024-07-08", 96.0),
        ]
    )
    facts = symbol_facts(s)
    assert facts is not None
    assert facts.record.days_since == 7 and facts.record.sessions_since == 4
    assert facts.change["1d"] == pytest.approx((96 / 97 - 1) * 100)
    # 5d: five rows back does not exist (only four earlier rows)
    assert facts.change["5d"] is None
    friday = symbol_facts(s, date(2024, 7, 4))  # the holiday itself: as of the 3rd's close
    assert friday is not None and friday.date == date(2024, 7, 3)


def test_a_year_with_no_records() -> None:
    s = rows([("2022-12-01", 100.0), ("2022-12-30", 110.0), ("2023-01-03", 105.0)])
    facts = symbol_facts(s)
    assert facts is not None
    assert facts.record.count_ytd == 0
    assert facts.record.date == date(2022, 12, 30)
    dec = symbol_facts(s, date(2022, 12, 31))
    assert dec is not None and dec.record.count_ytd == 2


def test_month_quarter_and_year_boundaries() -> None:
    s = rows(
        [
            ("2023-12-29", 100.0),  # last close of 2023 (and of Q4, of December)
            ("2024-01-02", 102.0),
            ("2024-01-31", 110.0),  # last close of January
            ("2024-02-01", 111.0),
            ("2024-02-29", 99.0),  # last close of February
            ("2024-03-28", 121.0),  # last close of Q1
            ("2024-04-01", 120.0),
        ]
    )
    jan2 = symbol_facts(s, date(2024, 1, 2))
    assert jan2 is not None
    assert jan2.change["ytd"] == pytest.approx(2.0)
    assert jan2.change["mtd"] == pytest.approx(2.0)
    assert jan2.change["qtd"] == pytest.approx(2.0)
    assert jan2.change["prev_month"] is None  # no close before December began
    feb1 = symbol_facts(s, date(2024, 2, 1))
    assert feb1 is not None
    assert feb1.change["mtd"] == pytest.approx((111 / 110 - 1) * 100)
    assert feb1.change["prev_month"] == pytest.approx(10.0)  # January: 100 -> 110
    assert feb1.change["ytd"] == pytest.approx(11.0)
    apr1 = symbol_facts(s, date(2024, 4, 1))
    assert apr1 is not None
    assert apr1.change["qtd"] == pytest.approx((120 / 121 - 1) * 100)
    assert apr1.change["ytd"] == pytest.approx(20.0)
    assert apr1.change["prev_month"] == pytest.approx((121 / 99 - 1) * 100)
    assert apr1.change["1y"] is None  # no close a year back


def test_one_year_change_and_52_week_range() -> None:
    s = rows(
        [
            ("2023-03-01", 50.0),  # the same date a year back: the 1y base, outside the range
            ("2023-03-02", 200.0),
            ("2023-09-01", 40.0),
            ("2024-01-02", 200.0),  # a tie with the high: the earliest date wins
            ("2024-03-01", 100.0),
        ]
    )
    facts = symbol_facts(s)
    assert facts is not None
    assert facts.change["1y"] == pytest.approx(100.0)
    assert (facts.high_52w, facts.high_52w_date) == (200.0, date(2023, 3, 2))
    assert (facts.low_52w, facts.low_52w_date) == (40.0, date(2023, 9, 1))


def test_rows_after_the_date_are_never_read() -> None:
    values = [100.0, 101.0, 99.0, 98.0, 150.0, 160.0]
    s = daily("2024-05-01", values)
    at = date(2024, 5, 4)
    assert symbol_facts(s, at) == symbol_facts(s.until(at))
    assert symbol_facts(s, date(2024, 4, 30)) is None
    assert symbol_facts(DailySeries()) is None


def test_the_cache_follows_appends() -> None:
    s = daily("2024-05-01", [100.0, 99.0])
    assert series_facts(s).record_rows == [0]
    s.append(date(2024, 5, 3), 120.0)
    assert series_facts(s).record_rows == [0, 2]
    s.append(date(2024, 5, 3), 90.0)  # the last row replaced
    assert series_facts(s).record_rows == [0]


def test_json_has_every_field() -> None:
    facts = symbol_facts(daily("2024-05-01", [100.0, 99.0]), symbol="RUT", name="Russell 2000")
    assert facts is not None
    data = facts.to_json()
    assert set(data) == {"symbol", "name", "date", "close", "record", "change", "range_52w"}
    assert set(data["record"]) == {
        "value",
        "date",
        "pct_from",
        "days_since",
        "sessions_since",
        "drought_rank",
        "count_ytd",
        "history_start",
    }
    assert set(data["change"]) == {"1d", "5d", "mtd", "prev_month", "qtd", "ytd", "1y"}
    assert set(data["range_52w"]) == {"high", "high_date", "low", "low_date"}


def test_rate_facts_range_since_last_change_and_this_year() -> None:
    days = ["2023-12-29", "2024-09-18", "2024-09-19", "2024-11-08", "2024-12-02", "2025-01-02"]
    upper = [5.50, 5.50, 5.00, 4.75, 4.75, 4.75]
    lower = [5.25, 5.25, 4.75, 4.50, 4.50, 4.50]
    s = DailySeries([date.fromisoformat(d) for d in days], upper, {"upper": upper, "lower": lower})
    facts = rate_facts(s, date(2024, 12, 2), "FED")
    assert facts is not None
    assert (facts.lower, facts.upper, facts.since) == (4.50, 4.75, date(2024, 11, 8))
    assert (facts.last_change_date, facts.last_change_bp) == (date(2024, 11, 8), -25)
    assert facts.changes_ytd == [(date(2024, 9, 19), -50), (date(2024, 11, 8), -25)]
    next_year = rate_facts(s, date(2025, 1, 2))
    assert next_year is not None and next_year.changes_ytd == []
    assert next_year.last_change_bp == -25
    assert next_year.to_json()["changes_ytd_bp"] == 0
    unchanged = rate_facts(s, date(2024, 1, 5))
    assert unchanged is not None and unchanged.since == date(2023, 12, 29)
    assert unchanged.last_change_date is None


def test_wording_helpers() -> None:
    assert [ordinal(n) for n in (1, 2, 3, 4, 11, 12, 13, 21, 22, 111)] == [
        "1st", "2nd", "3rd", "4th", "11th", "12th", "13th", "21st", "22nd", "111th"
    ]  # fmt: skip
    assert longest_phrase(1) == "longest" and longest_phrase(3) == "3rd-longest"
