"""Every code system, code and profile URL the FHIR export writes, in one place.

Each constant is asserted in ``tests/test_fhir_imaging.py`` (no validator here checks
terminology). Sources: the MII Bildgebung v2026.0.0 snapshots and examples
(``../shared/fhir/mii``), DICOM PS3.16 (CID 33 modalities), PS3.4 (SOP classes), SNOMED CT,
UCUM.
"""

from __future__ import annotations

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
