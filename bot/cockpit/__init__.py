"""The Telegram cockpit: commands, buttons on alerts and access control (long polling)."""
