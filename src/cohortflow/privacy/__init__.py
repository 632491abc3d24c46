"""Privacy services every stage uses: keyed pseudonyms, PS3.15 de-identification, the PHI scan
and controlled-vocabulary descriptions.

- :mod:`~cohortflow.privacy.pseudonym`: the key, subject labels, UID remapping;
- :mod:`~cohortflow.privacy.ps3_15`: the standard's table (data) and our keep-list;
- :mod:`~cohortflow.privacy.deidentify`: the profile applied to a DICOM data set or file;
- :mod:`~cohortflow.privacy.phi`: search terms of a header and the scan of outputs;
- :mod:`~cohortflow.privacy.descriptors`: descriptions rebuilt from a controlled vocabulary.
"""

from cohortflow.privacy.deidentify import deidentify_dataset, deidentify_file
from cohortflow.privacy.descriptors import rebuild_description, rebuild_sequence_name
from cohortflow.privacy.phi import find_phi, identifying_attributes, identifying_values
from cohortflow.privacy.pseudonym import (
    DEMO_KEY,
    PseudonymKey,
    key_fingerprint,
    load_job_key,
    load_key,
    make_subject_map,
    remap_uid,
    subject_label,
)

__all__ = [
    "DEMO_KEY",
    "PseudonymKey",
    "deidentify_dataset",
    "deidentify_file",
    "find_phi",
    "identifying_attributes",
    "identifying_values",
    "key_fingerprint",
    "load_job_key",
    "load_key",
    "make_subject_map",
    "rebuild_description",
    "rebuild_sequence_name",
    "remap_uid",
    "subject_label",
]
