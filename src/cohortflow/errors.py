"""Errors that name what went wrong, for whom and where.

Every stage raises :class:`InputError` (or a subclass) for bad input. The message always
carries the file and the reason; the subject is added by whoever knows it (the workflow
script wraps the call with :func:`for_subject`), so a log line reads e.g.

    subject sub-3fa9c2d17e01 (sample sheet row 4): /data/s4/dicom/IM_0007: truncated DICOM file ...
"""

from __future__ import annotations

from pathlib import Path


class CohortflowError(Exception):
    """Base class of all errors cohortflow raises on purpose."""


class InputError(CohortflowError):
    """Bad input data: the file (or folder) and the reason are always given."""

    def __init__(self, path: str | Path | None, reason: str, subject: str | None = None):
        self.path = None if path is None else str(path)
        self.reason = reason
        self.subject = subject
        super().__init__(self._message())

    def _message(self) -> str:
        parts = []
        if self.subject:
            parts.append(f"subject {self.subject}")
        if self.path:
            parts.append(self.path)
        parts.append(self.reason)
        return ": ".join(parts)

    def with_subject(self, subject: str) -> InputError:
        """The same error, naming the subject (keeps the subclass)."""
        self.subject = subject
        self.args = (self._message(),)
        return self


class DicomError(InputError):
    """A DICOM file or series that cannot be read or converted safely."""


class GeometryError(DicomError):
    """A series whose slices do not form one regular 3D grid."""


class SeriesSelectionError(InputError):
    """No series, or more than one, matches the role that the config asks for."""


class NiftiError(InputError):
    """A NIfTI file that is not a usable 3D image."""


class ConfigError(CohortflowError):
    """Invalid config or sample sheet: the message names the key/row/column and the rule."""
