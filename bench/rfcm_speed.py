"""Benchmark: RFCM seconds per 1 mm subject (default settings: 3 clusters, q 2, beta 0.1).

Runs the white-matter clustering exactly as the wm_clusters rule does (registered FLAIR x
template WM probability, zero voxels masked) on every registered image given, three times
each, and prints the median wall time with the iteration count and voxel count.

Usage (after ``snakemake --cores all``)::

    python bench/rfcm_speed.py results/preprocess/sub-*/ses-*/anat/*_desc-preproc_FLAIR.nii.gz
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from pathlib import Path

import nibabel as nib
import numpy as np

from cohortflow.wm_clusters.clusters import ClusterSettings, cluster_white_matter

REPO = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("images", nargs="+", type=Path)
    ap.add_argument(
        "--template-dir", type=Path, default=REPO / "resources/templates/MNI152NLin2009aSym"
    )
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    wm = nib.load(args.template_dir / "wm_probseg.nii.gz").get_fdata(dtype=np.float32)
    ref = nib.load(args.template_dir / "wm_reference.nii.gz").get_fdata() > 0.5
    settings = ClusterSettings()
    print(f"RFCM, {args.threads} threads, {os.cpu_count()} CPUs, numpy {np.__version__}")
    print("| image | masked voxels | iterations | median s | min s | max s |")
    print("|---|---|---|---|---|---|")
    times_all = []
    for path in args.images:
        # A registered NIfTI, or a .npy array on the template grid (bench/preprocess_presets.py).
        if path.suffix == ".npy":
            image = np.load(path).astype(np.float32)
        else:
            image = nib.load(path).get_fdata(dtype=np.float32)
        times = []
        for _ in range(args.repeats):
            start = time.perf_counter()
            wm_image, result, _ = cluster_white_matter(
                image, wm, ref, settings, threads=args.threads
            )
            times.append(time.perf_counter() - start)
        times_all.append(statistics.median(times))
        name = (
            path.name.split("_space")[0]
            if path.suffix != ".npy"
            else f"{path.parent.parent.name}/{path.parent.name}"
        )
        print(
            f"| {name} | {int((wm_image != 0).sum())} | {result.iterations} | "
            f"{statistics.median(times):.2f} | {min(times):.2f} | {max(times):.2f} |"
        )
    print(f"\nmedian over images: {statistics.median(times_all):.2f} s; max {max(times_all):.2f} s")


if __name__ == "__main__":
    main()
