"""Who may use the cockpit: the chats of ``telegram.chats``; ``telegram.admins`` for changes.

A refusal is logged at WARNING with the chat and user ids only — never the message text (it
may hold anything) and never the token."""

from __future__ import annotations

import logging

from bot.config import TelegramConfig

log = logging.getLogger(__name__)


class Access:
    """Answers "may this chat / user do that?" from the Telegram config."""

    def __init__(self, config: TelegramConfig) -> None:
        self._ids: set[int] = set()
        self._usernames: set[str] = set()
        for chat in config.chats.values():
            if isinstance(chat, int):
                self._ids.add(chat)
            elif isinstance(chat, str):
                self._usernames.add(chat.lstrip("@").lower())
        self.admins = frozenset(config.admins)

    def chat_allowed(self, chat_id: int, username: str | None = None) -> bool:
        """Whether ``chat_id`` (or the channel/group ``@username``) is a configured chat."""
        if chat_id in self._ids:
            return True
        return bool(username) and (username or "").lower() in self._usernames

    def may_change(self, user_id: int | None) -> bool:
        """Whether the user may change state (mutes): anyone when no admins are set."""
        if not self.admins:
            return True
        return user_id is not None and user_id in self.admins

    @staticmethod
    def refuse(what: str, chat_id: int | None, user_id: int | None) -> None:
        """Log a refused attempt (ids only)."""
        log.warning("cockpit: refused %s from user %s in chat %s", what, user_id, chat_id)
