"""A liveness file for container health checks (``BOT_HEALTH_FILE``).

While ``run`` is up, its cadence watchdog — a task of the event loop that runs every few
seconds whether markets are open or not — rewrites the file with the time. The file going stale
therefore means the process is gone or its event loop is stuck (a hung call blocking it), which
is what a container's ``HEALTHCHECK`` should restart it for; a weekend without polls is not.
Data problems (a feed down, every fetch failing) are told by the bot's own alerts, not here.
"""

from __future__ import annotations

import logging
import os
import time
from pathlib import Path

log = logging.getLogger(__name__)

#: The environment variable naming the file; unset: no file is written.
HEALTH_FILE_ENV = "BOT_HEALTH_FILE"


def health_file() -> Path | None:
    """The configured health file, if any."""
    value = os.environ.get(HEALTH_FILE_ENV, "").strip()
    return Path(value) if value else None


def beat(path: Path | None = None, now: float | None = None) -> None:
    """Record that the loop is alive (atomically: a reader never sees a half-written file).
    A file that cannot be written is logged at DEBUG and otherwise ignored: health reporting
    must never take the worker down."""
    path = path or health_file()
    if path is None:
        return
    stamp = time.time() if now is None else now
    try:
        tmp = path.with_name(f".{path.name}.tmp")
        tmp.write_text(f"{stamp:.3f}\n", encoding="ascii")
        os.replace(tmp, path)
    except OSError as exc:
        log.debug("health file %s not written: %s", path, exc)


def age(path: Path, now: float | None = None) -> float | None:
    """Seconds since the last :func:`beat` into ``path``; ``None`` if there is none."""
    try:
        stamp = float(path.read_text(encoding="ascii").strip())
    except (OSError, ValueError):
        return None
    return (time.time() if now is None else now) - stamp
