from cohortflow.classify.jobs import classify_job
from cohortflow.classify.run import run_final
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "classify"):
    job = classify_job(snakemake)
    run_final(
        job,
        evaluation=snakemake.input.evaluation,
        model_out=snakemake.output.model,
        card_json_out=snakemake.output.card,
        card_md_out=snakemake.output.card_md,
        history_out=snakemake.output.history,
        curve_out=snakemake.output.curve,
    )
