"""Where the shell's answers go: each result as every command renders it (a table, or one
JSON object per input line), and settings notices (on a terminal, a line on stderr)."""

from __future__ import annotations

import sys
from enum import Enum
from typing import Any


class ShellFormat(str, Enum):
    table = "table"
    json = "json"


class ShellOutput:
    """The shell's output sink: JSON Lines or tables on stdout, notices on stderr."""

    def __init__(self, output: ShellFormat, interactive: bool) -> None:
        self.output = output
        self.interactive = interactive
        self._console: Any = None

    def show(self, command: str, result: Any) -> None:
        """One result, as every command renders it (``render.emit``): in JSON mode the
        command's own object plus ``"command"``, on one line."""
        from ..present.render import emit

        if self.output is not ShellFormat.json:  # JSON carries the "unknown" fields instead
            from .output import unknown_notes

            for note in unknown_notes(result):
                print(f"tokneigh: {note}", file=sys.stderr, flush=True)
        if self.output is ShellFormat.json:
            emit(result, "json", command=command)
            sys.stdout.flush()
        else:
            emit(result, "table", console=self.console)

    def notice(self, command: str, data: dict[str, Any], text: str) -> None:
        """A settings change: an object in JSON mode; on a terminal a line on stderr; from a
        pipe, in table mode, nothing (it is not a result)."""
        if self.output is ShellFormat.json:
            self.emit({"command": command, **data})
        elif self.interactive:
            print(f"tokneigh: {text}", file=sys.stderr, flush=True)

    def emit(self, data: dict[str, Any]) -> None:
        """One compact JSON object on one line (JSON Lines)."""
        from ..results.json import json_text

        self.write(json_text(data) + "\n")

    def write(self, text: str) -> None:
        sys.stdout.write(text)
        sys.stdout.flush()

    @property
    def console(self) -> Any:
        if self._console is None:
            from rich.console import Console

            class _Console(Console):
                def on_broken_pipe(self) -> None:
                    # Rich would exit(1) here; the shell stops the same way for tables and JSON.
                    self.quiet = True
                    raise BrokenPipeError

            # From a pipe: no colour and no bold, whatever stdout is (color_system=None).
            kwargs: dict[str, Any] = {} if self.interactive else {"color_system": None}
            self._console = _Console(highlight=False, soft_wrap=False, **kwargs)
        return self._console
