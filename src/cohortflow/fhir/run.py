"""The FHIR rules' entry points (called by workflow/scripts/fhir_*.py)."""

from __future__ import annotations

import json
import logging
import shutil
from pathlib import Path
from typing import Any

from cohortflow.errors import CohortflowError
from cohortflow.fhir.bundle import Validators, bundles_problems, raise_if_invalid, write_bundle
from cohortflow.fhir.export import genotype_bundles, subject_bundle
from cohortflow.fhir.provenance import recorded_now
from cohortflow.fhir.upload import UploadSettings, upload_bundles

LOG = logging.getLogger("cohortflow.fhir")


def _as_list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(value)] if isinstance(value, str | Path) else [str(v) for v in value]


def run_subject(
    subject: str, inputs: dict[str, Any], outputs: dict[str, str], fhir: dict, config_hex: str
) -> None:
    validators = Validators.from_config(fhir["validation"])
    bundle, notes = subject_bundle(
        subject,
        ingest_sidecar=inputs["sidecar"],
        system=fhir["patient_identifier_system"],
        config_hex=config_hex,
        recorded=recorded_now(),
        dicom_dir=inputs.get("dicom"),
        step_sidecars=_as_list(inputs.get("steps")),
        prediction=inputs.get("prediction"),
        model_card=inputs.get("model_card"),
        decisions=_as_list(inputs.get("decisions")),
        workflow_commit=fhir.get("workflow_commit"),
    )
    for note in notes:
        LOG.info("sub-%s: %s", subject, note)
    write_bundle(bundle, outputs["bundle"], validators, outputs["record"], notes)
    LOG.info(
        "sub-%s: %d entries, valid (%s)",
        subject,
        len(bundle["entry"]),
        "; ".join(validators.names()),
    )


def run_genotypes(inputs: dict[str, Any], output: str, fhir: dict, config_hex: str, key) -> None:
    from cohortflow.io.atomic import atomic_output_dir

    validators = Validators.from_config(fhir["validation"])
    genotype_files = {f"genotypes {Path(p).name}": p for p in _as_list(inputs["genotypes"])}
    bundles = genotype_bundles(
        inputs["samples"],
        inputs["summary"],
        Path(inputs["imported"]) / "step.json",
        genotype_files,
        key=key,
        system=fhir["patient_identifier_system"],
        config_hex=config_hex,
        recorded=recorded_now(),
        max_entries=fhir["max_bundle_entries"],
        workflow_commit=fhir.get("workflow_commit"),
    )
    names = [f"genotype-qc_part-{i:03d}_bundle.json" for i in range(1, len(bundles) + 1)]
    for name, problems in zip(names, bundles_problems(bundles, validators), strict=True):
        raise_if_invalid(f"{output}/{name}", problems)
    with atomic_output_dir(output) as tmp:
        for name, bundle in zip(names, bundles, strict=True):
            write_bundle(
                bundle,
                tmp / name,
                validators,
                tmp / name.replace("_bundle", "_validation"),
                [],
                checked=True,
            )
    LOG.info(
        "%d genotype QC bundles (%d entries), valid (%s)",
        len(bundles),
        sum(len(b["entry"]) for b in bundles),
        "; ".join(validators.names()),
    )


def bundle_files(inputs: list[str]) -> list[Path]:
    """The bundle files among the rule's inputs (folders are searched for *_bundle.json)."""
    files: list[Path] = []
    for item in map(Path, inputs):
        files += sorted(item.glob("*_bundle.json")) if item.is_dir() else [item]
    return files


def run_upload(inputs: list[str], outputs: dict[str, str], upload: dict, log: str) -> None:
    settings = UploadSettings.from_config(upload)
    files = bundle_files(inputs)
    LOG.info("uploading %d bundles to %s", len(files), settings.url)
    outcomes = upload_bundles(files, settings, outputs["table"], outputs["details"])
    failed = [o for o in outcomes if o.result != "ok"]
    if failed:
        # Snakemake removes a failed job's outputs: keep the outcomes beside the log.
        keep = Path(log).with_suffix("")
        for src in (outputs["table"], outputs["details"]):
            shutil.copyfile(src, f"{keep}_{Path(src).name}")
        raise CohortflowError(
            f"{len(failed)} of {len(outcomes)} bundles were not accepted by {settings.url}: "
            + "; ".join(f"{o.bundle}: {o.error}" for o in failed[:5])
            + f" (outcomes kept in {keep}_outcomes.tsv)"
        )
    LOG.info(
        "all %d bundles accepted (%s)",
        len(outcomes),
        json.dumps({"entries": sum(o.entries for o in outcomes)}),
    )
