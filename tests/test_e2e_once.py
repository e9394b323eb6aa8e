"""End to end: ``python -m bot run --once`` as a real process against fake Yahoo and Telegram.

Every run is a fresh process, so each poll below is also a restart: state lives only in the
SQLite file. The fakes persist across runs and record what they received.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.fakes.telegram import FAKE_TOKEN, FakeTelegram, server_error
from tests.fakes.yahoo import SAD_PANDA_HTML, Reply, YahooFake, chart_response

ROOT = Path(__file__).resolve().parents[1]
CHAT = 4242

CONFIG = """\
timezone: America/New_York
telegram:
  token: ${{TELEGRAM_BOT_TOKEN}}
  base_url: {telegram}
  chats: {{traders: {chat}}}
state:
  url: sqlite:///{state}
delivery:
  backoff: 1ms   # the restart right after an outage retries at once: no test waits for a clock
sources:
  yahoo: {{type: yahoo, base_url: {yahoo}, attempts: 1}}
symbols:
  RUT: {{source: yahoo, ticker: "^RUT", name: Russell 2000, calendar: always}}
rules:
  - id: rut-2500
    type: cross
    symbol: RUT
    level: 2500
    direction: up
    on: price
"""


@pytest.fixture
def config_file(tmp_path: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram) -> Path:
    path = tmp_path / "config.yaml"
    path.write_text(
        CONFIG.format(
            telegram=fake_telegram.base_url,
            chat=CHAT,
            state=tmp_path / "state.sqlite",
            yahoo=yahoo_fake.base_url,
        )
    )
    # Daily-bar requests (for final closes) get an answer with no bars: no close to report.
    yahoo_fake.script(yahoo_fake.chart_path("^RUT"), [chart_response(price=1.0)])
    return path


def serve_prices(yahoo: YahooFake, prices: list[float | Reply]) -> None:
    """Quote requests (``range=…``) get these answers in order; each quote one minute later."""
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=len(prices))
    replies = [
        p if isinstance(p, Reply) else chart_response(price=p, time=start + timedelta(minutes=i))
        for i, p in enumerate(prices)
    ]
    yahoo.script(yahoo.chart_path("^RUT"), replies, query={"range": "1d"})


def run_once(
    config: Path, *extra: str, token: str | None = FAKE_TOKEN
) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
    if token:
        env["TELEGRAM_BOT_TOKEN"] = token
    return subprocess.run(
        [sys.executable, "-m", "bot", "run", "--once", "--config", str(config), *extra],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_price_sequence_delivers_exactly_two_alerts_across_restarts(
    config_file: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram
) -> None:
    serve_prices(yahoo_fake, [2490.0, 2505.0, 2510.0, 2495.0, 2502.0, 2502.0])
    for _ in range(6):
        result = run_once(config_file)
        assert result.returncode == 0, result.stderr
    texts = fake_telegram.texts(CHAT)
    assert len(texts) == 2, texts
    assert "Russell 2000 (RUT) crossed above 2,500" in texts[0] and "at 2,505 on" in texts[0]
    assert "Russell 2000 (RUT) crossed above 2,500" in texts[1] and "at 2,502 on" in texts[1]
    sent = fake_telegram.sent_to(CHAT)
    assert all(m.parse_mode == "HTML" for m in sent)


def test_starting_above_the_level_sends_nothing(
    config_file: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram
) -> None:
    serve_prices(yahoo_fake, [2510.0, 2520.0])
    for _ in range(2):
        assert run_once(config_file).returncode == 0
    assert fake_telegram.texts(CHAT) == []


def test_alert_survives_telegram_outage_and_is_sent_once(
    config_file: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram
) -> None:
    serve_prices(yahoo_fake, [2490.0, 2505.0, 2506.0, 2507.0])
    assert run_once(config_file).returncode == 0
    fake_telegram.fail(server_error(500), times=None)  # Telegram down for the crossing run
    result = run_once(config_file)
    assert result.returncode == 0, result.stderr
    assert fake_telegram.texts(CHAT) == []
    fake_telegram.clear_failures()
    for _ in range(2):  # a restart later delivers it; further runs do not repeat it
        assert run_once(config_file).returncode == 0
    texts = fake_telegram.texts(CHAT)
    assert len(texts) == 1 and "at 2,505 on" in texts[0]


@pytest.mark.parametrize(
    "bad",
    [
        Reply(SAD_PANDA_HTML, status=200, content_type="text/html"),
        Reply({"chart": {"result": None, "error": None}}, status=500),
        Reply('{"chart": {"result": [{"meta": {"regularMarketPrice": 25', status=200),
        Reply(
            {
                "chart": {
                    "result": None,
                    "error": {
                        "code": "Not Found",
                        "description": "No data found, symbol may be delisted",
                    },
                }
            },
            status=404,
        ),
        Reply("", status=429, headers={"Retry-After": "30"}),
    ],
    ids=["html-200", "http-500", "truncated-json", "chart-error-404", "http-429"],
)
def test_bad_yahoo_answer_is_logged_and_skipped(
    config_file: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram, bad: Reply
) -> None:
    serve_prices(yahoo_fake, [2490.0, bad, 2505.0])
    assert run_once(config_file).returncode == 0
    result = run_once(config_file)
    # its only symbol's fetch failed: as a health check, `run --once` says so (issue 11)
    assert result.returncode == 1, result.stderr
    assert "every fetch failed" in result.stderr
    assert "RUT" in result.stderr and "/v8/finance/chart/" in result.stderr
    assert fake_telegram.texts(CHAT) == []
    # the bad answer neither fired nor re-armed anything: the next good poll crosses once
    assert run_once(config_file).returncode == 0
    assert len(fake_telegram.texts(CHAT)) == 1


# ``python -m bot`` with the libraries that log the Bot API URL (``/bot<token>/``) turned up to
# DEBUG after the bot set up its logging: the token-bearing lines are produced for real.
CHATTY_BOT = """
import logging, sys
import bot.logs

