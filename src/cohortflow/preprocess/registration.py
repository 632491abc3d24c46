"""Nonlinear registration of a subject to the MNI template with ANTs (antspyx).

Three presets:

``heteromri`` — the published recipe (Abedi et al., GigaScience 2025): three successive SyN
passes, each registering the previous pass's warped output to the template, each with a
centre-of-mass initialisation, ``SyN[0.1,3,0]``, mutual information (``MI``, 32 bins, every
voxel), convergence ``[500x400x70x30,1e-6,10]``, shrink factors ``8x4x2x1``, smoothing
``3x2x1x0`` voxels, intensities winsorised at [0.005, 0.995].

``fast`` (the default) — the same three-pass structure on a short schedule: the first pass
adds an affine stage (MI, 25 % regular sampling) before its SyN stage; every SyN stage has
the published transform and metric but stops at 2 mm (``100x70x20``, shrink ``8x4x2``,
smoothing ``3x2x1`` vox). The successive passes are what lets the published recipe deform
far enough to reach its template correlation; one short pass stays 0.035–0.044 below it.

``affine-syn`` — the first pass of ``fast`` alone: about half its CPU time, and on the demo
cohort's ground truth its white matter lands best of the three, but its template
correlation is lower than ``heteromri``'s on three of the four benchmark subjects.

The accuracy of every preset against ``heteromri`` is measured by
``bench/preprocess_presets.py`` (numbers in the README).

The stage arguments are handed to antsRegistration through antspyx's full command-line
interface, so every parameter above is set explicitly (antspyx's simplified interface fixes
some of them, e.g. winsorisation and the convergence window). All transforms of all passes
are composed into one displacement field and the subject image is resampled once with it
(linear), so the output has one interpolation, not three.
"""

from __future__ import annotations

import os
import resource
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np


@dataclass(frozen=True)
class Stage:
    transform: str  # e.g. "SyN[0.1,3,0]" or "Affine[0.1]"
    iterations: tuple[int, ...]
    shrink_factors: tuple[int, ...]
    smoothing_vox: tuple[float, ...]
    metric: str = "MI"
    bins: int = 32
    sampling: str = "None"  # "None" = every voxel; "Regular" / "Random" with sampling_rate
    sampling_rate: float = 1.0
    convergence_threshold: float = 1e-6
    convergence_window: int = 10

    def arguments(self, fixed: str, moving: str) -> list[str]:
        metric = f"{self.metric}[{fixed},{moving},1,{self.bins}"
        if self.sampling != "None":
            metric += f",{self.sampling},{self.sampling_rate}"
        metric += "]"
        return [
            "--transform",
            self.transform,
            "--metric",
            metric,
            "--convergence",
            f"[{'x'.join(map(str, self.iterations))},{self.convergence_threshold},"
            f"{self.convergence_window}]",
            "--shrink-factors",
            "x".join(map(str, self.shrink_factors)),
            "--smoothing-sigmas",
            "x".join(f"{s:g}" for s in self.smoothing_vox) + "vox",
        ]


@dataclass(frozen=True)
class Pass:
    stages: tuple[Stage, ...]
    initialise: str = "centre-of-mass"  # or "none"


@dataclass(frozen=True)
class Preset:
    name: str
    passes: tuple[Pass, ...]
    winsorize: tuple[float, float] = (0.005, 0.995)
    description: str = ""


_HETEROMRI_SYN = Stage(
    transform="SyN[0.1,3,0]",
    iterations=(500, 400, 70, 30),
    shrink_factors=(8, 4, 2, 1),
    smoothing_vox=(3, 2, 1, 0),
)

_AFFINE = Stage(
    transform="Affine[0.1]",
    iterations=(1000, 500, 100),
    shrink_factors=(8, 4, 2),
    smoothing_vox=(3, 2, 1),
    sampling="Regular",
    sampling_rate=0.25,
)

_SHORT_SYN = Stage(
    transform="SyN[0.1,3,0]",
    iterations=(100, 70, 20),
    shrink_factors=(8, 4, 2),
    smoothing_vox=(3, 2, 1),
)

PRESETS: dict[str, Preset] = {
    "heteromri": Preset(
        name="heteromri",
        passes=(Pass((_HETEROMRI_SYN,)),) * 3,
        description="HeteroMRI (GigaScience 2025): three successive SyN passes",
    ),
    "fast": Preset(
        name="fast",
        passes=(Pass((_AFFINE, _SHORT_SYN)), Pass((_SHORT_SYN,)), Pass((_SHORT_SYN,))),
        description="affine + three successive short SyN passes ending at 2 mm",
    ),
    "affine-syn": Preset(
        name="affine-syn",
        passes=(Pass((_AFFINE, _SHORT_SYN)),),
        description="affine + one short SyN pass ending at 2 mm",
    ),
}


