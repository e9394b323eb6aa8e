"""Config loading and ``python -m bot check``: located, verbatim error messages."""

from __future__ import annotations

import textwrap
from datetime import timedelta
from pathlib import Path

import pytest

from bot.cli import main
from bot.config import ConfigError, parse_config, parse_duration, parse_threshold

VALID = """\
timezone: America/New_York
telegram:
  token: ${TELEGRAM_BOT_TOKEN}
  base_url: https://api.telegram.org
  chats: {traders: ${TELEGRAM_CHAT_ID}}
state:
  url: sqlite:///bot-state.sqlite
sources:
  yahoo: {type: yahoo, base_url: https://query1.finance.yahoo.com}
symbols:
  RUT: {source: yahoo, ticker: "^RUT",  name: Russell 2000, calendar: XNYS}
  RTY: {source: yahoo, ticker: "RTY=F", name: E-mini Russell 2000 futures, calendar: CME}
poll: {every: 60s}
rules:
  - id: rut-2500
    type: cross
    symbol: RUT
    level: 2500
    direction: up
    on: price
"""


def write(tmp_path: Path, text: str, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def check(
    tmp_path: Path, text: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> tuple[int, str, str]:
    monkeypatch.chdir(tmp_path)
    write(tmp_path, text)
    code = main(["check", "--config", "config.yaml"])
    out, err = capsys.readouterr()
    return code, out, err


def test_valid_config_passes_with_no_environment(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    monkeypatch.delenv("TELEGRAM_CHAT_ID", raising=False)
    code, out, err = check(tmp_path, VALID, capsys, monkeypatch)
    assert code == 0, err
    assert "config.yaml: OK" in out
    assert "telegram: off (no token)" in out
    assert "rut-2500: cross" in out and "level=2500.0" in out


def test_check_redacts_the_token(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    token = "123456789:AAHsecretsecretsecretsecretsecret12"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", token)
    monkeypatch.setenv("TELEGRAM_CHAT_ID", "-1001234567890")
    code, out, err = check(tmp_path, VALID, capsys, monkeypatch)
    assert code == 0, err
    assert token not in out + err
    assert "token <redacted>" in out
    assert "chat traders: -1001234567890" in out


@pytest.mark.parametrize(
    ("replace", "by", "expected"),
    [
        # 1. a value of the wrong type
        (
            "    level: 2500\n",
            "    level: 25OO\n",
            "config.yaml:18: rules[0].level: expected a number, got '25OO'",
        ),
        # 2. a typo in a key is never silently ignored
        (
            "    level: 2500\n",
            "    levl: 2500\n",
            "config.yaml:18: rules[0].levl: unknown key (did you mean 'level'?)",
        ),
        # 3. a value outside the allowed set
        (
            "    direction: up\n",
            "    direction: upward\n",
            "config.yaml:19: rules[0].direction: expected one of up, down, both; got 'upward'",
        ),
        # 4. a reference to a symbol that is not defined
        (
            "    symbol: RUT\n",
            "    symbol: RUX\n",
            "config.yaml:17: rules[0].symbol: unknown symbol 'RUX'; defined symbols: RUT, RTY",
        ),
        # 5. a duration that does not parse
        (
            "poll: {every: 60s}\n",
            "poll: {every: 60 seconds}\n",
            "config.yaml:13: poll.every: expected a duration such as 60s, 5m, 2h or 1d, "
            "got '60 seconds'",
        ),
        # 6. an unknown calendar
        (
            "calendar: CME}",
            "calendar: CBOT}",
            "config.yaml:12: symbols.RTY.calendar: unknown calendar 'CBOT'; "
            "known: always, XNYS, CME",
        ),
        # 7. an unknown rule type
        (
            "    type: cross\n",
            "    type: crossing\n",
            "config.yaml:16: rules[0].type: unknown rule type 'crossing'; known: ",
        ),
        # 8. a source that is not defined
        (
            "RUT: {source: yahoo,",
            "RUT: {source: yahooo,",
            "config.yaml:11: symbols.RUT.source: unknown source 'yahooo'; defined sources: yahoo",
        ),
        # 9. an unknown top-level section
        (
            "poll: {every: 60s}\n",
            "pol: {every: 60s}\n",
            "config.yaml:13: pol: unknown key (did you mean 'poll'?)",
        ),
        # 10. a missing required key
        ("    symbol: RUT\n", "", "config.yaml:15: rules[0].symbol: required key is missing"),
    ],
)
def test_check_reports_each_mistake_verbatim(
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    replace: str,
    by: str,
    expected: str,
) -> None:
    assert replace in VALID
    code, _, err = check(tmp_path, VALID.replace(replace, by, 1), capsys, monkeypatch)
    assert code == 2
    lines = err.splitlines()
    assert len(lines) == 1, lines
    if expected.endswith("known: "):  # the list of rule types grows; the start is the contract
        assert lines[0].startswith(expected)
    else:
        assert lines[0] == expected


def test_check_reports_every_problem_at_once(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = VALID.replace("level: 2500", "level: 25OO").replace("every: 60s", "every: soon")
    broken = broken.replace("calendar: CME}", "calendar: NOPE}")
    code, _, err = check(tmp_path, broken, capsys, monkeypatch)
    assert code == 2
    lines = err.splitlines()
    assert lines == [
        "config.yaml:12: symbols.RTY.calendar: unknown calendar 'NOPE'; known: always, XNYS, CME",
        "config.yaml:13: poll.every: expected a duration such as 60s, 5m, 2h or 1d, got 'soon'",
        "config.yaml:18: rules[0].level: expected a number, got '25OO'",
    ]


def test_invalid_yaml_reports_line_and_column(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, _, err = check(
        tmp_path, VALID.replace("  RTY: {source", "  RTY: {{source"), capsys, monkeypatch
    )
    assert code == 2
    assert err.splitlines() == [
        "config.yaml:13: invalid YAML: expected ',' or '}', but got '<scalar>' "
        "(column 1; while parsing a flow mapping that starts at line 12)"
    ]


def test_duplicate_keys_and_rule_ids_are_errors(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    text = VALID + VALID[VALID.index("  - id: rut-2500") :]
    text = text.replace(
        "timezone: America/New_York\n", "timezone: America/New_York\ntimezone: UTC\n"
    )
    code, _, err = check(tmp_path, text, capsys, monkeypatch)
    assert code == 2
    assert (
        "config.yaml:2: timezone: duplicate key (the same key appears twice in this mapping)" in err
    )
    assert "config.yaml:22: rules[1].id: duplicate rule id 'rut-2500' (also rules[0])" in err


def test_token_set_requires_chat_ids() -> None:
    with pytest.raises(ConfigError) as caught:
        parse_config(
            VALID, "config.yaml", {"TELEGRAM_BOT_TOKEN": "123456789:AAHxxxxxxxxxxxxxxxxxxxxxxxxxx"}
        )
    assert str(caught.value) == (
        "config.yaml:2: telegram: chat 'traders' has no id (is its environment variable set?); "
        "a token is set, so every named chat needs a chat id"
    )
    assert "AAHxxx" not in str(caught.value)


def test_yaml_12_keeps_on_and_tickers_as_strings() -> None:
    text = VALID.replace('ticker: "^RUT"', "ticker: ON").replace("on: price", "on: close")
    text = text.replace("  RTY: {", "  NO: {source: yahoo, ticker: NO, calendar: always}\n  RTY: {")
    config = parse_config(text, "config.yaml", {})
    assert config.symbols["RUT"].ticker == "ON"
    assert config.symbols["NO"].ticker == "NO"
    assert config.rules[0].model_dump()["on"] == "close"


def test_environment_substitution_with_defaults() -> None:
    text = VALID.replace(
        "url: sqlite:///bot-state.sqlite", "url: ${DATABASE_URL:-sqlite:///x.sqlite}"
    )
    env = {
        "TELEGRAM_BOT_TOKEN": "123456789:AAHxxxxxxxxxxxxxxxxxxxxxxxxxx",
        "TELEGRAM_CHAT_ID": "-100123",
    }
    config = parse_config(text, "config.yaml", env)
    assert config.state.url == "sqlite:///x.sqlite"
    assert config.telegram.chats == {"traders": -100123}
    assert config.telegram.enabled
    env["DATABASE_URL"] = "postgres://u:p@db/x"
    assert parse_config(text, "config.yaml", env).state.url == "postgres://u:p@db/x"


def test_channel_names_are_chat_ids() -> None:
    text = VALID.replace("{traders: ${TELEGRAM_CHAT_ID}}", "{traders: '@rut_watch', desk: -42}")
    config = parse_config(text, "config.yaml", {})
    assert config.telegram.chats == {"traders": "@rut_watch", "desk": -42}


def test_value_parsers() -> None:
    assert parse_duration("60s") == timedelta(seconds=60)
    assert parse_duration("5m") == timedelta(minutes=5)
    assert parse_duration("252d") == timedelta(days=252)
    assert parse_threshold("1%").of(2500) == pytest.approx(25.0)
    assert parse_threshold(20).of(2500) == 20
    with pytest.raises(ValueError):
        parse_duration("soon")


def test_shipped_config_passes_check(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    root = Path(__file__).resolve().parents[1]
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN", raising=False)
    assert main(["check", "--config", str(root / "config.yaml")]) == 0
    out = capsys.readouterr().out
    assert "OK" in out


def test_embedded_default_matches_shipped_config() -> None:
    root = Path(__file__).resolve().parents[1]
    assert (root / "bot" / "default_config.yaml").read_text() == (root / "config.yaml").read_text()


def test_without_a_config_file_the_embedded_default_is_used(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)  # no config.yaml here
    monkeypatch.delenv("BOT_CONFIG", raising=False)
    assert main(["check"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("<embedded default config>: OK")
    assert "rut-record: record_close" in out


def test_a_missing_config_that_was_asked_for_is_an_error(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["check", "--config", "nope.yaml"]) == 2
    assert capsys.readouterr().err.strip() == "nope.yaml: cannot read: No such file or directory"
