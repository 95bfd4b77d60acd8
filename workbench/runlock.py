"""Claim a run folder so that one run is never executed twice at the same time.

The batch runner holds an exclusive ``flock`` on ``<run folder>/.lock`` while it executes the run, and writes
who holds it (process id, host, start time) into the file. The operating system releases the lock when the
holding process ends, however it ends (``kill -9`` included), so a lock left behind by a dead runner is never
an obstacle: the next runner sees the file with nobody holding it, reports the stale claim it takes over, and
runs the run again. A second runner started while the first one is still executing the run finds the lock held
and leaves that run alone.

``flock`` works on local disks and on NFSv4 shares (Linux emulates it with byte-range locks there). Where
``fcntl`` is missing (Windows) runs are not locked.

Examples
--------
>>> import tempfile
>>> folder = Path(tempfile.mkdtemp())
>>> with claim(folder) as held:
...     held.acquired, claim(folder).__enter__().acquired    # a second claim while the first holds it
(True, False)
>>> holder(folder) is None                                     # released on exit
True
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path

try:
    import fcntl
except ImportError:  # pragma: no cover - not on POSIX
    fcntl = None

__all__ = ["LOCK_NAME", "RunClaim", "claim", "holder"]

LOCK_NAME = ".lock"


@dataclass
class RunClaim:
    """The outcome of :func:`claim`: whether this process now holds the run, who held it otherwise, and the
    stale claim (of a process that died) it took over, if any."""

    folder: Path
    acquired: bool
    held_by: dict | None = None
    took_over: dict | None = None
    _fh: object = None

    def __enter__(self) -> "RunClaim":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def release(self) -> None:
        """Give the run up (empty the file, then unlock); idempotent."""
        if self._fh is None:
            return
        try:
            self._fh.seek(0)
            self._fh.truncate()
            self._fh.flush()
        except OSError:  # pragma: no cover - the folder vanished: the lock goes with it
            pass
        finally:
            if fcntl is not None:
                fcntl.flock(self._fh.fileno(), fcntl.LOCK_UN)
            self._fh.close()
            self._fh = None

    def describe_holder(self) -> str:
        """One line naming the process holding the run (for messages)."""
        return _describe(self.held_by)


def _describe(info: dict | None) -> str:
    if not info:
        return "another process"
    return f"process {info.get('pid')} on {info.get('host')} (since {info.get('started')})"


def _read(fh) -> dict | None:
    fh.seek(0)
    text = fh.read()
    if not text.strip():
        return None
    try:
        info = json.loads(text)
    except json.JSONDecodeError:
        return {"unreadable": text[:80]}
    return info if isinstance(info, dict) else {"unreadable": text[:80]}


def claim(folder: str | os.PathLike) -> RunClaim:
    """Try to claim ``folder`` (created if needed) without waiting; use the result as a context manager.

    Returns a :class:`RunClaim` whose ``acquired`` says whether this process now holds the run; when it does
    not, ``held_by`` says who does.
    """
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    if fcntl is None:  # pragma: no cover
        return RunClaim(folder, True)
    fh = open(folder / LOCK_NAME, "a+", encoding="utf-8")  # noqa: SIM115 - kept open while the claim lives
    try:
        fcntl.flock(fh.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        info = _read(fh)
        fh.close()
        return RunClaim(folder, False, held_by=info)
    previous = _read(fh)  # written by a holder that is gone (it never released): a stale claim
    me = {"pid": os.getpid(), "host": socket.gethostname(),
          "started": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")}
    fh.seek(0)
    fh.truncate()
    fh.write(json.dumps(me))
    fh.flush()
    return RunClaim(folder, True, took_over=previous, _fh=fh)


def holder(folder: str | os.PathLike) -> dict | None:
    """Who holds ``folder`` right now (``{"pid", "host", "started"}``), or ``None`` when nobody does."""
    path = Path(folder) / LOCK_NAME
    if fcntl is None or not path.exists():
        return None
    with open(path, encoding="utf-8") as fh:
        try:
            fcntl.flock(fh.fileno(), fcntl.LOCK_SH | fcntl.LOCK_NB)
        except BlockingIOError:
            return _read(fh) or {}
        fcntl.flock(fh.fileno(), fcntl.LOCK_UN)
    return None
