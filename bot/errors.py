"""Typed errors. Each carries what it is about (symbol, redacted URL, config location)."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Telegram bot tokens look like "123456789:AA...". They appear in Bot API URLs as /bot<token>/.
_TOKEN_RE = re.compile(r"\d{5,}:[A-Za-z0-9_-]{20,}")
_SECRETS: set[str] = set()


def register_secret(secret: str | None) -> None:
    """Remember a secret value (token, password) so :func:`redact` removes it everywhere."""
    if secret and len(secret) >= 4:
        _SECRETS.add(secret)


def redact(text: str) -> str:
    """Return ``text`` with every registered secret and anything token-shaped replaced."""
    for secret in sorted(_SECRETS, key=len, reverse=True):
        text = text.replace(secret, "<redacted>")
    return _TOKEN_RE.sub("<redacted>", text)


class BotError(Exception):
    """Base class of every error the bot raises on purpose. Messages are redacted."""

    def __init__(self, message: str) -> None:
        super().__init__(redact(message))

    @property
    def message(self) -> str:
        return str(self.args[0])


@dataclass(frozen=True)
class ConfigProblem:
    """One problem in a config file: where it is and what is wrong."""

    file: str
    line: int | None
    path: str
    message: str

    def __str__(self) -> str:
        where = f"{self.file}:{self.line}" if self.line else self.file
        return f"{where}: {self.path}: {self.message}" if self.path else f"{where}: {self.message}"


class ConfigError(BotError):
    """The config is invalid. ``problems`` lists every problem found, each with its location."""

    def __init__(self, problems: list[ConfigProblem]) -> None:
        self.problems = problems
        super().__init__("\n".join(str(p) for p in problems))


class SourceError(BotError):
    """A data source failed or returned something that cannot be trusted."""

    def __init__(
        self,
        message: str,
        *,
        symbol: str | None = None,
        url: str | None = None,
        retryable: bool = False,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        self.symbol = symbol
        self.url = redact(url) if url else None
        self.retryable = retryable
        self.status = status
        self.retry_after = retry_after
        parts = [p for p in (symbol, self.url) if p]
        prefix = f"{' '.join(parts)}: " if parts else ""
        super().__init__(f"{prefix}{message}")


class SanityError(SourceError):
    """An observation was received but failed a sanity check (stale, jump, non-finite)."""


class NotifyError(BotError):
    """Delivering a message failed."""


class StoreError(BotError):
    """The state store failed."""
