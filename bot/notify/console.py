"""The console notifier: alerts printed to stdout (the default when no Telegram token is set)."""

from __future__ import annotations

import sys
from typing import ClassVar, TextIO

from bot.model import Alert
from bot.notify.base import NOTIFIERS, DeliveryFailed, Notifier


@NOTIFIERS.register("console")
class ConsoleNotifier(Notifier):
    """Prints each alert as one block of plain text."""

    type_name: ClassVar[str] = "console"

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream
        self._count = 0

    async def send(self, chat_id: int | str, alert: Alert) -> list[int]:
        stream = self.stream or sys.stdout
        mark = " (silent)" if alert.silent else ""
        try:
            stream.write(f"ALERT [{alert.rule_id}]{mark} {alert.text}\n")
            stream.flush()
        except OSError as exc:  # stdout closed (`| head`) or full: not printed, stays queued
            raise DeliveryFailed(f"cannot print the alert: {exc}", chat=chat_id) from exc
        self._count += 1
        return [self._count]
