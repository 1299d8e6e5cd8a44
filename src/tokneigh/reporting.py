"""How long work tells what it is doing: progress lines, notes and warnings (``Report``), and
how far it has got (``Progress``). One definition of each, for every layer.

A ``Message`` is a str, the line as a person reads it (``"warning: the cached ... is
unusable"``), so ``load(report=print)`` prints what it always printed; and it carries its
``level`` and bare ``text``, so no reader parses a prefix back into a level.
"""

from __future__ import annotations

from collections.abc import Callable

INFO = "info"  # progress: what is being done
NOTE = "note"  # a fact worth knowing; nothing is wrong
WARNING = "warning"  # something is wrong, and was worked around
LEVELS = (INFO, NOTE, WARNING)


class Message(str):
    """One line of progress, a note or a warning: the str is the line as shown (``"note: "`` or
    ``"warning: "`` before the text; progress as is); ``level`` and ``text`` are its parts."""

    level: str
    text: str

    def __new__(cls, level: str, text: str) -> Message:
        if level not in LEVELS:
            raise ValueError(f"a message's level is one of {', '.join(LEVELS)}, not {level!r}")
        self = super().__new__(cls, text if level == INFO else f"{level}: {text}")
        self.level = level
        self.text = text
        return self

    def __reduce__(self) -> tuple[type[Message], tuple[str, str]]:
        return (Message, (self.level, self.text))


def info(text: str) -> Message:
    return Message(INFO, text)


def note(text: str) -> Message:
    return Message(NOTE, text)


def warning(text: str) -> Message:
    return Message(WARNING, text)


def level_of(line: str) -> str:
    """The level of a line a report received: a Message's own; a plain str (from code that
    reports without this module) is progress."""
    return line.level if isinstance(line, Message) else INFO


Report = Callable[[Message], None]  # receives each line as it happens
Progress = Callable[[int, int], None]  # (work done, total work) of a long computation
