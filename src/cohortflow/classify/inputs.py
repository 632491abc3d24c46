"""The network's input: which maps it accepts, and how they become its input array.

An :class:`InputSpec` is fixed when a model is trained and stored in its model card. It
names the template space, the grid of the WM cluster maps it was trained on (shape, voxel
size, affine) and how that grid becomes the network input: block averaging by an integer
factor (``resolution_mm`` / source voxel size; averaging, not subsampling, so thin lesions are
not dropped), then a box of ``shape`` voxels centred on the template's white matter (zero
padding where the box leaves the grid). Prediction refuses any map whose space, grid or
voxel size differ from the spec.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from cohortflow.errors import ConfigError, InputError
from cohortflow.io.nifti import read_volume

_SPACE = re.compile(r"_space-([A-Za-z0-9]+)_")
_AFFINE_TOL_MM = 1e-3


@dataclass(frozen=True)
class InputSpec:
    space: str
    source_shape: tuple[int, int, int]
    source_voxel_mm: tuple[float, float, float]
    source_affine: tuple[tuple[float, ...], ...]
    resolution_mm: float
    factor: int
    offset: tuple[int, int, int]  # first voxel of the box in the block-averaged grid
    shape: tuple[int, int, int]

    def as_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, record: dict) -> InputSpec:
        return cls(
            space=str(record["space"]),
            source_shape=tuple(int(v) for v in record["source_shape"]),
            source_voxel_mm=tuple(float(v) for v in record["source_voxel_mm"]),
            source_affine=tuple(tuple(float(v) for v in row) for row in record["source_affine"]),
            resolution_mm=float(record["resolution_mm"]),
            factor=int(record["factor"]),
            offset=tuple(int(v) for v in record["offset"]),
            shape=tuple(int(v) for v in record["shape"]),
        )

    @property
    def affine(self) -> np.ndarray:
        """World coordinates of the network input grid (voxel centres of the averaged blocks)."""
        src = np.asarray(self.source_affine)
        scale = np.diag([self.factor] * 3 + [1]).astype(float)
        shift = np.eye(4)
        shift[:3, 3] = (self.factor - 1) / 2 + np.asarray(self.offset) * self.factor
        return src @ shift @ scale


def resolution_factor(resolution_mm: float, template_voxel_mm: float) -> int:
    """How many template voxels make one network-input voxel along each axis: the input grid
    averages whole blocks of the registered map, so the resolution must be a whole multiple
    of the template's voxel size (checked when the workflow starts, and again by the jobs)."""
    ratio = float(resolution_mm) / float(template_voxel_mm)
    factor = round(ratio)
    if factor < 1 or abs(ratio - factor) > 1e-6:
        good = ", ".join(f"{template_voxel_mm * k:g}" for k in (1, 2, 3, 4))
        raise ConfigError(
            f"classify.input.resolution_mm: {resolution_mm:g} mm is not a whole multiple of the "
            f"template voxel size {template_voxel_mm:g} mm (preprocess.template); use one of "
            f"{good} mm"
        )
    return factor


def build_spec(
    reference: Path | str,
    space: str,
    resolution_mm: float,
    shape: list[int] | tuple[int, ...] | None,
) -> InputSpec:
    """The spec for maps on the grid of ``reference`` (the template WM reference mask)."""
    mask, affine = read_volume(reference, "template WM reference")
    voxel = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    if not np.allclose(voxel, voxel[0], atol=1e-3):
        raise ValueError(f"{reference}: template voxels are not isotropic ({voxel} mm)")
    factor = resolution_factor(resolution_mm, float(voxel[0]))
    grid = tuple(-(-s // factor) for s in mask.shape)
    if shape is None:
        offset = (0, 0, 0)
        shape = grid
    else:
        shape = tuple(int(s) for s in shape)
        if len(shape) != 3 or min(shape) < 1:
            raise ValueError(f"classify input shape must be three positive integers, not {shape}")
        inside = np.argwhere(mask > 0.5)
        if inside.size == 0:
            raise ValueError(f"{reference}: empty white-matter reference mask")
        centre = (inside.min(axis=0) + inside.max(axis=0) + 1) / 2 / factor
        offset = tuple(round(c - s / 2) for c, s in zip(centre, shape, strict=True))
    return InputSpec(
        space=space,
        source_shape=tuple(int(s) for s in mask.shape),
        source_voxel_mm=tuple(round(float(v), 6) for v in voxel),
        source_affine=tuple(tuple(round(float(v), 6) for v in row) for row in affine),
        resolution_mm=float(resolution_mm),
        factor=factor,
        offset=offset,
        shape=shape,
    )


def check_map(path: Path | str, data: np.ndarray, affine: np.ndarray, spec: InputSpec) -> None:
    """Raise :class:`InputError` if a map does not match the spec (space, grid, voxel size)."""
    match = _SPACE.search(Path(path).name)
    if match and match[1] != spec.space:
        raise InputError(
            path, f"the map is in space {match[1]}, the model expects space {spec.space}"
        )
    if tuple(data.shape) != spec.source_shape:
        raise InputError(
            path, f"the map has shape {tuple(data.shape)}, the model expects {spec.source_shape}"
        )
    voxel = np.sqrt((affine[:3, :3] ** 2).sum(axis=0))
    if not np.allclose(voxel, spec.source_voxel_mm, atol=_AFFINE_TOL_MM):
        raise InputError(
            path,
            f"the map has {tuple(round(float(v), 4) for v in voxel)} mm voxels, the model "
            f"expects {spec.source_voxel_mm} mm",
        )
    if not np.allclose(affine, np.asarray(spec.source_affine), atol=_AFFINE_TOL_MM):
        raise InputError(
            path, f"the map's grid (affine) differs from the model's {spec.space} grid"
        )
    if not np.isfinite(data).all():
        raise InputError(path, "the map has NaN or infinite values")


def to_network_input(data: np.ndarray, spec: InputSpec) -> np.ndarray:
    """Block-average by ``spec.factor`` and cut the box; float32 array of ``spec.shape``."""
    f = spec.factor
    if f > 1:
        padded = np.zeros([-(-s // f) * f for s in data.shape], np.float32)
        padded[tuple(slice(0, s) for s in data.shape)] = data
        g = [s // f for s in padded.shape]
        data = padded.reshape(g[0], f, g[1], f, g[2], f).mean(axis=(1, 3, 5), dtype=np.float64)
    out = np.zeros(spec.shape, np.float32)
    src, dst = [], []
    for start, size, length in zip(spec.offset, spec.shape, data.shape, strict=True):
        lo, hi = max(start, 0), min(start + size, length)
        src.append(slice(lo, hi))
        dst.append(slice(lo - start, hi - start))
    out[tuple(dst)] = data[tuple(src)]
    return out


def load_input(path: Path | str, spec: InputSpec, subject: str | None = None) -> np.ndarray:
    """Read a WM cluster map, check it against the spec and return the network input."""
    try:
        data, affine = read_volume(path, "WM cluster map")
        check_map(path, data, affine, spec)
    except InputError as exc:
        raise (exc.with_subject(subject) if subject else exc) from None
    return to_network_input(data, spec)
