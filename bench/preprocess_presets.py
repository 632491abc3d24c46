"""Benchmark: registration presets ``heteromri`` vs ``fast`` on the same subjects.

For each subject the image is N4-corrected once; then each preset runs in its own child
process (so CPU time and peak memory belong to that preset alone): registration to the
template, composition of all transforms, one resampling, RFCM white-matter clustering.
Printed per subject and preset:

* CPU seconds (user + system, all threads) and wall seconds of the registration,
* peak resident memory of the child process,
* accuracy: correlation and mutual information with the template inside its brain mask,
  "WM Dice" = Dice of the chosen RFCM cluster (membership >= 0.5) with the template WM
  reference mask (the pipeline's own measure, available for every subject), and for demo
  subjects "true WM Dice": the subject's ground-truth WM (model WM through the known pose
  and deformation) warped with the estimated transform, against the template WM mask,
* Jacobian determinant min / max and folded share.

Usage (after the demo ingest ran, e.g. ``snakemake --cores all``)::

    python bench/preprocess_presets.py --demo demo01 demo05 demo09 \
        --nifti ../shared/data/mri/nifti/ms_patient01_native/FLAIR.nii.gz --jobs 2 \
        --workdir /tmp/cohortflow-bench

Each run uses one ANTs thread (multi-threaded ANTs registration is not reproducible: the
thread pool changes the order of floating-point sums and so the optimiser's path); ``--jobs``
runs several in parallel. Finished runs are cached in the work folder per preset definition.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PRESETS = ("heteromri", "fast")


def _demo_input(name: str) -> tuple[Path, Path]:
    """The ingested FLAIR of a demo subject and its truth folder."""
    from cohortflow.config import read_sample_sheet
    from cohortflow.paths import bids
    from cohortflow.privacy.pseudonym import DEMO_KEY, PseudonymKey, subject_label

    sheet = read_sample_sheet(
        REPO / "config/samples.tsv", REPO / "workflow/schemas/samples.schema.yaml"
    )
    row = sheet[sheet["subject"] == name].iloc[0]
    label = subject_label(PseudonymKey(DEMO_KEY, "demo"), name)
    path = REPO / bids(
        "ingest", subject=label, session=row["session"], suffix="FLAIR", ext=".nii.gz"
    )
    if not path.is_file():
        sys.exit(f"{path} missing: run the demo ingest first (snakemake --cores all)")
    return path, REPO / f"resources/demo/mri/{name}/truth"


def _template(workdir: Path) -> dict[str, Path]:
    from cohortflow.preprocess.templates import prepare_template

    out = {
        k: workdir / f"{k}.nii.gz" for k in ("template", "wm_probseg", "brain_mask", "wm_reference")
    }
    if not all(p.is_file() for p in out.values()):
        prepare_template(
            {"source": "nilearn", "wm_reference": {"threshold": 0.5}},
            out,
            workdir / "template.json",
        )
    return out


def _true_wm(subject_image: Path, truth: Path, out: Path) -> Path:
    """Ground-truth WM probability on the subject's grid (model WM through the known pose)."""
    import nibabel as nib
    from scipy import ndimage

    from cohortflow.demo.cohort import Pose
    from cohortflow.demo.headmodel import load_head_model
    from cohortflow.io.nifti import SCANNER_CODE, write_nifti

    meta = json.loads((truth / "truth.json").read_text())["pose"]
    pose = Pose(
        matrix=np.asarray(meta["A"]),
        amplitudes=np.asarray(meta["amplitudes_mm"]),
        wavevectors=np.asarray(meta["wavevectors_rad_per_mm"]),
        phases=np.asarray(meta["phases_rad"]),
    )
    model = load_head_model(REPO / "resources/demo/head_model")
    img = nib.load(subject_image)
    ijk = np.indices(img.shape[:3], dtype=np.float64).reshape(3, -1).T
    world = ijk @ img.affine[:3, :3].T + img.affine[:3, 3]
    inv = np.linalg.inv(model.affine)
    vox = pose.to_model(world) @ inv[:3, :3].T + inv[:3, 3]
    wm = ndimage.map_coordinates(model.wm, vox.T, order=1, mode="constant").reshape(img.shape[:3])
    write_nifti(out, wm.astype(np.float32), img.affine, code=SCANNER_CODE)
    return out


