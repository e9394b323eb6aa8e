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
    assert "telegram.chats.traders: chat 'traders' has no id" in str(caught.value)
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
    assert config.state.url == f"sqlite:///{Path.cwd() / 'x.sqlite'}"
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


# ---------------------------------------------------------------------------------------------
# Issue 14: YAML bombs, merge keys, strict scalars, located problems
# ---------------------------------------------------------------------------------------------


def problems_of(text: str, environ: dict[str, str] | None = None, file: str = "config.yaml"):
    with pytest.raises(ConfigError) as caught:
        parse_config(text, file, environ or {})
    return [str(p) for p in caught.value.problems]


def _timed_problems(text: str) -> list[str]:
    import time

    started = time.perf_counter()
    found = problems_of(text)
    assert time.perf_counter() - started < 1.0
    return found


def test_billion_laughs_is_refused_fast_with_a_location() -> None:
    lines = ['a0: &a0 ["lol","lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for level in range(1, 10):
        refs = ",".join([f"*a{level - 1}"] * 10)
        lines.append(f"a{level}: &a{level} [{refs}]")
    found = _timed_problems(VALID + "\n".join(lines) + "\n")
    assert len(found) == 1
    assert found[0].startswith("config.yaml:")
    assert "aliases expand to more than" in found[0]


def test_a_recursive_alias_is_refused() -> None:
    found = _timed_problems(VALID + "x: &x [*x]\n")
    assert len(found) == 1 and "recursive" in found[0] and found[0].startswith("config.yaml:")


def test_deep_nesting_is_refused_fast_with_a_location() -> None:
    deep = "x: " + "[" * 10_000 + "]" * 10_000 + "\n"
    found = _timed_problems(VALID + deep)
    assert len(found) == 1
    assert found[0].startswith(f"config.yaml:{VALID.count(chr(10)) + 1}: ")
    assert "nested deeper than" in found[0]


def test_too_many_aliases_are_refused() -> None:
    text = VALID + "x: &x 1\ny: [" + ",".join(["*x"] * 20_000) + "]\n"
    found = _timed_problems(text)
    assert len(found) == 1 and "aliases" in found[0]


def test_a_huge_config_file_is_refused_before_parsing(tmp_path: Path) -> None:
    import time

    from bot.config import load_config

    path = tmp_path / "config.yaml"
    with path.open("w") as out:
        out.write(VALID)
        out.write("x:\n")
        for block in range(20):  # 3 MB (the case was 60 MB: only the start is read)
            out.write("".join(f"  k{block}_{i}: {i}\n" for i in range(10_000)))
    started = time.perf_counter()
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert time.perf_counter() - started < 1.0
    (problem,) = caught.value.problems
    assert problem.file == str(path) and "larger than" in problem.message


def test_many_keys_are_refused_fast() -> None:
    text = VALID + "x:\n" + "".join(f"  k{i}: {i}\n" for i in range(60_000))
    found = _timed_problems(text)
    assert len(found) == 1 and "more than" in found[0] and found[0].startswith("config.yaml:")


def test_the_limits_are_configurable(monkeypatch: pytest.MonkeyPatch) -> None:
    from bot import yaml12

    monkeypatch.setattr(yaml12, "LIMITS", yaml12.YamlLimits(max_depth=2))
    (problem,) = problems_of(VALID)
    assert problem == "config.yaml:5: nested deeper than 2 levels"


def test_merge_keys_let_an_override_win() -> None:
    text = VALID + (
        "  - &base\n"
        "    id: rut-2400\n"
        "    type: cross\n"
        "    symbol: RUT\n"
        "    level: 2400\n"
        "    direction: down\n"
        "  - <<: *base\n"
        "    id: rut-2600\n"
        "    level: 2600\n"
        "  - {<<: [*base], id: rty-2600, symbol: RTY}\n"
    )
    config = parse_config(text, "config.yaml", {})
    dumped = {r.id: r.model_dump() for r in config.rules}
    assert dumped["rut-2600"]["level"] == 2600.0
    assert dumped["rut-2600"]["direction"] == "down" and dumped["rut-2600"]["symbol"] == "RUT"
    assert dumped["rty-2600"]["symbol"] == "RTY" and dumped["rty-2600"]["level"] == 2400.0
    assert dumped["rut-2400"]["level"] == 2400.0


def test_a_merge_of_a_scalar_is_a_located_error() -> None:
    found = problems_of(VALID + "  - <<: 5\n    id: x\n")
    assert found == [
        "config.yaml:21: a merge key (<<) takes a mapping or a list of mappings, "
        "such as <<: *defaults"
    ]


def test_an_impossible_date_is_a_located_error() -> None:
    found = problems_of(VALID + "    expires: 2026-02-30\n")
    assert found == [
        "config.yaml:21: rules[0].expires: expected a date such as 2026-12-31, got '2026-02-30' "
        "(day is out of range for month)"
    ]


def test_expires_accepts_a_date_and_dates_stay_strings_elsewhere() -> None:
    config = parse_config(VALID + "    expires: 2099-12-31\n", "config.yaml", {})
    assert str(config.rules[0].expires) == "2099-12-31"
    text = VALID.replace("name: Russell 2000,", "name: 2026-01-02,")
    assert parse_config(text, "config.yaml", {}).symbols["RUT"].name == "2026-01-02"


@pytest.mark.parametrize(
    ("line", "shown"),
    [
        ("    enabled: yes\n", "'yes'"),
        ('    enabled: "off"\n', "'off'"),
        ("    silent: 1\n", "1"),
        ("    silent: 'true'\n", "'true'"),
    ],
)
def test_only_true_and_false_are_booleans(line: str, shown: str) -> None:
    key = line.split(":")[0].strip()
    assert problems_of(VALID + line) == [
        f"config.yaml:21: rules[0].{key}: expected true or false, got {shown}"
    ]


def test_a_boolean_from_the_environment_is_still_a_boolean() -> None:
    config = parse_config(VALID + "    enabled: ${RULE_ON}\n", "config.yaml", {"RULE_ON": "false"})
    assert config.rules[0].enabled is False


@pytest.mark.parametrize(("every", "shown"), [("0s", "'0s'"), ("0", "0"), ("500ms", "'500ms'")])
def test_poll_every_must_be_at_least_a_second(every: str, shown: str) -> None:
    found = problems_of(VALID.replace("every: 60s", f"every: {every}"))
    assert found == [f"config.yaml:13: poll.every: must be at least 1s, got {shown}"]


def test_a_symbol_poll_of_zero_is_an_error() -> None:
    found = problems_of(VALID.replace("calendar: CME}", "calendar: CME, poll: 0s}"))
    assert found == ["config.yaml:12: symbols.RTY.poll: must be at least 1s, got '0s'"]


def test_an_expires_in_the_past_is_a_warning_naming_the_rule() -> None:
    from datetime import date

    text = VALID + "    expires: 2025-01-31\n"
    config = parse_config(text, "config.yaml", {}, today=date(2025, 2, 1))
    assert [str(w) for w in config.warnings] == [
        "config.yaml:21: rules[0].expires: 2025-01-31 is in the past: rule 'rut-2500' never fires"
    ]
    assert parse_config(text, "config.yaml", {}, today=date(2025, 1, 31)).warnings == ()


def test_check_prints_warnings(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code, out, err = check(tmp_path, VALID + "    expires: 2001-01-01\n", capsys, monkeypatch)
    assert code == 0
    assert "warning: config.yaml:21: rules[0].expires: 2001-01-01 is in the past" in out + err


def test_a_missing_csv_file_is_reported_relative_to_the_config(tmp_path: Path) -> None:
    from bot.config import load_config

    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "rut.csv").write_text("Date,Open,High,Low,Close,Volume\n")
    text = VALID.replace("sources:\n", "sources:\n  files: {type: csv}\n").replace(
        '  RUT: {source: yahoo, ticker: "^RUT",',
        "  OLD: {source: files, file: data/rut.csv}\n"
        "  NEW: {source: files, file: data/nope.csv}\n"
        '  RUT: {source: yahoo, ticker: "^RUT",',
    )
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert [str(p) for p in caught.value.problems] == [
        f"{path}:13: symbols.NEW.file: no such file: {tmp_path / 'data' / 'nope.csv'}"
    ]


def test_a_relative_sqlite_path_resolves_against_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from bot.config import load_config

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    (tmp_path / "conf").mkdir()
    path = write(tmp_path / "conf", VALID.replace("bot-state.sqlite", "state/bot.sqlite"))
    config = load_config(path)
    assert config.state.url == f"sqlite:///{tmp_path / 'conf' / 'state' / 'bot.sqlite'}"
    absolute = write(tmp_path / "conf", VALID.replace("///bot-state.sqlite", "////tmp/x.sqlite"))
    assert load_config(absolute).state.url == "sqlite:////tmp/x.sqlite"
    memory = write(
        tmp_path / "conf", VALID.replace("sqlite:///bot-state.sqlite", '"sqlite:///:memory:"')
    )
    assert load_config(memory).state.url == "sqlite:///:memory:"


def test_a_missing_chat_id_is_reported_at_its_own_line_naming_the_variable() -> None:
    found = problems_of(VALID, {"TELEGRAM_BOT_TOKEN": "123456789:AAHxxxxxxxxxxxxxxxxxxxxxxxxxx"})
    assert found == [
        "config.yaml:5: telegram.chats.traders: chat 'traders' has no id (${TELEGRAM_CHAT_ID} "
        "is not set); a token is set, so every named chat needs a chat id"
    ]


def test_an_unset_variable_is_named_in_the_problem() -> None:
    found = problems_of(VALID.replace("level: 2500", "level: ${RUT_LEVEL}"))
    assert found == [
        "config.yaml:18: rules[0].level: expected a number, got '' (${RUT_LEVEL} is not set)"
    ]


def test_environment_variables_are_not_expanded_in_templates() -> None:
    env = {"TELEGRAM_BOT_TOKEN": "123456789:AAHsecretsecretsecret", "TELEGRAM_CHAT_ID": "-1"}
    found = problems_of(VALID + '    template: "leak ${TELEGRAM_BOT_TOKEN}"\n', env)
    assert len(found) == 1 and "unknown template field {TELEGRAM_BOT_TOKEN}" in found[0]
    assert "AAHsecret" not in "".join(found)
    config = parse_config(VALID + '    template: "${level} US$ {value}"\n', "config.yaml", env)
    assert config.rules[0].template == "${level} US$ {value}"


def test_a_literal_dollar_brace_outside_templates() -> None:
    text = VALID.replace("name: Russell 2000,", 'name: "Russell $${X}",')
    assert parse_config(text, "config.yaml", {"X": "no"}).symbols["RUT"].name == "Russell ${X}"


def test_log_level_must_be_a_known_level(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        main(["run", "--log-level", "verbose"])
    assert caught.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'VERBOSE'" in err and "Traceback" not in err
