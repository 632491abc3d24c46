"""Genotype QC and association (PLINK 2 and 1.9 as engines)."""
