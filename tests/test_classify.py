"""CNN classifier: shapes, training behaviour, determinism, metrics, splits, input spec."""

from __future__ import annotations

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
import torch

from cohortflow.classify.card import load_model, model_id, save_model
from cohortflow.classify.inputs import build_spec, load_input, to_network_input
from cohortflow.classify.metrics import confusion, evaluate, metrics_from_counts, summarise
from cohortflow.classify.model import PUBLISHED_FILTERS, Architecture, HeteroMRINet
from cohortflow.classify.run import permuted_table, run_metrics, run_predict
from cohortflow.classify.splits import SplitSettings, make_splits
from cohortflow.classify.train import TrainSettings, train_model
from cohortflow.errors import ConfigError, InputError

TINY = Architecture(filters=(4, 8, 8), padding="same", dense_units=16, dropout=0.0)


# ----------------------------------------------------------------------------- model
def test_published_network_at_1mm_has_the_published_layers():
    arch = Architecture()
    assert arch.filters == PUBLISHED_FILTERS == (64, 64, 128, 128, 256)
    assert arch.feature_shape((193, 229, 193)) == (4, 5, 4)
    net = HeteroMRINet(arch, (193, 229, 193))
    convs = [m for m in net.modules() if isinstance(m, torch.nn.Conv3d)]
    assert [c.out_channels for c in convs] == [64, 64, 128, 128, 256]
    assert all(c.kernel_size == (3, 3, 3) for c in convs)
    linear = [m for m in net.modules() if isinstance(m, torch.nn.Linear)]
    assert [(m.in_features, m.out_features) for m in linear] == [(256, 512), (512, 1)]
    dropout = [m for m in net.modules() if isinstance(m, torch.nn.Dropout)]
    assert dropout[0].p == 0.3


@pytest.mark.parametrize(
    ("padding", "shape"), [("valid", (94, 100, 96)), ("same", (40, 48, 40)), ("same", (33, 32, 47))]
)
def test_forward_shapes(padding, shape):
    arch = Architecture.from_config({"width": 0.0625, "padding": padding})
    assert arch.filters == (4, 4, 8, 8, 16)
    net = HeteroMRINet(arch, shape).eval()
    with torch.no_grad():
        out = net(torch.zeros(3, 1, *shape))
    assert out.shape == (3,)


def test_too_small_input_is_refused_with_the_reason():
    with pytest.raises(ValueError, match=r"too small .* 'valid' padding"):
        HeteroMRINet(Architecture(padding="valid"), (93, 120, 120))


# ----------------------------------------------------------------------------- training
def _blobs(n: int, rng: np.random.Generator, shape=(24, 24, 24)):
    """Label 1: a bright blob somewhere in a noisy volume; label 0: noise only."""
    x = rng.normal(0.2, 0.05, (n, *shape)).astype(np.float32)
    y = np.arange(n) % 2
    for i in np.flatnonzero(y):
        c = rng.integers(6, 18, 3)
        x[i, c[0] - 3 : c[0] + 3, c[1] - 3 : c[1] + 3, c[2] - 3 : c[2] + 3] = 1.0
    return x, y.astype(np.float32)


def test_tiny_run_overfits_four_samples():
    x, y = _blobs(4, np.random.default_rng(0))
    settings = TrainSettings(learning_rate=1e-2, max_epochs=40, patience=40, device="cpu")
    result = train_model(TINY, x, y, x, y, settings, seed=3, threads=1)
    first, last = result.history[0], result.history[-1]
    assert first["train_loss"] > 0.6  # chance level, ln 2
    assert last["train_loss"] < 0.15 and last["val_loss"] < 0.3  # memorised (eval mode too)
    assert result.history[result.best_epoch - 1]["val_accuracy"] == 1.0
    net = HeteroMRINet(TINY, x.shape[1:])
    net.load_state_dict(result.state_dict)
    with torch.no_grad():
        p = torch.sigmoid(net.eval()(torch.from_numpy(x[:, None]))).numpy()
    assert ((p >= 0.5) == (y == 1)).all()


def test_same_seed_same_weights_and_history_on_cpu():
    x, y = _blobs(6, np.random.default_rng(1))
    settings = TrainSettings(max_epochs=3, device="cpu", augment_flip=True)
    runs = [
        train_model(TINY, x[:4], y[:4], x[4:], y[4:], settings, seed=5, threads=2) for _ in "ab"
    ]
    other = train_model(TINY, x[:4], y[:4], x[4:], y[4:], settings, seed=6, threads=2)
    assert model_id(runs[0].state_dict) == model_id(runs[1].state_dict)
    for key, value in runs[0].state_dict.items():
        assert torch.equal(value, runs[1].state_dict[key]), key
    strip = [[{k: v for k, v in r.items() if k != "seconds"} for r in run.history] for run in runs]
    assert strip[0] == strip[1]
    assert model_id(other.state_dict) != model_id(runs[0].state_dict)


