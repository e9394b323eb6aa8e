"""``Rule.reconcile``: a state made consistent with history that arrived late (see the worker's
unseeded rules). Pure: no store, no clock."""

from __future__ import annotations

from datetime import date

from bot.model import History
from tests.test_rule_support import close_at, make_rule, run_batch, series

RUT = series(
    [
        ("2021-11-05", 2437.08),
        ("2021-11-08", 2442.74),  # the all-time closing record
        ("2024-11-22", 2406.67),
        ("2024-11-25", 2342.03),
        ("2024-11-26", 2324.63),
    ]
)
# What a bot without history stored: the first live close taken as the record.
SEEDED_LIVE = {"record": 2342.03, "date": "2024-11-25", "last_session": "2024-11-25"}


def test_record_is_the_highest_of_history_and_what_was_seen_live() -> None:
    rule = make_rule(type="record_close", symbol="RUT")
    fixed = rule.reconcile(SEEDED_LIVE, History({"RUT": RUT}))
    assert fixed == {"record": 2442.74, "date": "2021-11-08", "last_session": "2024-11-25"}
    # and the next close under the true record is no record
    _, drafts = run_batch(
        rule, [close_at("RUT", date(2024, 11, 26), 2324.63)], History({"RUT": RUT}), fixed
    )
    assert drafts == []


def test_a_live_record_above_history_stays() -> None:
    rule = make_rule(type="record_close", symbol="RUT")
    live = {"record": 2500.0, "date": "2024-11-25", "last_session": "2024-11-25"}
    assert rule.reconcile(live, History({"RUT": RUT})) == live


def test_low_and_window_rules_reconcile_within_their_scope() -> None:
    low = make_rule(type="record_close", symbol="RUT", kind="low")
    state = {"record": 2342.03, "date": "2024-11-25", "last_session": "2024-11-25"}
    assert low.reconcile(state, History({"RUT": RUT}))["record"] == 2342.03  # lowest already
    window = make_rule(type="record_close", symbol="RUT", window="2d")
    # the 2-session window ending 2024-11-25 holds 2,406.67 and 2,342.03: not the 2021 record
    assert window.reconcile(state, History({"RUT": RUT}))["record"] == 2406.67


def test_no_state_or_no_history_is_left_alone() -> None:
    rule = make_rule(type="record_close", symbol="RUT")
    assert rule.reconcile(None, History({"RUT": RUT})) is None
    assert rule.reconcile(SEEDED_LIVE, History()) == SEEDED_LIVE
