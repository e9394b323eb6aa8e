"""Market-context template fields (``{days_since_record}``, ``{drought_rank}``, ``{ytd_pct}``…):
known to ``check``, rendered by the engine for every rule type from the same facts as
``report``, as of the alert (never a close the alert could not have seen)."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pytest

from bot.config import ConfigError
from bot.context import TEMPLATE_FIELDS
from bot.engine import Engine
from bot.model import History, Observation
from tests.test_rule_support import CLOCK, close_at, make_config, series

RUT = series(
    [
        ("2020-12-31", 2000.0),
        ("2021-11-08", 2442.74),  # the record
        ("2024-12-30", 2250.0),
        ("2024-12-31", 2230.0),
        ("2025-01-02", 2400.0),
        ("2025-01-03", 2520.0),  # above 2,500 on the close
    ]
)


def cross(template: str, on: str = "close") -> dict[str, object]:
    return {
        "id": "rut-2500",
        "type": "cross",
        "symbol": "RUT",
        "level": 2500,
        "on": on,
        "template": template,
    }


def test_check_knows_the_context_fields() -> None:
    template = " ".join(f"{{{name}}}" for name in TEMPLATE_FIELDS)
    make_config(cross(template))  # no ConfigError
    with pytest.raises(ConfigError) as caught:
        make_config(cross("{drought_rnk}"))
    assert "did you mean {drought_rank}?" in str(caught.value)


def test_a_close_alert_states_the_facts_of_its_own_close() -> None:
    engine = Engine.from_config(
        make_config(
            cross(
                "{name} {value}: {days_since_record} days since the record {record} of "
                "{record_date} ({drought_rank} longest stretch), YTD {ytd_pct}, day {day_pct}, "
                "{pct_from_record} from it"
            )
        )
    )
    history = History({"RUT": RUT})
    observations = [
        close_at("RUT", date(2025, 1, 2), 2400.0),
        close_at("RUT", date(2025, 1, 3), 2520.0),
    ]
    result = engine.evaluate(observations, history, {}, CLOCK)
    assert [a.text for a in result.alerts] == [
        "Russell 2000 2,520.00: 0 days since the record 2,520.00 of 2025-01-03 (3rd longest "
        "stretch), YTD +13.00%, day +5.00%, +0.00% from it"
    ]


def test_an_intraday_alert_reads_only_earlier_closes() -> None:
    """At 10:00 New York on 2025-01-03 that day's close (in the history of a backtest) is not
    known yet: the facts are those of the 2nd's close."""
    engine = Engine.from_config(make_config(cross("{days_since_record} {ytd_pct}", on="price")))
    history = History({"RUT": RUT})
    moment = datetime(2025, 1, 3, 15, 0, tzinfo=UTC)
    observations = [
        Observation("RUT", moment, 2490.0, "price"),
        Observation("RUT", moment.replace(minute=1), 2505.0, "price"),
    ]
    result = engine.evaluate(observations, history, {}, CLOCK)
    assert [a.text for a in result.alerts] == ["1,151 +7.62%"]


def test_templates_without_context_fields_do_not_compute_them() -> None:
    engine = Engine.from_config(make_config(cross("{name} {value}")))
    history = History({"RUT": RUT})
    observations = [
        close_at("RUT", date(2025, 1, 2), 2400.0),
        close_at("RUT", date(2025, 1, 3), 2520.0),
    ]
    result = engine.evaluate(observations, history, {}, CLOCK)
    assert [a.text for a in result.alerts] == ["Russell 2000 2,520.00"]
    assert engine._context_templates == {"rut-2500": False}
