"""The cohort of a run: sample-sheet rows keyed by pseudonym, as the workflow needs them.

``common.smk`` builds one :class:`Cohort` before the DAG; its input functions are one-line
calls into it. Only pseudonyms appear in wildcards, paths and logs.
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from cohortflow.errors import ConfigError
from cohortflow.ingest.nifti_input import is_bids_dataset
from cohortflow.privacy.demo_source import check_demo_rows
from cohortflow.privacy.pseudonym import PseudonymKey, make_subject_map

OUR_DEFACER = "cohortflow"
DEMO_MRI_RAW = re.compile(r"^resources/demo/mri/(?P<demo>[A-Za-z0-9]+)/raw(/.*)?$")


@dataclass(frozen=True)
class Row:
    number: int  # 1-based data row of the sample sheet
    subject_id: str  # the site's ID: never written to outputs or logs
    label: str  # pseudonym
    session: str
    source: str
    wm_label: str
    dataset: str
    protocol: str
    defaced: str = ""  # the same image defaced by another tool (for deface_qa)
    defacer: str = ""

    @property
    def demo_subject(self) -> str | None:
        # normpath: "resources/demo/mri/demo01/raw/../../../../x" is not a demo source.
        match = DEMO_MRI_RAW.match(os.path.normpath(self.source))
        return match["demo"] if match else None

    @property
    def where(self) -> str:
        """How messages name this row without its site ID."""
        return f"sub-{self.label} (sample sheet row {self.number})"


def refuse_shared_sources(rows: list[Row]) -> None:
    """Two rows whose sources are one file or folder, or one inside the other (links followed),
    are refused naming both rows: one person would get two pseudonyms (two FHIR Patients, and
    the same images in two cross-validation folds). Copies of the same files in two places are
    found after ingest, by content (:func:`cohortflow.ingest.sources.duplicate_sources`)."""
    by_path: dict[str, Row] = {}
    for row in rows:
        real = os.path.realpath(row.source)
        if is_bids_dataset(Path(real)):  # one dataset, many subjects: a row is its subject
            real = f"{real}{os.sep}sub-{row.subject_id}{os.sep}ses-{row.session}"
        if real in by_path:
            _refuse_pair(by_path[real], row)
        by_path[real] = row
    for real, row in by_path.items():  # one set look-up per ancestor: linear in the sheet
        for ancestor in Path(real).parents:
            if str(ancestor) in by_path:
                _refuse_pair(by_path[str(ancestor)], row)


def _refuse_pair(first: Row, second: Row) -> None:
    a, b = sorted((first.number, second.number))
    raise ConfigError(
        f"sample sheet rows {a} and {b}: their sources are the same file or folder, or one "
        "lies inside the other; each image series may belong to one row only"
    )


class Cohort:
    def __init__(self, sheet: pd.DataFrame, key: PseudonymKey | None):
        """``key`` may be None only for an empty sheet (a run without imaging)."""
        if key is None and not sheet.empty:
            raise ConfigError("a sample sheet with rows needs the pseudonymisation key")
        labels = make_subject_map(key, sheet["subject"].tolist()) if key else {}
        self.key_source = key.source if key else None
        self.rows: list[Row] = [
            Row(
                number=i + 1,
                subject_id=rec["subject"],
                label=labels[rec["subject"]],
                session=rec["session"],
                source=rec["source"],
                wm_label=rec.get("label", ""),
                dataset=rec.get("dataset", ""),
                protocol=rec.get("protocol", ""),
                defaced=rec.get("defaced", ""),
                defacer=rec.get("defacer", ""),
            )
            for i, rec in enumerate(sheet.to_dict(orient="records"))
        ]
        self._by_key = {(r.label, r.session): r for r in self.rows}
        for r in self.rows:
            if bool(r.defaced) != bool(r.defacer):
                raise ConfigError(
                    f"sample sheet row {r.number}: columns 'defaced' and 'defacer' go together "
                    "(the defaced image and the tool that made it)"
                )
            if r.defacer == OUR_DEFACER:
                raise ConfigError(
                    f"sample sheet row {r.number}: defacer name {OUR_DEFACER!r} is reserved for "
                    "cohortflow's own defacing"
                )
        if key is not None and key.is_demo:
            check_demo_rows([(r.number, r.source, r.demo_subject) for r in self.rows], Path.cwd())
        refuse_shared_sources(self.rows)

    @property
    def labelled_rows(self) -> list[Row]:
        """Rows with a yes/no label (the ones a classifier trains on)."""
        return [r for r in self.rows if r.wm_label in ("yes", "no")]

    def classify_table(self) -> pd.DataFrame:
        """subject (pseudonym), label, dataset, protocol of every row, for the splits."""
        return pd.DataFrame(
            [
                {"subject": r.label, "label": r.wm_label, "dataset": r.dataset,
                 "protocol": r.protocol}
                for r in self.rows
            ],
            columns=["subject", "label", "dataset", "protocol"],
        )  # fmt: skip

    def defacers(self, row: Row) -> list[str]:
        """Whose defacing of this row deface_qa evaluates: ours, and the sheet's tool if any."""
        return [OUR_DEFACER, row.defacer] if row.defacer else [OUR_DEFACER]

    def row(self, subject: str, session: str) -> Row:
        return self._by_key[(subject, session)]

    @property
    def demo_subjects(self) -> list[str]:
        return sorted({r.demo_subject for r in self.rows if r.demo_subject})

    @staticmethod
    def is_dicom(row: Row) -> bool:
        """Whether the source is a DICOM folder (demo sources by their path, others on disk)."""
        path = Path(row.source)
        if row.demo_subject:
            return path.name == "dicom"
        return path.is_dir() and not is_bids_dataset(path)

    def bids_subject(self, subject: str, session: str) -> str | None:
        row = self.row(subject, session)
        return row.subject_id if is_bids_dataset(Path(row.source)) else None

    def source_input(self, subject: str, session: str) -> list[str]:
        """What Snakemake must track for this subject's source.

        A demo source is produced by the demo rule (its raw folder). A real source is tracked
        when it exists; a missing one is not declared, so that only this subject's ingest job
        fails (with a message naming subject, path and reason) and ``--keep-going`` lets every
        other subject finish, instead of the whole DAG being refused.
        """
        row = self.row(subject, session)
        if row.demo_subject:
            return [f"resources/demo/mri/{row.demo_subject}/raw"]
        return [row.source] if _trackable(row.source) and Path(row.source).exists() else []

    def defaced_input(self, subject: str, session: str) -> list[str]:
        """Another tool's defaced image, as an input Snakemake tracks (when it can)."""
        path = self.row(subject, session).defaced
        return [path] if path and _trackable(path) and Path(path).exists() else []

    def untracked_sources(self) -> list[str]:
        """Warnings for rows whose paths Snakemake cannot track (see :func:`_trackable`)."""
        return [
            f"sample sheet row {row.number}: its {column} path contains '{{' or '}}', which "
            "Snakemake reads as a wildcard; it is read as it is, but not tracked as an input "
            "(after changing its files, rerun that subject with --forcerun ingest)"
            for row in self.rows
            for column, path in (("source", row.source), ("defaced", row.defaced))
            if path and not _trackable(path)
        ]


def _trackable(path: str) -> bool:
    """Whether Snakemake can take ``path`` as an input file: braces are wildcards to it, even
    in what an input function returns (and escaping them is not honoured there), and one such
    path would stop the whole DAG. The job itself reads the path from its params."""
    return "{" not in path and "}" not in path
