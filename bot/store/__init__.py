"""State stores: pick a backend from ``state.url``.

``sqlite:///relative/path.sqlite`` (relative to the current directory), ``sqlite:////abs/path``
(SQLAlchemy's URL convention), ``sqlite:///:memory:``; ``postgresql://…``, ``postgres://…`` (the
scheme cloud platforms put in ``DATABASE_URL``) and ``postgresql+psycopg://…``. A PostgreSQL URL
may name a schema with ``?schema=NAME`` (or libpq's ``options=-csearch_path%3DNAME``).
"""

from __future__ import annotations

from bot.config import StateConfig, redact_url
from bot.errors import StoreError
from bot.store.base import Delivery, OutboxRow, Store

__all__ = ["Delivery", "OutboxRow", "Store", "open_store", "sqlite_path"]

_POSTGRES_SCHEMES = ("postgresql", "postgres", "postgresql+psycopg", "postgresql+psycopg2")


def sqlite_path(url: str) -> str:
    """The file path in a ``sqlite:///…`` URL (``:memory:`` for an in-memory database)."""
    if url in ("sqlite://", "sqlite:///:memory:"):
        return ":memory:"
    prefix = "sqlite:///"
    if not url.startswith(prefix) or len(url) == len(prefix) or "?" in url:
        raise StoreError(
            f"bad SQLite URL {redact_url(url)!r}: expected sqlite:///relative/path.sqlite "
            "or sqlite:////absolute/path.sqlite"
        )
    # sqlite:///x → "x" (relative); sqlite:////x → "/x" (absolute): the third slash ends the
    # empty host part, everything after it is the path as written.
    return url[len(prefix) :]


def open_store(
    url: str, *, schema: str | None = None, settings: StateConfig | None = None
) -> Store:
    """Open the store at ``url``; call ``migrate()`` on it before use.

    ``schema`` (PostgreSQL only) puts every table in that schema (created by ``migrate``);
    it overrides a ``?schema=`` in the URL. ``settings``: the ``state:`` section, whose
    timeouts apply to PostgreSQL. Errors are :class:`StoreError` with the password redacted.
    """
    scheme = url.split(":", 1)[0].lower() if ":" in url else ""
    if scheme == "sqlite":
        if schema:
            raise StoreError("a schema applies to PostgreSQL only, not to SQLite")
        from bot.store.sqlite import SqliteStore

        return SqliteStore(sqlite_path(url))
    if scheme in _POSTGRES_SCHEMES:
        from bot.store.postgres import PostgresStore

        return PostgresStore(url, schema=schema, settings=settings)
    raise StoreError(
        f"unsupported state.url {redact_url(url)!r}: use sqlite:///path.sqlite, "
        "postgresql://user:password@host/db or postgres://…"
    )
