"""Classification end to end through Snakemake (demo_run): cross-validation, permutation
test, final model with its card, and a prediction for every subject."""

from __future__ import annotations

import csv
import json
import subprocess
import sys

import pytest
from conftest import REPO, TEST_KEY, rerun_in_copy

from cohortflow.classify.card import load_model
from cohortflow.classify.metrics import COUNTS, METRICS
from cohortflow.io.atomic import sha256_file
from cohortflow.paths import bids

pytestmark = pytest.mark.slow


def _tsv(path):
    with path.open() as fh:
        return list(csv.DictReader(fh, delimiter="\t"))


def test_training_then_prediction_on_the_demo(demo_run):
    assert demo_run.step3_returncode == 0, demo_run.step3_output[-5000:]
    root = demo_run.workdir / "results" / "classify"
    card = json.loads((root / "model" / "model_card.json").read_text())
    _, arch, spec, ident = load_model(root / "model" / "model.pt")
    assert card["model_id"] == ident
    assert card["architecture"]["filters"] == [4, 4, 8, 8, 16] == list(arch.filters)
    assert card["input_spec"]["resolution_mm"] == 4 and tuple(spec.shape) == (50, 59, 48)
    assert card["input_spec"]["space"] == "MNI152NLin2009aSym"
    for key in ("learning_rate", "lr_decay", "batch_size", "max_epochs", "patience"):
        assert key in card["hyperparameters"]
    assert card["hyperparameters"]["batch_size"] == 2
    assert isinstance(card["seed"], int) and "torch" in card["software"]
    trained = card["training"]["train"] + card["training"]["val"]
    assert sorted(trained) == sorted(demo_run.good.values())  # pseudonyms, every labelled one
    for label in trained:
        entry = card["training"]["inputs"][label]
        assert sha256_file(demo_run.workdir / entry["path"]) == entry["sha256"]
    text = (root / "model" / "model_card.md").read_text() + json.dumps(card)
    assert not any(sid in text for sid in demo_run.good)  # site IDs never appear
    assert "## Evaluation" in text and "Label permutation test: 1 permutations" in text

    metrics = _tsv(root / "evaluation" / "metrics.tsv")
    assert [r["split"] for r in metrics] == ["split-00", "mean", "sd"]
    assert set(COUNTS + METRICS) <= set(metrics[0])
    counts = sum(int(metrics[0][c]) for c in COUNTS)
    assert counts == len(_tsv(root / "evaluation" / "test_predictions.tsv")) == 1
    evaluation = json.loads((root / "evaluation" / "evaluation.json").read_text())
    assert evaluation["permutation"]["n"] == 1 and 0 < evaluation["permutation"]["p_value"] <= 1
    assert (root / "evaluation" / "learning_curves.png").read_bytes()[:4] == b"\x89PNG"
    log = (demo_run.workdir / "logs" / "classify" / "cv_split-00.log").read_text()
    assert "epoch 1/3" in log and "val_loss" in log

    predictions = {r["subject"]: r for r in _tsv(root / "predictions.tsv")}
    expected = set(demo_run.good.values()) | set(demo_run.flagged.values())
    assert set(predictions) == expected
    for label, row in predictions.items():
        assert row["model_id"] == ident and row["label"] in ("yes", "no")
        assert 0 <= float(row["probability"]) <= 1
        path = bids(
            "classify", subject=label, session="01", space="MNI152NLin2009aSym", desc="cnn",
            suffix="prediction", ext=".json",
        )  # fmt: skip
        assert json.loads((demo_run.workdir / path).read_text())["model_id"] == ident


def test_a_given_model_file_is_applied_without_training(demo_run):
    model = demo_run.workdir / "results" / "classify" / "model" / "model.pt"
    assert model.is_file(), demo_run.step3_output[-3000:]
    result = subprocess.run(
        [
            sys.executable, "-m", "snakemake", "-n", "--snakefile", str(REPO / "Snakefile"),
            "--directory", str(demo_run.workdir), "--configfile",
            str(demo_run.workdir / "config.yaml"),
            "--config", f"classify={{'model_file': '{model}'}}",
            "--forcerun", "classify_predict",
        ],
        capture_output=True, text=True, timeout=300,
        env={"COHORTFLOW_PSEUDONYM_KEY": TEST_KEY, "PATH": "/usr/bin:/bin"},
    )  # fmt: skip
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "classify_predict" in out
    assert "classify_cv" not in out and "classify_train" not in out


def test_the_model_does_not_depend_on_the_cores_granted(demo_run, tmp_path):
    """demo_run trained with --cores 2; a copy retrained with --cores 1 (the scheduler grants
    the job one thread) gives the same model bytes, predictions and FHIR bundles: torch's
    thread count comes from classify.train.threads, not from the grant."""
    from cohortflow.reproducibility import compare_runs

    assert demo_run.step3_returncode == 0, demo_run.step3_output[-3000:]
    work = tmp_path / "cores1"
    result = rerun_in_copy(demo_run, work, "--forcerun", "classify_train", cores=1)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert "classify_train" in result.stdout + result.stderr
    comparison = compare_runs(demo_run.workdir, work)
    assert comparison.ok, comparison.summary()
    for rel in ("results/classify/model/model.pt", "results/classify/predictions.tsv"):
        assert rel in comparison.identical, comparison.summary()
    # The bundles were made anew: demo_run sets no SOURCE_DATE_EPOCH, so only the Provenance
    # time stamp may differ.
    remade = {p: why for p, why in comparison.equal_without_volatile.items() if "_bundle" in p}
    assert remade and all(w.startswith("recorded:") for why in remade.values() for w in why)


def test_sigkill_during_cnn_training_then_the_same_command_gives_the_same_model(demo_run, tmp_path):
    """A run killed with SIGKILL while the final CNN trains is run again with the same
    command: the killed run's lock is taken over and the model, predictions and tables are
    byte-identical to those of the uninterrupted demo run."""
    import os
    import shutil
    import signal
    import time

    from conftest import REPO, TEST_KEY, snakemake_command

    from cohortflow.reproducibility import compare_runs

    assert demo_run.step3_returncode == 0, demo_run.step3_output[-3000:]
    work = tmp_path / "killed"
    shutil.copytree(demo_run.workdir, work, symlinks=True)
    command = snakemake_command(
        REPO, work, "--forcerun", "classify_train", "--configfile", str(work / "config.yaml")
    )
    env = os.environ | {"COHORTFLOW_PSEUDONYM_KEY": TEST_KEY}
    log = work / "logs" / "classify" / "train.log"
    original = log.read_text()
    proc = subprocess.Popen(
        command, env=env, start_new_session=True,
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )  # fmt: skip
    deadline = time.monotonic() + 300
    while time.monotonic() < deadline and proc.poll() is None:
        text = log.read_text() if log.exists() else ""  # Snakemake removes it first
        new = text[len(original) :] if text.startswith(original) else text
        if "epoch 1/" in new:
            break  # the training job runs: it has logged its first epoch
        time.sleep(0.1)
    assert proc.poll() is None, "the run ended before the training could be killed"
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=900)
    assert again.returncode == 0, again.stdout[-3000:] + again.stderr[-3000:]
    comparison = compare_runs(demo_run.workdir, work)
    for rel in ("results/classify/model/model.pt", "results/classify/predictions.tsv"):
        assert rel in comparison.identical, comparison.summary()
