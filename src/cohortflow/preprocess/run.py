"""Per-subject preprocessing jobs (called by workflow/scripts): N4, registration, QC.

Every image written here gets a JSON sidecar with the parameters, software versions and the
SHA-256 of its inputs; bad input raises :class:`InputError` naming the subject and file.
"""

from __future__ import annotations

import csv
import json
import logging
import math
import shutil
import tempfile
import time
from collections.abc import Iterable
from dataclasses import asdict
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np

from cohortflow.errors import InputError
from cohortflow.io.atomic import atomic_output_file, write_json
from cohortflow.io.nifti import MNI_CODE, SCANNER_CODE, read_volume, write_nifti
from cohortflow.preprocess import metrics
from cohortflow.preprocess.n4 import N4Settings, n4_correct
from cohortflow.preprocess.registration import PRESETS, cpu_seconds, jacobian_determinant, register
from cohortflow.provenance import input_checksums, software_versions

log = logging.getLogger("cohortflow.preprocess")


def run_n4(
    image: Path | str,
    out_image: Path | str,
    out_sidecar: Path | str,
    settings: N4Settings,
    *,
    subject: str,
    threads: int = 1,
) -> None:
    try:
        start = time.perf_counter()
        corrected, affine, record = n4_correct(image, settings, threads=threads)
    except InputError as exc:
        raise exc.with_subject(subject) from None
    record["Seconds"] = round(time.perf_counter() - start, 2)
    write_nifti(out_image, corrected, affine, code=SCANNER_CODE)
    write_json(
        out_sidecar,
        {
            "Subject": subject,
            "Step": "N4 bias-field correction",
            "N4": record,
            "Inputs": input_checksums({"image": image}),
            "Software": software_versions("SimpleITK", "nibabel", "numpy"),
        },
    )
    log.info(
        "sub-%s: N4 done in %.1f s, bias range %s",
        subject,
        record["Seconds"],
        record["BiasFieldRange"],
    )


def run_registration(
    image: Path | str,
    template: dict[str, Path | str],
    template_record: Path | str,
    preset_name: str,
    out_image: Path | str,
    out_sidecar: Path | str,
    out_metrics: Path | str,
    out_transform: Path | str,
    *,
    subject: str,
    threads: int = 1,
    seed: int = 1,
) -> dict[str, float]:
    """Register, write the image on the template grid, its transform and its QC metrics."""
    preset = PRESETS[preset_name]
    template_meta = json.loads(Path(template_record).read_text())
    tpl_image, tpl_affine = read_volume(template["template"], "template")
    brain = read_volume(template["brain_mask"], "template brain mask")[0] > 0.5
    with tempfile.TemporaryDirectory(prefix="cohortflow-reg-") as work:
        wall0, cpu0 = time.perf_counter(), cpu_seconds()
        try:
            result = register(image, template["template"], preset, work, threads=threads, seed=seed)
        except RuntimeError as exc:
            raise InputError(image, f"registration failed: {exc}").with_subject(subject) from None
        wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
        # Temporary paths differ from run to run; the record keeps the command stable.
        commands = [" ".join(cmd).replace(work, "<workdir>") for cmd in result.commands]
        jac = jacobian_determinant(template["template"], result.forward_transform)
        with atomic_output_file(out_transform) as tmp:
            # shutil.move copies when the temporary folder is on another file system.
            shutil.move(result.forward_transform, tmp)
    warped = result.warped
    values = {
        "correlation": metrics.correlation(warped, tpl_image, brain),
        "mutual_information": metrics.mutual_information(warped, tpl_image, brain),
        **metrics.jacobian_summary(jac, brain),
    }
    write_nifti(out_image, warped, tpl_affine, code=MNI_CODE)
    write_metrics_tsv(out_metrics, subject, values)
    write_json(
        out_sidecar,
        {
            "Subject": subject,
            "Step": "registration to the template",
            "Space": template_meta["Space"],
            "Preset": asdict(preset),
            "Seed": seed,
            "Threads": threads,
            "CPUSeconds": round(cpu, 1),
            "WallSeconds": round(wall, 1),
            "PassWallSeconds": [round(s, 1) for s in result.pass_seconds],
            "Commands": commands,
            "Transform": {
                "path": str(out_transform),
                "meaning": "displacement field on the template grid: template point -> subject "
                "point (ANTs convention; resample subject images with it as the only transform)",
            },
            "Metrics": values,
            "Inputs": input_checksums({"image": image, **template}),
            "TemplateRecord": template_meta,
            "Software": software_versions("antspyx", "nibabel", "numpy"),
        },
    )
    log.info(
        "sub-%s: %s registration %.0f s CPU, %.0f s wall; correlation %.3f, folded %.2g",
        subject,
        preset_name,
        cpu,
        wall,
        values["correlation"],
        values["folded_fraction"],
    )
    return values


