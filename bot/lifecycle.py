"""How a bot process starts and ends: stop requests, a closed stdout, a bounded exit.

Three things end ``run`` and ``run --demo`` early, and all of them go through one
:class:`StopRequest`:

* SIGTERM / SIGINT — handled from the first moment the event loop runs (before the store is
  migrated or any history is fetched), so start-up can be interrupted too;
* the reader of stdout or stderr going away (``run --demo | head -3``): the first write that
  finds the pipe closed points the file descriptor at ``/dev/null`` (so nothing later, the
  interpreter's final flush included, fails again) and asks the process to stop — quietly, as a
  default-SIGPIPE process would, but with state flushed and scratch files removed;
* ``stop`` being set by code (tests).

:func:`run` replaces :func:`asyncio.run`: the same, except that at exit it waits only briefly
for the I/O threads (``asyncio.to_thread``) to finish. A thread blocked in a fetch that never
answers cannot be interrupted; after a stop during start-up the process exits without it
instead of waiting out the request's timeout.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import errno
import gc
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any, TextIO, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

#: How long the exit waits for I/O threads still running (a blocked fetch) before leaving them.
THREAD_GRACE = 0.5
IO_THREAD_PREFIX = "bot-io"

#: Set when :func:`unless_stopped` cancelled work: a thread it started may never return.
_abandoned = threading.Event()

_listeners: list[Callable[[str], None]] = []
_closed: list[str] = []  # outputs found closed so far ("<stderr> was closed")


class OutputClosed(BrokenPipeError):
    """stdout (or stderr) has no reader any more; nothing written there will be seen."""


def freeze_long_lived() -> None:
    """Collect, then move every surviving object to the collector's permanent generation.

    Called once start-up has built what lives as long as the process (config, rules, engine,
    history, imported modules) and again after a config reload built new ones: frozen, the
    cyclic GC stops re-scanning them on every collection, which is what made collections pause
    polls for tens of milliseconds. Unfreezing first lets the collection free what a reload
    replaced; acyclic objects are freed by reference counting even while frozen.
    """
    gc.unfreeze()
    gc.collect()
    gc.freeze()


def is_closed_pipe(exc: BaseException) -> bool:
    """Whether ``exc`` says the other end of our output went away (EPIPE; EINVAL on Windows)."""
    return isinstance(exc, BrokenPipeError) or (
        isinstance(exc, OSError) and exc.errno in (errno.EPIPE, errno.EINVAL)
    )


def output_closed(stream: Any) -> None:
    """Record that ``stream``'s reader is gone: silence its descriptor, ask the process to stop.

    Pointing the descriptor at ``/dev/null`` is what the Python docs recommend for SIGPIPE: the
    buffered rest and the interpreter's final flush then go nowhere instead of raising again.
    Safe to call from any thread, and more than once.
    """
    try:
        fd = stream.fileno()
    except (AttributeError, OSError, ValueError):
        fd = None
    if fd is not None:  # dup2 again is harmless
        with contextlib.suppress(OSError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, fd)
            os.close(devnull)
    reason = f"{getattr(stream, 'name', 'output')} was closed"
    _closed.append(reason)
    for listener in list(_listeners):
        listener(reason)


def add_listener(listener: Callable[[str], None]) -> None:
    """Call ``listener(reason)`` whenever an output is found closed (from any thread)."""
    _listeners.append(listener)


def remove_listener(listener: Callable[[str], None]) -> None:
    """Undo :func:`add_listener` (no error if it was not added)."""
    with contextlib.suppress(ValueError):
        _listeners.remove(listener)


class GuardedStream:
    """A text stream (``sys.stdout``) that turns "the reader went away" into one
    :class:`OutputClosed` per write and a stop request, instead of a traceback per line."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._closed = False

    def write(self, text: str) -> int:
        """Write ``text``; raise :class:`OutputClosed` once nobody reads the stream."""
        if self._closed:
            raise OutputClosed(errno.EPIPE, "output closed")
        try:
            return self._stream.write(text)
        except OSError as exc:
            self._close_on(exc)
            raise

    def flush(self) -> None:
        """Flush; after the reader went away, a no-op (there is nobody to flush to)."""
        if self._closed:
            return
        try:
            self._stream.flush()
        except OSError as exc:
            self._close_on(exc)
            raise

    def _close_on(self, exc: OSError) -> None:
        if not is_closed_pipe(exc):
            return
        self._closed = True
        output_closed(self._stream)
        raise OutputClosed(
            errno.EPIPE, f"{getattr(self._stream, 'name', 'output')} closed"
        ) from exc

    @property
    def closed_by_reader(self) -> bool:
        """Whether the reader went away."""
        return self._closed

    def __getattr__(self, name: str) -> Any:  # encoding, isatty, fileno, buffer, ...
        return getattr(self._stream, name)


def guard_stdout() -> None:
    """Wrap ``sys.stdout`` in a :class:`GuardedStream` (idempotent)."""
    if not isinstance(sys.stdout, GuardedStream) and sys.stdout is not None:
        sys.stdout = GuardedStream(sys.stdout)  # type: ignore[assignment]


