"""The engine: options every rule accepts (enabled, expires, cooldown, quiet_hours, silent,
template, chats), deterministic alert ids, error isolation and per-rule observation routing."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml

from bot.config import ConfigError, parse_config
from bot.engine import Engine
from bot.model import Alert, History, Observation
from tests.test_rule_support import CLOCK, SYMBOLS, close_at, make_config, prices

START = datetime(2025, 9, 18, 14, 0, tzinfo=UTC)  # 10:00 New York


def cross(**extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"id": "rut-2500", "type": "cross", "symbol": "RUT", "level": 2500}
    params.update(extra)
    return params


def run(
    *rules: Mapping[str, Any],
    values: Sequence[float] = (2490, 2505, 2480, 2510),
    start: datetime = START,
    step: timedelta = timedelta(minutes=1),
    states: Mapping[str, Any] | None = None,
):
    engine = Engine.from_config(make_config(*rules))
    observations = [
        Observation("RUT", start + i * step, float(v), "price") for i, v in enumerate(values)
    ]
    return engine.evaluate(observations, History(), states or {}, CLOCK)


def test_alert_ids_are_rule_id_and_event_key() -> None:
    result = run(cross())
    assert [a.id for a in result.alerts] == [
        "rut-2500:2500:up:2025-09-18T14:01:00Z",
        "rut-2500:2500:up:2025-09-18T14:03:00Z",
    ]
    assert {a.rule_type for a in result.alerts} == {"cross"}
    assert result.states["rut-2500"]["last_alert"] == "2025-09-18T14:03:00+00:00"


def test_enabled_false_skips_the_rule_entirely() -> None:
    result = run(cross(enabled=False))
    assert result.alerts == [] and "rut-2500" not in result.states


def test_expires_stops_after_the_date() -> None:
    # Local date in New York: 2025-09-18 is not after expires 2025-09-18; the 19th is.
    assert len(run(cross(expires="2025-09-18")).alerts) == 2
    result = run(cross(expires="2025-09-18"), start=START + timedelta(days=1))
    assert result.alerts == []
    later = run(
        cross(expires="2025-09-18"),
        values=(2490, 2505, 2480, 2510),
        start=datetime(2025, 9, 19, 3, 58, tzinfo=UTC),  # 23:58 on the 18th in New York
    )
    assert [a.time.minute for a in later.alerts] == [59]  # 23:59 local: still the 18th


def test_cooldown_holds_back_alerts_and_carries_across_calls() -> None:
    result = run(cross(cooldown="1h"))
    assert len(result.alerts) == 1 and len(result.suppressed) == 1
    # The next call, 30 minutes after the first alert: still cooling down.
    again = run(
        cross(cooldown="1h"),
        values=(2490, 2520),
        start=START + timedelta(minutes=30),
        states=result.states,
    )
    assert again.alerts == [] and len(again.suppressed) == 1
    later = run(
        cross(cooldown="1h"),
        values=(2490, 2520),
        start=START + timedelta(hours=2),
        states=result.states,
    )
    assert len(later.alerts) == 1


def test_quiet_hours_make_alerts_silent_not_dropped() -> None:
    night = datetime(2025, 9, 19, 3, 0, tzinfo=UTC)  # 23:00 New York
    result = run(cross(quiet_hours="22:00-07:00"), start=night)
    assert len(result.alerts) == 2 and all(a.silent for a in result.alerts)
    day = run(cross(quiet_hours="22:00-07:00"))
    assert [a.silent for a in day.alerts] == [False, False]


def test_silent_option() -> None:
    assert all(a.silent for a in run(cross(silent=True)).alerts)


def test_an_unknown_rule_chat_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match="unknown chat 'traders'"):
        make_config(cross(chats=["traders"]))  # no chats named in the test config


def test_rule_chats_are_carried_by_its_alerts_only() -> None:
    """``chats: [desk]`` puts exactly ``("desk",)`` on each alert of that rule — through the
    outbox's JSON too — while a rule without ``chats`` leaves them empty (every chat). The
    worker routes by this field (``Worker.chats_for``, tested with the worker)."""
    text = yaml.safe_dump(
        {
            "timezone": "America/New_York",
            "telegram": {"token": "123:abc", "chats": {"traders": 1, "desk": 2, "ops": 3}},
            "sources": {"yahoo": {"type": "yahoo"}},
            "symbols": {"RUT": SYMBOLS["RUT"]},
            "rules": [
                cross(chats=["desk"]),
                cross(id="to-all"),
                cross(id="two", chats=["ops", "desk"]),
            ],
        }
    )
    engine = Engine.from_config(parse_config(text, "test.yaml", {}))
    observations = [
        Observation("RUT", START + i * timedelta(minutes=1), v, "price")
        for i, v in enumerate((2490.0, 2505.0, 2480.0, 2510.0))
    ]

    result = engine.evaluate(observations, History(), {}, CLOCK)

    chats = {(a.rule_id, a.time.minute): a.chats for a in result.alerts}
    assert chats == {
        ("rut-2500", 1): ("desk",),
        ("rut-2500", 3): ("desk",),
        ("to-all", 1): (),
        ("to-all", 3): (),
        ("two", 1): ("ops", "desk"),
        ("two", 3): ("ops", "desk"),
    }
    assert [Alert.from_json(a.to_json()).chats for a in result.alerts] == [
        a.chats for a in result.alerts
    ]


def test_template_renders_named_fields() -> None:
    template = "{name} {verb} {level} at {value} ({direction}) — {rule}/{symbol}"
    result = run(cross(template=template))
    assert result.alerts[0].text == (
        "Russell 2000 crossed above 2,500 at 2,505.00 (up) — rut-2500/RUT"
    )


def test_template_unknown_field_is_a_config_error() -> None:
    with pytest.raises(ConfigError, match=r"unknown template field \{levle\}"):
        make_config(cross(template="{levle}"))


@pytest.mark.parametrize(
    ("rule", "field"),
    [
        ({"type": "record_close", "symbol": "RUT"}, "previous_date"),
        ({"type": "near", "symbol": "RUT", "level": 1, "within": "1%"}, "distance_pct"),
        ({"type": "change", "symbol": "RUT", "window": "mtd", "threshold": "1%"}, "change_pct"),
        (
            {"type": "relative", "symbol": "RUT", "versus": "SPX", "window": "mtd", "threshold": 1},
            "spread",
        ),
        ({"type": "rate_change", "symbol": "FED"}, "new_range"),
        ({"type": "digest", "symbols": ["RUT"], "at": "16:15"}, "summary"),
    ],
)
def test_each_rule_type_accepts_its_template_fields(rule: dict[str, Any], field: str) -> None:
    make_config({"id": "r", **rule, "template": f"{{{field}}} {{message}}"})
    with pytest.raises(ConfigError, match="unknown template field"):
        make_config({"id": "r", **rule, "template": "{nonsense}"})


def test_template_fields_of_every_type_are_produced() -> None:
    """Each draft's fields cover the type's declared template_fields (no KeyError at send)."""
    from bot.rules import RULES

    engine = Engine.from_config(
        make_config(
            {"id": "rec", "type": "record_close", "symbol": "RUT"},
            {"id": "near", "type": "near", "symbol": "RUT", "level": 250, "within": "30%"},
            {"id": "chg", "type": "change", "symbol": "RUT", "window": "1d", "threshold": "1%"},
            {"id": "cr", "type": "cross", "symbol": "RUT", "level": 150},
        )
    )
    days = [date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 6)]
    from tests.test_rule_support import series

    data = series(zip(days, [100.0, 200.0, 300.0], strict=True))
    observations = [close_at("RUT", d, v) for d, v in zip(days, data.values, strict=True)]
    for rule in engine.rules:
        _, drafts = rule.evaluate(observations, History({"RUT": data}), None, CLOCK)
        assert drafts, rule.id
        assert set(RULES.get(rule.type_name).template_fields) <= set(drafts[0].fields), rule.id


class _Boom(Exception):
    pass


def test_a_failing_rule_does_not_stop_the_others(monkeypatch: pytest.MonkeyPatch) -> None:
    engine = Engine.from_config(make_config(cross(), cross(id="other")))

    def boom(*_: object) -> None:
        raise _Boom("bad data")

    monkeypatch.setattr(engine.rules[0], "evaluate", boom)
    observations = prices("RUT", [2490, 2510])
    result = engine.evaluate(observations, History(), {"rut-2500": {"rule": {"x": 1}}}, CLOCK)
    assert result.errors == {"rut-2500": "_Boom: bad data"}
    assert "rut-2500" not in result.states  # keeps its previous state
    assert [a.rule_id for a in result.alerts] == ["other"]


def test_each_rule_gets_its_observations_in_time_order() -> None:
    """Grouping by (symbol, kind) routes exactly what wants() accepts, time-ordered, even when
    the batch arrives unordered and mixes symbols and kinds."""
    engine = Engine.from_config(
        make_config(
            cross(on="close"),
            cross(id="price", on="price"),
            {
                "id": "rel",
                "type": "relative",
                "symbol": "RUT",
                "versus": "SPX",
                "window": "1d",
                "threshold": 1,
            },
        )
    )
    day = date(2025, 9, 18)
    observations = [
        close_at("SPX", day, 6000.0),
        Observation("RUT", START + timedelta(minutes=5), 2505.0, "price"),
        close_at("RUT", day, 2510.0),
        Observation("RUT", START, 2490.0, "price"),
        Observation("*", START, 0.0, "tick"),
    ]
    seen: dict[str, list[tuple[str, str]]] = {}
    for rule in engine.rules:
        original = rule.evaluate

        def spy(batch, history, state, clock, _id=rule.id, _orig=original):
            seen[_id] = [(o.symbol, o.kind) for o in batch]
            assert [o.time for o in batch] == sorted(o.time for o in batch)
            return _orig(batch, history, state, clock)

        rule.evaluate = spy  # type: ignore[method-assign]
    engine.evaluate(observations, History(), {}, CLOCK)
    assert seen["rut-2500"] == [("RUT", "close")]
    assert seen["price"] == [("RUT", "price"), ("RUT", "price"), ("RUT", "close")]
    assert sorted(seen["rel"]) == [("RUT", "close"), ("SPX", "close")]


def test_a_repeated_observation_is_not_evaluated_again() -> None:
    """The same quote polled twice (or by two replicas) changes nothing the second time."""
    engine = Engine.from_config(make_config(cross()))
    below = Observation("RUT", START, 2490.0, "price")
    above = Observation("RUT", START + timedelta(minutes=1), 2505.0, "price")
    first = engine.evaluate([below, above], History(), {}, CLOCK)
    assert len(first.alerts) == 1
    # an older quote arriving late must not re-arm the rule: without the skip, 2490 would
    # re-arm and the next 2506 would fire a second time
    late = engine.evaluate([below], History(), first.states, CLOCK, seen=first.seen)
    assert late.alerts == [] and "rut-2500" not in late.states
    again = engine.evaluate(
        [Observation("RUT", START + timedelta(minutes=2), 2506.0, "price")],
        History(),
        first.states,
        CLOCK,
        seen=late.seen,
    )
    assert again.alerts == []


def test_repeats_are_judged_per_symbol_and_kind() -> None:
    """Two symbols' closes stamped with the same time, arriving in separate cycles, both count."""
    rule = {
        "id": "rut-vs-spx",
        "type": "relative",
        "symbol": "RUT",
        "versus": "SPX",
        "window": "1d",
        "threshold": 5,
    }
    engine = Engine.from_config(make_config(rule))
    (relative,) = engine.rules
    evaluated: list[str] = []
    original = relative.evaluate

    def spy(batch, history, state, clock):  # type: ignore[no-untyped-def]
        evaluated.extend(o.symbol for o in batch)
        return original(batch, history, state, clock)

    relative.evaluate = spy  # type: ignore[method-assign]
    day = date(2025, 9, 18)
    first = engine.evaluate([close_at("RUT", day, 2500.0)], History(), {}, CLOCK)
    second = engine.evaluate(
        [close_at("SPX", day, 6600.0)], History(), first.states, CLOCK, seen=first.seen
    )
    assert set(second.seen) == {"RUT/close", "SPX/close"}
    assert evaluated == ["RUT", "SPX"]  # the SPX close was evaluated, not taken as a repeat


