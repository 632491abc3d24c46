"""Registration recovers a known synthetic deformation; templates resolve as configured."""

from __future__ import annotations

import json

import nibabel as nib
import numpy as np
import pytest
from scipy import ndimage

from cohortflow.errors import ConfigError
from cohortflow.io.nifti import MNI_CODE, write_nifti
from cohortflow.preprocess.metrics import correlation, dice, jacobian_summary, mutual_information
from cohortflow.preprocess.registration import (
    PRESETS,
    apply_forward,
    jacobian_determinant,
    register,
    registration_recipe,
)
from cohortflow.preprocess.templates import TEMPLATE_FILES, prepare_template, space_label

NILEARN = {"source": "nilearn", "wm_reference": {"threshold": 0.5}}


@pytest.fixture(scope="module")
def template_2mm(tmp_path_factory):
    """The nilearn template and WM reference, downsampled to 2 mm to keep the test fast."""
    work = tmp_path_factory.mktemp("tpl")
    full = {k: work / f"{k}.nii.gz" for k in TEMPLATE_FILES}
    prepare_template(NILEARN, full, work / "template.json")
    out = {}
    for name in ("template", "wm_reference"):
        img = nib.load(full[name])
        data = img.get_fdata(dtype=np.float32)[::2, ::2, ::2]
        affine = img.affine.copy()
        affine[:3, :3] *= 2
        out[name] = work / f"{name}_2mm.nii.gz"
        write_nifti(out[name], data, affine, code=MNI_CODE)
    return out


def deform(data: np.ndarray, order: int) -> np.ndarray:
    """A known smooth warp: 6 degree rotation, 5 % scaling, 4 mm sinusoidal displacement."""
    shape = np.asarray(data.shape)
    idx = np.indices(data.shape).reshape(3, -1).astype(float)
    centre = (shape - 1)[:, None] / 2
    a = np.deg2rad(6.0)
    rot = np.array([[1, 0, 0], [0, np.cos(a), -np.sin(a)], [0, np.sin(a), np.cos(a)]]) * 1.05
    src = rot @ (idx - centre) + centre + np.array([[2.0], [-1.5], [1.0]])
    src[0] += 2.0 * np.sin(idx[1] / 9.0)  # voxels of 2 mm: 4 mm amplitude
    src[2] += 1.5 * np.cos(idx[0] / 11.0)
    return ndimage.map_coordinates(data, src, order=order, mode="constant").reshape(data.shape)


def test_fast_preset_recovers_a_known_deformation(template_2mm, tmp_path):
    fixed = nib.load(template_2mm["template"])
    labels = nib.load(template_2mm["wm_reference"]).get_fdata() > 0.5
    moving = deform(fixed.get_fdata(dtype=np.float32), order=1)
    moving_labels = deform(labels.astype(np.float32), order=0) > 0.5
    write_nifti(tmp_path / "moving.nii.gz", moving, fixed.affine)
    write_nifti(tmp_path / "moving_labels.nii.gz", moving_labels.astype(np.uint8), fixed.affine)
    before = dice(moving_labels, labels)

    result = register(
        tmp_path / "moving.nii.gz", template_2mm["template"], PRESETS["fast"], tmp_path / "w"
    )
    warped_labels = apply_forward(
        tmp_path / "moving_labels.nii.gz",
        template_2mm["template"],
        result.forward_transform,
        "nearestNeighbor",
    )
    after = dice(warped_labels > 0.5, labels)
    brain = fixed.get_fdata() > 0
    jac = jacobian_summary(
        jacobian_determinant(template_2mm["template"], result.forward_transform), brain
    )
    # Measured (three-pass fast): WM Dice 0.578 before, 0.938 after; correlation 0.963;
    # Jacobian 0.65-1.35 (one-pass affine-syn: 0.942, 0.954, 0.70-1.15).
    assert before < 0.6, before  # the deformation is substantial
    assert after >= 0.9, (before, after)
    assert correlation(result.warped, fixed.get_fdata(), brain) > 0.93
    assert jac["folded_fraction"] == 0.0
    # The composed transform carries the scaling: volumes shrink by ~1/1.05^3 on average.
    assert 0.6 < jac["jacobian_min"] < 1.0 < jac["jacobian_max"] < 1.6
    assert len(result.commands) == 3
    assert all("--winsorize-image-intensities" in command for command in result.commands)


def test_heteromri_preset_is_the_published_recipe():
    preset = PRESETS["heteromri"]
    assert len(preset.passes) == 3
    for step in preset.passes:
        assert step.initialise == "centre-of-mass"
        (stage,) = step.stages
        args = " ".join(stage.arguments("F", "M"))
        assert "--transform SyN[0.1,3,0]" in args
        assert "--metric MI[F,M,1,32]" in args
        assert "--convergence [500x400x70x30,1e-06,10]" in args
        assert "--shrink-factors 8x4x2x1" in args
        assert "--smoothing-sigmas 3x2x1x0vox" in args
    assert preset.winsorize == (0.005, 0.995)


