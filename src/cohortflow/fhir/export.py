"""Assemble the export bundles from the pipeline's outputs.

* :func:`subject_bundle`: one transaction per imaging subject and session — Patient,
  ImagingStudy (+ scanner Device), the white-matter Observation and DiagnosticReport (when the
  classifier ran), one defacing-QA Observation per defaced image, a Device per software version
  recorded in the sidecars, and the Provenance of it all.
* :func:`genotype_bundles`: the cohort-level genotype QC — per sample a Patient and five
  Observations — split into transactions of at most ``max_entries`` entries (servers cap
  transactions: the Medplum engine takes at most 50 PUTs), each with its own Provenance.

Everything is read from the sidecars and tables the stages wrote; nothing is recomputed.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd

from cohortflow import __version__
from cohortflow.errors import CohortflowError
from cohortflow.fhir import findings, genotypes, imaging
from cohortflow.fhir.bundle import reference, transaction
from cohortflow.fhir.provenance import file_entity, provenance, sidecar_entities
from cohortflow.io.atomic import sha256_file

CLASSIFIER_NAME = "cohortflow white-matter abnormality CNN"
DEFACE_QA_NAME = "cohortflow defacing-QA classifier"
CNN_METHOD = (
    "3D CNN on the thresholded white-matter cluster map (HeteroMRI, Abedi et al. 2025): N4, "
    "registration to MNI152, robust fuzzy c-means white-matter cluster"
)


def _read(path: str | Path) -> dict[str, Any]:
    try:
        return json.loads(Path(path).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise CohortflowError(f"{path}: cannot read the JSON record ({exc})") from exc


def _software(record: dict[str, Any]) -> dict[str, str]:
    return {
        str(k): str(v) for k, v in (record.get("Software") or record.get("software") or {}).items()
    }


def software_devices(records: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """One Device per (package, version) recorded in any of the records, sorted."""
    pairs = {pair for record in records for pair in _software(record).items()}
    return [
        findings.software_device(
            name, version, manufacturer="cohortflow" if name == "cohortflow" else None
        )
        for name, version in sorted(pairs)
    ]


def subject_bundle(
    pseudonym: str,
    *,
    ingest_sidecar: str | Path,
    system: str,
    config_hex: str,
    recorded: str,
    dicom_dir: str | Path | None = None,
    step_sidecars: list[str | Path] = (),
    prediction: str | Path | None = None,
    model_card: str | Path | None = None,
    decisions: list[str | Path] = (),
    workflow_commit: str | None = None,
) -> tuple[dict[str, Any], list[str]]:
    """The transaction Bundle of one subject/session and notes on anything left out."""
    sidecar = _read(ingest_sidecar)
    if sidecar.get("Subject") != pseudonym:
        raise CohortflowError(
            f"{ingest_sidecar}: the sidecar is for subject {sidecar.get('Subject')!r}, "
            f"not {pseudonym!r}"
        )
    records = [sidecar] + [_read(p) for p in step_sidecars]
    models: list[dict[str, Any]] = []
    pat = findings.patient(pseudonym, system)
    pat_ref = reference(pat)
    cohortflow = findings.software_device("cohortflow", __version__, manufacturer="cohortflow")
    scanner = imaging.scanner_device(sidecar)
    instances = None
    if dicom_dir is not None and sidecar.get("SeriesInstanceUID"):
        instances = imaging.read_instances(dicom_dir, str(sidecar["SeriesInstanceUID"]))
    study, notes = imaging.imaging_study(
        sidecar, pseudonym, pat_ref, reference(scanner) if scanner else None, instances
    )
    resources = [pat, study] + ([scanner] if scanner else [])
    entities = [
        file_entity(
            f"ingest source ({sidecar.get('SourceFormat', '?')}, "
            f"{sidecar.get('InputFiles', '?')} file(s))",
            sidecar["InputSHA256"],
        )
    ]
    for record in records[1:]:
        entities += sidecar_entities(record)

    if prediction is not None:
        pred = _read(prediction)
        card = _read(model_card) if model_card else {}
        if card and card.get("model_id") != pred.get("model_id"):
            raise CohortflowError(
                f"{prediction}: model {pred.get('model_id')} is not the model card's "
                f"{card.get('model_id')}"
            )
        records.append(card)
        classifier = findings.software_device(
            CLASSIFIER_NAME, str(pred["model_id"]), kind="classifier", manufacturer="cohortflow"
        )
        obs = findings.wm_observation(
            pseudonym,
            float(pred["probability"]),
            str(pred["label"]),
            patient_ref=pat_ref,
            study_ref=reference(study),
            device_ref=reference(classifier),
            method=CNN_METHOD,
        )
        report = findings.diagnostic_report(
            pseudonym,
            obs,
            patient_ref=pat_ref,
            study_ref=reference(study),
            observation_ref=reference(obs),
        )
        resources += [classifier, obs, report]
        models.append(classifier)
        entities += sidecar_entities(pred)
    else:
        notes.append("no classifier prediction: no white-matter Observation or report")

    for path in decisions:
        decision = _read(path)
        records.append(decision)
        model_sha = decision.get("Inputs", {}).get("model", {}).get("sha256", "unknown")
        qa_model = findings.software_device(
            DEFACE_QA_NAME,
            f"sha256:{model_sha[:16]}",
            kind="deface-qa-model",
            manufacturer="cohortflow",
        )
        models.append(qa_model)
        obs = findings.deface_qa_observation(
            pseudonym,
            decision,
            patient_ref=pat_ref,
            study_ref=reference(study),
            device_ref=reference(qa_model),
        )
        resources += [qa_model, obs]
        entities += sidecar_entities(decision)

    software = software_devices(records)
    resources += [cohortflow] + [d for d in software if d["id"] != cohortflow["id"]]
    prov = provenance(
        (pseudonym, str(sidecar.get("Session", ""))),
        resources,
        entities=entities,
        assembler_ref=reference(cohortflow),
        performer_refs=[reference(d) for d in [*software, *models]],
        recorded=recorded,
        config_sha256_hex=config_hex,
        workflow_commit=workflow_commit,
    )
    return transaction([*resources, prov]), notes


def sample_pseudonyms(samples: pd.DataFrame, key) -> list[str]:
    """HMAC labels of the samples' IIDs (FID_IID where IIDs repeat across families)."""
    from cohortflow.privacy.pseudonym import make_subject_map

    ids = samples["IID"].astype(str)
    if ids.duplicated().any():
        ids = samples["FID"].astype(str) + "_" + ids
    mapping = make_subject_map(key, list(ids))
    return [mapping[i] for i in ids]


