"""User message templates: checked at load with sample values of the fields' real types,
bounded in size, never an environment leak, and at run time a failure stays with its rule."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from bot.config import ConfigError
from bot.engine import Engine
from bot.model import History, Observation
from tests.test_rule_support import CLOCK, make_config

START = datetime(2025, 9, 18, 14, 0, tzinfo=UTC)


def cross(**extra: Any) -> dict[str, Any]:
    params: dict[str, Any] = {"id": "rut-2500", "type": "cross", "symbol": "RUT", "level": 2500}
    params.update(extra)
    return params


def observations() -> list[Observation]:
    return [
        Observation("RUT", START + i * timedelta(minutes=1), v, "price")
        for i, v in enumerate((2490.0, 2505.5))
    ]


def template_problems(template: str) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        make_config(cross(template=template))
    return [str(p) for p in caught.value.problems]


@pytest.mark.parametrize(
    ("template", "words"),
    [
        ("{value:d}", "Unknown format code 'd'"),
        ("{time:%Y}", "Invalid format specifier"),
        ("{value_raw:d}", "Unknown format code 'd'"),
        ("{level:,}", "Cannot specify ','"),
    ],
)
def test_check_renders_templates_with_sample_values(template: str, words: str) -> None:
    (problem,) = template_problems(template)
    assert problem.startswith("test.yaml:")
    assert "rules[0].template: " in problem and words in problem


def test_a_type_valid_spec_on_the_raw_number_passes() -> None:
    config = make_config(cross(template="{name} at {value_raw:.1f} / {value} / {level:>8}"))
    result = Engine.from_config(config).evaluate(observations(), History(), {}, CLOCK)
    assert [a.text for a in result.alerts] == ["Russell 2000 at 2505.5 / 2,505.50 /    2,500"]


@pytest.mark.parametrize("template", ["{value:x>5000000}", "{value:.100000}", "{value_raw:09999f}"])
def test_absurd_widths_and_precisions_are_config_errors(template: str) -> None:
    (problem,) = template_problems(template)
    assert "rules[0].template: " in problem and "at most" in problem


def test_a_failing_template_at_run_time_affects_only_its_rule(
    caplog: pytest.LogCaptureFixture,
) -> None:
    engine = Engine.from_config(make_config(cross(), cross(id="other", template="{name}!")))
    broken = engine.rules[0]
    broken.params = broken.params.model_copy(update={"template": "{value:d}"})
    with caplog.at_level(logging.WARNING, logger="bot.engine"):
        first = engine.evaluate(observations(), History(), {}, CLOCK)
        later = [
            Observation("RUT", START + timedelta(minutes=5), 2480.0, "price"),
            Observation("RUT", START + timedelta(minutes=6), 2510.0, "price"),
        ]
        second = engine.evaluate(later, History(), first.states, CLOCK)
    texts = {a.rule_id: a.text for a in first.alerts}
    assert texts["other"] == "Russell 2000!"
    assert texts["rut-2500"].startswith("Russell 2000")  # the rule's default text
    assert {a.rule_id for a in second.alerts} == {"rut-2500", "other"}
    warnings = [r for r in caplog.records if "template" in r.getMessage()]
    assert len(warnings) == 1 and "rut-2500" in warnings[0].getMessage()


def test_a_rendered_alert_is_bounded() -> None:
    engine = Engine.from_config(make_config(cross(template="{value}")))
    rule = engine.rules[0]
    rule.params = rule.params.model_copy(update={"template": "{value:x>5000000}"})
    (alert,) = engine.evaluate(observations(), History(), {}, CLOCK).alerts
    from bot.engine import MAX_ALERT_CHARS

    assert len(alert.text) <= MAX_ALERT_CHARS
    assert alert.text.endswith("[truncated]")


def test_value_is_formatted_like_the_other_fields() -> None:
    config = make_config(cross(template="{value} crossed {level} (raw {value_raw})"))
    (alert,) = Engine.from_config(config).evaluate(observations(), History(), {}, CLOCK).alerts
    assert alert.text == "2,505.50 crossed 2,500 (raw 2505.5)"


def test_samples_have_the_types_rules_really_produce() -> None:
    """``check`` renders with :func:`sample_value`; every field a rule produces has that type."""
    from datetime import date

    from bot.templates import sample_value
    from tests.test_rule_support import close_at, series

    engine = Engine.from_config(
        make_config(
            {"id": "rec", "type": "record_close", "symbol": "RUT"},
            {"id": "near", "type": "near", "symbol": "RUT", "level": 250, "within": "30%"},
            {"id": "chg", "type": "change", "symbol": "RUT", "window": "1d", "threshold": "1%"},
            {"id": "cr", "type": "cross", "symbol": "RUT", "level": 150},
        )
    )
    days = [date(2025, 1, 2), date(2025, 1, 3), date(2025, 1, 6)]
    data = series(zip(days, [100.0, 200.0, 300.0], strict=True))
    closes = [close_at("RUT", d, v) for d, v in zip(days, data.values, strict=True)]
    for rule in engine.rules:
        _, drafts = rule.evaluate(closes, History({"RUT": data}), None, CLOCK)
        for name, value in drafts[0].fields.items():
            assert type(value) is type(sample_value(name)), (rule.id, name)
