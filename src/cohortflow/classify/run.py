"""Cohort- and subject-level classification jobs (called by workflow/scripts/classify_*.py).

Cross-validation runs one job per split (so splits run in parallel, or on separate GPU nodes);
the label-permutation test runs one job per permutation; ``run_evaluate`` gathers them;
``run_final`` trains the model that prediction applies, on every labelled subject.
"""

from __future__ import annotations

import json
import logging
import math
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from cohortflow.classify.card import card_markdown, load_model, model_id, save_model
from cohortflow.classify.inputs import InputSpec, load_input
from cohortflow.classify.jobs import ClassifyJob
from cohortflow.classify.metrics import COUNTS, METRICS, evaluate, summarise
from cohortflow.classify.model import HeteroMRINet, count_parameters
from cohortflow.classify.splits import (
    Split,
    SplitSettings,
    labelled,
    make_splits,
    stratified_with_fallback,
)
from cohortflow.classify.train import (
    load_network,
    pick_device,
    predict_probabilities,
    train_model,
)
from cohortflow.errors import ConfigError, InputError
from cohortflow.io.atomic import atomic_output_file, write_json, write_text
from cohortflow.provenance import input_checksums, software_versions

log = logging.getLogger("cohortflow.classify")

SOFTWARE = ("torch", "numpy", "nibabel", "pandas")
STRATEGY_TEXT = {
    "A": "stratified by dataset (dataset × label groups split in equal proportions)",
    "B": "balanced by protocol (protocol × label groups split in equal proportions, "
    "equal training subjects per protocol)",
    "C": "leave protocols out (whole protocols held out for testing)",
}


def run_seed(seed: int, *keys: int) -> int:
    """A seed for one training run, derived from the config seed and the run's position."""
    return int(np.random.SeedSequence([int(seed), *map(int, keys)]).generate_state(1)[0])


def write_tsv(target: Path | str, table: pd.DataFrame) -> None:
    with atomic_output_file(target) as tmp:
        table.to_csv(tmp, sep="\t", index=False, float_format="%.6g", na_rep="n/a")


def load_inputs(
    maps: dict[str, Path | str], spec: InputSpec, subjects: list[str]
) -> dict[str, np.ndarray]:
    """Network inputs of the given subjects; every bad map is named before failing."""
    arrays, errors = {}, []
    for subject in subjects:
        try:
            arrays[subject] = load_input(maps[subject], spec, subject)
        except InputError as exc:
            errors.append(str(exc))
    if errors:
        raise InputError(None, "bad WM cluster maps:\n  " + "\n  ".join(errors))
    return arrays


def _labels(table: pd.DataFrame) -> dict[str, int]:
    data = labelled(table)
    return dict(zip(data["subject"], data["y"], strict=True))


def _stack(arrays: dict[str, np.ndarray], subjects) -> np.ndarray:
    return np.stack([arrays[s] for s in subjects]) if subjects else np.zeros((0,))


def _fit_and_predict(job: ClassifyJob, split: Split, labels, arrays, seed: int):
    """Train on the split's training subjects (validation steers stopping and the kept
    epoch); return the result and the test subjects' probabilities."""

    def y(subjects):
        return np.array([labels[s] for s in subjects], np.float32)

    result = train_model(
        job.arch,
        _stack(arrays, split.train),
        y(split.train),
        _stack(arrays, split.val),
        y(split.val),
        job.train,
        seed,
    )
    if not split.test:
        return result, np.zeros(0)
    device = pick_device(job.train.device)
    model = load_network(job.arch, job.spec.shape, result.state_dict, device)
    return result, predict_probabilities(model, _stack(arrays, split.test), device)


