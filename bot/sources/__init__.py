"""Data sources, one module each, registered by the name users write as ``type:``."""

from bot.registry import import_plugins
from bot.sources.base import SOURCES, USER_AGENT, Source

import_plugins(__name__, __path__)

__all__ = ["SOURCES", "USER_AGENT", "Source"]
