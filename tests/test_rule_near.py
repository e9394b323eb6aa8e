"""``near``: within X% / X points of a level or of the record close, once per approach."""

from __future__ import annotations

from datetime import date

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from bot.config import ConfigError
from bot.model import History
from tests.test_rule_support import (
    business_days,
    closes,
    make_config,
    make_rule,
    prices,
    run_batch,
    run_one_by_one,
    series,
)


def test_within_percent_of_a_level_fires_once_per_approach() -> None:
    rule = make_rule(type="near", symbol="RUT", level=2500, within="0.5%")  # band 12.5, away 25
    values = [2400, 2490, 2495, 2480, 2489, 2470, 2488, 2600, 2510]
    _, drafts = run_batch(rule, prices("RUT", values))
    # 2490 enters the band; 2495/2480/2489 stay near or not far enough (> 25 away re-arms);
    # 2470 is 30 away: re-armed; 2488 fires again; 2600 re-arms; 2510 fires.
    assert [d.value for d in drafts] == [2490, 2488, 2510]
    assert drafts[0].text.startswith(
        "Russell 2000 (RUT) at 2,490.00: 10.00 points (0.40%) below 2,500, within 0.5%, on "
    )
    assert drafts[2].fields["side"] == "above"


def test_within_points_and_explicit_rearm() -> None:
    rule = make_rule(type="near", symbol="RUT", level=2500, within=10, rearm=50)
    values = [2400, 2492, 2470, 2495, 2440, 2505]
    _, drafts = run_batch(rule, prices("RUT", values))
    assert [d.value for d in drafts] == [2492, 2505]  # 2470 is only 30 away: not re-armed


def test_first_observation_only_arms() -> None:
    rule = make_rule(type="near", symbol="RUT", level=2500, within="1%")
    _, drafts = run_batch(rule, prices("RUT", [2499, 2501, 2500]))
    assert drafts == []


def test_of_record_uses_the_record_close_before_the_session() -> None:
    rule = make_rule(type="near", symbol="RUT", of="record", within="1%", on="close")
    data = series(
        [
            ("2021-11-08", 2442.74),
            ("2024-11-08", 2399.64),
            ("2024-11-11", 2434.98),  # 0.32% below the record: fires
            ("2024-11-12", 2410.00),  # 1.3% below: inside the 2% re-arm distance
            ("2024-11-25", 2442.03),  # so this second approach is the same one: quiet
        ]
    )
    history = History({"RUT": data})
    _, drafts = run_batch(rule, closes("RUT", data)[1:], history)
    assert len(drafts) == 1
    assert drafts[0].key == "record:2024-11-11"
    assert drafts[0].text == (
        "Russell 2000 (RUT) closed at 2,434.98: 7.76 points (0.32%) below its record close "
        "2,442.74 of 2021-11-08, within 1%, on 2024-11-11 16:00 EST"
    )


def test_of_record_follows_new_records() -> None:
    rule = make_rule(type="near", symbol="RUT", of="record", within="1%", on="close")
    data = series(
        [
            ("2025-01-02", 100),
            ("2025-01-03", 90),
            ("2025-01-06", 120),
            ("2025-01-07", 110),
            ("2025-01-08", 119.5),
        ]
    )
    _, drafts = run_batch(rule, closes("RUT", data)[1:], History({"RUT": data}))
    # 90 arms (10% away); 120 is 20% above the record of 100: not near; 110 vs record 120:
    # 8.3% away; 119.5 is 0.42% below the record 120: fires.
    assert [d.value for d in drafts] == [119.5]
    assert "record close 120.00 of 2025-01-06" in drafts[0].text


def test_target_is_required_once() -> None:
    with pytest.raises(ConfigError, match="either 'level' or 'of: record'"):
        make_config({"id": "r", "type": "near", "symbol": "RUT", "within": "1%"})
    with pytest.raises(ConfigError, match="either 'level' or 'of: record'"):
        make_config(
            {"id": "r", "type": "near", "symbol": "RUT", "within": "1%", "level": 1, "of": "record"}
        )


