"""HeteroMRI step C: white-matter image, RFCM clusters, and the cluster that is white matter.

The registered FLAIR is multiplied by the template's WM probability map; robust fuzzy
c-means splits the non-zero voxels into (by default) three intensity clusters; the cluster
whose ``membership >= threshold`` mask overlaps a WM reference mask best (Dice) is kept, with
memberships below the threshold set to 0. That map is the classifier's input.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cohortflow.errors import InputError
from cohortflow.preprocess.metrics import dice
from cohortflow.wm_clusters.rfcm import RFCMResult, rfcm


@dataclass(frozen=True)
class ClusterSettings:
    n_clusters: int = 3
    fuzziness: float = 2.0
    regularisation: float = 0.1
    max_iterations: int = 200
    tolerance: float = 0.01
    membership_threshold: float = 0.5

    @classmethod
    def from_config(cls, cfg: dict) -> ClusterSettings:
        return cls(
            n_clusters=int(cfg["n_clusters"]),
            fuzziness=float(cfg["fuzziness"]),
            regularisation=float(cfg["regularisation"]),
            max_iterations=int(cfg["max_iterations"]),
            tolerance=float(cfg["tolerance"]),
            membership_threshold=float(cfg["membership_threshold"]),
        )


@dataclass(frozen=True)
class ClusterChoice:
    chosen: int  # 0-based index into the intensity-ordered clusters
    dice: list[float]  # Dice of each cluster's >= threshold mask with the reference
    wm_map: np.ndarray  # chosen membership, < threshold set to 0


def white_matter_image(registered: np.ndarray, wm_probability: np.ndarray) -> np.ndarray:
    return (np.clip(registered, 0, None) * wm_probability).astype(np.float32)


def choose_cluster(
    memberships: np.ndarray, reference: np.ndarray, threshold: float = 0.5
) -> ClusterChoice:
    """The cluster whose thresholded membership best matches ``reference`` (first on ties)."""
    ref = np.asarray(reference, bool)
    scores = [dice(m >= threshold, ref) for m in memberships]
    chosen = int(np.argmax(scores))
    best = memberships[chosen]
    return ClusterChoice(chosen, scores, np.where(best >= threshold, best, 0).astype(np.float32))


def cluster_white_matter(
    registered: np.ndarray,
    wm_probability: np.ndarray,
    reference: np.ndarray,
    settings: ClusterSettings,
    path: str = "",
    threads: int = 1,
) -> tuple[np.ndarray, RFCMResult, ClusterChoice]:
    if registered.shape != wm_probability.shape or registered.shape != reference.shape:
        raise InputError(
            path,
            f"image grid {registered.shape} differs from the template's {wm_probability.shape}",
        )
    wm_image = white_matter_image(registered, wm_probability)
    if int((wm_image > 0).sum()) < 1000:
        raise InputError(
            path, "almost no signal inside the template white matter after registration"
        )
    result = rfcm(
        wm_image,
        n_clusters=settings.n_clusters,
        fuzziness=settings.fuzziness,
        beta=settings.regularisation,
        max_iter=settings.max_iterations,
        tol=settings.tolerance,
        mask_zero=True,
        threads=threads,
    )
    choice = choose_cluster(result.memberships, reference, settings.membership_threshold)
    return wm_image, result, choice
