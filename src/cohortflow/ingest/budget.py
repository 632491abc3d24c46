"""Budgets before bytes: an image's size is known from its header before any pixel is read.

A 1 MB ``.nii.gz`` can declare a gigavoxel image, a DICOM header can declare 65535 x 65535
pixels, and a deflated DICOM file inflates about a thousandfold. Each such file would be
decompressed in full before any check could look at it, and the job would end in the operating
system's out-of-memory killer (or a ``MemoryError``) instead of a message. So ingest computes
every image's size from its header (NIfTI: dimensions x data type; DICOM: Rows x Columns x
frames x bits x files) and refuses it above ``ingest.max_image_mb`` before reading pixel data.
The limit applies to the image as ingest holds it in memory: DICOM values become float32
(rescaling), a NIfTI with a scaling (scl_slope) becomes float64.

The limit and the ingest rule's declared memory are tied together: :func:`ingest_mem_mb` is
what the rule declares for a given limit (the conversion holds a few copies of the image:
decoded pixels, the rescaled float32 volume, its reoriented copy, the bytes hashed and
compressed), so raising the limit raises what the scheduler is asked for.
"""

from __future__ import annotations

from pathlib import Path

from cohortflow.errors import InputError

MB = 1_000_000  # Snakemake's mem_mb counts megabytes (10**6 bytes)
#: Memory of an ingest job apart from the image (Python, numpy, pydicom, nibabel, scipy).
INGEST_BASE_MB = 500
#: Image-sized arrays an ingest job holds at its peak, counted in the image's size in memory
#: (float32 for DICOM, float64 for a scaled NIfTI): measured 2.0 (NIfTI) and 2.5 (DICOM);
#: tests/test_ingest_budget.py checks a real conversion against this factor.
INGEST_IMAGE_COPIES = 5
#: A DICOM header (everything before the pixel data) longer than this is refused; a deflated
#: file is never inflated further than this to read its header.
MAX_HEADER_BYTES = 64 * MB


def ingest_mem_mb(max_image_mb: float) -> int:
    """What the ingest rule declares (mem_mb) for images up to ``max_image_mb``."""
    return int(INGEST_BASE_MB + INGEST_IMAGE_COPIES * max_image_mb)


def image_mb(n_bytes: float) -> str:
    """A size as messages write it: MB, or kB below 0.1 MB."""
    if n_bytes < MB / 10:
        return f"{n_bytes / 1000:,.1f} kB"
    return f"{n_bytes / MB:,.1f} MB"


def refuse_above(
    path: str | Path | None,
    declared: str,
    stored_bytes: float,
    memory_bytes: float,
    working: str,
    max_image_mb: float | None,
    error: type[InputError] = InputError,
) -> None:
    """InputError when an image's size in memory (``memory_bytes``, as ``working``, e.g.
    "float32") exceeds the limit; ``declared`` says what the header declares (e.g. "Rows 512 x
    Columns 512 x 1 frame(s) x 16 bits in each of 300 files"), ``stored_bytes`` its size as
    stored. ``max_image_mb`` None means no limit; ``error`` is the class raised."""
    if max_image_mb is None or memory_bytes <= max_image_mb * MB:
        return
    in_memory = "" if memory_bytes == stored_bytes else f", {image_mb(memory_bytes)} as {working}"
    raise error(
        path,
        f"the header declares an image of {declared} = {image_mb(stored_bytes)}{in_memory}, "
        f"above the limit ingest.max_image_mb = {max_image_mb:g} MB; refused before reading "
        "any pixel data (a damaged or hostile header? If the image is real, raise "
        "ingest.max_image_mb: the ingest rule's memory grows with it)",
    )
