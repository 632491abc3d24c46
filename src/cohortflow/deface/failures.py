"""Labelled original/defaced pairs with controlled failure modes, for training the evaluator.

From one head (an original image and its template registration), four failure types:

* ``none`` — no defacing: the original itself, and copies rewritten with another intensity
  scale (as a tool that changes data type would);
* ``partial`` — the face mask shifted forward (5-20 mm) or down (10-35 mm), or shrunk about
  the centre of the face (scale 0.35-0.8), so that eyes, nose or mouth remain;
* ``over`` — the face mask shifted back (6-25 mm) or up (6-25 mm), or grown by 5-16 mm, with
  no brain margin, so that it cuts into the brain;
* ``correct`` — the defacer's own mask, exact or shifted by up to 2 mm per axis, with the brain
  margin.

Masks are changed in template space (mm along the template's axes) and carried onto the subject
with the same registration the defacer uses. Every pair is checked against what its type
promises (share of face tissue kept, share of brain removed, measured in the evaluator's
regions) and redrawn when it does not: a ``partial`` pair keeps at least 15 % of the face, an
``over`` pair removes at least 0.2 % of the brain (twice what acceptance tolerates), a
``correct`` pair keeps at most 10 % of the face and touches under 0.1 % of the brain. Types
map to decisions: none/partial -> ``face_remains``, over -> ``brain_damaged``, correct ->
``accepted``.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from scipy import ndimage

from cohortflow.deface.defacer import Template
from cohortflow.deface.features import PairScorer

FAILURE_TYPES = ("none", "partial", "over", "correct")
DECISION = {
    "none": "face_remains",
    "partial": "face_remains",
    "over": "brain_damaged",
    "correct": "accepted",
}
_KINDS = {
    "partial": ("shift_anterior", "shrink", "shift_inferior"),
    "over": ("shift_posterior", "grow", "shift_superior"),
}
_RANGES = {
    "shift_anterior": (5.0, 20.0),
    "shift_inferior": (10.0, 35.0),
    "shrink": (0.35, 0.8),
    "shift_posterior": (6.0, 25.0),
    "shift_superior": (6.0, 25.0),
    "grow": (5.0, 16.0),
}
_DIRECTION = {  # template axes: x right, y anterior, z superior
    "shift_anterior": (0, 1, 0),
    "shift_inferior": (0, 0, -1),
    "shift_posterior": (0, -1, 0),
    "shift_superior": (0, 0, 1),
}

log = logging.getLogger("cohortflow.deface_qa")


@dataclass(frozen=True)
class Variant:
    failure_type: str
    kind: str
    value: float | tuple[float, ...] | None = None

    @property
    def params(self) -> str:
        return json.dumps({"kind": self.kind, "value": self.value})


def _shift_mm(mask: np.ndarray, template: Template, mm: np.ndarray) -> np.ndarray:
    vox = np.asarray(mm, float) / template.voxel_mm
    return ndimage.shift(mask.astype(np.uint8), vox, order=0, cval=0) > 0


def _shrink(mask: np.ndarray, factor: float, head: np.ndarray) -> np.ndarray:
    """The mask scaled by ``factor`` about the centre of the face tissue it covers."""
    tissue = mask & head
    anchor = np.argwhere(tissue if tissue.any() else mask).mean(axis=0)
    matrix = np.eye(3) / factor
    offset = anchor - matrix @ anchor
    return (
        ndimage.affine_transform(mask.astype(np.uint8), matrix, offset=offset, order=0, cval=0) > 0
    )


def variant_mask(template: Template, variant: Variant, margin_mm: float) -> np.ndarray | None:
    """Template-space removal mask of a variant (None for no defacing)."""
    face = template.face
    kind, value = variant.kind, variant.value
    if variant.failure_type == "none":
        return None
    if kind in _DIRECTION:
        mask = _shift_mm(face, template, np.asarray(_DIRECTION[kind]) * float(value))
    elif kind == "shrink":
        mask = _shrink(face, float(value), template.head > np.percentile(template.head, 60))
    elif kind == "grow":
        mask = ndimage.distance_transform_edt(~face, sampling=template.voxel_mm) <= float(value)
    elif kind == "jitter":
        mask = _shift_mm(face, template, np.asarray(value))
    elif kind == "exact":
        mask = face
    else:
        raise ValueError(f"unknown variant kind {kind!r}")
    if variant.failure_type in ("correct", "partial"):
        mask = mask & (template.brain_distance > margin_mm)
    return mask


def draw_variants(rng: np.random.Generator, per_type: int) -> Iterator[Variant]:
    for k in range(per_type):
        yield (
            Variant("none", "identical")
            if k == 0
            else Variant("none", "rescaled", round(float(rng.uniform(0.5, 2.0)), 4))
        )
    for failure in ("partial", "over"):
        for k in range(per_type):
            kind = _KINDS[failure][k % len(_KINDS[failure])]
            lo, hi = _RANGES[kind]
            yield Variant(failure, kind, round(float(rng.uniform(lo, hi)), 3))
    for k in range(per_type):
        if k == 0:
            yield Variant("correct", "exact")
        else:
            yield Variant("correct", "jitter", tuple(np.round(rng.uniform(-2, 2, 3), 3).tolist()))


def _meets_promise(failure_type: str, face_kept: float, brain_removed: float) -> bool:
    if failure_type == "partial":
        return 0.15 <= face_kept <= 0.9 and brain_removed < 0.001
    if failure_type == "over":
        return brain_removed >= 0.002
    if failure_type == "correct":
        return face_kept <= 0.10 and brain_removed < 0.001
    return True


def generate_pairs(
    original: np.ndarray,
    affine: np.ndarray,
    template: Template,
    subject_to_template: np.ndarray,
    scorer: PairScorer,
    *,
    subject: str,
    per_type: int,
    margin_mm: float,
    seed: int,
    max_draws: int = 20,
) -> list[dict]:
    """Feature rows of ``4 * per_type`` labelled pairs made from one head."""
    rng = np.random.default_rng([seed, int(subject.encode().hex()[:12], 16) % (2**32)])
    rows = []
    variants = list(draw_variants(rng, per_type))
    for number, variant in enumerate(variants):
        for _draw in range(max_draws):
            mask = variant_mask(template, variant, margin_mm)
            if mask is None:
                scale = 1.0 if variant.value is None else float(variant.value)
                defaced = original * np.float32(scale)
                removed = np.zeros(original.shape, bool)
            else:
                removed = template.to_subject(mask, original.shape, affine, subject_to_template)
                defaced = np.where(removed, np.float32(0), original).astype(np.float32)
            face, brain = scorer.regions["face"], scorer.regions["brain"]
            face_kept = float((~removed[face]).mean())
            brain_removed = float(removed[brain].mean())
            if _meets_promise(variant.failure_type, face_kept, brain_removed):
                break
            lo, hi = _RANGES.get(variant.kind, (0.0, 0.0))
            # Redraw within the range (a narrow head can need a larger shift or growth).
            value = round(float(rng.uniform(lo, hi)), 3)
            variant = Variant(variant.failure_type, variant.kind, value)
        else:
            log.warning(
                "sub-%s: pair %d (%s %s) does not meet its type's promise after %d draws "
                "(face kept %.3f, brain removed %.4f); left out",
                subject, number, variant.failure_type, variant.kind, max_draws, face_kept,
                brain_removed,
            )  # fmt: skip
            continue
        features, _, _ = scorer.features(defaced, f"pair {number}")
        rows.append(
            {
                "subject": subject,
                "pair": f"{subject}-{number:02d}",
                "failure_type": variant.failure_type,
                "decision": DECISION[variant.failure_type],
                "params": variant.params,
                "truth_face_kept": round(face_kept, 6),
                "truth_brain_removed": round(brain_removed, 6),
                **features,
            }
        )
    return rows
