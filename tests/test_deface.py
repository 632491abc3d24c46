"""Defacing and the defacing evaluator: features on constructed cases, the defacer, the
classifier, and (when ../shared/data is present) a real face."""

from __future__ import annotations

from pathlib import Path

import nibabel as nib
import numpy as np
import pandas as pd
import pytest
from conftest import SHARED_DATA
from scipy import ndimage

from cohortflow.deface.classifier import QAModel, cross_validate, fit, held_out_type
from cohortflow.deface.defacer import DefaceSettings, Template, apply_removal, removal_mask
from cohortflow.deface.failures import DECISION, generate_pairs
from cohortflow.deface.features import FEATURES, PairError, PairScorer, check_same_grid
from cohortflow.deface.registration import pull, register_head
from cohortflow.deface.similarity import (
    correlation,
    fsim,
    nmi,
    phase_congruency,
    ssim,
)
from cohortflow.head_template import build_deface_template

REAL_FACE = SHARED_DATA / "mri" / "nifti" / "head_with_face_ds000031" / "T1w.nii.gz"


@pytest.fixture(scope="module")
def template_dir(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("deface") / "head_template"
    build_deface_template(out)
    return out


@pytest.fixture(scope="module")
def template(template_dir) -> Template:
    return Template.load(template_dir)


@pytest.fixture(scope="module")
def head(template) -> tuple[np.ndarray, np.ndarray]:
    """The template head itself on a 2 mm grid: a subject whose registration is the identity."""
    shape = tuple(n // 2 for n in template.head.shape)
    affine = template.affine.copy()
    affine[:3, :3] *= 2
    data = pull(template.head, template.affine, shape, affine, np.eye(4))
    return data, affine


@pytest.fixture(scope="module")
def scorer(head, template) -> PairScorer:
    data, affine = head
    return PairScorer(data, affine, template, np.eye(4))


# ------------------------------------------------------------------------------ similarity
def test_similarity_measures_are_one_for_identical_images_and_drop_with_noise() -> None:
    rng = np.random.default_rng(0)
    image = ndimage.gaussian_filter(rng.random((64, 64, 12)), 2) * 600
    mask = np.zeros(image.shape, bool)
    mask[8:56, 8:56, 2:10] = True
    for measure in (fsim, ssim):
        assert measure(image, image, mask) == pytest.approx(1.0)
    assert nmi(image, image, mask) == pytest.approx(1.0)
    assert correlation(image, image, mask) == pytest.approx(1.0)
    scores = []
    for sigma in (5.0, 20.0, 60.0):
        noisy = image + rng.normal(0, sigma, image.shape)
        scores.append([fsim(image, noisy, mask), ssim(image, noisy, mask), nmi(image, noisy, mask)])
    scores = np.array(scores)
    assert np.all(np.diff(scores, axis=0) < 0), scores  # more noise, less similar
    assert np.all(scores < 1)


def test_phase_congruency_peaks_on_an_edge() -> None:
    step = np.zeros((64, 64))  # periodic under the FFT: edges at columns 32 and 0
    step[:, 32:] = 200.0
    pc = phase_congruency(step)
    assert pc.min() >= 0 and pc.max() <= 1.0 + 1e-9
    profile = pc[32]
    assert int(np.argmax(profile)) in (0, 31, 32, 63)
    assert profile[31:33].min() > 1.5 * max(profile[24], profile[40])


def test_identical_pair_scores_one(scorer, head) -> None:
    values, _, alignment = scorer.features(head[0].copy())
    assert set(values) == set(FEATURES)
    for name, value in values.items():
        expected = 0.0 if name.endswith("_share") else 1.0
        assert value == pytest.approx(expected, abs=1e-9), name
    assert alignment.correlation == pytest.approx(1.0)


def test_rescaled_copy_scores_like_the_original(scorer, head) -> None:
    values, _, alignment = scorer.features(head[0] * 1.7 + 0.0)
    assert alignment.slope == pytest.approx(1.7, rel=1e-4)
    assert values["face_fsim"] == pytest.approx(1.0, abs=1e-4)
    assert values["brain_changed_share"] == 0.0


def test_face_zeroed_drops_face_features_and_keeps_brain(scorer, head) -> None:
    data = head[0].copy()
    data[scorer.regions["face"]] = 0
    values, _, _ = scorer.features(data)
    assert values["face_removed_share"] == pytest.approx(1.0)
    assert values["face_fsim"] < 0.5 and values["face_ssim"] < 0.5
    assert values["face_correlation"] < 0.5 and values["face_nmi"] < 0.5
    assert values["front_depth_changed_share"] > 0.3
    assert values["front_render_ssim"] < 0.9
    for name in ("fsim", "ssim", "nmi", "correlation"):
        assert values[f"brain_{name}"] > 0.99, name
    assert values["brain_removed_share"] == 0.0 and values["brain_changed_share"] == 0.0


def test_brain_zeroed_drops_brain_features(scorer, head) -> None:
    data = head[0].copy()
    data[scorer.regions["brain"]] = 0
    values, _, _ = scorer.features(data)
    assert values["brain_removed_share"] > 0.9
    assert values["brain_fsim"] < 0.5 and values["brain_ssim"] < 0.5
    assert values["brain_correlation"] < 0.5 and values["brain_nmi"] < 0.5
    assert values["face_removed_share"] == 0.0
    assert values["front_depth_changed_share"] < 0.02  # the skin stays where it was


def test_pair_from_another_head_is_refused(scorer, head) -> None:
    other = np.roll(head[0], 12, axis=1) + np.roll(head[0], -9, axis=2)
    with pytest.raises(PairError, match="does not come from the original"):
        scorer.features(other, "other.nii.gz")


def test_pair_on_another_grid_is_refused(head) -> None:
    data, affine = head
    with pytest.raises(PairError, match="shape"):
        check_same_grid((data.shape, affine), (data[1:].shape, affine), "o.nii", "d.nii")
    moved = affine.copy()
    moved[0, 3] += 1.0
    with pytest.raises(PairError, match="affine"):
        check_same_grid((data.shape, affine), (data.shape, moved), "o.nii", "d.nii")
    check_same_grid((data.shape, affine), (data.shape, affine.copy()), "o.nii", "d.nii")


# ------------------------------------------------------------------------------ defacer
def test_template_face_and_brain_are_disjoint(template) -> None:
    assert template.face.sum() > 1e6 and template.brain.sum() > 1.5e6
    assert not (template.face & template.brain).any()
    protected = template.protected_face(4.0)
    distance = ndimage.distance_transform_edt(~template.brain, sampling=template.voxel_mm)
    assert distance[protected].min() > 4.0
    assert protected.sum() > 0.9 * template.face.sum()


def test_removal_zeroes_the_face_and_keeps_every_other_stored_value(head, template) -> None:
    data, affine = head
    img = nib.Nifti1Image(np.round(data).astype(np.int16), affine)
    remove = removal_mask(template, data.shape, affine, np.eye(4), DefaceSettings())
    out = apply_removal(img, remove)
    raw_in, raw_out = np.asanyarray(img.dataobj), np.asanyarray(out.dataobj)
    assert raw_out.dtype == np.int16
    assert np.all(raw_out[remove] == 0)
    assert np.array_equal(raw_out[~remove], raw_in[~remove])
    brain = template.to_subject(template.brain, data.shape, affine, np.eye(4))
    assert not (remove & brain).any()
    face = template.to_subject(template.face, data.shape, affine, np.eye(4))
    assert (remove & face).sum() > 0.9 * face.sum()


def test_removal_with_a_scaling_intercept_writes_zero(head, template) -> None:
    data, affine = head
    img = nib.Nifti1Image(np.round(data).astype(np.int16), affine)
    img.header.set_slope_inter(2.0, -100.0)
    remove = removal_mask(template, data.shape, affine, np.eye(4), DefaceSettings())
    out = apply_removal(img, remove)
    scaled = out.get_fdata()
    assert np.all(scaled[remove] == 0)
    assert np.allclose(scaled[~remove], img.get_fdata()[~remove])


def test_registration_recovers_a_known_affine(head, template, tmp_path) -> None:
    data, affine = head
    angle = np.deg2rad(8.0)
    truth = np.eye(4)  # subject point -> template point
    truth[:3, :3] = [
        [1, 0, 0],
        [0, np.cos(angle), -np.sin(angle)],
        [0, np.sin(angle), np.cos(angle)],
    ]
    truth[:3, :3] *= 1.05
    truth[:3, 3] = [4.0, -6.0, 3.0]
    moved = pull(data, affine, data.shape, affine, truth)
    path = tmp_path / "subject.nii.gz"
    nib.save(nib.Nifti1Image(moved, affine), path)
    found = register_head(path, template.paths["head"])
    inside = np.argwhere(template.to_subject(template.brain, data.shape, affine, truth))[::50]
    world = affine[:3, :3] @ inside.T + affine[:3, 3:4]
    error = np.linalg.norm(
        (truth[:3, :3] - found[:3, :3]) @ world + (truth[:3, 3:4] - found[:3, 3:4]), axis=0
    )
    assert error.max() < 2.0, error.max()


# ------------------------------------------------------------------------------ pairs + classifier
@pytest.fixture(scope="module")
def pairs(head, template, scorer) -> pd.DataFrame:
    data, affine = head
    return pd.DataFrame(
        generate_pairs(data, affine, template, np.eye(4), scorer, subject="template",
                       per_type=3, margin_mm=4.0, seed=1)
    )  # fmt: skip


def test_generated_pairs_keep_their_promises(pairs) -> None:
    assert sorted(pairs["failure_type"].value_counts().to_dict().items()) == [
        ("correct", 3), ("none", 3), ("over", 3), ("partial", 3)
    ]  # fmt: skip
    assert (pairs["decision"] == pairs["failure_type"].map(DECISION)).all()
    part = pairs[pairs["failure_type"] == "partial"]
    assert part["truth_face_kept"].between(0.15, 0.9).all()
    assert (part["truth_brain_removed"] < 0.001).all()
    assert (pairs.loc[pairs["failure_type"] == "over", "truth_brain_removed"] >= 0.002).all()
    good = pairs[pairs["failure_type"] == "correct"]
    assert (good["truth_face_kept"] <= 0.1).all() and (good["truth_brain_removed"] < 0.001).all()


def _synthetic_table(rng: np.random.Generator, heads: int = 6) -> pd.DataFrame:
    """Feature rows with the structure of real pairs (face features for face failures, brain
    features for brain damage) plus noise."""
    rows = []
    for h in range(heads):
        for failure, decision in DECISION.items():
            for k in range(4):
                face_kept = {"none": 1.0, "partial": 0.5, "over": 0.0, "correct": 0.03}[failure]
                brain_lost = 0.02 if failure == "over" else 0.0
                row = {name: 1.0 for name in FEATURES}
                for name in FEATURES:
                    if name.endswith("_share"):
                        row[name] = 0.0
                for name in FEATURES:
                    if name.startswith("brain_"):
                        row[name] = brain_lost if name.endswith("_share") else 1 - 2 * brain_lost
                    else:
                        row[name] = (
                            1 - face_kept if name.endswith("_share") else 0.3 + 0.7 * face_kept
                        )
                    row[name] += rng.normal(0, 0.0005 if name.startswith("brain_") else 0.01)
                ids = {"subject": f"h{h}", "pair": f"h{h}-{failure}{k}"}
                rows.append({**ids, "failure_type": failure, "decision": decision, **row})
    return pd.DataFrame(rows)


def test_model_json_round_trip_matches_scikit_learn() -> None:
    from sklearn.linear_model import LogisticRegression

    table = _synthetic_table(np.random.default_rng(1))
    model = fit(table)
    again = QAModel.from_json(model.to_json())
    z = (table[list(FEATURES)].to_numpy() - model.mean) / model.scale
    reference = LogisticRegression(C=1.0, max_iter=5000).fit(z, table["decision"])
    order = [list(reference.classes_).index(c) for c in again.classes]
    assert np.allclose(again.probabilities(table), reference.predict_proba(z)[:, order], atol=1e-6)
    assert again.predict(table) == model.predict(table)


def test_cross_validation_groups_heads_and_scores_well() -> None:
    table = _synthetic_table(np.random.default_rng(2))
    metrics, predictions = cross_validate(table, folds=3, seed=1)
    assert predictions.groupby("subject")["fold"].nunique().max() == 1  # a head in one fold
    assert metrics["auroc"] > 0.95 and metrics["accuracy"] > 0.95
    assert metrics["tp"] + metrics["fn"] == 6 * 3 * 4  # heads x (none, partial, over) x 4


def test_held_out_failure_types_are_still_rejected() -> None:
    table = _synthetic_table(np.random.default_rng(3))
    for failure in ("none", "partial", "over"):
        result = held_out_type(table, failure)
        assert result["n"] == 24
        assert result["accuracy"] == 1.0, result


def test_envelope_rejects_brain_damage_the_regression_never_saw() -> None:
    table = _synthetic_table(np.random.default_rng(4))
    model = fit(table[table["failure_type"] != "over"])
    damaged = table[table["failure_type"] == "over"].head(1)
    ((decision, outside),) = model.decide(damaged)
    assert decision == "brain_damaged"
    assert any(o["feature"].startswith("brain_") for o in outside)
    drivers = model.drivers(damaged.iloc[0], "face_remains")
    assert len(drivers) == 3 and {"feature", "value", "contribution"} <= set(drivers[0])


# ------------------------------------------------------------------------------ real face
@pytest.mark.shared_data
@pytest.mark.skipif(not REAL_FACE.is_file(), reason="../shared/data (real face) not present")
def test_real_face_is_defaced_accepted_and_brain_untouched(
    template_dir, template, pairs, tmp_path
) -> None:
    from cohortflow.deface.run import read_registration, run_deface, run_evaluate

    out = {
        name: tmp_path / name for name in ("defaced.nii.gz", "mask.nii.gz", "xfm.json", "side.json")
    }
    record = run_deface(
        REAL_FACE, template_dir, DefaceSettings(), defaced_out=out["defaced.nii.gz"],
        mask_out=out["mask.nii.gz"], registration_out=out["xfm.json"],
        sidecar_out=out["side.json"], subject="realface",
    )  # fmt: skip
    assert record["RemovedBrainVoxels"] == 0
    original = nib.load(REAL_FACE)
    defaced = nib.load(out["defaced.nii.gz"])
    assert defaced.shape == original.shape and np.allclose(defaced.affine, original.affine)
    a, b = np.asanyarray(original.dataobj), np.asanyarray(defaced.dataobj)
    assert b.dtype == a.dtype
    changed = a != b
    # Train the evaluator on pairs from the template head and from this face.
    img_data = original.get_fdata(dtype=np.float32)
    scorer = PairScorer(img_data, original.affine, template, read_registration(out["xfm.json"]))
    brain = scorer.regions["brain"]
    assert changed[brain].mean() < 0.001  # fewer than 0.1 % of brain voxels altered
    assert (b[scorer.regions["face"]] == 0).mean() > 0.9  # face region removed
    matrix = read_registration(out["xfm.json"])
    face_pairs = generate_pairs(
        img_data, original.affine, template, matrix, scorer,
        subject="realface", per_type=1, margin_mm=4.0, seed=1,
    )  # fmt: skip
    model = fit(pd.concat([pairs, pd.DataFrame(face_pairs)], ignore_index=True))
    model_path = tmp_path / "model.json"
    import json

    model_path.write_text(json.dumps(model.to_json()))
    decision = run_evaluate(
        REAL_FACE, out["defaced.nii.gz"], out["xfm.json"], template_dir, model_path,
        decision_out=tmp_path / "decision.json", renders_out=tmp_path / "faces.png",
        subject="realface", defacer="cohortflow", min_provenance_correlation=0.95,
    )  # fmt: skip
    assert decision["Decision"] == "accepted", decision
    assert (tmp_path / "faces.png").stat().st_size > 10_000
    # The face left on: rejected because the face remains.
    undefaced, _, _ = scorer.features(img_data)
    ((verdict, _),) = model.decide(pd.DataFrame([undefaced]))
    assert verdict == "face_remains"


# ------------------------------------------------------------------------------ bad pairs (jobs)
@pytest.fixture(scope="module")
def head_files(head, tmp_path_factory) -> dict[str, Path]:
    """The 2 mm template head as an original, with an identity registration record."""
    import json

    data, affine = head
    folder = tmp_path_factory.mktemp("pair_jobs")
    files = {"original": folder / "original.nii.gz", "xfm": folder / "xfm.json"}
    nib.save(nib.Nifti1Image(data.astype(np.float32), affine), files["original"])
    files["xfm"].write_text(json.dumps({"SubjectToTemplate": np.eye(4).tolist()}))
    return files


def test_evaluating_a_pair_on_another_grid_names_subject_and_files(
    head_files, template_dir, tmp_path
):
    from cohortflow.deface.run import run_evaluate

    img = nib.load(head_files["original"])
    other = tmp_path / "other_grid.nii.gz"
    nib.save(nib.Nifti1Image(img.get_fdata()[2:], img.affine), other)
    with pytest.raises(PairError) as err:
        run_evaluate(
            head_files["original"], other, head_files["xfm"], template_dir, tmp_path / "none.json",
            decision_out=tmp_path / "d.json", renders_out=tmp_path / "f.png",
            subject="abc123", defacer="pydeface", min_provenance_correlation=0.95,
        )  # fmt: skip
    message = str(err.value)
    assert "abc123" in message and "other_grid.nii.gz" in message and "shape" in message
    assert not (tmp_path / "d.json").exists() and not (tmp_path / "f.png").exists()


def test_evaluating_another_subjects_image_is_refused(head_files, template_dir, head, tmp_path):
    from cohortflow.deface.run import run_evaluate

    data, affine = head
    other = tmp_path / "someone_else.nii.gz"
    shifted = np.roll(data, 10, axis=1) + np.roll(data, -8, axis=2)
    nib.save(nib.Nifti1Image(shifted.astype(np.float32), affine), other)
    with pytest.raises(PairError, match="does not come from the original") as err:
        run_evaluate(
            head_files["original"], other, head_files["xfm"], template_dir, tmp_path / "none.json",
            decision_out=tmp_path / "d.json", renders_out=tmp_path / "f.png",
            subject="abc123", defacer="pydeface", min_provenance_correlation=0.95,
        )  # fmt: skip
    assert "abc123" in str(err.value) and "someone_else.nii.gz" in str(err.value)
    assert not (tmp_path / "d.json").exists()


def test_missing_or_broken_external_defacing_is_a_clear_error(tmp_path):
    from cohortflow.deface.run import run_import_defaced
    from cohortflow.errors import InputError

    with pytest.raises(InputError, match=r"abc123.*not found"):
        run_import_defaced(tmp_path / "nope.nii.gz", tmp_path / "o.nii.gz", subject="abc123",
                           defacer="quickshear")  # fmt: skip
    broken = tmp_path / "broken.nii.gz"
    broken.write_text("not an image")
    with pytest.raises(InputError, match=r"abc123.*broken\.nii\.gz"):
        run_import_defaced(broken, tmp_path / "o.nii.gz", subject="abc123", defacer="quickshear")
    assert not (tmp_path / "o.nii.gz").exists()


def test_defacing_refuses_bad_images(template_dir, tmp_path):
    from cohortflow.deface.run import load_head
    from cohortflow.errors import NiftiError

    cases = {
        "zeros": np.zeros((40, 40, 40), np.float32),
        "flat": np.ones((40, 40, 1), np.float32),
        "nan": np.full((40, 40, 40), np.nan, np.float32),
    }
    for name, data in cases.items():
        path = tmp_path / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(data, np.eye(4)), path)
        with pytest.raises(NiftiError, match=f"subject s1: .*{name}.nii.gz"):
            load_head(path, "s1")


@pytest.mark.filterwarnings("ignore:Arrays of 2-dimensional vectors:DeprecationWarning")
def test_another_tools_defacing_is_imported_and_judged(head_files, template, template_dir, pairs,
                                                        tmp_path):  # fmt: skip
    """quickshear (pure Python) defaces the head; its output goes through the sheet's path:
    import onto the ingested grid, then the same evaluator as ours."""
    import json

    quickshear = pytest.importorskip("quickshear").quickshear
    from cohortflow.deface.classifier import DECISIONS
    from cohortflow.deface.run import run_evaluate, run_import_defaced

    img = nib.load(head_files["original"])
    brain = template.to_subject(template.brain, img.shape, img.affine, np.eye(4))
    sheared = quickshear(img, nib.Nifti1Image(brain.astype(np.uint8), img.affine))
    tool_output = tmp_path / "quickshear_out.nii.gz"
    nib.save(sheared, tool_output)
    imported = tmp_path / "imported.nii.gz"
    run_import_defaced(tool_output, imported, subject="abc123", defacer="quickshear")
    model_path = tmp_path / "model.json"
    model_path.write_text(json.dumps(fit(pairs).to_json()))
    record = run_evaluate(
        head_files["original"], imported, head_files["xfm"], template_dir, model_path,
        decision_out=tmp_path / "d.json", renders_out=tmp_path / "f.png",
        subject="abc123", defacer="quickshear", min_provenance_correlation=0.95,
    )  # fmt: skip
    assert record["Defacer"] == "quickshear" and record["Decision"] in DECISIONS
    assert record["Features"]["brain_changed_share"] < 0.001  # quickshear spares the brain
    assert record["Features"]["face_removed_share"] > 0.2
    assert json.loads((tmp_path / "d.json").read_text())["Decision"] == record["Decision"]


ENHANCED = SHARED_DATA / "mri" / "dicom" / "siemens_prisma_xa30_t1_enhanced"


@pytest.mark.shared_data
@pytest.mark.skipif(not ENHANCED.is_dir(), reason="../shared/data (enhanced DICOM) not present")
def test_enhanced_multiframe_dicom_is_defaced_voxel_for_voxel(tmp_path):
    """A real enhanced multi-frame file: the pixels under a removal mask made on the converted
    grid, and only those, are zero when the defaced file is read back."""
    import pydicom

    from cohortflow.deface.dicom import deface_dataset
    from cohortflow.ingest import dicom_series, dicom_volume
    from cohortflow.privacy.pseudonym import PseudonymKey

    series = dicom_series.discover_series(ENHANCED).series[0]
    before = dicom_volume.volume_to_nifti(dicom_volume.read_volume(series))
    data = before.get_fdata()
    remove = np.zeros(data.shape, bool)
    remove[: data.shape[0] // 2, data.shape[1] // 2 :, :] = True  # one corner block
    (path,) = series.files
    ds = pydicom.dcmread(path)
    out, removed = deface_dataset(ds, path, PseudonymKey(b"k" * 32, "test"), "sub01", remove,
                                  before.affine)  # fmt: skip
    assert removed == remove.sum()
    written = tmp_path / "defaced" / "0001.dcm"
    written.parent.mkdir()
    pydicom.dcmwrite(written, out, enforce_file_format=True)
    again = dicom_series.discover_series(written.parent).series[0]
    after = dicom_volume.volume_to_nifti(dicom_volume.read_volume(again))
    assert np.allclose(after.affine, before.affine, atol=1e-4)
    result = after.get_fdata()
    assert np.all(result[remove] == 0)
    assert np.array_equal(result[~remove], data[~remove])
    assert [c.CodeValue for c in pydicom.dcmread(written).DeidentificationMethodCodeSequence] == [
        "113100", "113102",
    ]  # fmt: skip


def test_pair_tables_are_concatenated_byte_for_byte(tmp_path) -> None:
    from cohortflow.io.atomic import concatenate_tables

    a, b = tmp_path / "a.tsv", tmp_path / "b.tsv"
    a.write_text("subject\tscore\nx\t0.123456789012345\n")
    b.write_text("subject\tscore\ny\t1e-300\nz\t-0")  # no final newline
    out = tmp_path / "all.tsv"
    assert concatenate_tables([a, b], out) == 3
    assert out.read_text() == "subject\tscore\nx\t0.123456789012345\ny\t1e-300\nz\t-0\n"
    (tmp_path / "c.tsv").write_text("subject\tother\nw\t1\n")
    with pytest.raises(ValueError, match="header differs"):
        concatenate_tables([a, tmp_path / "c.tsv"], tmp_path / "bad.tsv")
    assert not (tmp_path / "bad.tsv").exists()
    with pytest.raises(ValueError, match="no tables"):
        concatenate_tables([], out)
