"""A long computation the server does once, on its own thread: the whole-vocabulary map, the
alignment of the two models served with --against.

A UMAP layout can take a minute; on the model worker's one thread it would hold every
neighbour query up for that long. So it runs on a thread of its own, started by the first
request that needs it; requests meanwhile get its progress at once (the page polls), and
once it is done every request gets its result (or its error) at once.

It only reads the model's arrays (the unit rows, the norms), which the worker's queries read
too: reads of numpy arrays from two threads are safe, and neither side writes them.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Generic, TypeVar

from ..reporting import Progress

T = TypeVar("T")


class Once(Generic[T]):
    """``function(progress)`` run once, on its own thread, from the first ``start()``."""

    def __init__(self, function: Callable[[Progress], T], name: str = "tokneigh-map") -> None:
        self._function = function
        self._name = name
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None
        self._began = 0.0
        self.finished = threading.Event()
        self.result: T | None = None
        self.error: BaseException | None = None
        self.progress: tuple[int, int] = (0, 0)  # (done, total) as the computation reports it

    def start(self) -> None:
        """Start the computation unless it has been started already."""
        with self._lock:
            if self._thread is not None:
                return
            self._began = time.monotonic()
            self._thread = threading.Thread(target=self._run, name=self._name, daemon=True)
            self._thread.start()

    @property
    def seconds(self) -> float:
        """Seconds since it started (0 before)."""
        return time.monotonic() - self._began if self._began else 0.0

    def _report(self, done: int, total: int) -> None:
        self.progress = (int(done), int(total))

    def _run(self) -> None:
        try:
            self.result = self._function(self._report)
        except BaseException as exc:  # noqa: BLE001 - kept for every request that asks
            self.error = exc
        finally:
            self.finished.set()
