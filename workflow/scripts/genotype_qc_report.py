from pathlib import Path

from cohortflow.genotype_qc.run import run_report
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "genotype_qc.report"):
    run_report(
        Path(snakemake.input.steps[0]).parent,
        snakemake.input.bed,
        Path(snakemake.output.samples).parent,
    )
