"""Per-sample genotype QC Observations from ``results/genotype_qc/report/samples.tsv``.

Each genotyped sample becomes a Patient (its pseudonym: the HMAC label of its IID, made with the
run's pseudonymisation key, so a sample whose IID equals a sample-sheet subject ID links to the
same Patient) and five Observations, category ``laboratory``, each naming the PLINK Device that
computed it:

* call rate (1 − F_MISS, plink2 ``--missing``), reference range ≥ 1 − the sample-missing limit;
* sex check (plink1.9 ``--check-sex``): the status as a code, chrX F and the genetic sex as
  components;
* heterozygosity (plink2 ``--het`` on LD-pruned autosomal SNPs): F, abnormal when removed for it;
* relatedness (plink2 ``--make-king-table``): related yes/no at the kinship threshold, the
  number of relatives and the highest kinship as components. The relatives' IDs stay out;
* QC outcome: kept/removed, and the removing step and reason codes as a note (the report's
  free-text details name other samples and stay out).

A metric that was not computed for a sample (it was removed by an earlier step) carries a
``dataAbsentReason`` instead of a value. No LOINC or SNOMED CT code describes these array QC
metrics; the codes are cohortflow's own (:mod:`cohortflow.fhir.codes`).
"""

from __future__ import annotations

import math
from typing import Any

from cohortflow.fhir import codes
from cohortflow.fhir.findings import patient
from cohortflow.fhir.ids import resource_id


def _missing(value: Any) -> bool:
    if value is None:
        return True
    if isinstance(value, float) and math.isnan(value):
        return True
    return str(value).strip() in ("", "NA", "nan", "None")


def _quantity(value: Any) -> dict[str, Any]:
    return {"value": round(float(value), 6), **codes.UNITLESS}


def _interpretation(abnormal: bool) -> list[dict[str, Any]]:
    return [{"coding": [dict(codes.ABNORMAL if abnormal else codes.NORMAL)]}]


def sample_resources(
    row: dict[str, Any],
    pseudonym: str,
    *,
    system: str,
    settings: dict[str, Any],
    devices: dict[str, str],
) -> list[dict[str, Any]]:
    """The Patient and five Observations of one ``samples.tsv`` row (a dict of its columns).

    ``devices`` maps ``plink2`` and ``plink1.9`` (those that ran) to Device references;
    ``settings`` is the QC settings record of the run (``steps/0_import/step.json``)."""
    pat = patient(pseudonym, system)
    subject = {"reference": f"Patient/{pat['id']}"}
    reasons = set() if _missing(row.get("reasons")) else set(str(row["reasons"]).split(";"))

    def observation(kind: str, code: dict[str, str], engine: str, method: str) -> dict[str, Any]:
        obs = {
            "resourceType": "Observation",
            "id": resource_id(pseudonym, "Observation", "genotype-qc", kind),
            "status": "final",
            "category": [{"coding": [dict(codes.CATEGORY_LABORATORY)]}],
            "code": {"coding": [dict(code)]},
            "subject": dict(subject),
            "method": {"text": method},
        }
        if engine in devices:  # plink1.9 does not run when there is no chrX to check
            obs["device"] = {"reference": devices[engine]}
        return obs

    def absent(obs: dict[str, Any]) -> dict[str, Any]:
        obs["dataAbsentReason"] = {
            "coding": [dict(codes.DATA_ABSENT_NOT_PERFORMED)],
            "text": "sample removed by an earlier QC step",
        }
        return obs

    limit = float(settings["sample_missing"])
    call = observation(
        "call-rate",
        codes.GENOTYPE_CALL_RATE,
        "plink2",
        "plink2 --missing sample-only after the variant call-rate pre-filter",
    )
    call["valueQuantity"] = _quantity(1.0 - float(row["F_MISS"]))
    call["interpretation"] = _interpretation("sample_missing" in reasons)
    call["referenceRange"] = [{"low": _quantity(1.0 - limit)}]

    female_max, male_min = settings["sex_female_max_f"], settings["sex_male_min_f"]
    sex = observation(
        "sex-check",
        codes.GENOTYPE_SEX_CHECK,
        "plink1.9",
        f"plink1.9 --check-sex {female_max} {male_min}",
    )
    status = row.get("sex_status")
    if _missing(status):
        absent(sex)
    else:
        if status not in codes.SEX_CHECK_RESULTS:
            raise ValueError(f"unknown sex-check status {status!r}")
        sex["valueCodeableConcept"] = {"coding": [dict(codes.SEX_CHECK_RESULTS[status])]}
        sex["interpretation"] = _interpretation(status in ("mismatch", "ambiguous"))
        components = []
        if not _missing(row.get("sex_F")):
            components.append(
                {"code": {"coding": [dict(codes.CHRX_F)]}, "valueQuantity": _quantity(row["sex_F"])}
            )
        genetic = str(row.get("sex_genetic", ""))
        if genetic in codes.GENDERS:
            components.append(
                {
                    "code": {"coding": [dict(codes.GENETIC_SEX)]},
                    "valueCodeableConcept": {
                        "coding": [{"system": codes.CS_ADMINISTRATIVE_GENDER, "code": genetic}]
                    },
                }
            )
        if components:
            sex["component"] = components

    het = observation(
        "heterozygosity",
        codes.GENOTYPE_HETEROZYGOSITY,
        "plink2",
        f"plink2 --het on LD-pruned autosomal SNPs; outlier beyond mean ± "
        f"{settings['het_n_sd']} SD",
    )
    if _missing(row.get("het_F")):
        absent(het)
    else:
        het["valueQuantity"] = _quantity(row["het_F"])
        het["interpretation"] = _interpretation("heterozygosity" in reasons)

    kinship = float(settings["kinship"])
    rel = observation(
        "relatedness",
        codes.GENOTYPE_RELATEDNESS,
        "plink2",
        f"plink2 --make-king-table; related at kinship >= {kinship}",
    )
    if _missing(row.get("n_relatives")):
        absent(rel)
    else:
        n = int(float(row["n_relatives"]))
        rel["valueBoolean"] = n > 0
        rel["component"] = [{"code": {"coding": [dict(codes.N_RELATIVES)]}, "valueInteger": n}]
        if not _missing(row.get("max_kinship")):
            rel["component"].append(
                {
                    "code": {"coding": [dict(codes.MAX_KINSHIP)]},
                    "valueQuantity": _quantity(row["max_kinship"]),
                }
            )
        rel["interpretation"] = _interpretation("related" in reasons)

    outcome = observation(
        "status", codes.GENOTYPE_QC_STATUS, "plink2", "cohortflow genotype QC (PLINK 2 and 1.9)"
    )
    if row["status"] not in codes.QC_STATUS:
        raise ValueError(f"unknown QC status {row['status']!r}")
    outcome["valueCodeableConcept"] = {"coding": [dict(codes.QC_STATUS[row["status"]])]}
    outcome["interpretation"] = _interpretation(row["status"] != "kept")
    if row["status"] != "kept":
        outcome["note"] = [
            {
                "text": f"removed at step {row.get('removed_at')}: "
                f"{', '.join(sorted(reasons)) or 'no reason recorded'}"
            }
        ]
    return [pat, call, sex, het, rel, outcome]
