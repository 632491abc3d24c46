"""Locks without races (issue 29, point 4): the run lock and the stale-lock takeover.

Snakemake's locks are removed only when their owner is provably gone: this process holds the
folder's run lock (so no other cohortflow run is alive in it), the owner record names this
host and a process that no longer exists (PID and start time), and the lock files are the ones
that process held. Anything else is left to Snakemake.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from cohortflow import runlock
from cohortflow.runlock import (
    LOCKS,
    OWNER,
    RunInProgressError,
    release_run_lock,
    take_over_stale_lock,
)


@pytest.fixture
def folder(tmp_path):
    yield tmp_path
    release_run_lock(tmp_path)


def _dead_pid() -> int:
    done = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"],
                          capture_output=True, text=True, check=True)  # fmt: skip
    return int(done.stdout)


def _locks(folder):
    (folder / LOCKS).mkdir(parents=True, exist_ok=True)
    for name in ("0.input.lock", "0.output.lock"):
        (folder / LOCKS / name).write_text("results/x\n")
    return runlock._lock_files(folder)


def _owner(folder, **fields):
    record = {"host": socket.gethostname(), "pid": _dead_pid(), "start": None,
              "written_ns": time.time_ns(), "locks": None} | fields  # fmt: skip
    (folder / OWNER).parent.mkdir(parents=True, exist_ok=True)
    (folder / OWNER).write_text(json.dumps(record))


def _locked(folder) -> bool:
    return any((folder / LOCKS).glob("*.lock"))


def test_a_dead_owners_own_locks_are_taken_over(folder):
    _owner(folder, locks=_locks(folder))
    note = take_over_stale_lock(folder)
    assert note and "ended without unlocking" in note
    assert not _locked(folder)
    assert json.loads((folder / OWNER).read_text())["pid"] == os.getpid()


def test_locks_killed_before_they_were_recorded_are_taken_over_if_newer(folder):
    _owner(folder)  # the run recorded itself, then was killed while Snakemake locked
    time.sleep(0.01)
    _locks(folder)
    assert take_over_stale_lock(folder) is not None and not _locked(folder)


@pytest.mark.parametrize(
    "case", ["other_host", "other_locks", "older_locks", "live_owner", "no_record"]
)
def test_locks_not_provably_stale_are_left_alone(folder, case):
    locks = _locks(folder)
    if case == "other_host":
        _owner(folder, host="another-node", locks=locks)
    elif case == "other_locks":  # the files were made again since (another run's)
        _owner(folder, locks={name: [ino + 1, mtime] for name, (ino, mtime) in locks.items()})
    elif case == "older_locks":
        _owner(folder, written_ns=time.time_ns() + 10**9)
    elif case == "live_owner":
        _owner(folder, pid=os.getppid(), start=runlock._process_start(os.getppid()), locks=locks)
    assert take_over_stale_lock(folder) is None
    assert _locked(folder)


def test_a_reused_pid_does_not_keep_a_dead_runs_locks(folder):
    """The owner's PID now belongs to another process (another start time): it is gone."""
    _owner(folder, pid=os.getppid(), start="1", locks=_locks(folder))
    assert take_over_stale_lock(folder) is not None and not _locked(folder)


def test_a_live_run_holds_the_folder(folder):
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import sys, time; from cohortflow.runlock import hold_run_lock; "
         f"hold_run_lock({str(folder)!r}); print('held', flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout.readline().strip() == "held"
        _owner(folder, locks=_locks(folder))  # even with a record that looks stale
        with pytest.raises(RunInProgressError, match=f"pid {holder.pid} on"):
            take_over_stale_lock(folder)
        assert _locked(folder)
    finally:
        holder.kill()
        holder.wait()
    # Killed outright, the holder's lock is gone with it: the next run may start.
    take_over_stale_lock(folder)


KILLED_WRITER = """
import os, signal, sys
from pathlib import Path
from cohortflow.demo.genotypes import _write_atomic
from cohortflow.io.atomic import atomic_output_dir
target = Path(sys.argv[1])
if sys.argv[2] == "dir":
    with atomic_output_dir(target / "raw") as tmp:
        (tmp / "IM0001").write_bytes(b"half a generation")
        os.kill(os.getpid(), signal.SIGKILL)
else:
    Path.replace = lambda self, other: os.kill(os.getpid(), signal.SIGKILL)
    _write_atomic(target / "demo.bed", b"half a genotype file")
"""


@pytest.mark.parametrize("kind", ["dir", "file"])
def test_interrupted_generation_leaves_nothing_a_rerun_keeps(tmp_path, kind):
    from cohortflow.demo.genotypes import _write_atomic
    from cohortflow.io.atomic import atomic_output_dir

    killed = subprocess.run([sys.executable, "-c", KILLED_WRITER, str(tmp_path), kind],
                            check=False)  # fmt: skip
    assert killed.returncode == -9
    assert [p.name for p in tmp_path.iterdir() if p.name.endswith(".tmp")], "nothing to clean"
    if kind == "dir":
        with atomic_output_dir(tmp_path / "raw") as tmp:
            (tmp / "IM0001").write_bytes(b"whole")
    else:
        _write_atomic(tmp_path / "demo.bed", b"whole")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["demo.bed" if kind == "file" else "raw"]


def test_dry_runs_are_told_apart_on_the_command_line():
    from cohortflow.runlock import is_dry_run

    for argv in (["snakemake", "-n"], ["snakemake", "-np"], ["x", "--dry-run"], ["x", "--dryrun"]):
        assert is_dry_run(argv), argv
    for argv in (["snakemake", "--cores", "2"], ["x", "-c", "2"], ["x", "--configfile", "n.yaml"]):
        assert not is_dry_run(argv), argv
