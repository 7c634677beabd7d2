"""``python -m tests.support.pst_kill N ARGS...``: migrator, SIGKILLed at its Nth write into an existing PST.

Every write() the PST store makes into a file it opened for reading and writing (an append in place: blocks,
B-tree pages, allocation maps, the header) is counted; the process kills itself with SIGKILL just before the
write numbered N (from 0), so what reached the file is what a kill at that moment leaves. With N = -1 nothing
is killed and the count is printed to stderr at exit as ``pst writes: COUNT``; with N = -2 the process is killed
once the PST is complete, when the state file is about to record its rows.
"""

from __future__ import annotations

import atexit
import os
import signal
import sys
from typing import IO, Any

import migrator.stores.pst.store as pst_store

_written = [0]


class _Counted:
    """A file whose writes are counted, and the process killed at the chosen one."""

    def __init__(self, file: IO[bytes], kill_at: int) -> None:
        self._file = file
        self._kill_at = kill_at

    def write(self, data: bytes) -> int:
        if _written[0] == self._kill_at:
            os.kill(os.getpid(), signal.SIGKILL)
        _written[0] += 1
        return self._file.write(data)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._file, name)

    def __enter__(self) -> _Counted:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()


def main() -> None:
    kill_at = int(sys.argv[1])
    real_open = open

    def counted_open(path: Any, mode: str = "r", *args: Any, **kwargs: Any) -> Any:
        file = real_open(path, mode, *args, **kwargs)
        return _Counted(file, kill_at) if "+" in mode else file

    pst_store.open = counted_open  # type: ignore[attr-defined]
    if kill_at == -2:
        from migrator.state.statefile import StateStore

        StateStore.record_held = lambda *args: os.kill(os.getpid(), signal.SIGKILL)  # type: ignore[method-assign]
    if kill_at == -1:
        atexit.register(lambda: print(f"pst writes: {_written[0]}", file=sys.stderr))
    sys.argv = ["migrator", *sys.argv[2:]]
    from migrator.cli import entry_point

    entry_point()


if __name__ == "__main__":
    main()
