"""The notifier contract. A notifier is one module in ``bot/notify/`` registered by name."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Awaitable, Callable
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

    async def send_parts(
        self,
        chat_id: int | str,
        alert: Alert,
        *,
        done: int = 0,
        on_part: Callable[[int], Awaitable[None]] | None = None,
    ) -> list[int]:
        """Send the parts of ``alert`` after the first ``done`` ones (sent by an earlier try);
        await ``on_part(message_id)`` after each accepted part that has more parts after it
        (the caller persists it before the next goes out); the ids of the parts sent now.

        The sender calls this so that a retry after part 2 of 3 failed sends part 2 and 3
        only. This default is for notifiers whose alerts are one message: ``send`` it, unless
        that went out already (``on_part`` is never needed)."""
        if done:
            return []
        return await self.send(chat_id, alert)


NOTIFIERS: Registry[Any] = Registry("notifier", package="bot.notify")
