"""Benchmark of the defacer and the defacing evaluator on real and demo heads.

    python bench/deface_qa.py --out /tmp/cfdeface HEAD.nii.gz [HEAD.nii.gz ...] [--per-type 4]

For every head: affine template registration and our defacing (CPU time), then
``4 x per_type`` generated pairs (none / partial / over / correct). Prints

1. per head: registration time, removed volume, share of the evaluator's face region removed,
   share of its brain region altered, and the evaluator's decision on our defacing made by a
   model trained *without that head* (leave-one-head-out);
2. cross-validated AUROC, accuracy, sensitivity, specificity (5 folds grouped by head);
3. accuracy on each failure type held out of training entirely;
4. train on all heads but one, test on that head's pairs (e.g. the real face after training on
   the synthetic demo heads only);
5. when the ``quickshear`` package is installed, the same for quickshear's defacing of each
   head (plane cut in front of the registered template brain): another tool, same evaluator.

Registrations are cached in ``--out`` (``<name>.xfm.json``) so a rerun only rescores.
"""

from __future__ import annotations

import argparse
import json
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd

from cohortflow.deface.classifier import cross_validate, fit, held_out, held_out_type
from cohortflow.deface.defacer import DefaceSettings, Template, apply_removal, removal_mask
from cohortflow.deface.failures import FAILURE_TYPES, generate_pairs
from cohortflow.deface.features import PairScorer
from cohortflow.deface.registration import register_head
from cohortflow.head_template import build_deface_template


def _name(path: Path) -> str:
    parts = [p for p in path.parts if p.startswith("sub-") or "ds0000" in p]
    return (parts[0] if parts else path.stem).replace(".nii", "")[:24]


def _one_head(args: tuple[Path, Path, Path, int]) -> tuple[dict, list[dict]]:
    path, template_dir, out, per_type = args
    template = Template.load(template_dir)
    name = _name(path)
    cache = out / f"{name}.xfm.json"
    img = nib.load(str(path))
    if cache.is_file():
        record = json.loads(cache.read_text())
        matrix, cpu = np.asarray(record["matrix"]), record["cpu_s"]
    else:
        start = time.process_time()
        matrix = register_head(path, template.paths["head"])
        cpu = time.process_time() - start
        cache.write_text(json.dumps({"matrix": matrix.tolist(), "cpu_s": cpu}))
    data = np.asarray(img.get_fdata(dtype=np.float32))
    settings = DefaceSettings()
    remove = removal_mask(template, img.shape, img.affine, matrix, settings)
    ours = np.asarray(apply_removal(img, remove).get_fdata(dtype=np.float32))
    scorer = PairScorer(data, img.affine, template, matrix)
    features, _, _ = scorer.features(ours)
    voxel_ml = abs(np.linalg.det(img.affine[:3, :3])) / 1000
    head = {
        "head": name,
        "registration_cpu_s": round(cpu, 1),
        "removed_ml": round(float(remove.sum()) * voxel_ml, 1),
        "face_region_removed": round(float(remove[scorer.regions["face"]].mean()), 4),
        "brain_voxels_altered": round(float((ours != data)[scorer.regions["brain"]].mean()), 6),
        **{f"ours_{k}": v for k, v in features.items()},
    }
    try:  # another tool's defacing, judged by the same evaluator (pip install quickshear)
        from quickshear import quickshear

        brain = template.to_subject(template.brain, img.shape, img.affine, matrix)
        sheared = quickshear(img, nib.Nifti1Image(brain.astype(np.uint8), img.affine))
        theirs, _, _ = scorer.features(np.asarray(sheared.get_fdata(dtype=np.float32)))
        head.update({f"quickshear_{k}": v for k, v in theirs.items()})
    except ImportError:
        pass
    start = time.process_time()
    rows = generate_pairs(
        data, img.affine, template, matrix, scorer, subject=name, per_type=per_type,
        margin_mm=settings.brain_margin_mm, seed=1,
    )  # fmt: skip
    head["pairs_cpu_s"] = round(time.process_time() - start, 1)
    return head, rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("heads", nargs="+", type=Path)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--per-type", type=int, default=4)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    template_dir = args.out / "head_template"
    if not template_dir.is_dir():
        build_deface_template(template_dir)
    jobs = [(p, template_dir, args.out, args.per_type) for p in args.heads]
    with ProcessPoolExecutor(args.workers) as pool:
        results = list(pool.map(_one_head, jobs))
    heads = pd.DataFrame([h for h, _ in results])
    pairs = pd.DataFrame([r for _, rows in results for r in rows])
    pairs.to_csv(args.out / "pairs.tsv", sep="\t", index=False)

    tools = ["ours"] + (["quickshear"] if "quickshear_face_fsim" in heads else [])
    for index, head in heads.iterrows():
        model = fit(pairs[pairs["subject"] != head["head"]])
        for tool in tools:
            prefix = f"{tool}_"
            values = {k[len(prefix) :]: head[k] for k in head.index if k.startswith(prefix)}
            row = pd.DataFrame([values])
            ((decision, _),) = model.decide(row)
            heads.loc[index, f"{tool}_decision_loho"] = decision
            heads.loc[index, f"{tool}_p_accepted"] = round(float(model.p_accepted(row)[0]), 3)
    cols = ["head", "registration_cpu_s", "removed_ml", "face_region_removed",
            "brain_voxels_altered", "ours_face_fsim", "ours_brain_fsim", "pairs_cpu_s",
            "ours_decision_loho", "ours_p_accepted"]  # fmt: skip
    print(f"## Our defacer ({len(heads)} heads; decision by a model trained without the head)\n")
    print(heads[cols].to_markdown(index=False))
    if "quickshear" in tools:
        print("\n## quickshear (plane cut 10 voxels in front of the registered template brain)\n")
        cols = ["head", "quickshear_face_removed_share", "quickshear_face_fsim",
                "quickshear_brain_changed_share", "quickshear_front_depth_changed_share",
                "quickshear_decision_loho", "quickshear_p_accepted"]  # fmt: skip
        print(heads[cols].to_markdown(index=False))

    metrics, _ = cross_validate(pairs, folds=5, seed=1)
    print(f"\n## Cross-validation: {len(pairs)} pairs from {pairs['subject'].nunique()} heads, "
          f"{metrics['folds']} folds grouped by head\n")  # fmt: skip
    print(pd.DataFrame([metrics]).to_markdown(index=False, floatfmt=".3f"))

    print("\n## One failure type held out of training entirely\n")
    held = [held_out_type(pairs, t) for t in FAILURE_TYPES if t != "correct"]
    print(pd.DataFrame(held).to_markdown(index=False, floatfmt=".3f"))

    print("\n## Train on all other heads, test on one head's pairs\n")
    rows = [held_out(pairs, "subject", head) for head in pairs["subject"].unique()]
    print(pd.DataFrame(rows).to_markdown(index=False, floatfmt=".3f"))


if __name__ == "__main__":
    main()
