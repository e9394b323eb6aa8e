"""Index Alert Bot: Telegram alerts for index levels, record closes and Fed rate changes."""

__version__ = "0.1.0"
