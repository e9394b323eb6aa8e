"""Shared fixtures: the loopback fakes of Yahoo, FRED, Stooq and the Telegram Bot API."""

from tests.fakes.fed import fed_fake  # noqa: F401
from tests.fakes.telegram import fake_telegram  # noqa: F401
from tests.fakes.yahoo import scripted_server, yahoo_fake  # noqa: F401