def test_early_stopping_and_best_checkpoint():
    x, y = _blobs(6, np.random.default_rng(2))
    settings = TrainSettings(max_epochs=30, patience=2, device="cpu")
    # validation labels inverted: validation loss rises while training loss falls
    result = train_model(TINY, x[:4], y[:4], x[4:], 1 - y[4:], settings, seed=1, threads=1)
    assert result.epochs_run < 30
    rows = result.history
    best = min(rows, key=lambda r: (-r["val_accuracy"], r["val_loss"], r["epoch"]))
    assert result.best_epoch == best["epoch"]


# ----------------------------------------------------------------------------- metrics
def test_metrics_against_hand_computed_confusion_matrices():
    y_true = [1, 1, 1, 0, 0, 0, 0, 1]
    y_pred = [1, 1, 0, 0, 0, 1, 0, 1]
    assert confusion(y_true, y_pred) == {"tn": 3, "fp": 1, "fn": 1, "tp": 3}
    m = metrics_from_counts(tn=3, fp=1, fn=1, tp=3)
    assert m["accuracy"] == pytest.approx(6 / 8)
    assert m["precision"] == pytest.approx(3 / 4)
    assert m["sensitivity"] == pytest.approx(3 / 4)
    assert m["specificity"] == pytest.approx(3 / 4)
    assert m["f1"] == pytest.approx(3 / 4)
    assert m["mcc"] == pytest.approx((9 - 1) / 16)
    # TN=50 FP=10 FN=5 TP=35: MCC = (35*50 - 10*5) / sqrt(45*40*60*55)
    m = metrics_from_counts(tn=50, fp=10, fn=5, tp=35)
    assert m["precision"] == pytest.approx(35 / 45)
    assert m["specificity"] == pytest.approx(50 / 60)
    assert m["f1"] == pytest.approx(2 * 35 / (2 * 35 + 10 + 5))
    assert m["mcc"] == pytest.approx(1700 / np.sqrt(45 * 40 * 60 * 55))
    # no predicted positives: precision, F1 and MCC are 0 by convention
    m = metrics_from_counts(tn=4, fp=0, fn=2, tp=0)
    assert (m["precision"], m["f1"], m["mcc"], m["specificity"]) == (0, 0, 0, 1)
    assert evaluate([0, 1], [0.49, 0.5])["accuracy"] == 1.0


def test_per_run_table_and_mean_sd():
    preds = pd.DataFrame(
        {
            "split": ["s0"] * 4 + ["s1"] * 4,
            "run": [0] * 8,
            "label": [1, 1, 0, 0, 1, 1, 0, 0],
            "probability": [0.9, 0.8, 0.1, 0.7, 0.9, 0.2, 0.3, 0.4],
        }
    )
    table = run_metrics(preds)
    assert list(table["split"]) == ["s0", "s1", "mean", "sd"]
    assert list(table["accuracy"][:2]) == [0.75, 0.75]
    assert table.loc[2, "accuracy"] == 0.75 and table.loc[3, "accuracy"] == 0
    assert table.loc[0, "fp"] == 1 and table.loc[1, "fn"] == 1
    mean, sd = summarise([{**metrics_from_counts(1, 0, 0, 1), "tn": 1, "fp": 0, "fn": 0, "tp": 1},
                          {**metrics_from_counts(0, 1, 1, 0), "tn": 0, "fp": 1, "fn": 1, "tp": 0}])[
        "accuracy"
    ]  # fmt: skip
    assert mean == 0.5 and sd == pytest.approx(np.sqrt(0.5))


# ----------------------------------------------------------------------------- splits
def _cohort(per_group=2):
    rows = []
    for p, proto in enumerate(["pA", "pB", "pC"]):
        for label in ("yes", "no"):
            for k in range(per_group + p):  # protocols of different size
                rows.append(
                    {"subject": f"{proto}{label}{k}", "label": label,
                     "dataset": "d1" if p < 2 else "d2", "protocol": proto}
                )  # fmt: skip
    rows.append({"subject": "unlab", "label": "", "dataset": "d1", "protocol": "pA"})
    return pd.DataFrame(rows)


def test_leave_one_protocol_out():
    table = _cohort()
    splits = make_splits(table, SplitSettings(strategy="C", seed=4))
    assert [s.held_out for s in splits] == [("pA",), ("pB",), ("pC",)]
    protocol = dict(zip(table["subject"], table["protocol"], strict=True))
    for s in splits:
        assert {protocol[t] for t in s.test} == set(s.held_out)
        assert not {protocol[t] for t in (*s.train, *s.val)} & set(s.held_out)
        assert not set(s.train) & set(s.val)
        assert "unlab" not in (*s.train, *s.val, *s.test)
        assert len(s.test) == (table["protocol"].isin(s.held_out) & (table["label"] != "")).sum()
    assert splits == make_splits(table, SplitSettings(strategy="C", seed=4))


