"""The built-in demo cohort: synthetic MRI heads and SNP-array genotypes."""
