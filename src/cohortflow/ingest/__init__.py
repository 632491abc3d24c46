"""Ingest: DICOM/NIfTI discovery, series selection, conversion, de-identification."""