@settings(max_examples=60, deadline=None)
@given(
    values=st.lists(st.integers(90, 130), min_size=1, max_size=60),
    target=st.sampled_from([{"level": 110}, {"of": "record"}]),
    within=st.sampled_from(["1%", "3%", 2]),
)
def test_batch_equals_one_by_one(values: list[int], target: dict, within: object) -> None:
    days = business_days(date(2025, 1, 1), len(values))
    data = series(zip(days, [float(v) for v in values], strict=True))
    rule = make_rule(type="near", symbol="RUT", within=within, on="close", **target)
    history = History({"RUT": data})
    observations = closes("RUT", data)
    state_a, batch = run_batch(rule, observations, history)
    state_b, single = run_one_by_one(rule, observations, history)
    assert [d.text for d in batch] == [d.text for d in single]
    assert state_a == state_b
    assert all(d.time != observations[0].time for d in batch)


def test_of_record_never_fires_above_the_record_that_is_record_closes_job() -> None:
    """2025-10-14: ^RUT closed at 2,495.50, above its record 2,486.35 of 2025-10-06.
    record_close reports it; near stays quiet (it used to say "… above its record close")."""
    rule = make_rule(type="near", symbol="RUT", of="record", within="1%", rearm="2%", on="close")
    data = series(
        [
            ("2025-10-06", 2486.35),  # the record
            ("2025-10-07", 2400.00),  # 3.5% below: armed
            ("2025-10-14", 2495.50),  # above the record: not "near" it
            ("2025-10-15", 2519.75),  # a new record again
            ("2025-10-20", 2499.91),  # 0.79% below the record 2,519.75: near
        ]
    )
    _, drafts = run_batch(rule, closes("RUT", data)[1:], History({"RUT": data}))
    assert [(d.key, d.fields["side"]) for d in drafts] == [("record:2025-10-20", "below")]


def test_of_record_above_the_record_leaves_the_rule_armed_and_price_too() -> None:
    rule = make_rule(type="near", symbol="RUT", of="record", within="1%")
    data = series([("2025-09-17", 2500.0)])
    history = History({"RUT": data})
    # intraday: 2,400 arms, 2,510 (above the record) is quiet, 2,490 (0.4% below) fires
    _, drafts = run_batch(rule, prices("RUT", [2400, 2510, 2490]), history)
    assert [d.value for d in drafts] == [2490]


# -- boundaries (README "Rules": exact boundaries) ------------------------------------------------


def test_exactly_at_the_record_fires_a_tie_is_not_a_new_record() -> None:
    rule = make_rule(type="near", symbol="RUT", of="record", within="1%", on="close")
    data = series([("2025-01-02", 100.0), ("2025-01-03", 90.0), ("2025-01-06", 100.0)])
    _, drafts = run_batch(rule, closes("RUT", data)[1:], History({"RUT": data}))
    assert [(d.value, d.fields["side"]) for d in drafts] == [(100.0, "at")]
    assert "exactly at its record close 100.00 of 2025-01-02" in drafts[0].text


def test_the_edge_of_the_band_is_inside_and_rearm_needs_strictly_more() -> None:
    rule = make_rule(type="near", symbol="RUT", level=2500, within=10, rearm=50)
    # 2490 is exactly 10 away: fires; 2450 is exactly 50 away: not re-armed; 2449 re-arms;
    # 2510 is exactly 10 above: fires again
    _, drafts = run_batch(rule, prices("RUT", [2400, 2490, 2450, 2495, 2449, 2510]))
    assert [d.value for d in drafts] == [2490, 2510]
    rule = make_rule(type="near", symbol="RUT", level=2500, within=10)
    _, drafts = run_batch(rule, prices("RUT", [2400, 2489.99]))
    assert drafts == []  # just outside the band
