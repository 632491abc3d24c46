"""Per-subject white-matter clustering job (called by workflow/scripts/wm_clusters.py)."""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from pathlib import Path

from cohortflow.errors import InputError
from cohortflow.io.atomic import write_json
from cohortflow.io.nifti import MNI_CODE, read_volume, write_nifti
from cohortflow.preprocess.run import write_metrics_tsv
from cohortflow.provenance import input_checksums, software_versions
from cohortflow.wm_clusters.clusters import ClusterSettings, cluster_white_matter

log = logging.getLogger("cohortflow.wm_clusters")


def run_wm_clusters(
    registered: Path | str,
    template: dict[str, Path | str],
    settings: ClusterSettings,
    *,
    memberships_out: list[Path | str],
    wm_map_out: Path | str,
    sidecar_out: Path | str,
    metrics_out: Path | str,
    mosaic_out: Path | str | None,
    subject: str,
    threads: int = 1,
) -> dict:
    if len(memberships_out) != settings.n_clusters:
        raise ValueError(
            f"{len(memberships_out)} membership outputs for {settings.n_clusters} clusters"
        )
    image, affine = read_volume(registered)
    wm_prob = read_volume(template["wm_probseg"], "template WM map")[0]
    reference = read_volume(template["wm_reference"], "WM reference mask")[0] > 0.5
    start = time.perf_counter()
    try:
        wm_image, result, choice = cluster_white_matter(
            image, wm_prob, reference, settings, path=str(registered), threads=threads
        )
    except InputError as exc:
        raise exc.with_subject(subject) from None
    except ValueError as exc:  # e.g. too few voxels for the clusters
        raise InputError(registered, str(exc), subject) from None
    seconds = time.perf_counter() - start
    for membership, target in zip(result.memberships, memberships_out, strict=True):
        write_nifti(target, membership, affine, code=MNI_CODE)
    write_nifti(wm_map_out, choice.wm_map, affine, code=MNI_CODE)
    values = {
        "wm_dice": choice.dice[choice.chosen],
        "wm_cluster": choice.chosen + 1,
        **{f"dice_cluster{k + 1}": d for k, d in enumerate(choice.dice)},
        "wm_map_voxels": int((choice.wm_map > 0).sum()),
        "rfcm_iterations": result.iterations,
        "rfcm_converged": "yes" if result.converged else "no",
    }
    write_metrics_tsv(metrics_out, subject, values)
    record = {
        "Subject": subject,
        "Step": "white-matter clustering (RFCM) and WM cluster choice",
        "Settings": asdict(settings),
        "ClusterOrder": "ascending centroid intensity (cluster1 = darkest)",
        "Centroids": [float(c) for c in result.centroids],
        "IntensityScale": result.scale,
        "Iterations": result.iterations,
        "Converged": result.converged,
        "FinalMaxChange": result.max_change,
        "ChosenCluster": choice.chosen + 1,
        "DiceWithWMReference": {f"cluster{k + 1}": d for k, d in enumerate(choice.dice)},
        "WMMap": "membership of the chosen cluster, values below the threshold set to 0",
        "Seconds": round(seconds, 2),
        "Inputs": input_checksums({"registered": registered, **template}),
        "Software": software_versions("numpy", "scipy", "nibabel"),
    }
    write_json(sidecar_out, record)
    if mosaic_out is not None:
        from cohortflow.preprocess.mosaic import write_mosaic

        write_mosaic(
            mosaic_out,
            wm_image,
            title=f"sub-{subject}: WM image (registered x WM prior)",
            overlay=choice.wm_map,
            overlay_label=(
                f"chosen cluster {choice.chosen + 1} (Dice {choice.dice[choice.chosen]:.3f})"
            ),
        )
    if not result.converged:
        log.warning(
            "sub-%s: RFCM stopped at %d iterations (change %.3g)",
            subject,
            result.iterations,
            result.max_change,
        )
    log.info(
        "sub-%s: RFCM %d iterations in %.1f s; cluster %d chosen, Dice %s",
        subject,
        result.iterations,
        seconds,
        choice.chosen + 1,
        ", ".join(f"{d:.3f}" for d in choice.dice),
    )
    return values
