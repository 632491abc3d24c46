"""Snakemake script: the run's provenance record (see cohortflow.runrecord)."""

from cohortflow.logutil import job_logging
from cohortflow.runrecord import write_run_record

with job_logging(snakemake.log[0], "provenance.run"):
    write_run_record(
        snakemake.output.record,
        snakemake.output.checksums,
        config=snakemake.params.config,
        config_sha256=snakemake.params.config_sha256,
        commit=snakemake.params.commit,
        sample_sheet=snakemake.input.sheet or None,
        ingest_sidecars=list(snakemake.input.ingest),
        genotype_files=list(snakemake.input.genotypes),
        key_fingerprint=snakemake.params.key_fingerprint,
    )
