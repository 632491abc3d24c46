from cohortflow.logutil import job_logging
from cohortflow.preprocess.n4 import N4Settings
from cohortflow.preprocess.run import run_n4

with job_logging(snakemake.log[0], "preprocess.n4"):
    run_n4(
        snakemake.input.image,
        snakemake.output.image,
        snakemake.output.sidecar,
        N4Settings.from_config(snakemake.params.settings),
        subject=snakemake.wildcards.subject,
        threads=snakemake.threads,
    )
