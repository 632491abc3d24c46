from cohortflow.demo.genotypes import GenotypeDemoSpec, simulate_genotypes
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "demo.genotypes") as log:
    truth = simulate_genotypes(
        snakemake.output[0].removesuffix(".bed"), GenotypeDemoSpec(seed=snakemake.params.seed)
    )
    log.info(
        "simulated %d samples; planted failures: %d",
        len(truth),
        int((truth["planted_failure"] != "").sum()),
    )
