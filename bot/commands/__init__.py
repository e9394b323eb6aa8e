"""Subcommands of ``python -m bot``: one module each, exposing ``add_parser`` and ``run``."""