def child(n4_path: Path, preset_name: str, workdir: Path, truth: Path | None, threads: int) -> dict:
    import nibabel as nib

    from cohortflow.preprocess import metrics
    from cohortflow.preprocess.registration import (
        PRESETS as REG,
    )
    from cohortflow.preprocess.registration import (
        apply_forward,
        cpu_seconds,
        jacobian_determinant,
        register,
    )
    from cohortflow.wm_clusters.clusters import ClusterSettings, cluster_white_matter

    tpl = _template(workdir.parent.parent)
    wall0, cpu0 = time.perf_counter(), cpu_seconds()
    reg = register(n4_path, tpl["template"], REG[preset_name], workdir, threads=threads)
    wall, cpu = time.perf_counter() - wall0, cpu_seconds() - cpu0
    template = nib.load(tpl["template"]).get_fdata(dtype=np.float32)
    brain = nib.load(tpl["brain_mask"]).get_fdata() > 0.5
    wm_prob = nib.load(tpl["wm_probseg"]).get_fdata(dtype=np.float32)
    reference = nib.load(tpl["wm_reference"]).get_fdata() > 0.5
    jac = metrics.jacobian_summary(
        jacobian_determinant(tpl["template"], reg.forward_transform), brain
    )
    c0 = time.perf_counter()
    _, rf, choice = cluster_white_matter(reg.warped, wm_prob, reference, ClusterSettings())
    rfcm_s = time.perf_counter() - c0
    row = {
        "preset": preset_name,
        "cpu_s": round(cpu, 1),
        "wall_s": round(wall, 1),
        "correlation": metrics.correlation(reg.warped, template, brain),
        "mutual_information": metrics.mutual_information(reg.warped, template, brain),
        "wm_dice": choice.dice[choice.chosen],
        "chosen_cluster": choice.chosen + 1,
        "rfcm_s": round(rfcm_s, 2),
        "rfcm_iterations": rf.iterations,
        **jac,
    }
    if truth is not None:
        true_wm = _true_wm(n4_path, truth, workdir / "true_wm.nii.gz")
        warped_truth = apply_forward(true_wm, tpl["template"], reg.forward_transform)
        row["true_wm_dice"] = metrics.dice(warped_truth >= 0.5, reference)
    np.save(workdir / "warped.npy", reg.warped)
    row["peak_rss_mib"] = round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 0)
    return row


