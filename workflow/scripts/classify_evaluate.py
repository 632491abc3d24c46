from cohortflow.classify.run import run_evaluate
from cohortflow.classify.splits import SplitSettings
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "classify"):
    run_evaluate(
        list(snakemake.input.predictions),
        list(snakemake.input.histories),
        list(snakemake.input.permutations),
        SplitSettings.from_config(snakemake.params.split),
        metrics_out=snakemake.output.metrics,
        predictions_out=snakemake.output.predictions,
        curve_out=snakemake.output.curves,
        permutation_out=snakemake.output.permutation,
        evaluation_out=snakemake.output.evaluation,
    )