def registration_recipe(name: str) -> str:
    """A preset's stage parameters as one line of text (what antsRegistration is given)."""
    preset = PRESETS[name]
    passes = [
        " ".join(
            (["centre-of-mass"] if step.initialise == "centre-of-mass" else [])
            + [" ".join(stage.arguments("fixed", "moving")) for stage in step.stages]
        )
        for step in preset.passes
    ]
    winsorize = f"winsorize [{preset.winsorize[0]},{preset.winsorize[1]}]"
    return " | ".join([winsorize, *passes])


@dataclass
class RegistrationResult:
    warped: np.ndarray  # subject image on the template grid (float32)
    affine: np.ndarray  # template affine
    forward_transform: Path  # composed displacement field: template point -> subject point
    commands: list[list[str]] = field(default_factory=list)
    pass_seconds: list[float] = field(default_factory=list)


def cpu_seconds() -> float:
    """CPU time of this process and its threads so far (user + system)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def register(
    moving: Path | str,
    template: Path | str,
    preset: Preset,
    workdir: Path | str,
    *,
    threads: int = 1,
    seed: int = 1,
) -> RegistrationResult:
    """Register ``moving`` to ``template``; all intermediate files stay in ``workdir``."""
    os.environ["ITK_GLOBAL_DEFAULT_NUMBER_OF_THREADS"] = str(max(1, threads))
    import ants

    workdir = Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    fixed = str(template)
    current = str(moving)
    chain: list[str] = []  # antsApplyTransforms order: last-applied first
    commands: list[list[str]] = []
    seconds: list[float] = []
    for number, step in enumerate(preset.passes):
        prefix = str(workdir / f"pass{number}_")
        warped = str(workdir / f"pass{number}_warped.nii.gz")
        args = [
            "--dimensionality", "3",
            "--float", "1",
            "--collapse-output-transforms", "1",
            "--output", f"[{prefix},{warped}]",
            "--interpolation", "Linear",
            "--winsorize-image-intensities", f"[{preset.winsorize[0]},{preset.winsorize[1]}]",
            "--use-histogram-matching", "0",
            "--random-seed", str(seed),
        ]  # fmt: skip
        if step.initialise == "centre-of-mass":
            args += ["--initial-moving-transform", f"[{fixed},{current},1]"]
        for stage in step.stages:
            args += stage.arguments(fixed, current)
        start = time.perf_counter()
        ants.registration(args, None)
        seconds.append(time.perf_counter() - start)
        commands.append(["antsRegistration", *args])
        produced = sorted(workdir.glob(f"pass{number}_*GenericAffine.mat")) + sorted(
            p for p in workdir.glob(f"pass{number}_*Warp.nii.gz") if "Inverse" not in p.name
        )
        if not produced:
            raise RuntimeError(f"antsRegistration pass {number} wrote no transform in {workdir}")
        chain = [str(p) for p in reversed(produced)] + chain
        current = warped
    fixed_img = ants.image_read(fixed)
    moving_img = ants.image_read(str(moving))
    composed = ants.apply_transforms(
        fixed_img, moving_img, chain, compose=str(workdir / "composed_")
    )
    out = ants.apply_transforms(fixed_img, moving_img, [composed], interpolator="linear")
    warped_data = out.numpy().astype(np.float32)
    template_affine = _nibabel_affine(fixed)
    return RegistrationResult(
        warped=warped_data,
        affine=template_affine,
        forward_transform=Path(composed),
        commands=commands,
        pass_seconds=seconds,
    )


def apply_forward(
    image: Path | str,
    template: Path | str,
    forward_transform: Path | str,
    interpolator: str = "linear",
) -> np.ndarray:
    """Resample a subject-space image (e.g. a lesion mask) onto the template grid."""
    import ants

    out = ants.apply_transforms(
        ants.image_read(str(template)),
        ants.image_read(str(image)),
        [str(forward_transform)],
        interpolator=interpolator,
    )
    return out.numpy().astype(np.float32)


def jacobian_determinant(template: Path | str, forward_transform: Path | str) -> np.ndarray:
    """Jacobian determinant of the template -> subject mapping on the template grid."""
    import ants

    jac = ants.create_jacobian_determinant_image(
        ants.image_read(str(template)), str(forward_transform), do_log=False, geom=False
    )
    return jac.numpy().astype(np.float32)


def _nibabel_affine(path: str) -> np.ndarray:
    import nibabel as nib

    return nib.load(path).affine