_setup = bot.logs.setup_logging

def setup_logging(*args, **kwargs):
    handler = _setup(*args, **kwargs)
    for name in ("httpx", "httpcore", "telegram"):
        logging.getLogger(name).setLevel(logging.DEBUG)
    return handler

bot.logs.setup_logging = setup_logging
from bot.cli import main
sys.argv[0] = "bot"
raise SystemExit(main())
"""


def test_token_never_printed_even_at_debug(
    config_file: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram
) -> None:
    serve_prices(yahoo_fake, [2490.0, 2505.0])
    outputs = ""
    for _ in range(2):
        env = {k: v for k, v in os.environ.items() if not k.startswith("TELEGRAM_")}
        env["TELEGRAM_BOT_TOKEN"] = FAKE_TOKEN
        result = subprocess.run(
            [
                sys.executable,
                "-c",
                CHATTY_BOT,
                *("run", "--once", "--log-level", "DEBUG"),
                "--config",
                str(config_file),
            ],
            cwd=ROOT,
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert result.returncode == 0, result.stderr
        outputs += result.stdout + result.stderr
    assert len(fake_telegram.texts(CHAT)) == 1
    # httpx logged the request URLs (which hold the token) and redaction caught every one
    assert "HTTP Request: POST" in outputs and "/bot<redacted>/sendMessage" in outputs
    assert "/bot<redacted>/getMe" in outputs
    assert FAKE_TOKEN not in outputs
    assert FAKE_TOKEN.split(":", 1)[1] not in outputs


def test_without_token_alerts_go_to_the_console(
    config_file: Path, yahoo_fake: YahooFake, fake_telegram: FakeTelegram
) -> None:
    serve_prices(yahoo_fake, [2490.0, 2505.0])
    assert run_once(config_file, token=None).returncode == 0
    result = run_once(config_file, token=None)
    assert result.returncode == 0, result.stderr
    assert "ALERT [rut-2500] Russell 2000 (RUT) crossed above 2,500" in result.stdout
    assert fake_telegram.calls == []