def write_metrics_tsv(target: Path | str, subject: str, values: dict[str, Any]) -> None:
    with atomic_output_file(target) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.writer(fh, delimiter="\t", lineterminator="\n")
        writer.writerow(["subject", *values])
        writer.writerow([subject, *(_fmt(v) for v in values.values())])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "nan" if math.isnan(value) else f"{value:.6g}"
    return str(value)


def read_metrics_tsv(path: Path | str) -> dict[str, str]:
    with Path(path).open(newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if len(rows) != 1:
        raise InputError(path, f"expected one row of metrics, found {len(rows)}")
    return rows[0]


def cohort_qc_table(
    metric_files: Iterable[Path | str], bounds: dict[str, Any], target: Path | str
) -> list[dict[str, str]]:
    """One row per subject: every metric, ``qc_pass`` and the reasons for any flag.

    ``metric_files`` are one-row TSVs (registration, clusters, ...); rows of the same subject
    are merged.
    """
    merged: dict[str, dict[str, str]] = {}
    for path in metric_files:
        row = read_metrics_tsv(path)
        merged.setdefault(row["subject"], {}).update(row)
    rows: list[dict[str, str]] = []
    for row in merged.values():
        reasons = qc_flags(row, bounds)
        row["qc_pass"] = "no" if reasons else "yes"
        row["qc_flags"] = "; ".join(reasons)
        rows.append(row)
    rows.sort(key=lambda r: r["subject"])
    columns: list[str] = []
    for row in rows:
        columns.extend(c for c in row if c not in columns)
    with atomic_output_file(target) as tmp, tmp.open("w", newline="") as fh:
        writer = csv.DictWriter(fh, columns, delimiter="\t", lineterminator="\n", restval="")
        writer.writeheader()
        writer.writerows(rows)
    return rows


def qc_flags(row: dict[str, str], bounds: dict[str, Any]) -> list[str]:
    def value(key: str) -> float:
        try:
            return float(row.get(key, "nan"))
        except ValueError:
            return float("nan")

    reasons = []
    checks = [
        ("correlation", "min", bounds["min_correlation"]),
        ("mutual_information", "min", bounds["min_mutual_information"]),
        ("wm_dice", "min", bounds["min_wm_dice"]),
        ("folded_fraction", "max", bounds["max_folded_fraction"]),
        ("jacobian_min", "min", bounds["jacobian_range"][0]),
        ("jacobian_max", "max", bounds["jacobian_range"][1]),
    ]
    for key, kind, limit in checks:
        if key not in row:
            continue
        v = value(key)
        if math.isnan(v):
            reasons.append(f"{key} is not a number")
        elif kind == "min" and v < limit:
            reasons.append(f"{key} {v:.4g} < {limit}")
        elif kind == "max" and v > limit:
            reasons.append(f"{key} {v:.4g} > {limit}")
    return reasons


def write_registration_mosaic(
    registered: Path | str, wm_reference: Path | str, target: Path | str, subject: str
) -> None:
    from cohortflow.preprocess.mosaic import write_mosaic

    image = nib.load(registered).get_fdata(dtype=np.float32)
    outline = nib.load(wm_reference).get_fdata() > 0.5
    write_mosaic(
        target,
        image,
        title=f"sub-{subject}: registered FLAIR, template WM outline (cyan)",
        outline=outline,
    )