def plink_devices(summary: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """engine → the Device of the PLINK build that ran (from the run record)."""
    devices: dict[str, dict[str, Any]] = {}
    for run in summary.get("plink_runs", []):
        engine = run["engine"]
        if engine not in devices:
            name = {"plink2": "PLINK 2", "plink1.9": "PLINK 1.9"}.get(engine, engine)
            devices[engine] = findings.software_device(name, str(run["version"]))
    return devices


def genotype_bundles(
    samples_tsv: str | Path,
    summary_json: str | Path,
    settings_json: str | Path,
    input_files: dict[str, str],
    *,
    key,
    system: str,
    config_hex: str,
    recorded: str,
    max_entries: int | None = 50,
    workflow_commit: str | None = None,
) -> list[dict[str, Any]]:
    """The genotype QC transactions (see the module doc), in sample order."""
    samples = pd.read_csv(
        samples_tsv,
        sep="\t",
        dtype={"FID": str, "IID": str},
        keep_default_na=False,
        na_values=["NA"],
    )
    summary = _read(summary_json)
    settings = _read(settings_json).get("settings")
    if not settings:
        raise CohortflowError(f"{settings_json}: no QC settings record")
    devices = plink_devices(summary)
    cohortflow = findings.software_device("cohortflow", __version__, manufacturer="cohortflow")
    refs = {engine: reference(d) for engine, d in devices.items()}
    fixed = [cohortflow, *devices.values()]
    per_sample = 6
    room = None if not max_entries else (max_entries - len(fixed) - 1) // per_sample
    if room is not None and room < 1:
        raise CohortflowError(
            f"fhir.max_bundle_entries {max_entries}: too small for one sample "
            f"({per_sample + len(fixed) + 1} entries)"
        )
    # The Observations are built from the samples table, which (like the genotype inputs) has
    # the same bytes on every run; the summary only names the PLINK builds (the Devices) and
    # carries run timings, so its checksum would differ from run to run.
    entities = [
        file_entity(name, sha256_file(path), str(path))
        for name, path in sorted({**input_files, "samples table": str(samples_tsv)}.items())
    ]
    pseudonyms = sample_pseudonyms(samples, key)
    rows = samples.to_dict("records")
    step = room or len(rows)
    bundles = []
    for part, start in enumerate(range(0, len(rows), step), start=1):
        resources = list(fixed)
        for row, label in zip(
            rows[start : start + step], pseudonyms[start : start + step], strict=True
        ):
            resources += genotypes.sample_resources(
                row, label, system=system, settings=settings, devices=refs
            )
        prov = provenance(
            ("genotype-qc", f"part-{part:03d}", pseudonyms[start]),
            resources,
            entities=entities,
            assembler_ref=reference(cohortflow),
            performer_refs=[reference(d) for d in devices.values()],
            recorded=recorded,
            config_sha256_hex=config_hex,
            workflow_commit=workflow_commit,
        )
        bundles.append(transaction([*resources, prov]))
    return bundles
