from pathlib import Path

from cohortflow.genotype_qc.run import run_clean
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "genotype_qc.clean"):
    run_clean(
        Path(snakemake.input.steps[0]).parent,
        snakemake.output.bed,
        threads=snakemake.threads,
        mem_mb=snakemake.resources.mem_mb,
    )