def test_dataset_stratified_and_protocol_balanced_splits():
    table = _cohort(per_group=4)
    a = make_splits(table, SplitSettings(strategy="A", shuffles=3, seed=1))
    assert len(a) == 3 and len({s.test for s in a}) > 1
    data = table.set_index("subject")
    for s in a:
        assert {data.loc[t, "dataset"] for t in s.test} == {"d1", "d2"}
        assert {data.loc[t, "label"] for t in s.test} == {"yes", "no"}
        members = [*s.train, *s.val, *s.test]
        assert len(set(members)) == len(members)
    for s in make_splits(table, SplitSettings(strategy="B", shuffles=2, seed=1)):
        counts = data.loc[list(s.train), "protocol"].value_counts()
        assert counts.nunique() == 1 and len(counts) == 3  # equal subjects per protocol
        assert {data.loc[t, "protocol"] for t in s.test} == {"pA", "pB", "pC"}


def test_split_errors_are_clear():
    one_label = _cohort().assign(label="yes")
    with pytest.raises(ConfigError, match="both labels"):
        make_splits(one_label, SplitSettings())
    with pytest.raises(ConfigError, match="holds out 3 protocol"):
        make_splits(_cohort(), SplitSettings(strategy="C", holdout_protocols=3))


def test_permutation_keeps_label_counts_per_protocol():
    table = _cohort(per_group=3)
    shuffled = permuted_table(table, seed=1, index=0)
    assert (shuffled["label"] != table.sort_values("subject")["label"].to_numpy()).any()
    for column in ("protocol", "dataset"):
        before = table.groupby([column, "label"]).size()
        after = shuffled.groupby([column, "label"]).size()
        pd.testing.assert_series_equal(before, after)


# ----------------------------------------------------------------------------- input spec
@pytest.fixture
def grid(tmp_path):
    affine = np.array([[1.0, 0, 0, -98], [0, 1, 0, -134], [0, 0, 1, -72], [0, 0, 0, 1]])
    ref = np.zeros((40, 48, 36), np.float32)
    ref[10:30, 12:40, 8:30] = 1
    nib.save(nib.Nifti1Image(ref, affine), tmp_path / "wm_reference.nii.gz")
    return tmp_path, affine, ref


def test_block_average_and_box(grid):
    path, affine, ref = grid
    spec = build_spec(path / "wm_reference.nii.gz", "MNI152NLin2009aSym", 2, [12, 16, 14])
    assert spec.factor == 2 and spec.shape == (12, 16, 14)
    data = np.random.default_rng(0).random(ref.shape).astype(np.float32)
    x = to_network_input(data, spec)
    assert x.shape == (12, 16, 14)
    block = data.reshape(20, 2, 24, 2, 18, 2).mean(axis=(1, 3, 5))
    ox, oy, oz = spec.offset
    np.testing.assert_allclose(x[1, 2, 3], block[ox + 1, oy + 2, oz + 3], rtol=1e-6)
    # the box is centred on the white matter: its centre voxel maps to the WM centre in mm
    centre_world = spec.affine @ np.array([5.5, 7.5, 6.5, 1])
    wm_centre = affine @ np.array([19.5, 25.5, 18.5, 1])
    np.testing.assert_allclose(centre_world[:3], wm_centre[:3], atol=1.0)
    with pytest.raises(ConfigError, match=r"resolution_mm: 1\.5 mm is not a whole multiple"):
        build_spec(path / "wm_reference.nii.gz", "MNI152NLin2009aSym", 1.5, None)


def test_input_spec_refusal(grid):
    path, affine, ref = grid
    spec = build_spec(path / "wm_reference.nii.gz", "MNI152NLin2009aSym", 2, None)
    good = path / "sub-x_space-MNI152NLin2009aSym_desc-wmcluster_probseg.nii.gz"
    nib.save(nib.Nifti1Image(ref, affine), good)
    assert load_input(good, spec, "x").shape == spec.shape == (20, 24, 18)
    cases = {
        "space": ("sub-x_space-MNI152NLin6Asym_desc-wmcluster_probseg.nii.gz", ref, affine),
        "shape": ("shape.nii.gz", ref[:-1], affine),
        "mm voxels": ("voxel.nii.gz", ref, np.diag([2.0, 2.0, 2.0, 1.0]) @ affine),
        "grid": ("shifted.nii.gz", ref, affine + np.array([[0, 0, 0, 5.0]] + [[0] * 4] * 3)),
    }
    for reason, (name, data, aff) in cases.items():
        nib.save(nib.Nifti1Image(data, aff), path / name)
        with pytest.raises(InputError, match=f"subject x: .*{name}.*{reason}"):
            load_input(path / name, spec, "x")


