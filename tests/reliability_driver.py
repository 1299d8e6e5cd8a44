"""Run the tokneigh CLI in a child process with test-only faults (used by test_reliability.py).

    python tests/reliability_driver.py neighbors Mike --format json ...

Environment variables, all optional (production code knows nothing of them):

- ``DRIVER_BARRIER=<folder>:<n>``: touch a file in <folder>, then wait until <n> processes have,
  so that every process starts ``load`` at the same moment.
- ``DRIVER_SLOW_BUILD=<seconds>``: sleep after the extraction, keeping the build window open.
- ``DRIVER_KILL_AT=<function>:<n>``: SIGKILL this process at the n-th call (1-based, before the
  call runs) of ``fsync_write`` (tokneigh.store.files.fsync_write), ``create`` (files.create: the
  streamed matrix.npy), ``rename`` (os.rename) or
  ``rmtree`` (shutil.rmtree), i.e. at a chosen point of the cache write.
"""

from __future__ import annotations

import os
import shutil
import signal
import sys
import time
from pathlib import Path


def _barrier() -> None:
    spec = os.environ.get("DRIVER_BARRIER")
    if not spec:
        return
    folder, count = spec.rsplit(":", 1)
    Path(folder, str(os.getpid())).touch()
    deadline = time.monotonic() + 120
    while len(os.listdir(folder)) < int(count) and time.monotonic() < deadline:
        time.sleep(0.005)


def _slow_build() -> None:
    delay = float(os.environ.get("DRIVER_SLOW_BUILD") or 0)
    if not delay:
        return
    from tokneigh.formats import extract

    real = extract.extract

    def slow(*args, **kwargs):
        result = real(*args, **kwargs)
        time.sleep(delay)
        return result

    extract.extract = slow  # store.build imports it at call time


def _kill_at() -> None:
    spec = os.environ.get("DRIVER_KILL_AT")
    if not spec:
        return
    function, nth = spec.split(":")
    from tokneigh.store import files
    owner, attribute = {
        "fsync_write": (files, "fsync_write"),
        "create": (files, "create"),
        "rename": (os, "rename"),
        "rmtree": (shutil, "rmtree"),
    }[function]
    real = getattr(owner, attribute)
    calls = 0

    def fatal(*args, **kwargs):
        nonlocal calls
        calls += 1
        if calls == int(nth):
            sys.stderr.flush()
            os.kill(os.getpid(), signal.SIGKILL)
        return real(*args, **kwargs)

    setattr(owner, attribute, fatal)


if __name__ == "__main__":
    _slow_build()
    _kill_at()
    from tokneigh.cli import main

    _barrier()
    main(sys.argv[1:])
