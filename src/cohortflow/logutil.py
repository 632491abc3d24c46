"""Logging for workflow scripts: one log file per job, clear errors, nothing half-written.

``job_logging(log_path, name)`` sends the package's log records to the job's log file and to
stderr. An :class:`~cohortflow.errors.InputError` is logged as one line naming the subject,
the file and the reason (no traceback: it is the user's data, not a bug), then the job exits
non-zero, so Snakemake removes its outputs and ``--keep-going`` carries on with other jobs.
Any other exception is logged with its traceback, and the job exits non-zero too.

Every record passes :class:`~cohortflow.privacy.secrets.MaskingFilter`: a secret the job read
(the FHIR upload token) is masked in messages and tracebacks. Exceptions end the job as
``SystemExit`` after they are logged, so that Python does not print an unmasked traceback of
its own.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from cohortflow.errors import CohortflowError
from cohortflow.privacy.secrets import MaskingFilter

FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"


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
    except Exception:
        logger.exception("unexpected error (a bug: please report it with this log)")
        raise SystemExit(1) from None
    finally:
        for handler in handlers:
            root.removeHandler(handler)
            handler.close()
