"""``change``: % (or points) change over 1d/5d/30d/mtd/qtd/ytd beyond a threshold."""

from __future__ import annotations

from datetime import date

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.model import History
from tests.test_rule_support import (
    business_days,
    closes,
    make_rule,
    run_batch,
    run_one_by_one,
    series,
)

# August ends at 2,000; September climbs past +10% twice and falls back in between.
DATA = series(
    [
        ("2025-08-28", 1990.0),
        ("2025-08-29", 2000.0),
        ("2025-09-02", 2100.0),
        ("2025-09-03", 2205.0),  # +10.25% MTD: fires
        ("2025-09-04", 2150.0),
        ("2025-09-05", 2230.0),  # +11.5% again, same month: quiet
        ("2025-09-30", 2240.0),
        ("2025-10-01", 2000.0),  # October starts from 2,240: -10.7% MTD: fires down
        ("2025-10-02", 2470.0),  # +10.3% MTD: fires up (another direction)
    ]
)


def test_mtd_once_per_month_and_direction() -> None:
    rule = make_rule(type="change", symbol="RUT", window="mtd", threshold="10%")
    _, drafts = run_batch(rule, closes("RUT", DATA), History({"RUT": DATA}))
    assert [d.key for d in drafts] == ["mtd:2025-09:up", "mtd:2025-10:down", "mtd:2025-10:up"]
    assert drafts[0].text == (
        "Russell 2000 (RUT) is up 10.25% month-to-date: 2,000.00 → 2,205.00 (+205.00 points) "
        "since the close of 2025-08-29, on 2025-09-03 17:00 EDT (threshold ±10%)"
    )
    assert drafts[1].fields["base_date"] == "2025-09-30"


def test_direction_up_only() -> None:
    rule = make_rule(type="change", symbol="RUT", window="mtd", threshold="10%", direction="up")
    _, drafts = run_batch(rule, closes("RUT", DATA), History({"RUT": DATA}))
    assert [d.key for d in drafts] == ["mtd:2025-09:up", "mtd:2025-10:up"]


def test_first_run_mid_month_does_not_repeat_this_months_alert() -> None:
    """Started on 09-05 with no state: 09-03 already crossed +10% this month, so a rule running
    all along would have told already — nothing new to say."""
    rule = make_rule(type="change", symbol="RUT", window="mtd", threshold="10%")
    observations = [o for o in closes("RUT", DATA) if o.session == date(2025, 9, 5)]
    _, drafts = run_batch(rule, observations, History({"RUT": DATA}))
    assert drafts == []


def test_first_run_fires_on_a_genuinely_new_breach() -> None:
    rule = make_rule(type="change", symbol="RUT", window="mtd", threshold="10%")
    observations = [o for o in closes("RUT", DATA) if o.session == date(2025, 9, 3)]
    _, drafts = run_batch(rule, observations, History({"RUT": DATA}))
    assert [d.key for d in drafts] == ["mtd:2025-09:up"]


def test_1d_points_threshold() -> None:
    rule = make_rule(type="change", symbol="RUT", window="1d", threshold=100)
    _, drafts = run_batch(rule, closes("RUT", DATA), History({"RUT": DATA}))
    # 09-05 gained 80 points (< 100): quiet.
    assert [d.key for d in drafts] == [
        "1d:2025-09-02:up",
        "1d:2025-09-03:up",
        "1d:2025-10-01:down",
        "1d:2025-10-02:up",
    ]
    assert "on the day" in drafts[0].text


def test_rolling_window_fires_once_per_episode() -> None:
    data = series(
        zip(
            business_days(date(2025, 1, 1), 8),
            [100.0, 100.0, 106.0, 107.0, 100.0, 100.0, 105.0, 100.0],
            strict=True,
        )
    )
    rule = make_rule(type="change", symbol="RUT", window="2d", threshold="5%", direction="up")
    _, drafts = run_batch(rule, closes("RUT", data), History({"RUT": data}))
    # 106 vs 100 (+6%) starts an episode; 107 vs 100 (+7%) continues it; 100 vs 106 ends it;
    # 105 vs 100 (+5%) starts a new one.
    assert [d.key for d in drafts] == ["2d:2025-01-03:up", "2d:2025-01-09:up"]
    assert "over 2 sessions" in drafts[0].text


