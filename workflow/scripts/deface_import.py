from cohortflow.deface.run import run_import_defaced
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "deface.import"):
    run_import_defaced(
        snakemake.params.source,
        snakemake.output[0],
        subject=snakemake.wildcards.subject,
        defacer=snakemake.wildcards.defacer,
    )
