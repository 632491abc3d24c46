from cohortflow.logutil import job_logging
from cohortflow.wm_clusters.clusters import ClusterSettings
from cohortflow.wm_clusters.run import run_wm_clusters

with job_logging(snakemake.log[0], "wm_clusters"):
    run_wm_clusters(
        snakemake.input.image,
        {"wm_probseg": snakemake.input.wm_probseg, "wm_reference": snakemake.input.wm_reference},
        ClusterSettings.from_config(snakemake.params.settings),
        memberships_out=list(snakemake.output.memberships),
        wm_map_out=snakemake.output.wm_map,
        sidecar_out=snakemake.output.sidecar,
        metrics_out=snakemake.output.metrics,
        mosaic_out=snakemake.output.mosaic,
        subject=snakemake.wildcards.subject,
        threads=snakemake.threads,
    )
