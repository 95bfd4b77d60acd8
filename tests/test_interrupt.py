"""Stopping sweeps for real: Ctrl-C and kill -9 on the command-line runner, then resuming; two runners at once.

The fixture notebook logs "start TAG" and "end TAG" to a file and waits for a release file, so the tests can stop a
sweep while runs are executing and count afterwards how often each run started and finished.
"""
import os
import signal
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import psutil
import pytest

from workbench import runlock
from workbench.results import load_record

SLEEPY = Path(__file__).parent / "fixtures" / "notebooks" / "sleepy.ipynb"
pytestmark = pytest.mark.slow


def _start(tmp_path, *, jobs=2, tags=(1, 2, 3), name="runs"):
    grid = tmp_path / "grid.yaml"
    grid.write_text(f"TAG: {list(tags)}\n" if len(tags) > 1 else f"TAG: {tags[0]}\n")
    args = [sys.executable, "-m", "workbench", "run", str(SLEEPY), "--grid", str(grid), "--jobs", str(jobs),
            "-p", "LOG", str(tmp_path / "log"), "-p", "RELEASE", str(tmp_path / "release"), "--output", str(tmp_path / name)]
    # a session of its own, like a terminal's foreground job: Ctrl-C goes to the whole process group. And Ctrl-C
    # handled as in a terminal: a suite started in the background (`make test &`, nohup), or a pytest process that
    # an earlier test left ignoring SIGINT, passes that on (ignored and blocked signals are inherited), and the
    # runner would then never see the test's Ctrl-C: seen once in a full-suite run, stack dump in the session note.
    return subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True,
                            preexec_fn=_sigint_as_in_a_terminal)


def _sigint_as_in_a_terminal():
    signal.signal(signal.SIGINT, signal.SIG_DFL)
    signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})


def _events(tmp_path):
    path = tmp_path / "log"
    lines = path.read_text().split("\n") if path.exists() else []
    return Counter((line.split()[0], int(line.split()[1])) for line in lines if line)


def _wait_for_starts(tmp_path, n, proc, timeout=90):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sum(v for (event, _), v in _events(tmp_path).items() if event == "start") >= n:
            return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError(f"fewer than {n} runs started in {timeout} s")


def _communicate(proc, timeout):
    """``proc.communicate``; if the runner is still there after ``timeout``, fail with what it was doing: every
    thread's stack (the runner dumps them on SIGUSR1) and its process tree."""
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        alive = proc.poll() is None
        tree = [(p.pid, p.name(), p.status()) for p in psutil.Process(proc.pid).children(recursive=True)] if alive else []
        since = psutil.Process(proc.pid).create_time() if alive else time.time() - timeout - 120
        newer = [(p.pid, p.info["cmdline"][:4]) for p in psutil.process_iter(["cmdline", "create_time"])
                 if (p.info["create_time"] or 0) >= since and p.info["cmdline"]]  # who may still hold its pipes
        tree = (tree, newer)
        if alive:
            os.kill(proc.pid, signal.SIGUSR1)
            time.sleep(2)
        os.killpg(proc.pid, signal.SIGKILL)
        out, err = proc.communicate(timeout=30)
        raise AssertionError(f"runner alive={alive} after {timeout} s; children={tree}\nstdout:\n{out}\nstderr:\n{err}")


def _tree(pid):
    return [p.pid for p in psutil.Process(pid).children(recursive=True)]


def _all_gone(pids, timeout=15):
    deadline = time.monotonic() + timeout
    alive = list(pids)
    while alive and time.monotonic() < deadline:
        alive = [p for p in alive if psutil.pid_exists(p) and psutil.Process(p).status() != psutil.STATUS_ZOMBIE]
        time.sleep(0.1)
    return alive


TAGS = (1, 2, 3)  # two run at a time (jobs 2), so one is always waiting when the sweep is stopped


def _finish_and_check(tmp_path, starts):
    """Resume with the same command, then: every run finished exactly once, and started once more than it was
    before (the interrupted ones are redone, the others run now for the first time)."""
    (tmp_path / "release").write_text("go")
    proc = _start(tmp_path)
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, (out, err)
    events = _events(tmp_path)
    for tag in TAGS:  # nothing lost, nothing finished twice
        assert events[("end", tag)] == 1, events
        assert events[("start", tag)] == starts[tag] + 1, events


def _started(tmp_path):
    return Counter({tag: n for (event, tag), n in _events(tmp_path).items() if event == "start"})