# -- no "newest seen" in the future ------------------------------------------------------------


def _crossings(
    engine: Engine, states: dict[str, Any], clock: Any, day: datetime, seen: dict[str, str]
) -> int:
    """40 real crossings of 2,500 (up and back) on ``day``; how many alerted."""
    alerts = 0
    for i in range(40):
        moment = day + timedelta(minutes=2 * i)
        for offset, value in ((0, 2490.0), (1, 2510.0)):
            clock.set(moment + timedelta(minutes=offset))
            result = engine.evaluate(
                [Observation("RUT", clock.now(), value, "price")],
                History(),
                states,
                clock,
                seen=seen,
            )
            states.update(result.states)
            seen.clear()
            seen.update(result.seen)
            alerts += len(result.alerts)
    return alerts


def test_a_future_dated_observation_never_becomes_the_newest_seen() -> None:
    from bot.clock import FakeClock

    engine = Engine.from_config(make_config(cross()))
    clock = FakeClock(START)
    states: dict[str, Any] = {}
    first = engine.evaluate([Observation("RUT", START, 2490.0, "price")], History(), states, clock)
    states.update(first.states)
    year_2100 = Observation("RUT", datetime(2100, 1, 1, tzinfo=UTC), 2600.0, "price")
    hour_ahead = Observation("RUT", START + timedelta(hours=1), 2600.0, "price")
    result = engine.evaluate([year_2100, hour_ahead], History(), states, clock, seen=first.seen)
    assert result.alerts == []
    states.update(result.states)
    assert all(datetime.fromisoformat(t) <= START for t in result.seen.values())
    seen = dict(result.seen)
    assert _crossings(engine, states, clock, START + timedelta(minutes=1), seen) == 40