def test_ytd_and_qtd_bases() -> None:
    data = series(
        [("2024-12-31", 100.0), ("2025-03-31", 105.0), ("2025-04-01", 116.0), ("2025-04-02", 118)]
    )
    ytd = make_rule(type="change", symbol="RUT", window="ytd", threshold="15%")
    qtd = make_rule(type="change", symbol="RUT", window="qtd", threshold="12%")
    _, ytd_drafts = run_batch(ytd, closes("RUT", data)[1:], History({"RUT": data}))
    _, qtd_drafts = run_batch(qtd, closes("RUT", data)[1:], History({"RUT": data}))
    assert [d.key for d in ytd_drafts] == ["ytd:2025:up"]
    assert [d.key for d in qtd_drafts] == ["qtd:2025-Q2:up"]  # 118 vs 105
    assert "year-to-date" in ytd_drafts[0].text


def test_not_enough_history_is_quiet() -> None:
    rule = make_rule(type="change", symbol="RUT", window="5d", threshold="1%")
    data = series([("2025-01-02", 100.0), ("2025-01-03", 150.0)])
    _, drafts = run_batch(rule, closes("RUT", data), History({"RUT": data}))
    assert drafts == []


@settings(max_examples=60, deadline=None)
@given(
    steps=st.lists(st.floats(-4, 4, allow_nan=False), min_size=1, max_size=70),
    window=st.sampled_from(["1d", "3d", "mtd", "qtd"]),
    direction=st.sampled_from(["up", "down", "both"]),
)
def test_batch_equals_one_by_one(steps: list[float], window: str, direction: str) -> None:
    days = business_days(date(2025, 1, 20), len(steps))
    values, level = [], 100.0
    for step in steps:
        level = max(1.0, round(level + step, 2))
        values.append(level)
    data = series(zip(days, values, strict=True))
    rule = make_rule(
        type="change", symbol="RUT", window=window, threshold="3%", direction=direction
    )
    history = History({"RUT": data})
    observations = closes("RUT", data)
    state_a, batch = run_batch(rule, observations, history)
    state_b, single = run_one_by_one(rule, observations, history)
    assert [d.key for d in batch] == [d.key for d in single]
    assert state_a == state_b
    assert len({d.key for d in batch}) == len(batch)  # one alert per period and direction


@settings(max_examples=25, deadline=None)
@given(
    seed=st.integers(0, 10_000),
    window=st.sampled_from(["1d", "5d", "30d", "mtd", "qtd", "ytd"]),
    threshold=st.sampled_from(["2%", "6%", "15", 40]),
    split=st.integers(1, 400),
)
def test_long_batch_fast_path_equals_one_by_one(
    seed: int, window: str, threshold: str | int, split: int
) -> None:
    """Batches of BATCH_MIN rows or more take the numpy fast path; it must agree with the
    per-observation loop, also when resuming from a state carried through JSON."""
    import json
    import random

    from bot.rules.batch import BATCH_MIN

    rng = random.Random(seed)
    days = business_days(date(2023, 11, 1), 420)
    level, values = 100.0, []
    for _ in days:
        level = max(1.0, round(level * (1 + rng.gauss(0, 0.02)), 2))
        values.append(level)
    data = series(zip(days, values, strict=True))
    history = History({"RUT": data})
    rule = make_rule(type="change", symbol="RUT", window=window, threshold=threshold)
    observations = closes("RUT", data)
    assert len(observations) - split >= BATCH_MIN
    first_state, first = run_batch(rule, observations[:split], history)
    state = json.loads(json.dumps(first_state))
    state_a, batch = run_batch(rule, observations[split:], history, state)
    state_b, single = run_one_by_one(rule, observations, history)
    assert [(d.key, d.text) for d in first + batch] == [(d.key, d.text) for d in single]
    assert state_a == state_b
