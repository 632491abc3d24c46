"""File I/O shared by all stages: atomic writes, checksums, NIfTI helpers."""
