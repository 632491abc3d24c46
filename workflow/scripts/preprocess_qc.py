from cohortflow.logutil import job_logging
from cohortflow.preprocess.run import cohort_qc_table

with job_logging(snakemake.log[0], "preprocess.qc") as log:
    rows = cohort_qc_table(snakemake.input, snakemake.params.bounds, snakemake.output[0])
    for row in rows:
        if row["qc_pass"] == "no":
            log.warning("sub-%s flagged: %s", row["subject"], row["qc_flags"])
    log.info("%d subjects, %d flagged", len(rows), sum(r["qc_pass"] == "no" for r in rows))
