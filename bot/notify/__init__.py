"""Notifiers (console, telegram), one module each, registered by name."""

from bot.notify.base import NOTIFIERS, DeliveryFailed, Notifier
from bot.registry import import_plugins

import_plugins(__name__, __path__)

__all__ = ["NOTIFIERS", "DeliveryFailed", "Notifier"]
