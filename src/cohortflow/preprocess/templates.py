"""The registration target: a 1 mm MNI ICBM152 2009 template with its white-matter map.

Three sources, chosen in config (``preprocess.template.source``):

* ``nilearn`` (default, offline): the MNI ICBM152 2009a symmetric T1 template (brain only)
  and its WM probability map that nilearn ships inside its wheel. Space
  ``MNI152NLin2009aSym``.
* ``templateflow``: the template HeteroMRI registered to, MNI152NLin2009cAsym at 1 mm with
  the T2w image (``image_suffix`` configurable), ``label-WM_probseg`` and ``desc-brain_mask``.
  Files are taken from the TemplateFlow cache (``$TEMPLATEFLOW_HOME``, default
  ``~/.cache/templateflow``); when missing and the ``templateflow`` package is installed it
  downloads them (needs internet). Offline without a cache this is a clear error.
* ``files``: any template given as paths (image, WM probability map in [0, 1] or 0..255,
  optional brain mask), with a space label.

:func:`prepare_template` writes the chosen maps once per run into ``resources/templates/``
(float32 template, WM probability in [0, 1], brain mask, WM reference mask) with a JSON record
of where each came from and its SHA-256, so every later step and the provenance name the same
bytes.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import nibabel as nib
import numpy as np
from scipy import ndimage

from cohortflow.errors import ConfigError, InputError
from cohortflow.io.atomic import sha256_file, write_json
from cohortflow.io.nifti import MNI_CODE, write_nifti

TEMPLATE_FILES = ("template", "wm_probseg", "brain_mask", "wm_reference")


@dataclass(frozen=True)
class TemplateSource:
    space: str
    image: Path
    wm_probseg: Path
    brain_mask: Path | None
    description: str


def space_label(cfg: dict[str, Any]) -> str:
    """The BIDS ``space-`` label of the configured template (used in file names)."""
    source = cfg["source"]
    if source == "nilearn":
        return "MNI152NLin2009aSym"
    if source == "templateflow":
        return str(cfg["templateflow"]["name"])
    return str(cfg["files"]["space"])


def _nilearn_source() -> TemplateSource:
    import nilearn

    data = Path(nilearn.__file__).parent / "datasets" / "data"
    return TemplateSource(
        space="MNI152NLin2009aSym",
        image=data / "mni_icbm152_t1_tal_nlin_sym_09a_converted.nii.gz",
        wm_probseg=data / "mni_icbm152_wm_tal_nlin_sym_09a_converted.nii.gz",
        brain_mask=None,  # the T1 is brain-masked: its support is the mask
        description=(
            f"MNI ICBM152 2009a symmetric, 1 mm, T1w (brain) and WM probability map, as shipped "
            f"by nilearn {_version('nilearn')}"
        ),
    )


def coarse_nilearn_template(out: Path | str, mm: int) -> dict[str, Path]:
    """nilearn's MNI152 2009a T1 (brain) and WM map resampled to ``mm`` mm, written to ``out``
    as ``image.nii.gz`` and ``wm_probseg.nii.gz`` (float32): a ``source: files`` template with
    which registration takes seconds, for tests and benchmarks of everything after it. Same
    space (MNI152NLin2009aSym), coarser grid."""
    from nilearn.image import resample_img

    source = _nilearn_source()
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, path in (("image", source.image), ("wm_probseg", source.wm_probseg)):
        img = nib.load(path)
        affine = img.affine.copy()
        affine[:3, :3] = np.diag(mm * np.sign(np.diag(img.affine[:3, :3])))
        shape = tuple(int(np.ceil(s / mm)) for s in img.shape)
        small = resample_img(
            img, target_affine=affine, target_shape=shape, interpolation="continuous",
            force_resample=True, copy_header=True,
        )  # fmt: skip
        files[name] = out / f"{name}.nii.gz"
        nib.save(nib.Nifti1Image(np.asarray(small.dataobj, dtype=np.float32), affine), files[name])
    return files


def templateflow_home() -> Path:
    return Path(os.environ.get("TEMPLATEFLOW_HOME", Path.home() / ".cache" / "templateflow"))


def _templateflow_cached(cfg: dict[str, Any], ending: str) -> Path:
    """Where the TemplateFlow cache keeps the template's file ``tpl-<name>_res-<rr>_<ending>``."""
    name = cfg["name"]
    return (
        templateflow_home()
        / f"tpl-{name}"
        / f"tpl-{name}_res-{int(cfg['resolution']):02d}_{ending}"
    )


