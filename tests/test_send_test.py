"""``send-test [CHAT]``: one message through outbox + sender + notifier, against the fake
Bot API; the configured store is never touched."""

from __future__ import annotations

from pathlib import Path

import pytest

from bot.cli import main
from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram, server_error
from tests.test_logs import restore_logging  # noqa: F401  (autouse: send-test sets up logging)

TRADERS, DESK = -1001234567890, 4242

CONFIG = """\
telegram:
  token: ${{TELEGRAM_BOT_TOKEN}}
  base_url: {telegram}
  chats: {{traders: {traders}, desk: {desk}}}
  admin_chat: desk
  timeout: 5s
state:
  url: sqlite:///{state}
delivery:
  backoff: 1ms
"""


@pytest.fixture
def config(tmp_path: Path, fake_telegram: FakeTelegram, monkeypatch: pytest.MonkeyPatch) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.format(
            telegram=fake_telegram.base_url,
            traders=TRADERS,
            desk=DESK,
            state=tmp_path / "state.sqlite",
        )
    )
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", FAKE_TOKEN)
    return path


def send_test(config: Path, capsys: pytest.CaptureFixture[str], *args: str) -> tuple[int, str]:
    code = main(["send-test", *args, "--config", str(config)])
    out = capsys.readouterr().out
    assert FAKE_TOKEN not in out
    return code, out


def test_one_message_reaches_the_named_chat(
    config: Path, capsys: pytest.CaptureFixture[str], fake_telegram: FakeTelegram
) -> None:
    code, out = send_test(config, capsys, "traders")
    assert code == 0
    [message] = fake_telegram.sent_to(TRADERS)
    # the notifier's real formatting: the first line bold, HTML parse mode
    assert message.text.startswith("<b>Test message from Index Alert Bot ")
    assert message.parse_mode == "HTML"
    assert fake_telegram.texts(DESK) == []
    assert out == f"ok   sent to traders ({TRADERS}) (message id {message.message_id})\n"
    assert not (config.parent / "state.sqlite").exists()  # the configured store: untouched


def test_without_a_chat_the_admin_chat_gets_it(
    config: Path, capsys: pytest.CaptureFixture[str], fake_telegram: FakeTelegram
) -> None:
    code, out = send_test(config, capsys)
    assert code == 0
    assert len(fake_telegram.sent_to(DESK)) == 1 and fake_telegram.texts(TRADERS) == []
    assert out.startswith(f"ok   sent to desk ({DESK})")


def test_an_unknown_chat_name_is_refused(
    config: Path, capsys: pytest.CaptureFixture[str], fake_telegram: FakeTelegram
) -> None:
    code, out = send_test(config, capsys, "tradres")
    assert code == 2
    assert out == "error: unknown chat 'tradres'; named chats: traders, desk\n"
    assert fake_telegram.calls == []


def test_a_chat_that_does_not_exist_fails_with_telegrams_reason(
    config: Path, capsys: pytest.CaptureFixture[str], fake_telegram: FakeTelegram
) -> None:
    fake_telegram.forget_chat(TRADERS)
    code, out = send_test(config, capsys, "traders")
    assert code == 2
    assert out.startswith(f"FAIL not delivered to traders ({TRADERS}): ")
    assert "chat not found" in out.lower()


def test_telegram_down_fails_instead_of_waiting(
    config: Path, capsys: pytest.CaptureFixture[str], fake_telegram: FakeTelegram
) -> None:
    fake_telegram.fail(server_error(502), times=None)
    code, out = send_test(config, capsys, "traders")
    assert code == 2
    assert out.startswith(f"FAIL not delivered to traders ({TRADERS}): ")
    assert "502" in out or "Bad Gateway" in out


def test_a_rejected_token_fails(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("TELEGRAM_BOT_TOKEN", "987654321:AAWrongTokenForTests-abcdefghijklmnopq")
    code, out = send_test(config, capsys, "traders")
    assert code == 2
    assert out.startswith("FAIL telegram: the Bot API at ") and "rejected the token" in out
    assert "AAWrongToken" not in out


def test_without_a_token_it_prints_to_the_console(
    config: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("TELEGRAM_BOT_TOKEN")
    code, out = send_test(config, capsys)
    assert code == 0
    assert "ALERT [send-test] Test message from Index Alert Bot" in out
    assert "ok   sent to desk (console: no token)" in out
