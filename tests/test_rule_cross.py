"""``cross``: unit cases and hypothesis properties of crossing/re-arm semantics."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from bot.model import AlertDraft, Observation
from tests.test_rule_support import (
    close_at,
    make_rule,
    prices,
    run_batch,
    run_one_by_one,
)

LEVEL = 2500


def fired(drafts: list[AlertDraft]) -> list[tuple[str, float]]:
    return [(d.key.split(":")[1], d.value) for d in drafts]


def test_issue_example_two_alerts() -> None:
    rule = make_rule(type="cross", symbol="RUT", level=2500, direction="up")
    _, drafts = run_batch(rule, prices("RUT", [2490, 2505, 2510, 2495, 2502]))
    assert [d.value for d in drafts] == [2505, 2502]
    assert drafts[0].text.startswith("Russell 2000 (RUT) crossed above 2,500: at 2,505 on ")


def test_first_observation_only_arms() -> None:
    rule = make_rule(type="cross", symbol="RUT", level=2500, direction="both")
    _, drafts = run_batch(rule, prices("RUT", [2510, 2520, 2530]))
    assert drafts == []


def test_levels_and_both_directions() -> None:
    rule = make_rule(type="cross", symbol="RUT", levels=[2600, 2400, 2500], direction="both")
    _, drafts = run_batch(rule, prices("RUT", [2390, 2450, 2550, 2610, 2480]))
    assert [(d.fields["level"], d.fields["direction"]) for d in drafts] == [
        ("2,400", "up"),
        ("2,500", "up"),
        ("2,600", "up"),
        ("2,500", "down"),  # one observation crossing two levels: ascending level order
        ("2,600", "down"),
    ]


def test_rearm_percent_needs_a_real_pullback() -> None:
    rule = make_rule(type="cross", symbol="RUT", level=2500, rearm="1%")  # re-arm below 2,475
    values = [2490, 2505, 2480, 2506, 2470, 2501]
    _, drafts = run_batch(rule, prices("RUT", values))
    assert [d.value for d in drafts] == [2505, 2501]


def test_rearm_points() -> None:
    rule = make_rule(type="cross", symbol="RUT", level=2500, direction="down", rearm=20)
    values = [2510, 2495, 2515, 2490, 2521, 2499]  # re-arm above 2,520
    _, drafts = run_batch(rule, prices("RUT", values))
    assert [d.value for d in drafts] == [2495, 2499]


def test_on_close_ignores_intraday_prints() -> None:
    rule = make_rule(type="cross", symbol="RUT", level=2500, on="close")
    day = datetime(2025, 10, 15, tzinfo=UTC).date()
    assert not rule.wants(prices("RUT", [2600])[0])
    assert rule.wants(close_at("RUT", day, 2519.75))
    assert not rule.wants(close_at("SPX", day, 2519.75))


def test_key_is_deterministic_per_event() -> None:
    rule = make_rule(type="cross", symbol="RUT", level=2500, on="close")
    day = datetime(2025, 10, 15).date()
    observations = [close_at("RUT", day - timedelta(days=1), 2490), close_at("RUT", day, 2519.75)]
    _, first = run_batch(rule, observations)
    _, again = run_batch(rule, observations)
    assert [d.key for d in first] == ["2500:up:2025-10-15"] == [d.key for d in again]


def test_restart_across_a_crossing_fires_once() -> None:
    """State persisted below the level; the next poll after a restart is above: one alert."""
    rule = make_rule(type="cross", symbol="RUT", level=2500)
    state, _ = run_batch(rule, prices("RUT", [2490]))
    _, drafts = run_batch(rule, prices("RUT", [2520]), state=state)
    assert len(drafts) == 1


# ---------------------------------------------------------------------------------------------
# Properties
# ---------------------------------------------------------------------------------------------

values_strategy = st.lists(st.integers(min_value=2300, max_value=2700), min_size=1, max_size=60)
rearm_strategy = st.sampled_from([None, 10, 25, "1%", "0.5%"])


def cross_rule(direction: str = "both", rearm: Any = None, level: float = LEVEL) -> Any:
    params: dict[str, Any] = {"type": "cross", "symbol": "RUT", "level": level}
    params["direction"] = direction
    if rearm is not None:
        params["rearm"] = rearm
    return make_rule(**params)


def as_prices(values: list[int]) -> list[Observation]:
    return prices("RUT", [float(v) for v in values])


def rearm_distance(rearm: Any) -> float:
    if rearm is None:
        return 0.0
    if isinstance(rearm, str):
        return LEVEL * float(rearm.rstrip("%")) / 100
    return float(rearm)


@settings(max_examples=150, deadline=None)
@given(values=values_strategy, rearm=rearm_strategy)
def test_never_fires_twice_without_rearm(values: list[int], rearm: Any) -> None:
    """Between two alerts in one direction the value went beyond the re-arm point."""
    _, drafts = run_batch(cross_rule("both", rearm), as_prices(values))
    distance = rearm_distance(rearm)
    index_of = {}
    observations = as_prices(values)
    for i, o in enumerate(observations):
        index_of[o.time] = i
    for direction in ("up", "down"):
        hits = [index_of[d.time] for d in drafts if d.fields["direction"] == direction]
        for a, b in itertools.pairwise(hits):
            between = values[a + 1 : b]
            if direction == "up":
                assert any(v < LEVEL - distance for v in between), (values, hits)
            else:
                assert any(v > LEVEL + distance for v in between), (values, hits)
        for i in hits:  # every alert is on the right side of the level
            assert values[i] >= LEVEL if direction == "up" else values[i] <= LEVEL


@settings(max_examples=150, deadline=None)
@given(values=values_strategy, rearm=rearm_strategy)
def test_mirrored_series_swaps_up_and_down(values: list[int], rearm: Any) -> None:
    mirrored = [2 * LEVEL - v for v in values]
    _, drafts = run_batch(cross_rule("both", rearm), as_prices(values))
    _, mirror_drafts = run_batch(cross_rule("both", rearm), as_prices(mirrored))
    swap = {"up": "down", "down": "up"}
    assert [(d.time, swap[d.fields["direction"]]) for d in drafts] == [
        (d.time, d.fields["direction"]) for d in mirror_drafts
    ]


@settings(max_examples=100, deadline=None)
@given(values=values_strategy, rearm=rearm_strategy)
def test_first_observation_never_fires(values: list[int], rearm: Any) -> None:
    observations = as_prices(values)
    _, drafts = run_batch(cross_rule("both", rearm), observations)
    assert all(d.time != observations[0].time for d in drafts)


@settings(max_examples=150, deadline=None)
@given(
    values=values_strategy,
    rearm=rearm_strategy,
    direction=st.sampled_from(["up", "down", "both"]),
    levels=st.lists(st.integers(2350, 2650), min_size=1, max_size=3, unique=True),
)
def test_one_batch_equals_one_by_one(
    values: list[int], rearm: Any, direction: str, levels: list[int]
) -> None:
    """The backtest (one batch) and the live loop (one call per poll, state carried through
    JSON) give the same alerts and end in the same state: one engine for both."""
    params: dict[str, Any] = {"type": "cross", "symbol": "RUT", "levels": levels}
    params["direction"] = direction
    if rearm is not None:
        params["rearm"] = rearm
    rule = make_rule(**params)
    observations = as_prices(values)
    batch_state, batch = run_batch(rule, observations)
    single_state, single = run_one_by_one(rule, observations)
    assert [(d.key, d.text) for d in batch] == [(d.key, d.text) for d in single]
    assert batch_state == single_state


@settings(max_examples=100, deadline=None)
@given(values=values_strategy)
def test_direction_filters_but_does_not_change_arming(values: list[int]) -> None:
    observations = as_prices(values)
    _, both = run_batch(cross_rule("both"), observations)
    _, up = run_batch(cross_rule("up"), observations)
    _, down = run_batch(cross_rule("down"), observations)
    assert [d.key for d in up] == [d.key for d in both if d.fields["direction"] == "up"]
    assert [d.key for d in down] == [d.key for d in both if d.fields["direction"] == "down"]


@settings(max_examples=100, deadline=None)
@given(
    values=st.lists(st.integers(2380, 2620), min_size=56, max_size=150),
    rearm=rearm_strategy,
    direction=st.sampled_from(["up", "down", "both"]),
    levels=st.lists(st.integers(2450, 2550), min_size=1, max_size=3, unique=True),
    split=st.integers(0, 40),
)
def test_long_batch_fast_path_equals_one_by_one(
    values: list[int], rearm: Any, direction: str, levels: list[int], split: int
) -> None:
    """Batches of BATCH_MIN rows or more jump from event to event (numpy); they must give the
    live loop's alerts and state, also when resuming from a state carried through JSON."""
    import json

    from bot.rules.batch import BATCH_MIN

    params: dict[str, Any] = {"type": "cross", "symbol": "RUT", "levels": levels}
    params["direction"] = direction
    if rearm is not None:
        params["rearm"] = rearm
    rule = make_rule(**params)
    observations = as_prices(values)
    assert len(observations) - split >= BATCH_MIN
    first_state, first = run_batch(rule, observations[:split])
    state = json.loads(json.dumps(first_state))
    batch_state, batch = run_batch(rule, observations[split:], None, state)
    single_state, single = run_one_by_one(rule, observations)
    assert [(d.key, d.text) for d in first + batch] == [(d.key, d.text) for d in single]
    assert batch_state == single_state


