"""``rate_change``: the Fed funds target range moves (cut, hike, one bound only)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time

from bot.model import DailySeries, History, Observation
from bot.rules.rate_change import describe_change
from tests.test_rule_support import make_rule, run_batch, run_one_by_one


def rate(day: str, lower: float | None, upper: float) -> Observation:
    session = date.fromisoformat(day)
    fields = {"upper": upper} if lower is None else {"lower": lower, "upper": upper}
    return Observation(
        "FED", datetime.combine(session, time(0), UTC), upper, "rate", session, fields
    )


def fed_history(rows: list[tuple[str, float, float]]) -> History:
    days = [date.fromisoformat(d) for d, _, _ in rows]
    lower = [lo for _, lo, _ in rows]
    upper = [up for _, _, up in rows]
    return History({"FED": DailySeries(days, upper, {"lower": lower, "upper": upper})})


def test_cut_message() -> None:
    rule = make_rule(type="rate_change", symbol="FED")
    observations = [rate("2024-12-18", 4.50, 4.75), rate("2024-12-19", 4.25, 4.50)]
    _, drafts = run_batch(rule, observations)
    assert [d.text for d in drafts] == [
        "Fed cuts by 25 bp: 4.50–4.75% → 4.25–4.50% (effective 2024-12-19)"
    ]
    assert drafts[0].key == "2024-12-19"
    assert drafts[0].fields["change_bp"] == "-25"


def test_hike_message() -> None:
    rule = make_rule(type="rate_change", symbol="FED")
    observations = [rate("2022-06-15", 0.75, 1.00), rate("2022-06-16", 1.50, 1.75)]
    _, drafts = run_batch(rule, observations)
    assert [d.text for d in drafts] == [
        "Fed hikes by 75 bp: 0.75–1.00% → 1.50–1.75% (effective 2022-06-16)"
    ]


def test_one_bound_only() -> None:
    rule = make_rule(type="rate_change", symbol="FED")
    observations = [
        rate("2020-01-01", 1.50, 1.75),
        rate("2020-01-02", 1.50, 2.00),  # upper only
        rate("2020-01-03", 1.25, 2.00),  # lower only
    ]
    _, drafts = run_batch(rule, observations)
    assert [d.text for d in drafts] == [
        "Fed raises the upper bound by 25 bp: 1.50–1.75% → 1.50–2.00% (effective 2020-01-02)",
        "Fed lowers the lower bound by 25 bp: 1.50–2.00% → 1.25–2.00% (effective 2020-01-03)",
    ]


def test_bounds_moving_apart() -> None:
    text = describe_change("Fed", (1.0, 1.25), (0.75, 1.5), date(2020, 1, 2))
    assert text == (
        "Fed changes the target range (lower -25 bp, upper +25 bp): 1.00–1.25% → 0.75–1.50% "
        "(effective 2020-01-02)"
    )


def test_single_series_rate() -> None:
    text = describe_change("ECB", (None, 4.0), (None, 3.75), date(2024, 6, 12))
    assert text == "ECB cuts by 25 bp: 4.00% → 3.75% (effective 2024-06-12)"


def test_first_run_is_seeded_from_history() -> None:
    """No state: the range before the first observation comes from history."""
    rule = make_rule(type="rate_change", symbol="FED")
    history = fed_history([("2024-12-17", 4.50, 4.75), ("2024-12-18", 4.50, 4.75)])
    _, same = run_batch(rule, [rate("2024-12-18", 4.50, 4.75)], history)
    assert same == []
    _, cut = run_batch(rule, [rate("2024-12-19", 4.25, 4.50)], history)
    assert [d.key for d in cut] == ["2024-12-19"]


def test_first_run_without_history_reports_nothing() -> None:
    rule = make_rule(type="rate_change", symbol="FED")
    state, drafts = run_batch(rule, [rate("2024-12-19", 4.25, 4.50)])
    assert drafts == []
    assert state == {"lower": 4.25, "upper": 4.5, "date": "2024-12-19"}


def test_republished_rows_and_float_noise_are_not_changes() -> None:
    rule = make_rule(type="rate_change", symbol="FED")
    observations = [
        rate("2024-12-19", 4.25, 4.50),
        rate("2024-12-19", 4.00, 4.25),  # the same date again: ignored
        rate("2024-12-20", 4.25 + 1e-12, 4.50 - 1e-12),
    ]
    _, drafts = run_batch(rule, observations)
    assert drafts == []


def test_batch_equals_one_by_one() -> None:
    rule = make_rule(type="rate_change", symbol="FED")
    observations = [
        rate("2019-07-31", 2.25, 2.50),
        rate("2019-08-01", 2.00, 2.25),
        rate("2019-09-19", 1.75, 2.00),
        rate("2019-09-20", 1.75, 2.00),
        rate("2022-03-17", 0.25, 0.50),
    ]
    state_a, batch = run_batch(rule, observations)
    state_b, single = run_one_by_one(rule, observations)
    assert [d.text for d in batch] == [d.text for d in single]
    assert len(batch) == 3
    assert state_a == state_b
