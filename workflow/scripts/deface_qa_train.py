from cohortflow.deface.run import run_train
from cohortflow.logutil import job_logging

settings = snakemake.params.settings
with job_logging(snakemake.log[0], "deface_qa.train"):
    run_train(
        list(snakemake.input),
        model_out=snakemake.output.model,
        predictions_out=snakemake.output.predictions,
        metrics_out=snakemake.output.metrics,
        folds=settings["folds"],
        seed=settings["seed"],
        c=settings["C"],
    )
