"""Data sources, one module each, registered by the name users write as ``type:``
(imported by the registry at its first lookup)."""

from bot.sources.base import SOURCES, USER_AGENT, Source

__all__ = ["SOURCES", "USER_AGENT", "Source"]
