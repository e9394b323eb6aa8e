"""The config package (placeholder while config.py is split; see model.py)."""

from bot.config.model import *  # noqa: F403
