"""Hostile paths for tests: a FIFO, folder, socket or device put where a file was, and a call
run where a blocking open of a FIFO fails the test instead of hanging the run."""

from __future__ import annotations

import contextlib
import os
import socket
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

TIMEOUT = 60  # seconds: far above any answer, so only a hang reaches it


@contextlib.contextmanager
def replaced_by(path: Path, kind: str) -> Iterator[None]:
    """A ``kind`` ("FIFO", "folder", "socket", "device") where the file ``path`` was, for the
    block's length."""
    path.unlink()
    server = None
    if kind == "FIFO":
        os.mkfifo(path)
    elif kind == "folder":
        path.mkdir()
    elif kind == "socket":  # bound where the path is short enough, then moved into place
        server = socket.socket(socket.AF_UNIX)
        short = Path(tempfile.mkdtemp(dir="/tmp")) / "s"
        server.bind(str(short))
        short.rename(path)
        short.parent.rmdir()
    elif kind == "device":
        path.symlink_to("/dev/null")  # (a character device that ends at once)
    try:
        yield
    finally:
        if server is not None:
            server.close()


def in_thread(call: Callable[[], object], fifo: Path | None = None) -> object:
    """``call()`` in a thread: a blocking open of ``fifo`` becomes a failed test, not a hung
    run (the FIFO is then opened for writing, which ends the open it blocks)."""
    pool = ThreadPoolExecutor(1)
    future = pool.submit(call)
    try:
        return future.result(timeout=TIMEOUT)
    except TimeoutError:
        if fifo is not None:
            os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
        raise
    finally:
        pool.shutdown()
