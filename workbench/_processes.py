"""Worker processes that die with their runner, and stopping a process tree (light: standard library + psutil).

The batch runner's workers call :func:`die_with_parent` first: on Linux the kernel sends them ``SIGKILL`` when
the runner ends, however it ends (``prctl(PR_SET_PDEATHSIG)``); elsewhere a watchdog thread notices the parent
is gone. Jupyter kernels run in their own session but poll their parent (``JPY_PARENT_PID``) and exit within
a second of their worker, so nothing outlives a killed runner. On Ctrl-C the runner stops its workers and their
kernels itself with :func:`stop_tree`.

Examples
--------
>>> import subprocess, sys
>>> child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
>>> stop_tree([child.pid]), child.wait()
([], -9)

"""
from __future__ import annotations

import ctypes
import os
import signal
import sys
import threading
import time

__all__ = ["die_with_parent", "descendants", "stop_tree"]

_PR_SET_PDEATHSIG = 1


def die_with_parent(parent_pid: int) -> None:
    """Make this process end when ``parent_pid`` (its parent) ends."""
    if sys.platform.startswith("linux"):
        try:
            libc = ctypes.CDLL(None, use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, signal.SIGKILL, 0, 0, 0)
        except (OSError, AttributeError):  # pragma: no cover - unusual libc: the watchdog below still works
            pass
    if os.getppid() != parent_pid:  # the parent died before the request above took effect
        os._exit(1)

    def watch():
        while os.getppid() == parent_pid:
            time.sleep(0.5)
        os._exit(1)

    threading.Thread(target=watch, name="workbench-parent-watch", daemon=True).start()


def descendants(pid: int) -> list[int]:
    """Process ids of every descendant of ``pid`` (children first); empty if it is gone."""
    try:
        import psutil

        return [p.pid for p in psutil.Process(pid).children(recursive=True)]
    except Exception:  # noqa: BLE001 - psutil missing or the process vanished
        return []


def _alive(pid: int) -> bool:
    try:
        import psutil

        proc = psutil.Process(pid)
        return proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE
    except ImportError:  # pragma: no cover
        try:
            os.kill(pid, 0)
            return True
        except OSError:
            return False
    except Exception:  # noqa: BLE001 - psutil.NoSuchProcess and friends
        return False


def stop_tree(pids: list[int], *, wait: float = 5.0) -> list[int]:
    """Kill each process in ``pids`` and all their descendants (``SIGKILL``: workers and kernels hold nothing that
    needs a clean exit, their run claims are released by the OS, and a kernel told to stop politely can print
    tracebacks about its closing sockets). Waits up to ``wait`` seconds for them to be gone; returns the ids
    still alive after that (normally none)."""
    everyone: list[int] = []
    for pid in pids:
        everyone.extend(descendants(pid))
        everyone.append(pid)
    for pid in everyone:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
    deadline = time.monotonic() + wait
    while time.monotonic() < deadline and any(_alive(p) for p in everyone):
        time.sleep(0.05)
    return [p for p in everyone if _alive(p)]