def test_ctrl_c_then_kill_9_then_resume(tmp_path):
    """Ctrl-C stops the sweep promptly with one message; kill -9 leaves no process and only stale claims; the
    same command then finishes every run exactly once."""
    proc = _start(tmp_path)
    _wait_for_starts(tmp_path, 2, proc)
    children = _tree(proc.pid)
    started = time.monotonic()
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does: the whole foreground process group
    out, err = _communicate(proc, 30)
    assert time.monotonic() - started < 15
    assert proc.returncode == 130, (out, err)
    assert "Traceback" not in err and "Traceback" not in out
    assert "Interrupted. 0 run(s) finished (kept), 2 interrupted" in err and "1 not started" in err
    assert "Resume with: python -m workbench run" in err and "--jobs 2" in err
    assert len(err.strip().splitlines()) == 2  # one short message, nothing else
    assert not _all_gone(children), "workers or kernels outlived the runner"
    assert sum(_started(tmp_path).values()) == 2  # no new run started after Ctrl-C
    statuses = Counter(load_record(p)["status"] for p in (tmp_path / "runs" / "sleepy").glob("*/record.json"))
    assert statuses == {"interrupted": 2}, [(f.name, sorted(x.name for x in f.iterdir()), runlock.holder(f))
                                            for f in (tmp_path / "runs" / "sleepy").iterdir()]

    proc = _start(tmp_path)  # resume, then kill -9 the runner mid-way
    _wait_for_starts(tmp_path, 4, proc)
    children = _tree(proc.pid)
    assert len(children) >= 4  # two workers, two kernels (and multiprocessing's helper)
    os.kill(proc.pid, signal.SIGKILL)
    proc.communicate(timeout=30)
    assert not _all_gone(children), "workers or kernels outlived the killed runner"
    claimed = [lock.parent for lock in (tmp_path / "runs" / "sleepy").glob("*/.lock") if lock.read_text()]
    assert len(claimed) == 2  # claims left behind by the killed workers ...
    assert all(runlock.holder(folder) is None for folder in claimed)  # ... held by nobody: stale, taken over below
    _finish_and_check(tmp_path, _started(tmp_path))


def test_two_runners_at_once_never_run_the_same_run_twice(tmp_path):
    first = _start(tmp_path, jobs=1)
    _wait_for_starts(tmp_path, 1, first)
    second = _start(tmp_path, jobs=1)
    _wait_for_starts(tmp_path, 2, second)
    (tmp_path / "release").write_text("go")
    out1, err1 = first.communicate(timeout=180)
    out2, err2 = second.communicate(timeout=180)
    events = _events(tmp_path)
    for tag in TAGS:
        assert events[("start", tag)] == 1 and events[("end", tag)] == 1, (events, out1, out2)
    assert "locked" in out2  # the second runner found run 1 being executed and left it alone
    assert {first.returncode, second.returncode} <= {0, 1}


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["ctrl_c", "sigterm"])
def test_ctrl_c_on_a_single_run_stops_its_kernel(tmp_path, sig):
    """One run executes in the runner's own process (no worker): Ctrl-C (or SIGTERM, as `timeout` sends) still
    stops its kernel first, so no dead-kernel traceback, and says so."""
    proc = _start(tmp_path, jobs=1, tags=(5,))
    _wait_for_starts(tmp_path, 1, proc)
    children = _tree(proc.pid)
    os.killpg(proc.pid, sig) if sig == signal.SIGINT else os.kill(proc.pid, sig)
    out, err = _communicate(proc, 30)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "Interrupted. 0 run(s) finished (kept), 1 interrupted" in err and "Resume with:" in err
    assert not _all_gone(children), "the kernel outlived the interrupted run"
    (record,) = (tmp_path / "runs" / "sleepy").glob("*/record.json")
    assert load_record(record)["status"] == "interrupted"


def test_sigterm_stops_a_sweep_like_ctrl_c(tmp_path):
    """What `kill -TERM <runner>` does (the way to stop a runner started in the background, which ignores Ctrl-C):
    the same clean stop, message and records as Ctrl-C."""
    proc = _start(tmp_path)
    _wait_for_starts(tmp_path, 2, proc)
    children = _tree(proc.pid)
    os.kill(proc.pid, signal.SIGTERM)
    out, err = _communicate(proc, 30)
    assert proc.returncode == 130 and "Traceback" not in err, err
    assert "Interrupted. 0 run(s) finished (kept), 2 interrupted" in err and "1 not started" in err
    assert not _all_gone(children), "workers or kernels outlived the runner"
    statuses = Counter(load_record(p)["status"] for p in (tmp_path / "runs" / "sleepy").glob("*/record.json"))
    assert statuses == {"interrupted": 2}