def test_a_state_poisoned_in_the_store_is_healed_on_load() -> None:
    from bot.clock import FakeClock

    engine = Engine.from_config(make_config(cross(cooldown="1m")))
    poisoned = {
        "rut-2500": {
            "rule": {"levels": {"2500": {"up": False, "down": True}}},
            "last_alert": "2100-01-01T00:00:00+00:00",
            "seen": {"RUT/price": "2100-01-01T00:00:00+00:00"},
        }
    }
    clock = FakeClock(START)
    states: dict[str, Any] = dict(poisoned)
    # the first observation re-arms the healed rule (a first run), then 40 crossings alert;
    # the legacy per-rule "seen" of 2100 is forgotten, not taken into the shared map
    seen: dict[str, str] = {}
    first = engine.evaluate([], History(), states, clock)  # no map yet: taken from the states
    assert first.seen == {}
    assert _crossings(engine, states, clock, START, seen) == 40
    assert seen["RUT/price"] < "2026"
    assert "seen" not in states["rut-2500"]  # rewritten without the per-rule map


def test_quiet_hours_start_is_inside_and_end_is_outside() -> None:
    """22:00-07:00 New York: 22:00:00 is quiet, 06:59 is quiet, 07:00:00 is not."""
    ny = ZoneInfo("America/New_York")

    def silent_at(hour: int, minute: int) -> bool:
        moment = datetime(2025, 9, 18, hour, minute, tzinfo=ny) - timedelta(minutes=1)
        result = run(cross(quiet_hours="22:00-07:00"), values=(2490, 2505), start=moment)
        (alert,) = result.alerts
        assert alert.time.astimezone(ny).strftime("%H:%M") == f"{hour:02d}:{minute:02d}"
        return alert.silent

    assert silent_at(22, 0) and silent_at(6, 59) and silent_at(0, 0)
    assert not silent_at(7, 0) and not silent_at(21, 59)


def test_states_written_before_the_shared_map_still_skip_repeats() -> None:
    """An upgrade: stored states hold per-rule "seen" maps and no shared one exists yet. The
    quote they already evaluated is a repeat (not re-evaluated), and the rule's state is
    rewritten once without its own map."""
    engine = Engine.from_config(make_config(cross()))
    legacy = {
        "rut-2500": {
            "rule": {"levels": {"2500": {"up": False, "down": True}}},
            "last_alert": None,
            "seen": {"RUT/price": START.isoformat()},
        }
    }
    repeat = Observation("RUT", START, 2490.0, "price")  # would re-arm the rule if evaluated
    result = engine.evaluate([repeat], History(), legacy, CLOCK)
    assert result.states == {} and result.seen == {"RUT/price": START.isoformat()}
    newer = Observation("RUT", START + timedelta(minutes=1), 2491.0, "price")
    result = engine.evaluate([newer], History(), legacy, CLOCK)
    assert result.states["rut-2500"] == {
        "rule": {"levels": {"2500": {"up": True, "down": False}}},
        "last_alert": None,
    }
