"""Logging for workflow scripts: one log file per job, clear errors, nothing half-written.

``job_logging(log_path, name)`` sends the package's log records to the job's log file and to
stderr. An :class:`~cohortflow.errors.InputError` is logged as one line naming the subject,
the file and the reason (no traceback: it is the user's data, not a bug), then the job exits
non-zero, so Snakemake removes its outputs and ``--keep-going`` carries on with other jobs.
Errors of the machine (a full disk, a quota, permissions: :data:`ENVIRONMENT_ERRNOS`) and
running out of memory are one line each, saying what happened where. Any other exception is
a bug: it is logged with its traceback, and the job exits non-zero too.

Every record passes :class:`~cohortflow.privacy.secrets.MaskingFilter`: a secret the job read
(the FHIR upload token) is masked in messages and tracebacks. Exceptions end the job as
``SystemExit`` after they are logged, so that Python does not print an unmasked traceback of
its own.
"""

from __future__ import annotations

import errno
import logging
import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from pathlib import Path

from cohortflow.errors import CohortflowError
from cohortflow.privacy.secrets import MaskingFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"

#: Errors of the machine, not of cohortflow: a full disk, a quota, a read-only file system,
#: missing permissions. Each is one line naming the file and what to do, never "a bug".
ENVIRONMENT_ERRNOS = {
    errno.ENOSPC: "no space left on the device: free space there (or point the run elsewhere)",
    errno.EDQUOT: "disk quota exceeded: free space in your quota",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied: give this user access, or run where it may write",
    errno.EPERM: "operation not permitted: give this user access",
    errno.EIO: "input/output error: the disk or network file system failed; check it, rerun",
    errno.ESTALE: "stale network file handle: the file system was remounted; rerun",
    errno.ENOMEM: "out of memory: rerun with more memory (mem_mb)",
}


def environment_error(exc: OSError) -> str:
    """One line for an error of the machine: what happened, to which file, what to do.

    Files inside the working folder are named relative to it; a file outside it (a source
    folder, whose name may be a person's) is not named.
    """
    what = ENVIRONMENT_ERRNOS[exc.errno]
    where = "a file outside the working folder (not named here: it may name a person)"
    if exc.filename is not None:
        path = Path(os.fsdecode(exc.filename))
        with suppress(OSError, ValueError):
            where = str(path.resolve().relative_to(Path.cwd().resolve()))
    else:
        where = "a file the job was writing"
    return f"{where}: {what} ({errno.errorcode.get(exc.errno, exc.errno)})"


@contextmanager
def job_logging(log_path: str | Path | None, name: str) -> Iterator[logging.Logger]:
    root = logging.getLogger("cohortflow")
    root.setLevel(logging.INFO)
    handlers: list[logging.Handler] = [logging.StreamHandler(sys.stderr)]
    if log_path:
        Path(log_path).parent.mkdir(parents=True, exist_ok=True)
        handlers.append(logging.FileHandler(log_path, mode="w"))
    for handler in handlers:
        handler.setFormatter(logging.Formatter(FORMAT))
        handler.addFilter(MaskingFilter())
        root.addHandler(handler)
    logger = logging.getLogger(f"cohortflow.{name}")
    try:
        yield logger
    except CohortflowError as exc:
        logger.error("%s", exc)
        raise SystemExit(1) from None
    except MemoryError:
        logger.error(
            "out of memory: the job needed more than the machine or its memory limit (mem_mb) "
            "gave it; rerun with more memory (Snakemake --retries raises mem_mb per attempt)"
        )
        raise SystemExit(1) from None
    except OSError as exc:
        if exc.errno not in ENVIRONMENT_ERRNOS:
            logger.exception("unexpected error (a bug: please report it with this log)")
        else:
            logger.error("%s", environment_error(exc))
        raise SystemExit(1) from None
    except Exception:
        logger.exception("unexpected error (a bug: please report it with this log)")
        raise SystemExit(1) from None
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
