"""Resuming after a hard kill: Snakemake's lock of a run that no longer exists.

Snakemake locks the working folder while it runs and unlocks it on exit, but a run killed
outright (SIGKILL, OOM killer, a lost login session) cannot unlock, and the next run refuses to
start until someone runs ``--unlock``. cohortflow records which process owns the lock
(``.snakemake/cohortflow-owner.json``: host and PID); when a new run finds locks whose owner
ran on this host and is gone, it removes them with a warning, so that rerunning the same
command resumes the run (``rerun-incomplete`` then redoes what the killed jobs left). Locks of
a live process, or of a process on another host, are left alone: Snakemake then refuses as
usual.
"""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

OWNER = Path(".snakemake") / "cohortflow-owner.json"
LOCKS = Path(".snakemake") / "locks"


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def take_over_stale_lock(workdir: str | Path = ".") -> str | None:
    """Clear a dead owner's locks and record this process as the owner; returns a note when
    locks were cleared. Leaves everything alone while a live process holds the locks."""
    workdir = Path(workdir)
    locks = list((workdir / LOCKS).glob("*.lock"))  # none when the folder does not exist
    owner_file = workdir / OWNER
    host = socket.gethostname()
    note = None
    if locks:
        try:
            owner = json.loads(owner_file.read_text())
        except (OSError, ValueError):
            return None  # locks of an unknown owner (e.g. plain snakemake): Snakemake decides
        if owner.get("host") != host or _alive(int(owner.get("pid", -1))):
            return None
        for lock in locks:
            lock.unlink(missing_ok=True)
        note = (
            f"removed the lock of an earlier run (pid {owner['pid']} on {host}) that ended "
            "without unlocking (killed?); its unfinished outputs are redone"
        )
    owner_file.parent.mkdir(parents=True, exist_ok=True)
    owner_file.write_text(json.dumps({"host": host, "pid": os.getpid()}))
    return note
