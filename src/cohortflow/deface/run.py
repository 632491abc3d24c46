"""Defacing and defacing-QA jobs (called by the thin scripts in workflow/scripts/)."""

from __future__ import annotations

import json
import logging
import time
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
import pandas as pd

from cohortflow.deface.classifier import QAModel, cross_validate, fit, held_out_type
from cohortflow.deface.defacer import (
    DefaceSettings,
    Template,
    apply_removal,
    registration_correlation,
    removal_mask,
)
from cohortflow.deface.failures import FAILURE_TYPES, generate_pairs
from cohortflow.deface.features import FEATURES, PairError, PairScorer, check_same_grid
from cohortflow.deface.registration import register_head
from cohortflow.deface.renders import VIEWS, Render, for_display
from cohortflow.errors import InputError, NiftiError
from cohortflow.head_template import build_deface_template
from cohortflow.io.atomic import atomic_output_file, write_json
from cohortflow.io.nifti import SCANNER_CODE, write_nifti
from cohortflow.provenance import input_checksums, software_versions

log = logging.getLogger("cohortflow.deface")


def run_template(out_dir: Path | str) -> None:
    log.info("building the defacing template (pydeface head + face, MNI152 brain)")
    record = build_deface_template(out_dir)
    log.info(
        "face region %d voxels, brain %d voxels, overlap %d",
        record["FaceVoxels"], record["BrainVoxels"], record["BrainFaceOverlapVoxels"],
    )  # fmt: skip


def load_head(path: Path | str, subject: str, what: str = "image") -> nib.Nifti1Image:
    """A 3D image with finite values, or an error naming subject, file and reason."""
    try:
        img = nib.load(str(path))
        shape = img.shape
    except Exception as exc:  # nibabel raises many types for damaged files
        raise NiftiError(
            path, f"cannot read {what}: {type(exc).__name__}: {exc}", subject
        ) from None
    if len(shape) == 4 and shape[3] == 1:
        img = nib.Nifti1Image(np.asanyarray(img.dataobj)[..., 0], img.affine, img.header)
    elif len(shape) != 3 or min(shape) < 8:
        raise NiftiError(path, f"{what} must be a 3D head image, has shape {shape}", subject)
    data = np.asarray(img.get_fdata(dtype=np.float32))
    if not np.all(np.isfinite(data)):
        raise NiftiError(path, f"{what} contains NaN or infinite values", subject)
    if not np.any(data):
        raise NiftiError(path, f"{what} is all zero", subject)
    return img


def _registration_record(matrix: np.ndarray, correlation: float, seconds: float) -> dict:
    return {
        "Description": "affine head template -> subject (antspyx); SubjectToTemplate maps a "
        "subject RAS point (mm) to the template's",
        "SubjectToTemplate": np.round(matrix, 10).tolist(),
        "TemplateCorrelation": round(correlation, 4),
        "Seconds": round(seconds, 1),
    }


def read_registration(path: Path | str) -> np.ndarray:
    return np.asarray(json.loads(Path(path).read_text())["SubjectToTemplate"], dtype=float)


def run_deface(
    image: Path | str,
    template_dir: Path | str,
    settings: DefaceSettings,
    *,
    defaced_out: Path | str,
    mask_out: Path | str,
    registration_out: Path | str,
    sidecar_out: Path | str,
    subject: str,
) -> dict:
    img = load_head(image, subject)
    template = Template.load(template_dir)
    start = time.perf_counter()
    matrix = register_head(image, template.paths["head"], seed=settings.seed)
    seconds = time.perf_counter() - start
    data = np.asarray(img.get_fdata(dtype=np.float32))
    corr = registration_correlation(template, data, img.affine, matrix)
    remove = removal_mask(template, img.shape, img.affine, matrix, settings)
    brain = template.to_subject(template.brain, img.shape, img.affine, matrix)
    if not remove.any():
        raise InputError(
            image,
            "the face region of the registered template misses this image entirely: not a "
            "whole head, or the registration failed",
            subject,
        )
    defaced = apply_removal(img, remove)
    with atomic_output_file(defaced_out) as tmp:
        nib.save(defaced, tmp)
    write_nifti(mask_out, remove.astype(np.uint8), img.affine, code=SCANNER_CODE)
    write_json(registration_out, _registration_record(matrix, corr, seconds))
    voxel_ml = float(abs(np.linalg.det(img.affine[:3, :3]))) / 1000.0
    record = {
        "Subject": subject,
        "Step": "defacing: affine head template registration, template face region minus a "
        "brain margin set to 0",
        "Settings": settings.as_dict(),
        "RemovedVoxels": int(remove.sum()),
        "RemovedVolumeMl": round(float(remove.sum()) * voxel_ml, 1),
        "RemovedBrainVoxels": int((remove & brain).sum()),
        "TemplateCorrelation": round(corr, 4),
        "RegistrationSeconds": round(seconds, 1),
        "Inputs": input_checksums({"image": image, **template.paths}),
        "Software": software_versions("antspyx", "nibabel", "numpy", "scipy"),
    }
    write_json(sidecar_out, record)
    log.info(
        "sub-%s: removed %d voxels (%.1f ml), %d of them in the brain region; template "
        "correlation %.3f; registration %.0f s",
        subject, record["RemovedVoxels"], record["RemovedVolumeMl"], record["RemovedBrainVoxels"],
        corr, seconds,
    )  # fmt: skip
    return record


