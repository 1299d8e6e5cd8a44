"""Where the API's progress and warning lines go when the caller gives no ``report``: the
"tokneigh" logger."""

from __future__ import annotations

from typing import Any

from ..reporting import WARNING, Message, level_of


class _Log:
    """The "tokneigh" logger, with ``logging`` imported on first use (~5 ms a cached query
    would otherwise pay for nothing)."""

    def __getattr__(self, name: str) -> Any:
        import logging

        return getattr(logging.getLogger("tokneigh"), name)


log = _Log()


def log_report(message: Message) -> None:
    """A ``Report`` that logs: warnings as warnings, the rest as info."""
    if level_of(message) == WARNING:
        log.warning(getattr(message, "text", message))
    else:
        log.info(message)