# -- boundaries (README "Rules": exact boundaries) ------------------------------------------------


def test_a_value_exactly_at_the_level_is_a_crossing_and_does_not_rearm() -> None:
    rule = make_rule(type="cross", symbol="RUT", level=2500, direction="both")
    # 2490 arms up; 2500 reaches the level: fires up (and is not "below" again: no re-arm);
    # 2500 → 2510 → 2500: reaching the level from above fires down
    _, drafts = run_batch(rule, prices("RUT", [2490, 2500, 2500, 2510, 2500]))
    assert [(d.value, d.fields["direction"]) for d in drafts] == [(2500, "up"), (2500, "down")]


def test_starting_exactly_at_the_level_arms_neither_direction() -> None:
    rule = make_rule(type="cross", symbol="RUT", level=2500, direction="both")
    _, drafts = run_batch(rule, prices("RUT", [2500, 2510, 2500, 2490]))
    # 2500 first: neither side; 2510 is above: arms down; 2500 fires down; 2490 arms up
    assert [(d.value, d.fields["direction"]) for d in drafts] == [(2500, "down")]


def test_rearm_bound_is_exclusive() -> None:
    rule = make_rule(type="cross", symbol="RUT", level=2500, rearm=20)
    # after firing, 2480 (exactly level − 20) does not re-arm; 2479.99 does
    _, drafts = run_batch(rule, prices("RUT", [2490, 2501, 2480, 2502, 2479.99, 2503]))
    assert [d.value for d in drafts] == [2501, 2503]
