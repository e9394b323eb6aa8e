"""The console notifier: alerts printed to stdout (the default when no Telegram token is set)."""

from __future__ import annotations

import sys
from typing import ClassVar, TextIO

from bot.model import Alert
from bot.notify.base import NOTIFIERS, Notifier


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
        stream.write(f"ALERT [{alert.rule_id}]{mark} {alert.text}\n")
        stream.flush()
        self._count += 1
        return [self._count]
