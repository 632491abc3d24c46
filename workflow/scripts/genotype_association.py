from pathlib import Path

from cohortflow.genotype_qc.run import run_association_job
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "association"):
    run_association_job(
        snakemake.input.bed,
        Path(snakemake.input.steps[0]).parent,
        snakemake.params.genotypes,
        snakemake.params.settings,
        Path(snakemake.output.results).parent,
        threads=snakemake.threads,
        mem_mb=snakemake.resources.mem_mb,
    )