def _templateflow_source(cfg: dict[str, Any]) -> TemplateSource:
    name = cfg["name"]
    res = int(cfg["resolution"])
    suffix = cfg["image_suffix"]
    wanted = {
        "image": (_templateflow_cached(cfg, f"{suffix}.nii.gz"), {"suffix": suffix, "desc": None}),
        "wm_probseg": (
            _templateflow_cached(cfg, "label-WM_probseg.nii.gz"),
            {"label": "WM", "suffix": "probseg"},
        ),
        "brain_mask": (
            _templateflow_cached(cfg, "desc-brain_mask.nii.gz"),
            {"desc": "brain", "suffix": "mask"},
        ),
    }
    found: dict[str, Path] = {}
    for key, (path, query) in wanted.items():
        if path.is_file():
            found[key] = path
            continue
        try:
            from templateflow import api as tflow
        except ImportError:
            raise ConfigError(
                f"preprocess.template.source = templateflow: {path} is not in the TemplateFlow "
                f"cache (TEMPLATEFLOW_HOME={templateflow_home()}) and the templateflow package "
                "is not installed to fetch it. Install it (pip install templateflow) on a "
                "machine with internet, pre-fill the cache, or use source: nilearn."
            ) from None
        try:
            got = tflow.get(name, resolution=res, extension=".nii.gz", **query)
        except Exception as exc:  # network or layout errors: say what was asked for
            raise ConfigError(
                f"preprocess.template.source = templateflow: could not get {path.name} "
                f"({type(exc).__name__}: {exc}); offline, pre-fill TEMPLATEFLOW_HOME or use "
                "source: nilearn"
            ) from None
        got = got[0] if isinstance(got, list) and len(got) == 1 else got
        if not got or isinstance(got, list):
            raise ConfigError(f"TemplateFlow has no unique file for {path.name} ({got!r})")
        found[key] = Path(got)
    return TemplateSource(
        space=name,
        image=found["image"],
        wm_probseg=found["wm_probseg"],
        brain_mask=found["brain_mask"],
        description=f"TemplateFlow {name} res-{res:02d} {suffix}, label-WM probseg, brain mask",
    )


def _files_source(cfg: dict[str, Any]) -> TemplateSource:
    for key in ("image", "wm_probseg"):
        if not cfg.get(key):
            raise ConfigError(f"preprocess.template.files.{key} is required with source: files")
    mask = cfg.get("brain_mask") or None
    return TemplateSource(
        space=str(cfg["space"]),
        image=Path(cfg["image"]),
        wm_probseg=Path(cfg["wm_probseg"]),
        brain_mask=Path(mask) if mask else None,
        description="user-supplied template files",
    )


def resolve_template(cfg: dict[str, Any]) -> TemplateSource:
    source = cfg["source"]
    if source == "nilearn":
        return _nilearn_source()
    if source == "templateflow":
        return _templateflow_source(cfg["templateflow"])
    if source == "files":
        return _files_source(cfg["files"])
    raise ConfigError(f"preprocess.template.source: unknown source {source!r}")


def template_voxel_mm(cfg: dict[str, Any]) -> float | None:
    """The template's voxel size in mm, read from the image header when the file is on this
    machine (nilearn's, user files, a filled TemplateFlow cache); None when it is not yet."""
    if cfg["source"] == "nilearn" and _nilearn_mm(cfg) != 1:
        return float(_nilearn_mm(cfg))
    try:
        if cfg["source"] == "templateflow":  # never fetch here: only a cached file is read
            tf = cfg["templateflow"]
            image = _templateflow_cached(tf, f"{tf['image_suffix']}.nii.gz")
        else:
            image = resolve_template(cfg).image
    except (ConfigError, KeyError):
        return None
    if not image.is_file():
        return None
    zooms = nib.load(image).header.get_zooms()[:3]
    return float(min(zooms))


def _version(name: str) -> str:
    from importlib.metadata import version

    return version(name)


