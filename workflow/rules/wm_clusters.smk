# White-matter clustering (HeteroMRI step C): WM image, RFCM, the WM cluster map.


rule wm_clusters:
    input:
        image=preprocessed("preproc"),
        wm_probseg=TEMPLATE["wm_probseg"],
        wm_reference=TEMPLATE["wm_reference"],
    output:
        memberships=[clustered(f"cluster{k}") for k in range(1, N_CLUSTERS + 1)],
        wm_map=clustered("wmcluster"),
        sidecar=clustered("wmcluster", ".json"),
        metrics=clustered("clusters", ".tsv", suffix="qc", datatype="figures"),
        mosaic=report(
            clustered("clusters", ".png", suffix="qc", datatype="figures"),
            caption="../report/wm_clusters.rst",
            category="White-matter clusters",
            labels={"subject": "{subject}", "session": "{session}"},
        ),
    log:
        subject_log("wm_clusters", "rfcm", subject="{subject}", session="{session}"),
    benchmark:
        "benchmarks/wm_clusters/sub-{subject}_ses-{session}_rfcm.tsv"
    conda:
        "../../envs/imaging.yaml"
    # RFCM updates voxel chunks on several threads; the result is the same for any count.
    threads: 2
    resources:
        mem_mb=attempt_scaled(4000),
        runtime=15,
    params:
        settings=config["wm_clusters"],
    script:
        "../scripts/wm_clusters.py"