def run_cv_split(
    job: ClassifyJob,
    split_name: str,
    *,
    predictions_out: Path | str,
    history_out: Path | str,
) -> pd.DataFrame:
    """Train every run of one split; write test-set probabilities and training histories."""
    splits = {s.name: s for s in make_splits(job.table, job.split)}
    split = splits[split_name]
    labels = _labels(job.table)
    arrays = load_inputs(job.maps, job.spec, [*split.train, *split.val, *split.test])
    predictions, histories = [], []
    for run in range(job.split.runs):
        seed = run_seed(job.split.seed, split.index, run)
        log.info(
            "%s run %d: %d train, %d val, %d test subjects%s, seed %d",
            split.name, run, len(split.train), len(split.val), len(split.test),
            f" (held-out protocols {', '.join(split.held_out)})" if split.held_out else "",
            seed,
        )  # fmt: skip
        result, probs = _fit_and_predict(job, split, labels, arrays, seed)
        for subject, p in zip(split.test, probs, strict=True):
            predictions.append(
                {
                    "split": split.name,
                    "run": run,
                    "subject": subject,
                    "held_out_protocols": ",".join(split.held_out),
                    "label": labels[subject],
                    "probability": float(p),
                    "predicted": int(p >= 0.5),
                    "best_epoch": result.best_epoch,
                    "seed": seed,
                }
            )
        for row in result.history:
            histories.append({"split": split.name, "run": run, **row})
    out = pd.DataFrame(predictions)
    write_tsv(history_out, pd.DataFrame(histories))
    write_tsv(predictions_out, out)
    return out


def permuted_table(table: pd.DataFrame, seed: int, index: int) -> pd.DataFrame:
    """Labels shuffled within each dataset × protocol group (their counts are kept)."""
    rng = np.random.default_rng([int(seed), 7919, int(index)])
    out = table.copy().sort_values("subject").reset_index(drop=True)
    mask = out["label"].isin(["yes", "no"])
    for _, group in out[mask].groupby(["dataset", "protocol"], sort=True):
        out.loc[group.index, "label"] = rng.permutation(group["label"].to_numpy())
    return out


def run_permutation(
    job: ClassifyJob,
    index: int,
    *,
    out: Path | str,
) -> float:
    """The whole cross-validation (one run per split) on permuted labels; mean accuracy."""
    shuffled = permuted_table(job.table, job.split.seed, index)
    labels = _labels(shuffled)
    arrays = load_inputs(job.maps, job.spec, sorted(labels))
    rows = []
    for split in make_splits(shuffled, job.split):
        seed = run_seed(job.split.seed, 1000 + index, split.index)
        _, probs = _fit_and_predict(job, split, labels, arrays, seed)
        scores = evaluate([labels[s] for s in split.test], probs)
        rows.append({"permutation": index, "split": split.name, **scores})
        log.info("permutation %d %s: accuracy %.3f", index, split.name, scores["accuracy"])
    frame = pd.DataFrame(rows)
    write_tsv(out, frame)
    return float(frame["accuracy"].mean())


def run_metrics(predictions: pd.DataFrame) -> pd.DataFrame:
    """One row per (split, run) with counts and metrics, then mean and SD rows."""
    rows = []
    for (split, run), group in predictions.groupby(["split", "run"], sort=True):
        rows.append({"split": split, "run": run, **evaluate(group["label"], group["probability"])})
    summary = summarise(rows)
    for stat, k in (("mean", 0), ("sd", 1)):
        rows.append({"split": stat, "run": "", **{m: v[k] for m, v in summary.items()}})
    return pd.DataFrame(rows, columns=["split", "run", *COUNTS, *METRICS])


def plot_learning_curves(history: pd.DataFrame, target: Path | str, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(10, 4), dpi=100)
    for (split, run), group in history.groupby(["split", "run"], sort=True):
        name = f"{split} run {run}"
        (line,) = axes[0].plot(group["epoch"], group["train_loss"], label=f"{name} train")
        axes[0].plot(group["epoch"], group["val_loss"], "--", color=line.get_color())
        axes[1].plot(
            group["epoch"], group["val_accuracy"], "--", color=line.get_color(), label=name
        )
    axes[0].set(xlabel="epoch", ylabel="BCE loss", title="loss (solid train, dashed validation)")
    axes[1].set(xlabel="epoch", ylabel="accuracy", title="validation accuracy", ylim=(-0.05, 1.05))
    axes[1].legend(fontsize=7, loc="lower right")
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_output_file(target) as tmp:
        fig.savefig(tmp, format="png", metadata={"Software": "cohortflow"})
    plt.close(fig)