def _load(path: Path, what: str) -> nib.Nifti1Image:
    if not path.is_file():
        raise InputError(path, f"template {what} not found")
    img = nib.load(path)
    if len(img.shape) != 3:
        raise InputError(path, f"template {what} must be 3D, has shape {img.shape}")
    return img  # type: ignore[return-value]


def _nilearn_mm(cfg: dict[str, Any]) -> int:
    return int((cfg.get("nilearn") or {}).get("resolution_mm", 1))


def prepare_template(
    cfg: dict[str, Any], outputs: dict[str, Path | str], record: Path | str
) -> None:
    """Write template, WM probability, brain mask and WM reference mask, plus their record."""
    if cfg["source"] == "nilearn" and _nilearn_mm(cfg) != 1:
        import tempfile

        mm = _nilearn_mm(cfg)
        with tempfile.TemporaryDirectory() as tmp:
            files = coarse_nilearn_template(tmp, mm)
            coarse = dict(cfg, source="files", files={"space": space_label(cfg), **files})
            prepare_template(coarse, outputs, record)
        written = json.loads(Path(record).read_text())
        written["Source"] = "nilearn"
        written["Description"] = (
            f"{_nilearn_source().description}, resampled to {mm} mm (preprocess.template."
            "nilearn.resolution_mm)"
        )
        source = _nilearn_source()
        written["Sources"] = {
            name: {"path": str(path), "sha256": sha256_file(path)}
            for name, path in (("image", source.image), ("wm_probseg", source.wm_probseg))
        }
        write_json(record, written)
        return
    src = resolve_template(cfg)
    image = _load(src.image, "image")
    wm_img = _load(src.wm_probseg, "WM probability map")
    if image.shape != wm_img.shape or not np.allclose(image.affine, wm_img.affine, atol=1e-3):
        raise InputError(src.wm_probseg, f"WM map grid differs from the template image {src.image}")
    affine = image.affine
    t = np.asarray(image.get_fdata(dtype=np.float32))
    wm = np.asarray(wm_img.get_fdata(dtype=np.float32))
    if wm.max() > 1.0 + 1e-3:  # stored as 0..255 (nilearn) or percent
        wm = wm / np.float32(255.0 if wm.max() > 100.0 else 100.0)
    wm = np.clip(wm, 0.0, 1.0)
    if src.brain_mask is not None:
        brain = _load(src.brain_mask, "brain mask").get_fdata() > 0.5
    else:
        brain = ndimage.binary_fill_holes(t > 0)
    ref_cfg = cfg.get("wm_reference") or {}
    if ref_cfg.get("file"):
        ref_img = _load(Path(ref_cfg["file"]), "WM reference mask")
        if ref_img.shape != t.shape:
            raise InputError(
                ref_cfg["file"], f"WM reference grid {ref_img.shape} != template {t.shape}"
            )
        reference = ref_img.get_fdata() > 0.5
        ref_desc = f"file {ref_cfg['file']}"
    else:
        threshold = float(ref_cfg.get("threshold", 0.5))
        reference = wm >= threshold
        ref_desc = f"template WM probability >= {threshold}"
    for name, data in (
        ("template", t),
        ("wm_probseg", wm),
        ("brain_mask", brain.astype(np.uint8)),
        ("wm_reference", reference.astype(np.uint8)),
    ):
        write_nifti(outputs[name], data, affine, code=MNI_CODE)
    write_json(
        record,
        {
            "Space": src.space,
            "Description": src.description,
            "Source": cfg["source"],
            "Sources": {
                "image": {"path": str(src.image), "sha256": sha256_file(src.image)},
                "wm_probseg": {"path": str(src.wm_probseg), "sha256": sha256_file(src.wm_probseg)},
                "brain_mask": (
                    {"path": str(src.brain_mask), "sha256": sha256_file(src.brain_mask)}
                    if src.brain_mask
                    else "support of the template image, holes filled"
                ),
            },
            "WMReference": ref_desc,
            "Shape": list(t.shape),
            "VoxelSizeMM": [float(z) for z in image.header.get_zooms()[:3]],
            "Files": {k: {"path": str(v), "sha256": sha256_file(v)} for k, v in outputs.items()},
        },
    )
