from cohortflow.fhir.run import run_genotypes
from cohortflow.logutil import job_logging
from cohortflow.privacy.pseudonym import load_job_key

with job_logging(snakemake.log[0], "fhir.genotypes"):
    key = load_job_key(
        allow_demo_key=snakemake.params.allow_demo_key,
        fingerprint=snakemake.params.key_fingerprint,
    )
    run_genotypes(
        dict(snakemake.input.items()),
        snakemake.output[0],
        snakemake.params.fhir,
        snakemake.params.config_sha256,
        key,
    )