def test_model_file_round_trip_and_prediction_refusal(grid, tmp_path):
    path, affine, ref = grid
    spec = build_spec(path / "wm_reference.nii.gz", "MNI152NLin2009aSym", 2, None)
    net = HeteroMRINet(TINY, spec.shape)
    state = net.state_dict()
    save_model(tmp_path / "model.pt", state, TINY, spec, model_id(state))
    _, arch, spec2, ident = load_model(tmp_path / "model.pt")
    assert arch == TINY and spec2 == spec and ident == model_id(state)
    # The same model saved under another name has the same bytes (reproducible checksums).
    save_model(tmp_path / "again.pt", state, TINY, spec, model_id(state))
    assert (tmp_path / "again.pt").read_bytes() == (tmp_path / "model.pt").read_bytes()
    good = path / "sub-x_space-MNI152NLin2009aSym_desc-wmcluster_probseg.nii.gz"
    nib.save(nib.Nifti1Image(ref, affine), good)
    record = run_predict(good, tmp_path / "model.pt", "x", "01", out=tmp_path / "p.json")
    assert record["model_id"] == ident and 0 <= record["probability"] <= 1
    assert record["label"] in ("yes", "no")
    wrong = path / "wrong.nii.gz"
    nib.save(nib.Nifti1Image(ref[:, :, :30], affine), wrong)
    with pytest.raises(InputError, match="expects"):
        run_predict(wrong, tmp_path / "model.pt", "x", "01", out=tmp_path / "q.json")
    assert not (tmp_path / "q.json").exists()
    (tmp_path / "junk.pt").write_bytes(b"not a model")
    with pytest.raises(InputError, match="cannot read model file"):
        load_model(tmp_path / "junk.pt")


def test_final_split_of_a_tiny_cohort_still_validates():
    from cohortflow.classify.run import final_split

    table = pd.DataFrame(
        {"subject": ["a", "b", "c", "d"], "label": ["yes", "yes", "yes", "no"],
         "dataset": ["d"] * 4, "protocol": ["pA", "pB", "pC", "pA"]}
    )  # fmt: skip
    split = final_split(table, SplitSettings())
    assert len(split.val) == 1 and len(split.train) == 3
    with pytest.raises(ConfigError, match="only 1 subjects are labelled"):
        final_split(table.iloc[:1], SplitSettings())


def test_three_training_subjects_with_a_one_voxel_feature_map():
    # 32³ input, five blocks with 'same' padding: the last feature map is 1 voxel; batch 2 of
    # 3 subjects must not leave a batch of one for batch norm.
    arch = Architecture(filters=(2, 2, 2, 2, 4), padding="same", dense_units=4)
    assert arch.feature_shape((32, 32, 32)) == (1, 1, 1)
    x, y = _blobs(4, np.random.default_rng(3), shape=(32, 32, 32))
    result = train_model(arch, x[:3], y[:3], x[3:], y[3:], TrainSettings(max_epochs=2), seed=1)
    assert result.epochs_run == 2


def test_dataset_table_lists_labelled_maps_with_checksums(tmp_path):
    import pandas as pd

    from cohortflow.classify.jobs import read_dataset, write_dataset
    from cohortflow.io.atomic import sha256_file

    table = pd.DataFrame(
        {"subject": ["b", "a", "c"], "label": ["yes", "no", ""], "dataset": ["d"] * 3,
         "protocol": ["p1", "p2", "p1"]}
    )  # fmt: skip
    maps = {}
    for name in ("a", "b"):
        path = tmp_path / f"{name}.nii.gz"
        path.write_bytes(name.encode() * 10)
        maps[name] = str(path)
    out = tmp_path / "dataset.tsv"
    rows = write_dataset(table, maps, str(out))
    assert list(rows["subject"]) == ["b", "a"]  # table order, unlabelled c left out
    assert list(rows["sha256"]) == [sha256_file(maps["b"]), sha256_file(maps["a"])]
    assert read_dataset(str(out)) == {"b": maps["b"], "a": maps["a"]}
    with pytest.raises(ValueError, match="not in the cohort table: z"):
        write_dataset(table, {**maps, "z": maps["a"]}, str(tmp_path / "x.tsv"))
    (tmp_path / "bad.tsv").write_text("subject\tpath\na\tx\n")
    with pytest.raises(ValueError, match="not a classify dataset table"):
        read_dataset(str(tmp_path / "bad.tsv"))
