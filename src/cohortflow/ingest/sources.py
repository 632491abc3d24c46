"""One person, one row: sample-sheet rows whose sources hold the same images are refused.

When the workflow starts, rows whose sources are one path, or one inside the other, are refused
(:func:`cohortflow.cohort.refuse_shared_sources`). Copies of the same files in two places are
only visible once they are read: after ingest, this cohort-level check compares every
subject's input checksum (the SHA-256 of its files) and its series UID (remapped with the key,
so equal originals give equal values). Two rows that share either would be two pseudonyms for
one person: two FHIR Patients, and the same images on both sides of a cross-validation split.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from cohortflow.errors import InputError
from cohortflow.io.atomic import atomic_output_file

SOURCES_COLUMNS = ["subject", "session", "sheet_row", "input_sha256", "series_uid"]


def check_sources(sidecars: dict[str, str], sheet_rows: dict[str, int], out_tsv: str) -> None:
    """``sidecars``/``sheet_rows``: "<pseudonym>_<session>" -> ingest sidecar / sheet row.

    Writes one row per subject and session; raises InputError naming both sheet rows (and what
    they share) for the first pair of rows with the same files or the same series.
    """
    rows = []
    for key, path in sorted(sidecars.items(), key=lambda item: sheet_rows[item[0]]):
        sidecar = json.loads(Path(path).read_text())
        rows.append(
            {
                "subject": sidecar["Subject"],
                "session": sidecar["Session"],
                "sheet_row": sheet_rows[key],
                "input_sha256": sidecar.get("InputSHA256") or "",
                "series_uid": sidecar.get("SeriesInstanceUID") or "",
            }
        )
    table = pd.DataFrame(rows, columns=SOURCES_COLUMNS)
    for column, what in (("input_sha256", "the same files"), ("series_uid", "the same series")):
        values = table[table[column] != ""]
        shared = values[values.duplicated(column, keep=False)]
        if not shared.empty:
            first = shared.iloc[0][column]
            numbers = sorted(shared.loc[shared[column] == first, "sheet_row"].tolist())
            listed = " and ".join(str(n) for n in numbers)
            raise InputError(
                None,
                f"sample sheet rows {listed}: their sources hold {what} (one person's images "
                "under two rows would become two pseudonyms); keep one row per image series",
            )
    with atomic_output_file(out_tsv) as tmp:
        table.to_csv(tmp, sep="\t", index=False)
