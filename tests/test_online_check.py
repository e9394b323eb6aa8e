"""``check --online`` against the fake Bot API and the fake Yahoo: the token (getMe), each
chat (getChat + the bot's getChatMember), each symbol's source; exit 2 on any failure."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram
from tests.fakes.yahoo import Reply, YahooFake, chart_response

CHAT = -1001234567890

CONFIG = """\
telegram:
  token: ${{TELEGRAM_BOT_TOKEN}}
  base_url: {telegram}
  chats: {{traders: {chat}, desk: "@rut_watch"}}
  timeout: 5s
state:
  url: sqlite:///{state}
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: always}}
rules:
  - {{id: rut-2500, type: cross, symbol: RUT, level: 2500}}
"""


@pytest.fixture
def setup(
    tmp_path: Path,
    yahoo_fake: YahooFake,
    fake_telegram: FakeTelegram,
    monkeypatch: pytest.MonkeyPatch,
) -> Path:
    """A config pointing at the fakes; both chats exist, the bot may post, RUT answers."""
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.format(
            telegram=fake_telegram.base_url,
            chat=CHAT,
            state=tmp_path / "state.sqlite",
            yahoo=yahoo_fake.base_url,
        )
    )
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", FAKE_TOKEN)
    fake_telegram.add_chat(CHAT, type="supergroup", title="Traders", status="member")
    fake_telegram.add_chat("@rut_watch", type="channel", title="RUT watch")
    yahoo_fake.quote("^RUT", 2442.03)
    return path


def online(path: Path, capsys: pytest.CaptureFixture[str]) -> tuple[int, list[str]]:
    code = main(["check", "--config", str(path), "--online"])
    captured = capsys.readouterr()
    out = captured.out + captured.err
    assert FAKE_TOKEN not in out and FAKE_TOKEN.split(":")[1] not in out
    checks = out.split("online checks:\n", 1)[1].splitlines()
    return code, checks


def test_good_setup_passes_with_one_line_per_check(
    setup: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, lines = online(setup, capsys)
    assert lines == [
        "ok   token: @fake_alert_bot (Fake Alert Bot), bot id 123456789",
        f"ok   chat traders ({CHAT}): supergroup 'Traders', the bot is member",
        "ok   chat desk (@rut_watch): channel 'RUT watch', the bot is administrator",
        lines[3],
    ]
    assert lines[3].startswith("ok   symbol RUT via yahoo: 2,442.03 at ")
    assert code == 0


def test_a_rejected_token_fails(
    setup: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    wrong = "987654321:AAWrongTokenForTests-abcdefghijklmnopq"
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", wrong)
    code, lines = online(setup, capsys)
    assert lines[0].startswith("FAIL token: rejected by Telegram")
    assert not any(wrong.split(":")[1] in line for line in lines)
    assert lines[1].startswith("ok   symbol RUT via yahoo")  # the sources are still checked
    assert code == 2


def test_a_missing_chat_fails(
    setup: Path, capsys: pytest.CaptureFixture[str], fake_telegram: FakeTelegram
) -> None:
    del fake_telegram.chats[CHAT]
    code, lines = online(setup, capsys)
    assert lines[1] == (
        f"FAIL chat traders ({CHAT}): Chat not found (wrong id, or the bot was never added)"
    )
    assert lines[2].startswith("ok   chat desk")
    assert code == 2


@pytest.mark.parametrize(
    ("status", "can_post", "why"),
    [
        ("administrator", False, "the bot may not post"),
        ("member", True, "the bot may not post"),
        ("left", True, "the bot is not a member (left)"),
        ("kicked", True, "the bot is not a member (kicked)"),
    ],
)
def test_a_channel_the_bot_may_not_post_to_fails(
    setup: Path,
    capsys: pytest.CaptureFixture[str],
    fake_telegram: FakeTelegram,
    status: str,
    can_post: bool,
    why: str,
) -> None:
    fake_telegram.add_chat(
        "@rut_watch", type="channel", title="RUT watch", status=status, can_post_messages=can_post
    )
    code, lines = online(setup, capsys)
    assert lines[2].startswith("FAIL chat desk (@rut_watch): channel 'RUT watch': " + why)
    assert code == 2


def test_a_group_that_removed_the_bot_fails(
    setup: Path, capsys: pytest.CaptureFixture[str], fake_telegram: FakeTelegram
) -> None:
    fake_telegram.add_chat(CHAT, type="supergroup", title="Traders", status="kicked")
    code, lines = online(setup, capsys)
    assert (
        lines[1]
        == f"FAIL chat traders ({CHAT}): supergroup 'Traders': the bot is not a member (kicked)"
    )
    assert code == 2


def test_a_source_that_is_down_fails(
    setup: Path, capsys: pytest.CaptureFixture[str], yahoo_fake: YahooFake
) -> None:
    yahoo_fake.chart("^RUT", Reply(body="unavailable", status=503))
    code, lines = online(setup, capsys)
    assert lines[-1].startswith("FAIL symbol RUT via yahoo: RUT ")
    assert "503" in lines[-1] and yahoo_fake.base_url in lines[-1]
    assert code == 2


def test_every_source_of_a_failover_list_is_checked(
    setup: Path, capsys: pytest.CaptureFixture[str], yahoo_fake: YahooFake
) -> None:
    text = setup.read_text().replace("source: yahoo,", "source: [yahoo, spare],")
    text = text.replace(
        "sources:\n",
        f"sources:\n  spare: {{type: yahoo, base_url: {yahoo_fake.base_url}/x, attempts: 1}}\n",
    )
    setup.write_text(text)
    code, lines = online(setup, capsys)
    assert lines[3].startswith("ok   symbol RUT via yahoo")
    assert lines[4].startswith("FAIL symbol RUT via spare")  # the fake has no /x route: 404
    assert code == 2


def test_without_a_token_only_the_sources_are_checked(
    setup: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    code, lines = online(setup, capsys)
    assert lines[0] == "ok   telegram: off (no token): alerts are printed to the console"
    assert lines[1].startswith("ok   symbol RUT via yahoo")
    assert code == 0
    assert chart_response  # the fake's wire format (used by quote())
