"""One run per working folder, and resuming after a hard kill without a race.

Snakemake locks the working folder while it runs and unlocks it on exit, but a run killed
outright (SIGKILL, OOM killer, a lost login session) cannot unlock, and the next run refuses to
start until someone runs ``--unlock``. Snakemake's own lock is also no mutual exclusion: two
runs that start at the same moment can both find the folder unlocked and both write locks.

So every cohortflow run (the main Snakemake process, not dry runs) first takes an exclusive
``flock`` on ``.snakemake/cohortflow-run.lock`` and holds it until the process ends. The kernel
releases it when the process dies, however it dies: a second run while one is alive stops at
once, naming the live run's PID. Holding that lock is the proof that the previous run is gone,
so its Snakemake locks can be removed, but only when they are provably its own: the owner
record (``.snakemake/cohortflow-owner.json``) names this host, a process that no longer exists
(PID and start time, so a reused PID does not count as alive), and the lock files it held
(their inode and time; or, if it was killed before Snakemake locked, locks made after it
started). Locks of another host (a shared file system) or of an unknown owner (a plain
``snakemake`` run) are left alone: Snakemake then refuses as usual.
"""

from __future__ import annotations

import fcntl
import json
import os
import socket
import time
from pathlib import Path

from cohortflow.errors import CohortflowError

OWNER = Path(".snakemake") / "cohortflow-owner.json"
LOCKS = Path(".snakemake") / "locks"
RUN_LOCK = Path(".snakemake") / "cohortflow-run.lock"

# Open descriptors of the run locks this process holds (closing one would release it).
_HELD: dict[str, int] = {}


class RunInProgressError(CohortflowError):
    """Another cohortflow run is working in the same folder."""


def _process_start(pid: int) -> str | None:
    """The kernel's start time of a process (Linux), None where unknown or gone."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 22 (starttime) counts from after the command name, which may contain spaces.
    return stat.rsplit(")", 1)[-1].split()[19]


def _alive(pid: int, start: str | None) -> bool:
    if pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    now = _process_start(pid)
    return start is None or now is None or now == start


def hold_run_lock(workdir: str | Path = ".") -> None:
    """Take this folder's run lock for the rest of the process, or raise
    :class:`RunInProgressError` naming the run that holds it. Idempotent in one process."""
    path = (Path(workdir) / RUN_LOCK).resolve()
    if str(path) in _HELD:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        holder = os.read(fd, 4096).decode(errors="replace").strip() or "unknown"
        os.close(fd)
        raise RunInProgressError(
            f"another cohortflow run is working in this folder ({holder}); wait for it to "
            "end (two runs in one folder would write the same outputs)"
        ) from None
    os.ftruncate(fd, 0)
    os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}".encode())
    _HELD[str(path)] = fd


def release_run_lock(workdir: str | Path = ".") -> None:
    """Give the run lock back before the process ends (tests; a run keeps it to its end)."""
    fd = _HELD.pop(str((Path(workdir) / RUN_LOCK).resolve()), None)
    if fd is not None:
        os.close(fd)


def _lock_files(workdir: Path) -> dict[str, list[int]]:
    """Snakemake's lock files: name -> [inode, mtime_ns]."""
    found = {}
    for lock in sorted((workdir / LOCKS).glob("*.lock")):
        try:
            info = lock.stat()
        except FileNotFoundError:
            continue
        found[lock.name] = [info.st_ino, info.st_mtime_ns]
    return found


def _write_owner(workdir: Path, locks: dict[str, list[int]] | None) -> None:
    owner_file = workdir / OWNER
    owner_file.parent.mkdir(parents=True, exist_ok=True)
    record = {
        "host": socket.gethostname(),
        "pid": os.getpid(),
        "start": _process_start(os.getpid()),
        "written_ns": time.time_ns(),
        "locks": locks,
    }
    tmp = owner_file.with_name(f".{owner_file.name}.{os.getpid()}.tmp")
    tmp.write_text(json.dumps(record))
    tmp.replace(owner_file)


def _owned_by_dead_run(owner: dict, locks: dict[str, list[int]]) -> bool:
    """Whether ``locks`` provably belong to the run ``owner`` describes, and it is gone."""
    if owner.get("host") != socket.gethostname():
        return False
    if _alive(int(owner.get("pid", -1)), owner.get("start")):
        return False
    recorded = owner.get("locks")
    if recorded is not None:  # Snakemake's locks as they were when that run held them
        return {name: list(value) for name, value in recorded.items()} == locks
    # Killed after it started and before it recorded its locks: they are its own if they
    # were made after it started (any later cohortflow run would have recorded itself).
    written = int(owner.get("written_ns", 0))
    return bool(written) and all(mtime >= written for _, mtime in locks.values())


def is_dry_run(argv: list[str]) -> bool:
    """Whether Snakemake's command line asks for a dry run (``-n``, ``-np``, ``--dry-run``).

    Snakemake decides on the dry-run executor only after the Snakefile is parsed
    (``workflow.dryrun`` is still False then), so the run lock reads the command line: a dry
    run writes nothing and may look at a folder while a run works in it.
    """
    for arg in argv[1:]:
        if arg in ("--dry-run", "--dryrun", "--dry_run"):
            return True
        if arg.startswith("-") and not arg.startswith("--") and arg[1:].isalpha() and "n" in arg:
            return True
    return False


def take_over_stale_lock(workdir: str | Path = ".") -> str | None:
    """Hold the run lock, clear a dead owner's Snakemake locks, and record this process as
    the owner; returns a note when locks were cleared. Raises RunInProgressError while
    another run is alive; leaves locks it cannot prove stale to Snakemake."""
    workdir = Path(workdir)
    hold_run_lock(workdir)
    locks = _lock_files(workdir)  # none when the folder does not exist
    note = None
    if locks:
        try:
            owner = json.loads((workdir / OWNER).read_text())
        except (OSError, ValueError):
            return None  # locks of an unknown owner (e.g. plain snakemake): Snakemake decides
        if not isinstance(owner, dict) or not _owned_by_dead_run(owner, locks):
            return None
        for name in locks:
            (workdir / LOCKS / name).unlink(missing_ok=True)
        note = (
            f"removed the lock of an earlier run (pid {owner['pid']} on {owner['host']}) that "
            "ended without unlocking (killed?); its unfinished outputs are redone"
        )
    _write_owner(workdir, None)
    return note


def record_lock_owner(workdir: str | Path = ".") -> None:
    """Once Snakemake holds its locks (the ``onstart`` hook): bind the owner record to them."""
    workdir = Path(workdir)
    _write_owner(workdir, _lock_files(workdir))