class StopRequest:
    """Why the process should stop, as an asyncio event set from signals, a closed output or
    code. ``reason`` is the first cause ("SIGTERM", "<stdout> was closed")."""

    def __init__(self, event: asyncio.Event | None = None) -> None:
        self.event = event or asyncio.Event()
        self.reason: str | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def is_set(self) -> bool:
        """Whether a stop was asked for."""
        return self.event.is_set()

    async def wait(self) -> None:
        """Until a stop is asked for."""
        await self.event.wait()

    def request(self, reason: str) -> None:
        """Ask for a stop (thread-safe: a closed output can be found by a worker thread)."""
        loop = self._loop
        if loop is not None and loop.is_running() and not _in_loop_thread(loop):
            loop.call_soon_threadsafe(self._set, reason)
        else:
            self._set(reason)

    def _set(self, reason: str) -> None:
        if self.event.is_set():
            return
        self.reason = reason
        log.info("stopping: %s", reason)
        self.event.set()

    def install(self) -> None:
        """Handle SIGTERM/SIGINT and a closed output from now on (call inside the loop)."""
        self._loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGINT):
            # add_signal_handler fails outside the main thread (in-process tests use ``stop``)
            with contextlib.suppress(NotImplementedError, RuntimeError, ValueError):
                self._loop.add_signal_handler(signum, self._on_signal, signum)
        add_listener(self.request)
        if _closed:  # found closed before the loop ran (a log line at start-up)
            self.request(_closed[0])

    def uninstall(self) -> None:
        """Stop listening for closed outputs (signal handlers go with the loop)."""
        remove_listener(self.request)

    def _on_signal(self, signum: int) -> None:
        log.info("received %s", signal.Signals(signum).name)
        self._set(signal.Signals(signum).name)


def _in_loop_thread(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


async def unless_stopped(
    stop: StopRequest | asyncio.Event, work: Awaitable[T]
) -> tuple[bool, T | None]:
    """Await ``work`` unless a stop comes first; then cancel it. ``(finished, result)``.

    For start-up: migrating the store and loading history can take long (a source that does not
    answer); SIGTERM must not wait for it.
    """
    task = asyncio.ensure_future(work)
    stopped = asyncio.ensure_future(stop.wait())
    try:
        await asyncio.wait({task, stopped}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        stopped.cancel()
    if task.done():
        return True, task.result()
    task.cancel()
    _abandoned.set()
    with contextlib.suppress(asyncio.CancelledError, Exception):
        await task  # its cleanup runs; a thread it awaited may still be blocked (see run())
    return False, None


def run(main: Coroutine[Any, Any, int]) -> int:
    """Run ``main`` on a new event loop like :func:`asyncio.run` and return its exit code.

    Unlike ``asyncio.run`` the exit does not wait for I/O threads indefinitely: idle ones end at
    once; one blocked in a request that never answers (possible only after a stop interrupted
    start-up, since a finished cycle leaves none running) is given :data:`THREAD_GRACE` seconds,
    then the process exits without it (``os._exit`` after flushing logs and stdio). After an
    interrupted start-up every non-daemon thread counts (a source may fetch on its own pool).
    """
    _abandoned.clear()
    loop = asyncio.new_event_loop()
    executor = concurrent.futures.ThreadPoolExecutor(thread_name_prefix=IO_THREAD_PREFIX)
    loop.set_default_executor(executor)
    asyncio.set_event_loop(loop)
    try:
        code = loop.run_until_complete(main)
    finally:
        try:
            _cancel_all(loop)
            loop.run_until_complete(loop.shutdown_asyncgens())
        finally:
            executor.shutdown(wait=False, cancel_futures=True)
            asyncio.set_event_loop(None)
            loop.close()
    blocked = _wait_for_threads(THREAD_GRACE, every_thread=_abandoned.is_set())
    if blocked:
        log.info("not waiting for %d blocked I/O call(s); exiting", blocked)
        logging.shutdown()
        for stream in (sys.stdout, sys.stderr):
            with contextlib.suppress(Exception):
                stream.flush()
        os._exit(code)
    return code


def _cancel_all(loop: asyncio.AbstractEventLoop) -> None:
    tasks = [task for task in asyncio.all_tasks(loop) if not task.done()]
    for task in tasks:
        task.cancel()
    if tasks:
        loop.run_until_complete(asyncio.gather(*tasks, return_exceptions=True))


def _wait_for_threads(grace: float, *, every_thread: bool) -> int:
    """Join the I/O threads (or every non-daemon thread) for up to ``grace`` seconds; how many
    are still running."""
    deadline = time.monotonic() + grace
    main = threading.main_thread()
    threads = [
        t
        for t in threading.enumerate()
        if t is not main
        and t is not threading.current_thread()
        and (t.name.startswith(IO_THREAD_PREFIX) or (every_thread and not t.daemon))
    ]
    for thread in threads:
        thread.join(max(0.0, deadline - time.monotonic()))
    return sum(thread.is_alive() for thread in threads)