def test_fast_preset_is_three_short_passes_of_the_published_syn():
    """fast keeps heteromri's pass structure, SyN transform and metric; only the schedule
    is shorter (stops at 2 mm), and its first pass starts with an affine stage."""
    fast, published = PRESETS["fast"], PRESETS["heteromri"]
    assert len(fast.passes) == 3 and fast.winsorize == published.winsorize
    assert [s.transform for s in fast.passes[0].stages] == ["Affine[0.1]", "SyN[0.1,3,0]"]
    published_syn = published.passes[0].stages[0]
    for stage in [step.stages[-1] for step in fast.passes]:
        assert stage.transform == published_syn.transform == "SyN[0.1,3,0]"
        assert (stage.metric, stage.bins, stage.sampling) == ("MI", 32, "None")
        assert stage.iterations == (100, 70, 20) and stage.shrink_factors == (8, 4, 2)
    assert all(step.initialise == "centre-of-mass" for step in fast.passes)
    assert PRESETS["affine-syn"].passes == fast.passes[:1]
    # The rule parameter behind the params rerun trigger names every stage of every pass.
    recipe = registration_recipe("fast")
    assert recipe.count("centre-of-mass --transform SyN[0.1,3,0]") == 2
    assert recipe.count("--convergence [100x70x20,1e-06,10]") == 3
    assert len({registration_recipe(name) for name in PRESETS}) == len(PRESETS)


def test_metrics_on_known_values():
    rng = np.random.default_rng(0)
    a = rng.normal(size=(20, 20, 20))
    mask = np.ones(a.shape, bool)
    assert correlation(a, 2 * a + 1, mask) == pytest.approx(1.0)
    assert (
        mutual_information(a, a, mask) > mutual_information(a, rng.normal(size=a.shape), mask) + 1
    )
    assert dice(a > 0, a > 0) == 1.0 and dice(a > 0, a <= 0) == 0.0


def test_nilearn_template_record(tmp_path):
    out = {k: tmp_path / f"{k}.nii.gz" for k in TEMPLATE_FILES}
    prepare_template(NILEARN, out, tmp_path / "template.json")
    record = json.loads((tmp_path / "template.json").read_text())
    assert record["Space"] == space_label(NILEARN) == "MNI152NLin2009aSym"
    wm = nib.load(out["wm_probseg"]).get_fdata()
    assert wm.min() >= 0.0 and wm.max() <= 1.0 and wm.max() > 0.99
    assert record["Shape"] == [197, 233, 189] and record["VoxelSizeMM"] == [1.0, 1.0, 1.0]
    assert len(record["Sources"]["image"]["sha256"]) == 64


def test_templateflow_from_cache_and_clear_error_without_it(tmp_path, monkeypatch):
    cfg = {
        "source": "templateflow",
        "templateflow": {"name": "MNI152NLin2009cAsym", "image_suffix": "T2w", "resolution": 1},
        "wm_reference": {"threshold": 0.5},
    }
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(tmp_path / "empty"))
    monkeypatch.setitem(__import__("sys").modules, "templateflow", None)  # package absent
    with pytest.raises(ConfigError, match=r"TemplateFlow cache.*source: nilearn"):
        prepare_template(
            cfg, {k: tmp_path / f"{k}.nii.gz" for k in TEMPLATE_FILES}, tmp_path / "t.json"
        )

    # A pre-filled cache (TemplateFlow's own file layout) is used offline. The files here are
    # small stand-ins with the right names.
    home = tmp_path / "tf"
    folder = home / "tpl-MNI152NLin2009cAsym"
    folder.mkdir(parents=True)
    shape, affine = (40, 48, 40), np.diag([4.0, 4.0, 4.0, 1.0])
    ball = np.linalg.norm(np.indices(shape) - np.array(shape)[:, None, None, None] / 2, axis=0) < 15
    stem = "tpl-MNI152NLin2009cAsym_res-01"
    write_nifti(folder / f"{stem}_T2w.nii.gz", ball * 100.0, affine)
    write_nifti(folder / f"{stem}_label-WM_probseg.nii.gz", ball * 0.8, affine)
    write_nifti(folder / f"{stem}_desc-brain_mask.nii.gz", ball.astype(np.uint8), affine)
    monkeypatch.setenv("TEMPLATEFLOW_HOME", str(home))
    out = {k: tmp_path / f"out_{k}.nii.gz" for k in TEMPLATE_FILES}
    prepare_template(cfg, out, tmp_path / "t.json")
    record = json.loads((tmp_path / "t.json").read_text())
    assert record["Space"] == "MNI152NLin2009cAsym"
    assert record["Sources"]["image"]["path"].endswith(f"{stem}_T2w.nii.gz")
    assert np.array_equal(nib.load(out["wm_reference"]).get_fdata() > 0, ball)