def run_evaluate(
    predictions: list[Path | str],
    histories: list[Path | str],
    permutations: list[Path | str],
    split_settings: SplitSettings,
    *,
    metrics_out: Path | str,
    predictions_out: Path | str,
    curve_out: Path | str,
    permutation_out: Path | str,
    evaluation_out: Path | str,
) -> dict:
    preds = pd.concat([pd.read_csv(p, sep="\t", dtype={"subject": str}) for p in predictions])
    preds = preds.sort_values(["split", "run", "subject"]).reset_index(drop=True)
    metrics = run_metrics(preds)
    write_tsv(metrics_out, metrics)
    write_tsv(predictions_out, preds)
    history = pd.concat([pd.read_csv(h, sep="\t") for h in histories])
    plot_learning_curves(
        history, curve_out, f"Cross-validation, strategy {split_settings.strategy}"
    )
    per_run = metrics[~metrics["split"].isin(["mean", "sd"])]
    observed = float(per_run["accuracy"].mean())
    stats = metrics.set_index("split")
    summary = {
        m: (float(stats.at["mean", m]), float(stats.at["sd", m])) for m in (*METRICS, *COUNTS)
    }
    record = {
        "split": asdict(split_settings),
        "description": STRATEGY_TEXT[split_settings.strategy],
        "runs": len(per_run),
        "summary": summary,
        "pooled_test_accuracy": float((preds["predicted"] == preds["label"]).mean()),
    }
    if permutations:
        null = pd.concat([pd.read_csv(p, sep="\t") for p in permutations])
        per_perm = null.groupby("permutation")["accuracy"].mean()
        n = len(per_perm)
        p_value = (1 + int((per_perm >= observed - 1e-12).sum())) / (n + 1)
        table = per_perm.rename("mean_accuracy").reset_index()
        write_tsv(permutation_out, table)
        record["permutation"] = {
            "n": n,
            "observed": observed,
            "null_mean": float(per_perm.mean()),
            "null_sd": float(per_perm.std(ddof=1)) if n > 1 else float("nan"),
            "null": [float(v) for v in per_perm],
            "p_value": p_value,
            "statistic": "mean test accuracy over splits; labels permuted within "
            "dataset × protocol groups; p = (1 + #null ≥ observed) / (N + 1)",
        }
        log.info("permutation test: observed %.3f, null %.3f, p %.3g", observed,
                 per_perm.mean(), p_value)  # fmt: skip
    else:
        write_tsv(permutation_out, pd.DataFrame(columns=["permutation", "mean_accuracy"]))
    log.info(
        "cross-validation accuracy %.3f ± %.3f over %d runs",
        summary["accuracy"][0], summary["accuracy"][1], len(per_run),
    )  # fmt: skip
    write_json(evaluation_out, _jsonable(record))
    return record


def _jsonable(value):
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    return value


def final_split(table: pd.DataFrame, split_settings: SplitSettings) -> Split:
    """Every labelled subject trains; a validation share (protocol × label) steers stopping."""
    data = labelled(table)
    rng = np.random.default_rng([split_settings.seed, 4242])
    val, train = stratified_with_fallback(
        data, ["protocol", "y"], [split_settings.val_fraction], rng
    )
    if not val or not train:
        raise ConfigError(
            f"the final model needs training and validation subjects, but only {len(data)} "
            "subjects are labelled"
        )
    return Split(0, tuple(train), tuple(val), ())