def main() -> None:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--demo", nargs="*", default=[], help="demo subjects (e.g. demo01)")
    ap.add_argument("--nifti", nargs="*", default=[], help="other FLAIR NIfTI files")
    ap.add_argument("--presets", nargs="*", default=list(PRESETS))
    ap.add_argument(
        "--threads", type=int, default=1, help="ANTs threads per run (1 = deterministic)"
    )
    ap.add_argument("--jobs", type=int, default=1, help="runs in parallel (each its own process)")
    ap.add_argument("--workdir", type=Path, default=None)
    ap.add_argument("--json", type=Path, default=None, help="also write all rows here")
    ap.add_argument(
        "--child", nargs=4, metavar=("N4", "PRESET", "WORKDIR", "TRUTH"), help=argparse.SUPPRESS
    )
    args = ap.parse_args()
    if args.child:
        n4, preset, workdir, truth = args.child
        row = child(
            Path(n4), preset, Path(workdir), Path(truth) if truth != "-" else None, args.threads
        )
        print("ROW " + json.dumps(row), flush=True)
        return

    from cohortflow.io.nifti import SCANNER_CODE, write_nifti
    from cohortflow.preprocess.n4 import N4Settings, n4_correct
    from cohortflow.preprocess.registration import PRESETS as REG

    work = args.workdir or Path(tempfile.mkdtemp(prefix="cohortflow-bench-"))
    cases = [(name, *_demo_input(name)) for name in args.demo]
    cases += [(Path(p).parent.name or Path(p).stem, Path(p), None) for p in args.nifti]
    _template(work)  # once, before the parallel runs read it
    tasks = []
    for name, image, truth in cases:
        case_dir = work / name
        case_dir.mkdir(parents=True, exist_ok=True)
        n4_path = case_dir / "n4.nii.gz"
        if not n4_path.is_file():
            data, affine, _ = n4_correct(image, N4Settings(), threads=1)
            write_nifti(n4_path, data, affine, code=SCANNER_CODE)
        for preset in args.presets:
            tasks.append((name, n4_path, preset, case_dir / preset, truth))

    def run(task):
        name, n4_path, preset, pdir, truth = task
        # A finished row is reused when the preset's definition has not changed.
        cached = pdir / "row.json"
        key = json.dumps(asdict(REG[preset]), sort_keys=True)
        if cached.is_file():
            saved = json.loads(cached.read_text())
            if saved.get("_preset") == key:
                return {"subject": name, **saved["row"]}
        cmd = [sys.executable, __file__, "--threads", str(args.threads), "--child",
               str(n4_path), preset, str(pdir), str(truth) if truth else "-"]  # fmt: skip
        env = dict(os.environ, PYTHONHASHSEED="0")
        proc = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("ROW ")]
        if proc.returncode or not line:
            print(proc.stdout[-2000:], proc.stderr[-4000:], file=sys.stderr)
            raise SystemExit(f"{name} {preset}: child failed ({proc.returncode})")
        row = json.loads(line[0][4:])
        cached.write_text(json.dumps({"_preset": key, "row": row}))
        print(json.dumps({"subject": name, **row}), flush=True)
        return {"subject": name, **row}

    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(max_workers=args.jobs) as pool:
        rows = list(pool.map(run, tasks))
    for name, *_ in cases:
        if {"heteromri", "fast"} <= set(args.presets):
            a = np.load(work / name / "heteromri" / "warped.npy")
            b = np.load(work / name / "fast" / "warped.npy")
            mask = (a > 0) | (b > 0)
            r = np.corrcoef(a[mask], b[mask])[0, 1]
            print(f"{name}: correlation of the heteromri and fast outputs {r:.4f}")
    _print_table(rows, args.threads)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")


def _print_table(rows: list[dict], threads: int) -> None:
    cols = [
        "subject", "preset", "cpu_s", "wall_s", "peak_rss_mib", "correlation", "mutual_information",
        "wm_dice", "true_wm_dice", "jacobian_min", "jacobian_max", "folded_fraction", "rfcm_s",
    ]  # fmt: skip
    print(f"\nregistration presets ({threads} threads, {os.cpu_count()} CPUs)")
    print("| " + " | ".join(cols) + " |")
    print("|" + "---|" * len(cols))
    for r in rows:
        cells = []
        for c in cols:
            v = r.get(c, "")
            cells.append(
                f"{v:.4f}"
                if isinstance(v, float) and c not in ("cpu_s", "wall_s", "peak_rss_mib", "rfcm_s")
                else str(v)
            )
        print("| " + " | ".join(cells) + " |")
    by = {}
    for r in rows:
        by.setdefault(r["subject"], {})[r["preset"]] = r
    print("\n| subject | CPU ratio heteromri/fast | Δcorrelation | ΔWM Dice | Δtrue WM Dice |")
    print("|---|---|---|---|---|")
    for subject, p in by.items():
        if {"heteromri", "fast"} <= p.keys():
            h, f = p["heteromri"], p["fast"]
            dt = f"{f['true_wm_dice'] - h['true_wm_dice']:+.4f}" if "true_wm_dice" in h else ""
            ratio = h["cpu_s"] / f["cpu_s"]
            dc = f["correlation"] - h["correlation"]
            dd = f["wm_dice"] - h["wm_dice"]
            print(f"| {subject} | {ratio:.1f} | {dc:+.4f} | {dd:+.4f} | {dt} |")


if __name__ == "__main__":
    main()
