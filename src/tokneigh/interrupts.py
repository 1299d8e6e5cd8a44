"""The Ctrl-C handler of a command-line run: one line, ``tokneigh: interrupted``, and exit
status 130, at any moment.

Shared by the entry point (``tokneigh.entry``, which installs it before anything heavy is
imported) and the CLI (the shell restores KeyboardInterrupt; the error handler prints the same
line). It lives outside ``tokneigh.cli`` because importing anything in that package runs its
``__init__``, which imports Typer and numpy: a few hundred milliseconds without the handler.
Only the stdlib is used here.
"""

from __future__ import annotations

import os
import sys

try:  # the C module: the signal module's enums would cost milliseconds before the handler
    import _signal as signal  # type: ignore[import-not-found]
except ImportError:  # pragma: no cover - not CPython
    import signal

TYPE_CHECKING = False
if TYPE_CHECKING:
    from types import FrameType

INTERRUPTED_LINE = b"tokneigh: interrupted\n"
INTERRUPTED_EXIT = 130  # 128 + SIGINT, as shells report it


def _interrupted(signum: int, frame: FrameType | None) -> None:
    """End the run now: what was written is flushed, the line goes last, and nothing half done
    is cleaned up on the way out (the cache is crash-safe: the next run deletes a scratch
    folder left behind, and the kernel releases the per-model lock)."""
    for stream in (sys.stdout, sys.stderr):
        try:
            if stream is not None:
                stream.flush()
        except Exception:  # a closed or full stream, or a write this signal interrupted
            pass
    try:
        os.write(2, INTERRUPTED_LINE)
    except OSError:  # no stderr to say it on: the exit status still says it
        pass
    os._exit(INTERRUPTED_EXIT)


def install_interrupt_handler() -> None:
    """Make Ctrl-C end the process as ``_interrupted`` does. Left alone when SIGINT is ignored
    (a background job) or already handled by someone else (a program that imports the CLI)."""
    if signal.getsignal(signal.SIGINT) is signal.default_int_handler:
        signal.signal(signal.SIGINT, _interrupted)


def restore_default_interrupts() -> None:
    """Ctrl-C raises KeyboardInterrupt again (the interactive shell catches it: it drops the
    line being typed or stops a slow query, and the session goes on)."""
    if signal.getsignal(signal.SIGINT) is _interrupted:
        signal.signal(signal.SIGINT, signal.default_int_handler)
