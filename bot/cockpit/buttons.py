"""The inline buttons under every alert and their ``callback_data`` (at most 64 bytes)."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup

from bot.model import Alert

#: callback_data actions: (button label, action)
BUTTONS = (("Chart", "chart"), ("Mute 1h", "mute1h"), ("Mute today", "mutetoday"))
MAX_DATA = 64  # Telegram's limit on callback_data, in bytes


def alert_keyboard(alert: Alert) -> InlineKeyboardMarkup | None:
    """Chart / Mute 1h / Mute today for ``alert``'s rule (None for notices without a rule, or
    a rule id too long for callback data)."""
    if not alert.rule_id or alert.rule_type == "admin":
        return None
    row = []
    for label, action in BUTTONS:
        data = f"{action}:{alert.rule_id}"
        if len(data.encode()) > MAX_DATA:
            return None
        row.append(InlineKeyboardButton(label, callback_data=data))
    return InlineKeyboardMarkup([row])


def parse_callback(data: str | None) -> tuple[str, str] | None:
    """``(action, rule id)`` from a button's callback data; None if it is not one of ours."""
    action, sep, rule_id = (data or "").partition(":")
    if not sep or not rule_id or action not in {a for _, a in BUTTONS}:
        return None
    return action, rule_id
