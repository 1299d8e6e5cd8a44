"""Where the ``tokneigh`` command starts: the console script (``tokneigh.entry:main``) and
``python -m tokneigh`` both call ``main``.

Ctrl-C must end a run with one line and exit status 130 at any moment, including the few
hundred milliseconds the CLI spends importing Typer and numpy: so the handler goes in first,
and only then is the CLI imported. Nothing but the stdlib is imported before that.
"""

from __future__ import annotations

from .interrupts import (
    INTERRUPTED_EXIT,
    INTERRUPTED_LINE,
    install_interrupt_handler,
    restore_default_interrupts,
)

__all__ = [
    "INTERRUPTED_EXIT",
    "INTERRUPTED_LINE",
    "install_interrupt_handler",
    "main",
    "restore_default_interrupts",
]


def main() -> None:
    """Run the command line on ``sys.argv``; this process ends with it."""
    install_interrupt_handler()
    from .cli import main as run_command_line

    run_command_line()
