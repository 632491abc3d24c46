"""Every code system, code and profile URL the FHIR export writes, in one place.

Each constant is asserted in ``tests/test_fhir_imaging.py`` (no validator here checks
terminology). Sources: the MII Bildgebung v2026.0.0 snapshots and examples
(``../shared/fhir/mii``), DICOM PS3.16 (CID 33 modalities), PS3.4 (SOP classes), SNOMED CT,
UCUM.
"""

from __future__ import annotations

from functools import cache

MII = "https://www.medizininformatik-initiative.de/fhir/ext/modul-bildgebung"
PROFILE_IMAGING_STUDY = f"{MII}/StructureDefinition/mii-pr-bildgebung-bildgebungsstudie"
PROFILE_DEVICE = f"{MII}/StructureDefinition/mii-pr-bildgebung-geraet"
PROFILE_OBSERVATION = f"{MII}/StructureDefinition/mii-pr-bildgebung-radiologische-beobachtung"
PROFILE_REPORT = f"{MII}/StructureDefinition/mii-pr-bildgebung-radiologischer-befund"
EXT_MR = f"{MII}/StructureDefinition/mii-ex-bildgebung-modalitaet-mr"
CS_SCANNING_SEQUENCE = f"{MII}/CodeSystem/mii-cs-bildgebung-scanning-sequence"
CS_SCANNING_VARIANT = f"{MII}/CodeSystem/mii-cs-bildgebung-scanning-sequence-variant"
#: DICOM (0018,0020) Scanning Sequence and (0018,0021) Sequence Variant defined terms, as the MII
#: code systems hold them.
SCANNING_SEQUENCES = {"SE", "IR", "GR", "EP", "RM"}
SCANNING_VARIANTS = {"SK", "MTC", "SS", "TRSS", "SP", "MP", "OSP", "NONE"}

DCM = "http://dicom.nema.org/resources/ontology/DCM"
MODALITY_MR = {"system": DCM, "code": "MR", "display": "Magnetic Resonance"}
DICOM_UID = "urn:dicom:uid"
RFC3986 = "urn:ietf:rfc:3986"
SNOMED = "http://snomed.info/sct"
BODY_SITE_BRAIN = {"system": SNOMED, "code": "12738006", "display": "Brain structure"}
UCUM = "http://unitsofmeasure.org"
#: The MR extension's fixed units (unit text, UCUM code) per sub-extension.
MR_UNITS = {
    "magneticFieldStrength": ("tesla", "T"),
    "echoTime": ("milliseconds", "ms"),
    "repetitionTime": ("milliseconds", "ms"),
    "inversionTime": ("milliseconds", "ms"),
    "flipAngle": ("plane angle degree", "deg"),
}

LOINC = "http://loinc.org"
#: cohortflow's own code system for findings that SNOMED CT has no verified code for.
CS_COHORTFLOW = "https://github.com/cohortflow/cohortflow/fhir/CodeSystem/cohortflow"
WM_ABNORMALITY = {
    "system": CS_COHORTFLOW,
    "code": "wm-abnormality",
    "display": "White-matter abnormality (CNN on the white-matter cluster map)",
}
WM_PROBABILITY = {"system": CS_COHORTFLOW, "code": "wm-abnormality-probability",
                  "display": "Probability of white-matter abnormality"}  # fmt: skip
#: SNOMED CT qualifier values for the finding's presence.
PRESENT = {"system": SNOMED, "code": "52101004", "display": "Present"}
ABSENT = {"system": SNOMED, "code": "2667000", "display": "Absent"}
#: The radiologische-Beobachtung category slice 'loinc'.
CATEGORY_RADIOLOGY_OBSERVATION = {"system": LOINC, "code": "18782-3",
                                  "display": "Radiology Study observation (narrative)"}  # fmt: skip
#: The radiologischer-Befund category slice 'sct' (1..1) and the report code.
CATEGORY_IMAGING_REPORT = {"system": SNOMED, "code": "4201000179104",
                           "display": "Imaging report (record artifact)"}  # fmt: skip
REPORT_MR = {"system": SNOMED, "code": "4251000179103",
             "display": "Magnetic resonance imaging report"}  # fmt: skip
UNITLESS = {"unit": "1", "system": UCUM, "code": "1"}
PSEUDONYMISED = {"system": "http://terminology.hl7.org/CodeSystem/v3-ObservationValue",
                 "code": "PSEUDED", "display": "pseudonymized"}  # fmt: skip

#: HL7 observation-category and interpretation, provenance vocabularies.
CS_OBSERVATION_CATEGORY = "http://terminology.hl7.org/CodeSystem/observation-category"
CATEGORY_IMAGING = {"system": CS_OBSERVATION_CATEGORY, "code": "imaging", "display": "Imaging"}
CATEGORY_LABORATORY = {"system": CS_OBSERVATION_CATEGORY, "code": "laboratory",
                       "display": "Laboratory"}  # fmt: skip
