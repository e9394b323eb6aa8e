"""Where the ``rate_odds`` summary shows: the digest (``odds:``, read through the engine's
generic read-only peer states) and ``python -m bot report``."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.cli import main
from bot.clock import FakeClock
from bot.config import Config, parse_config
from bot.engine import Engine
from bot.errors import ConfigError
from bot.model import History, Observation
from bot.store import open_store
from tests.test_rule_fomc import statement
from tests.test_rule_rate_odds import CONTRACTS, MEETINGS, curve
from tests.test_rule_support import series

SUMMARY = "FOMC 2026-10-28: cut 72%, hold 28% (most likely 3.25–3.50%)"
ODDS_RULE = {
    "id": "cut-odds",
    "type": "rate_odds",
    "contracts": CONTRACTS,
    "calendar": "FOMC",
    "threshold": "50%",
}
DIGEST = {"id": "digest", "type": "digest", "symbols": ["RUT"], "at": "16:15", "odds": ["cut-odds"]}
RUT = series([("2026-09-30", 2400.0), ("2026-10-01", 2424.0)])
# 2026-10-01 (a Thursday) 16:15 New York
TICK = Observation("*", datetime(2026, 10, 1, 20, 15, tzinfo=UTC), 0.0, "tick")
CLOCK = FakeClock(datetime(2026, 10, 1, 21, tzinfo=UTC))


def config_dict(*rules: dict[str, Any], state: str = "sqlite:///:memory:") -> dict[str, Any]:
    return {
        "timezone": "America/New_York",
        "state": {"url": state},
        "sources": {"fed": {"type": "fomc"}, "yahoo": {"type": "yahoo"}},
        "symbols": {
            "FOMC": {"source": "fed"},
            "RUT": {"source": "yahoo", "ticker": "^RUT", "name": "Russell 2000"},
            **{
                name: {"source": "yahoo", "ticker": f"{name}.CBT", "calendar": "CME"}
                for name in CONTRACTS.values()
            },
        },
        "rules": list(rules),
    }


def make_config(*rules: dict[str, Any]) -> Config:
    return parse_config(yaml.safe_dump(config_dict(*rules)), "config.yaml", {})


def digest_text(engine: Engine, states: dict[str, Any], observations: list[Observation]) -> str:
    result = engine.evaluate(observations, History({"RUT": RUT}), states, CLOCK)
    (alert,) = [a for a in result.alerts if a.rule_id == "digest"]
    return alert.text


def test_digest_shows_the_odds_rules_latest_summary() -> None:
    engine = Engine.from_config(make_config(ODDS_RULE, DIGEST))
    states = {"cut-odds": {"rule": {"summary": SUMMARY}}}
    assert digest_text(engine, states, [TICK]).splitlines()[-2:] == [
        "Market-implied odds (cut-odds):",
        f"  {SUMMARY}",
    ]


def test_digest_before_any_odds_says_so() -> None:
    engine = Engine.from_config(make_config(ODDS_RULE, DIGEST))
    lines = digest_text(engine, {}, [TICK]).splitlines()
    assert lines[-1] == "Market-implied odds (cut-odds): no odds yet"


def test_digest_without_odds_option_is_unchanged() -> None:
    engine = Engine.from_config(make_config(ODDS_RULE, {**DIGEST, "odds": []}))
    text = digest_text(engine, {"cut-odds": {"rule": {"summary": SUMMARY}}}, [TICK])
    assert "odds" not in text


@pytest.mark.parametrize("digest_first", [False, True])
def test_peers_are_the_states_at_the_start_of_the_evaluation(digest_first: bool) -> None:
    """Within one evaluation the digest reads the odds rule's state as it was handed in —
    whether the odds rule runs before or after it — and the next evaluation the new one."""
    rules = [DIGEST, ODDS_RULE] if digest_first else [ODDS_RULE, DIGEST]
    engine = Engine.from_config(make_config(*rules))
    sept = statement(date(2026, 9, 16), 3.5, 3.75, decision="hold", bp=0, meetings=MEETINGS)
    states: dict[str, Any] = {"cut-odds": {"rule": {"summary": "FOMC 2026-10-28: hold 100%"}}}
    result = engine.evaluate([sept, *curve(0.72, 0), TICK], History({"RUT": RUT}), states, CLOCK)
    (alert,) = [a for a in result.alerts if a.rule_id == "digest"]
    assert alert.text.splitlines()[-1] == "  FOMC 2026-10-28: hold 100%"
    fresh = result.states["cut-odds"]["rule"]["summary"]
    assert result.states["cut-odds"]["rule"]["as_of"] == "2026-10-01T14:00:00+00:00"
    assert fresh == "FOMC 2026-10-28: cut 72%, hold 28% (most likely 3.25–3.50%)"
    assert states["cut-odds"]["rule"]["summary"] == "FOMC 2026-10-28: hold 100%"  # not mutated
    next_day = Observation("*", datetime(2026, 10, 2, 20, 15, tzinfo=UTC), 0.0, "tick")
    rut = series([*zip(RUT.dates, RUT.values, strict=True), ("2026-10-02", 2430.0)])
    later = engine.evaluate(
        [next_day],
        History({"RUT": rut}),
        {**states, **result.states},
        FakeClock(datetime(2026, 10, 2, 21, tzinfo=UTC)),
    )
    (alert,) = later.alerts
    assert alert.text.splitlines()[-1] == f"  {fresh}"


def test_peer_states_are_read_only() -> None:
    engine = Engine.from_config(make_config(ODDS_RULE, DIGEST))
    digest = engine.rules[1]
    engine.evaluate([TICK], History({"RUT": RUT}), {"cut-odds": {"rule": {"summary": "x"}}}, CLOCK)
    assert digest.peer_rules() == ("cut-odds",)
    with pytest.raises(TypeError):
        digest.peers["cut-odds"]["summary"] = "y"  # type: ignore[index]


@pytest.mark.parametrize(
    ("odds", "message"),
    [
        (["nope"], "rules[1].odds: unknown rule 'nope'; rate_odds rules: cut-odds"),
        (["digest"], "rules[1].odds: unknown rule 'digest'"),
        (["rut-rec"], "rules[1].odds: rule 'rut-rec' is a record_close rule, not a rate_odds rule"),
    ],
)
def test_digest_odds_must_name_a_rate_odds_rule(odds: list[str], message: str) -> None:
    record = {"id": "rut-rec", "type": "record_close", "symbol": "RUT"}
    with pytest.raises(ConfigError) as raised:
        make_config(ODDS_RULE, {**DIGEST, "odds": odds}, record)
    assert message in str(raised.value)


# -- report -------------------------------------------------------------------------------------


def write_config(tmp_path: Path, *rules: dict[str, Any]) -> Path:
    (tmp_path / "rut.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n2026-09-30,1,1,1,2400,1\n2026-10-01,1,1,1,2424,1\n"
    )
    path = tmp_path / "config.yaml"
    state = f"sqlite:///{tmp_path / 'state.sqlite'}"
    path.write_text(yaml.safe_dump(config_dict(*rules, state=state)))
    return path


def store_state(tmp_path: Path, states: dict[str, Any]) -> None:
    store = open_store(f"sqlite:///{tmp_path / 'state.sqlite'}")
    try:
        store.migrate()
        store.commit(states, [], CLOCK.now())
    finally:
        store.close()


def report(tmp_path: Path, capsys: pytest.CaptureFixture[str], *extra: str) -> tuple[int, str]:
    config = str(tmp_path / "config.yaml")
    data = f"RUT={tmp_path / 'rut.csv'}"  # and only RUT: nothing loaded from the network
    code = main(["report", "--config", config, "--data", data, "--symbol", "RUT", *extra])
    captured = capsys.readouterr()
    return code, captured.out


def test_report_shows_the_latest_odds(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_config(tmp_path, ODDS_RULE)
    rule_state = {"summary": SUMMARY, "meeting": "2026-10-28", "p_cut": 0.72}
    rule_state["as_of"] = "2026-10-01T14:20:00+00:00"
    store_state(tmp_path, {"cut-odds": {"rule": rule_state}})
    code, out = report(tmp_path, capsys)
    assert code == 0
    assert out.rstrip().splitlines()[-2:] == ["Market-implied odds (cut-odds):", f"  {SUMMARY}"]
    code, out = report(tmp_path, capsys, "--json")
    assert code == 0
    odds = json.loads(out.splitlines()[-1])
    assert odds == {
        "rule": "cut-odds",
        "type": "rate_odds",
        "odds": SUMMARY.split("\n"),
        "meeting": "2026-10-28",
        "p_cut": 0.72,
        "as_of": "2026-10-01T14:20:00+00:00",
    }
    assert json.loads(out.splitlines()[0])["symbol"] == "RUT"


def test_report_without_a_store_says_no_odds_yet(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path, ODDS_RULE)
    code, out = report(tmp_path, capsys)
    assert code == 0
    assert out.rstrip().splitlines()[-1] == "Market-implied odds (cut-odds): no odds yet"
    assert not (tmp_path / "state.sqlite").exists()  # read-only: no store created for it
    code, out = report(tmp_path, capsys, "--json")
    assert json.loads(out.splitlines()[-1]) == {
        "rule": "cut-odds",
        "type": "rate_odds",
        "odds": None,
        "meeting": None,
        "p_cut": None,
        "as_of": None,
    }


def test_report_without_odds_rules_prints_no_odds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path, {"id": "rut-rec", "type": "record_close", "symbol": "RUT"})
    store_state(tmp_path, {})
    code, out = report(tmp_path, capsys)
    assert code == 0
    assert "odds" not in out


def test_report_as_of_a_past_day_shows_no_odds(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    write_config(tmp_path, ODDS_RULE)
    store_state(tmp_path, {"cut-odds": {"rule": {"summary": SUMMARY}}})
    code, out = report(tmp_path, capsys, "--at", "2026-09-30")
    assert code == 0
    assert "odds" not in out  # the store has the latest odds only


def test_readme_digest_odds_example_is_valid_config() -> None:
    """The README's digest example with ``odds``, with the rate_odds example it names."""
    import re

    from tests.test_readme import ROOT, rule_examples

    readme = (ROOT / "README.md").read_text()
    rules_section = readme.split("## Rules", 1)[1].split("\n## ", 1)[0]
    (block,) = [
        b
        for b in re.findall(r"```yaml\n(.*?)```", rules_section, flags=re.S)
        if b.startswith("# with the rate_odds example") and "odds:" in b
    ]
    head = (ROOT / "config.yaml").read_text().split("\nrules:\n", 1)[0]
    symbols = next(
        b
        for b in re.findall(r"```yaml\n(symbols:[^\n]*\n.*?)```", rules_section, flags=re.S)
        if "ZQZ26" in b
    )
    head = head.replace("\nsymbols:\n", "\nsymbols:\n" + symbols.split("\n", 1)[1], 1)
    text = head + "\nrules:\n" + rule_examples()["rate_odds"] + block
    config = parse_config(text, "README digest odds example", {})
    digest = next(r for r in config.rules if r.type == "digest")
    assert digest.watched_rules() == [("odds", "cut-odds", "rate_odds")]


