"""`python -m tokneigh`, and the Ctrl-C handler of every command-line run.

Ctrl-C must end a run with one line, ``tokneigh: interrupted``, and exit status 130 at any
moment, including the few hundred milliseconds the CLI spends importing Typer and numpy: so
the handler goes in before anything else is imported, here for ``python -m tokneigh`` and at
the top of ``tokneigh.cli`` for the ``tokneigh`` console script. Only the stdlib is used here.
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


def _started_as_console_script() -> bool:
    """Whether this process is the ``tokneigh`` script (``from tokneigh.cli import main``), as
    opposed to a program or a test that imports the CLI, whose Ctrl-C stays its own."""
    script = sys.modules.get("__main__")
    if script is None or getattr(script, "__spec__", None) is not None:
        return False
    name = os.path.basename(getattr(script, "__file__", None) or "")
    return name in ("tokneigh", "tokneigh-script.py", "tokneigh-script.pyw")


def main() -> None:
    install_interrupt_handler()
    from .cli import main as cli_main

    cli_main()


if __name__ == "__main__":
    # One module, whatever its name: tokneigh.cli imports this file for the handler, and must
    # find the one already installed (its identity is how restore_default_interrupts knows it).
    sys.modules.setdefault("tokneigh.__main__", sys.modules[__name__])
    main()
elif _started_as_console_script():  # tokneigh.cli imports this first of all
    install_interrupt_handler()
