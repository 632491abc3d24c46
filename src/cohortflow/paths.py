"""The one place output file names are made (BIDS-derivatives style, as snakebids' ``bids()``).

Rules, scripts and tests build every per-subject path through :func:`bids`, so a file name is
defined once. Values may be Snakemake wildcards such as ``"{subject}"``.
"""

from __future__ import annotations

RESULTS = "results"
LOGS = "logs"


def bids(
    stage: str,
    *,
    subject: str,
    session: str | None,
    suffix: str,
    ext: str,
    datatype: str = "anat",
    space: str | None = None,
    desc: str | None = None,
    root: str = RESULTS,
) -> str:
    """``{root}/{stage}/sub-X/ses-Y/{datatype}/sub-X_ses-Y[_space-S][_desc-D]_{suffix}{ext}``."""
    entities = [f"sub-{subject}"]
    folders = [root, stage, f"sub-{subject}"]
    if session is not None:
        entities.append(f"ses-{session}")
        folders.append(f"ses-{session}")
    if space:
        entities.append(f"space-{space}")
    if desc:
        entities.append(f"desc-{desc}")
    name = "_".join([*entities, suffix]) + ext
    return "/".join([*folders, datatype, name])


def subject_log(stage: str, step: str, *, subject: str, session: str | None) -> str:
    """``logs/{stage}/sub-X_ses-Y_{step}.log``: one log per job."""
    ses = f"_ses-{session}" if session is not None else ""
    return f"{LOGS}/{stage}/sub-{subject}{ses}_{step}.log"
