from cohortflow.classify.run import run_predict
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "classify"):
    run_predict(
        snakemake.input.wm_map,
        snakemake.input.model,
        snakemake.wildcards.subject,
        snakemake.wildcards.session,
        out=snakemake.output[0],
        device=snakemake.params.device,
        # one torch thread, as the rule declares, whatever --cores grants: the same bits
        threads=1,
    )