def test_odds_blocks_for_status() -> None:
    """The block ``/status`` and ``report`` print: every enabled rate_odds rule, in order."""
    from bot.rules.rate_odds import odds_blocks

    other = {**ODDS_RULE, "id": "hike-odds"}
    off = {**ODDS_RULE, "id": "off-odds", "enabled": False}
    config = make_config(ODDS_RULE, other, off, DIGEST)
    states = {"hike-odds": {"rule": {"summary": SUMMARY}}, "off-odds": {"rule": {"summary": "x"}}}
    assert odds_blocks(config.rules, states) == [
        ["Market-implied odds (cut-odds): no odds yet"],
        ["Market-implied odds (hike-odds):", f"  {SUMMARY}"],
    ]
    assert odds_blocks(make_config({**DIGEST, "odds": []}).rules, states) == []


# -- /status (the Telegram cockpit) ---------------------------------------------------------------

ODDS_RULES = """\
  - {id: cut-odds, type: rate_odds, contracts: {"2024-12": RUT}, calendar: FED, threshold: 50%}
  - {id: later-odds, type: rate_odds, contracts: {"2025-01": RUT}, calendar: FED, threshold: 50%}
"""


@pytest.mark.timeout(60)
def test_status_ends_with_the_odds(tmp_path: Path, fake_telegram: Any) -> None:
    """``/status`` (all symbols) closes with every rate_odds rule's latest odds, from the
    store; ``/status RUT`` is about RUT only."""
    import asyncio

    from tests.cockpit_support import (
        PRIVATE,
        T0,
        make_config,
        new_worker,
        running_cockpit,
        wait_for,
    )

    worker = new_worker(make_config(tmp_path, fake_telegram, extra=ODDS_RULES), FakeClock(T0))
    worker.store.commit({"cut-odds": {"rule": {"summary": SUMMARY}}}, [], T0)

    async def scenario() -> None:
        async with running_cockpit(worker):
            fake_telegram.message(PRIVATE, "/status")
            fake_telegram.message(PRIVATE, "/status RUT")
            await wait_for(lambda: len(fake_telegram.sent_to(PRIVATE)) == 2)

    asyncio.run(scenario())
    everything, one = [m.text for m in fake_telegram.sent_to(PRIVATE)]
    assert everything.endswith(
        f"\n\nMarket-implied odds (cut-odds):\n  {SUMMARY}"
        "\n\nMarket-implied odds (later-odds): no odds yet"
    )
    assert "Russell 2000 (RUT)" in everything
    assert "odds" not in one