CS_INTERPRETATION = "http://terminology.hl7.org/CodeSystem/v3-ObservationInterpretation"
NORMAL = {"system": CS_INTERPRETATION, "code": "N", "display": "Normal"}
ABNORMAL = {"system": CS_INTERPRETATION, "code": "A", "display": "Abnormal"}
CS_ADMINISTRATIVE_GENDER = "http://hl7.org/fhir/administrative-gender"
CS_DATA_OPERATION = "http://terminology.hl7.org/CodeSystem/v3-DataOperation"
ACTIVITY_CREATE = {"system": CS_DATA_OPERATION, "code": "CREATE", "display": "create"}
CS_PARTICIPANT_TYPE = "http://terminology.hl7.org/CodeSystem/provenance-participant-type"
AGENT_ASSEMBLER = {"system": CS_PARTICIPANT_TYPE, "code": "assembler", "display": "Assembler"}
AGENT_PERFORMER = {"system": CS_PARTICIPANT_TYPE, "code": "performer", "display": "Performer"}
#: DICOM SOP classes an MR series exported here may have (PS3.4 B.5).
MR_SOP_CLASSES = {
    "1.2.840.10008.5.1.4.1.1.4": "MR Image Storage",
    "1.2.840.10008.5.1.4.1.1.4.1": "Enhanced MR Image Storage",
}


def _own(code: str, display: str) -> dict[str, str]:
    return {"system": CS_COHORTFLOW, "code": code, "display": display}


#: Defacing QA (after DefaceQA): the decision and the classifier's class probabilities.
DEFACE_QA = _own("deface-qa", "Defacing quality assessment of a defaced MR image")
DEFACE_DECISIONS = {
    "accepted": _own("deface-accepted", "Defaced image accepted"),
    "face_remains": _own("deface-face-remains", "Defaced image rejected: face remains"),
    "brain_damaged": _own("deface-brain-damaged", "Defaced image rejected: brain damaged"),
}
DEFACE_PROBABILITY = {
    name: _own(f"deface-qa-probability-{name.replace('_', '-')}", f"Probability: {text}")
    for name, text in (("accepted", "defaced image acceptable"),
                       ("face_remains", "face remains"), ("brain_damaged", "brain damaged"))
}  # fmt: skip
#: Genotype QC per sample (SNP array; PLINK 1.9/2). No LOINC or SNOMED CT code describes these
#: array QC metrics, so they are cohortflow codes, documented in README (FHIR export).
GENOTYPE_CALL_RATE = _own("genotype-call-rate", "SNP-array genotype call rate of a sample")
GENOTYPE_SEX_CHECK = _own("genotype-sex-check", "Genetic sex check (chrX inbreeding F)")
GENOTYPE_HETEROZYGOSITY = _own("genotype-heterozygosity",
                               "Autosomal heterozygosity (inbreeding coefficient F)")  # fmt: skip
GENOTYPE_RELATEDNESS = _own("genotype-relatedness",
                            "Related to another sample of the cohort (KING kinship)")  # fmt: skip
GENOTYPE_QC_STATUS = _own("genotype-qc-status", "Sample genotype QC outcome")
CHRX_F = _own("chrx-inbreeding-f", "chrX inbreeding coefficient F")
GENETIC_SEX = _own("genetic-sex", "Sex inferred from chrX genotypes")
MAX_KINSHIP = _own("max-kinship", "Highest KING kinship coefficient with another sample")
N_RELATIVES = _own("n-relatives", "Number of samples related at or above the kinship threshold")
#: Keyed by the sex_status values of results/genotype_qc/report/samples.tsv.
SEX_CHECK_RESULTS = {
    "ok": _own("sex-check-ok", "Genetic sex agrees with the reported sex"),
    "mismatch": _own("sex-check-mismatch", "Genetic sex differs from the reported sex"),
    "ambiguous": _own("sex-check-ambiguous", "Genetic sex ambiguous (F between thresholds)"),
    "not reported": _own("sex-check-not-reported", "No reported sex to compare with"),
    "not reported, ambiguous": _own("sex-check-not-reported-ambiguous",
                                    "No reported sex, and genetic sex ambiguous"),
    "not checkable (no chrX variants)": _own("sex-check-not-checkable",
                                             "No chrX variants: sex not checkable"),
    "not checkable (too few chrX SNPs)": _own("sex-check-too-few-snps",
                                              "Too few chrX SNPs: sex check skipped"),
}  # fmt: skip
QC_STATUS = {
    "kept": _own("qc-kept", "Sample passed genotype QC"),
    "removed": _own("qc-removed", "Sample removed by genotype QC"),
}
DATA_ABSENT_NOT_PERFORMED = {
    "system": "http://terminology.hl7.org/CodeSystem/data-absent-reason",
    "code": "not-performed",
    "display": "Not Performed",
}
GENDERS = {"male", "female"}


@cache
def known_codes() -> frozenset[tuple[str, str]]:
    """Every (system, code) this module defines: a coding or UCUM quantity outside this set in
    an exported resource is a bug (no terminology server checks codes here)."""
    found: set[tuple[str, str]] = set()

    def add(value: object) -> None:
        if isinstance(value, dict) and {"system", "code"} <= value.keys():
            found.add((value["system"], value["code"]))
        elif isinstance(value, dict):
            for item in value.values():
                add(item)

    for value in list(globals().values()):
        add(value)
    found |= {(CS_SCANNING_SEQUENCE, c) for c in SCANNING_SEQUENCES}
    found |= {(CS_SCANNING_VARIANT, c) for c in SCANNING_VARIANTS}
    found |= {(UCUM, code) for _, code in MR_UNITS.values()}
    found |= {(RFC3986, f"urn:oid:{uid}") for uid in MR_SOP_CLASSES}
    found |= {(CS_ADMINISTRATIVE_GENDER, g) for g in GENDERS}
    return frozenset(found)
