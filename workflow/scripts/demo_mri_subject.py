from cohortflow.demo.cohort import demo_manifest, load_manifest_entry, simulate_subject
from cohortflow.logutil import job_logging

with job_logging(snakemake.log[0], "demo.mri") as log:
    subjects = demo_manifest(snakemake.params.n_subjects, snakemake.params.seed)
    subject, index = load_manifest_entry(subjects, snakemake.wildcards.demo_subject)
    log.info(
        "simulating %s (profile %s, lesions: %s, source: %s)",
        subject.subject,
        subject.profile,
        subject.label,
        subject.source_format,
    )
    simulate_subject(
        snakemake.input.model, subject, index, snakemake.output.raw, snakemake.output.truth
    )