def run_final(
    job: ClassifyJob,
    *,
    evaluation: Path | str | None,
    model_out: Path | str,
    card_json_out: Path | str,
    card_md_out: Path | str,
    history_out: Path | str,
    curve_out: Path | str,
) -> dict:
    arch, spec, train, maps = job.arch, job.spec, job.train, job.maps
    labels = _labels(job.table)
    split = final_split(job.table, job.split)
    arrays = load_inputs(maps, spec, [*split.train, *split.val])
    seed = run_seed(job.split.seed, 9999)
    result, _ = _fit_and_predict(job, split, labels, arrays, seed)
    ident = model_id(result.state_dict)
    history = pd.DataFrame([{"split": "final", "run": 0, **r} for r in result.history])
    write_tsv(history_out, history)
    plot_learning_curves(history, curve_out, f"Final model {ident}")
    best = result.history[result.best_epoch - 1]
    card = {
        "model_id": ident,
        "description": "3D CNN classifying white-matter abnormality (yes/no) from the "
        "thresholded white-matter cluster map (HeteroMRI, Abedi et al., GigaScience 2025).",
        "intended_use": "Research on cohorts preprocessed by this pipeline with the same "
        "template and input spec. Not a medical device; not for diagnosis.",
        "limitations": "Trained on the subjects listed; performance on other scanners, "
        "protocols or populations is what the cross-validation strategy estimates, no more. "
        "Inputs whose space, grid or voxel size differ from the input spec are refused.",
        "architecture": arch.as_dict(),
        "parameters": count_parameters(HeteroMRINet(arch, spec.shape)),
        "input_spec": spec.as_dict(),
        "hyperparameters": {
            **train.as_dict(),
            "loss": "binary cross-entropy",
            "optimiser": "Adam",
            "checkpoint": "best validation accuracy (ties: lower validation loss)",
            "early_stopping": f"validation loss, patience {train.patience}",
        },
        "seed": seed,
        "training": {
            "train": list(split.train),
            "val": list(split.val),
            "label_counts": {
                "yes": int(sum(labels[s] for s in [*split.train, *split.val])),
                "no": int(sum(1 - labels[s] for s in [*split.train, *split.val])),
            },
            "inputs": input_checksums({s: maps[s] for s in [*split.train, *split.val]}),
            "device": result.device,
            "epochs_run": result.epochs_run,
            "best_epoch": result.best_epoch,
            "best_val_accuracy": best["val_accuracy"],
            "best_val_loss": best["val_loss"],
            "seconds": round(result.seconds, 1),
        },
        "evaluation": None,
        "software": software_versions(*SOFTWARE),
    }
    if evaluation:
        card["evaluation"] = json.loads(Path(evaluation).read_text())
    card = _jsonable(card)
    save_model(model_out, result.state_dict, arch, spec, ident)
    write_json(card_json_out, card)
    write_text(card_md_out, card_markdown(card))
    return card


def run_predict(
    wm_map: Path | str,
    model_path: Path | str,
    subject: str,
    session: str,
    *,
    out: Path | str,
    device: str = "auto",
    threads: int | None = None,
) -> dict:
    """Probability and label of one subject; refuses maps that do not fit the model."""
    import torch

    if threads:
        torch.set_num_threads(int(threads))
    state, arch, spec, ident = load_model(model_path)
    x = load_input(wm_map, spec, subject)
    dev = pick_device(device)
    model = load_network(arch, spec.shape, state, dev)
    p = float(predict_probabilities(model, x[None], dev)[0])
    record = {
        "subject": subject,
        "session": session,
        "model_id": ident,
        "probability": p,
        "label": "yes" if p >= 0.5 else "no",
        "threshold": 0.5,
        "input": input_checksums({"wm_map": wm_map, "model": model_path}),
    }
    write_json(out, record)
    log.info("sub-%s ses-%s: p = %.4f (%s), model %s", subject, session, p, record["label"], ident)
    return record


def collect_predictions(files: list[Path | str], out: Path | str) -> pd.DataFrame:
    rows = []
    for f in files:
        rec = json.loads(Path(f).read_text())
        rows.append({k: rec[k] for k in ("subject", "session", "probability", "label", "model_id")})
    frame = pd.DataFrame(rows).sort_values(["subject", "session"])
    write_tsv(out, frame)
    return frame
