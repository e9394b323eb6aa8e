"""Notifiers (console, telegram), one module each, registered by name (imported by the
registry at its first lookup)."""

from bot.notify.base import NOTIFIERS, DeliveryFailed, Notifier

__all__ = ["NOTIFIERS", "DeliveryFailed", "Notifier"]
