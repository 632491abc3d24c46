from cohortflow.genotype_qc.run import run_qc_step
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], f"genotype_qc.{snakemake.params.step}"):
    run_qc_step(
        snakemake.params.step,
        snakemake.output[0],
        snakemake.params.genotypes,
        snakemake.params.qc,
        threads=snakemake.threads,
        mem_mb=snakemake.resources.mem_mb,
    )
