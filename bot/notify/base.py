"""The notifier contract. A notifier is one module in ``bot/notify/`` registered by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar

from bot.errors import NotifyError
from bot.model import Alert
from bot.registry import Registry


class DeliveryFailed(NotifyError):
    """Sending one message failed. Says whether and when to retry.

    ``permanent``: retrying will not help (bot blocked, chat not found); ``retry_after``: seconds
    the server asked us to wait (HTTP 429); ``migrate_to``: the group became a supergroup with
    this new chat id — resend there.
    """

    def __init__(
        self,
        message: str,
        *,
        chat: str | int | None = None,
        permanent: bool = False,
        retry_after: float | None = None,
        migrate_to: int | None = None,
    ) -> None:
        self.chat = chat
        self.permanent = permanent
        self.retry_after = retry_after
        self.migrate_to = migrate_to
        prefix = f"chat {chat}: " if chat is not None else ""
        super().__init__(f"{prefix}{message}")


class Notifier(ABC):
    """Delivers alerts to chat ids. ``send`` raises :class:`DeliveryFailed` on failure."""

    type_name: ClassVar[str] = ""

    async def start(self) -> None:  # noqa: B027  optional hook
        """Open connections (called once before the first send)."""

    async def stop(self) -> None:  # noqa: B027  optional hook
        """Close connections."""

    @abstractmethod
    async def send(self, chat_id: int | str, alert: Alert) -> list[int]:
        """Send one alert to one chat; returns the message ids (several if it was split)."""


NOTIFIERS: Registry[Any] = Registry("notifier")