def _scorer(
    img: nib.Nifti1Image,
    original: Path | str,
    registration: Path | str,
    template: Template,
    subject: str,
    min_provenance_correlation: float,
) -> PairScorer:
    try:
        return PairScorer(
            np.asarray(img.get_fdata(dtype=np.float32)),
            img.affine,
            template,
            read_registration(registration),
            min_provenance_correlation=min_provenance_correlation,
            path=str(original),
        )
    except InputError as exc:
        raise exc.with_subject(subject) from None


def run_pairs(
    original: Path | str,
    registration: Path | str,
    template_dir: Path | str,
    out_tsv: Path | str,
    *,
    subject: str,
    per_type: int,
    margin_mm: float,
    seed: int,
    min_provenance_correlation: float,
) -> pd.DataFrame:
    template = Template.load(template_dir)
    img = load_head(original, subject, "original")
    scorer = _scorer(img, original, registration, template, subject, min_provenance_correlation)
    start = time.perf_counter()
    rows = generate_pairs(
        scorer.original, img.affine, template, scorer.subject_to_template, scorer,
        subject=subject, per_type=per_type, margin_mm=margin_mm, seed=seed,
    )  # fmt: skip
    table = pd.DataFrame(rows)
    with atomic_output_file(out_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    log.info(
        "sub-%s: %d labelled pairs in %.0f s", subject, len(table), time.perf_counter() - start
    )
    return table


def run_train(
    pair_tables: list[Path | str],
    *,
    model_out: Path | str,
    predictions_out: Path | str,
    metrics_out: Path | str,
    folds: int,
    seed: int,
    c: float,
) -> dict:
    table = pd.concat([pd.read_csv(p, sep="\t") for p in pair_tables], ignore_index=True)
    if table.empty:
        raise ValueError("no training pairs")
    metrics, predictions = cross_validate(table, folds=folds, seed=seed, c=c)
    held_out = [held_out_type(table, t, c=c) for t in FAILURE_TYPES if t != "correct"]
    model = fit(table, c=c)
    summary = {
        "pairs": len(table),
        "heads": int(table["subject"].nunique()),
        "pairs_per_type": table["failure_type"].value_counts().sort_index().to_dict(),
        "cross_validation": metrics,
        "held_out_failure_type": held_out,
        "settings": {"folds": folds, "seed": seed, "C": c},
        "features": list(FEATURES),
        "software": software_versions("scikit-learn", "numpy", "pandas"),
    }
    write_json(model_out, {**model.to_json(), "training": summary})
    write_json(metrics_out, summary)
    with atomic_output_file(predictions_out) as tmp:
        predictions.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    log.info(
        "defacing QA: %d pairs from %d heads; cross-validated AUROC %.3f, accuracy %.3f, "
        "sensitivity %.3f, specificity %.3f; held out: %s",
        len(table), summary["heads"], metrics["auroc"], metrics["accuracy"],
        metrics["sensitivity"], metrics["specificity"],
        ", ".join(f"{h['failure_type']} {h['accuracy']:.3f}" for h in held_out),
    )  # fmt: skip
    return summary


def render_png(
    before: dict[str, Render], after: dict[str, Render], target: Path | str, title: str
) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(2, len(VIEWS), figsize=(3.2 * len(VIEWS), 6.4))
    for col, view in enumerate(VIEWS):
        for row, (label, renders) in enumerate((("original", before), ("defaced", after))):
            ax = axes[row, col]
            ax.imshow(for_display(renders[view].shaded), cmap="gray", vmin=0, vmax=255)
            ax.set_title(f"{label}: {view}", fontsize=9)
            ax.axis("off")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    with atomic_output_file(target) as tmp:
        fig.savefig(tmp, format="png", dpi=80)
    plt.close(fig)


def run_evaluate(
    original: Path | str,
    defaced: Path | str,
    registration: Path | str,
    template_dir: Path | str,
    model_path: Path | str,
    *,
    decision_out: Path | str,
    renders_out: Path | str,
    subject: str,
    defacer: str,
    min_provenance_correlation: float,
) -> dict[str, Any]:
    """Features, decision and face renders for one original/defaced pair."""
    template = Template.load(template_dir)
    defaced_img = load_head(defaced, subject, "defaced image")
    original_img = load_head(original, subject, "original")
    try:
        check_same_grid(
            (original_img.shape, original_img.affine),
            (defaced_img.shape, defaced_img.affine),
            str(original), str(defaced),
        )  # fmt: skip
        scorer = _scorer(
            original_img, original, registration, template, subject, min_provenance_correlation
        )
        values, after, alignment = scorer.features(
            np.asarray(defaced_img.get_fdata(dtype=np.float32)), str(defaced)
        )
    except PairError as exc:
        raise exc.with_subject(subject) from None
    model = QAModel.load(model_path)
    row = pd.DataFrame([values])
    ((decision, outside),) = model.decide(row)
    p = model.probabilities(row)[0]
    record = {
        "Subject": subject,
        "Defacer": defacer,
        "Decision": decision,
        "Accepted": decision == "accepted",
        "Probabilities": {c: round(float(v), 4) for c, v in zip(model.classes, p, strict=True)},
        "Drivers": model.drivers(row.iloc[0], decision),
        "OutsideAcceptedRange": outside,
        "Features": {k: round(float(v), 6) for k, v in values.items()},
        "IntensityAlignment": {
            "slope": alignment.slope,
            "intercept": alignment.intercept,
            "provenance_correlation": alignment.correlation,
            "voxels": alignment.voxels,
        },
        "Inputs": input_checksums({"original": original, "defaced": defaced, "model": model_path}),
        "Software": software_versions("numpy", "scipy", "nibabel"),
    }
    write_json(decision_out, record)
    render_png(
        scorer.renders_before, after, renders_out,
        f"sub-{subject} — {defacer}: {decision.replace('_', ' ')}",
    )  # fmt: skip
    log.info(
        "sub-%s (%s): %s; face FSIM %.3f, brain FSIM %.4f, brain removed %.4f %%",
        subject, defacer, decision, values["face_fsim"], values["brain_fsim"],
        100 * values["brain_removed_share"],
    )  # fmt: skip
    return record


def run_decisions(decision_files: list[Path | str], out_tsv: Path | str) -> pd.DataFrame:
    rows = []
    for path in decision_files:
        rec = json.loads(Path(path).read_text())
        rows.append(
            {
                "subject": rec["Subject"],
                "defacer": rec["Defacer"],
                "decision": rec["Decision"],
                "p_accepted": rec["Probabilities"].get("accepted", 0.0),
                **{k: rec["Features"][k] for k in FEATURES},
                "drivers": "; ".join(f"{d['feature']}={d['value']:.4g}" for d in rec["Drivers"]),
            }
        )
    table = pd.DataFrame(rows)
    with atomic_output_file(out_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g")
    return table


def run_import_defaced(
    source: Path | str, target: Path | str, *, subject: str, defacer: str
) -> None:
    """Another tool's defaced image, as ingest treats a NIfTI source: canonical (RAS+)
    orientation and a fresh header without free text, so it lands on the ingested grid."""
    from cohortflow.ingest.nifti_input import load_nifti_3d

    source = Path(source)
    if not source.is_file():
        raise InputError(source, f"defaced image ({defacer}) not found", subject)
    try:
        img = load_nifti_3d(source)
    except InputError as exc:
        raise exc.with_subject(subject) from None
    with atomic_output_file(target) as tmp:
        nib.save(img, tmp)
    log.info("sub-%s: imported the %s defaced image, shape %s", subject, defacer, img.shape)


def run_export_dicom(
    *,
    source: Path | str,
    mask: Path | str,
    out_dir: Path | str,
    subject: str,
    sheet_row: int,
    settings: dict[str, Any],
    allow_demo_key: bool,
    key_fingerprint: str,
) -> int:
    from cohortflow.deface.dicom import export_defaced_dicom
    from cohortflow.ingest.run import IngestSettings
    from cohortflow.privacy.pseudonym import load_job_key

    key = load_job_key(allow_demo_key=allow_demo_key, fingerprint=key_fingerprint)
    return export_defaced_dicom(
        source=source, mask_path=mask, out_dir=out_dir, subject=subject, sheet_row=sheet_row,
        key=key, settings=IngestSettings.from_config(settings),
    )  # fmt: skip
