"""Robust fuzzy c-means: FCM oracle (scikit-fuzzy), robustness to noise, determinism."""

from __future__ import annotations

import numpy as np
import pytest

from cohortflow.wm_clusters.clusters import choose_cluster, white_matter_image
from cohortflow.wm_clusters.rfcm import quantile_centroids, rfcm


def phantom(shape=(40, 40, 40), noise=0.0, seed=0):
    """Three tissue classes of equal volume (intensities 1, 2, 3), optional Gaussian noise.

    Classes are wavy slabs (so the boundaries are not aligned with the grid).
    """
    idx = np.indices(shape).astype(float)
    x = idx[0] + 2.5 * np.sin(idx[1] / 4.0) + 2.5 * np.cos(idx[2] / 5.0)
    labels = np.digitize(x, np.quantile(x, [1 / 3, 2 / 3]))
    image = (labels + 1).astype(np.float32)
    rng = np.random.default_rng(seed)
    return image + rng.normal(0, noise, shape).astype(np.float32), labels


def test_beta_zero_equals_scikit_fuzzy_cmeans_from_the_same_start():
    skfuzzy = pytest.importorskip("skfuzzy")
    image, _ = phantom(noise=0.35)
    image = np.clip(image, 0.05, None)  # every voxel in the mask
    y = image.reshape(-1) / np.abs(image).max()
    v0 = quantile_centroids(y, 3)
    d = (y[None] - v0[:, None]) ** 2
    u0 = (1 / d) / (1 / d).sum(axis=0)
    n_iter = 25
    ours = rfcm(image, beta=0.0, max_iter=n_iter, tol=0.0, init_memberships=u0)
    cntr, u_ref, *_ = skfuzzy.cluster.cmeans(
        y[None].astype(np.float64), 3, 2.0, error=0.0, maxiter=n_iter, init=u0.astype(np.float64)
    )
    # Same classes up to order: sort scikit-fuzzy's by centre.
    order = np.argsort(cntr[:, 0])
    ref = u_ref[order].reshape(3, *image.shape)
    assert ours.iterations == n_iter
    assert np.abs(ours.memberships - ref).max() < 1e-4
    np.testing.assert_allclose(ours.centroids / ours.scale, np.sort(cntr[:, 0]), atol=1e-4)


def test_regularisation_reduces_misclassification_on_a_noisy_phantom():
    image, labels = phantom(noise=0.45, seed=3)
    image = np.clip(image, 0.01, None)
    plain = rfcm(image, beta=0.0, tol=1e-4, max_iter=300)
    robust = rfcm(image, beta=0.1, tol=1e-4, max_iter=300)
    wrong_plain = int((plain.memberships.argmax(axis=0) != labels).sum())
    wrong_robust = int((robust.memberships.argmax(axis=0) != labels).sum())
    assert robust.converged and plain.converged
    # Noise puts ~18 % of the voxels on the wrong side of an intensity boundary for plain FCM
    # (measured: 11,523 of 64,000); the spatial term removes most of them (measured: 865).
    assert wrong_plain > 0.08 * labels.size
    assert wrong_robust < 0.2 * wrong_plain, (wrong_plain, wrong_robust)


def test_clusters_ordered_by_intensity_masked_zero_and_deterministic():
    image, labels = phantom(noise=0.2, seed=1)
    image[:5] = 0.0  # masked out
    a = rfcm(image)
    b = rfcm(image, threads=3)  # chunked over threads: the same numbers
    assert np.array_equal(a.memberships, b.memberships)
    assert np.array_equal(a.centroids, b.centroids) and a.iterations == b.iterations
    assert np.all(np.diff(a.centroids) > 0)
    assert np.all(a.memberships[:, :5] == 0)
    inside = image != 0
    np.testing.assert_allclose(a.memberships.sum(axis=0)[inside], 1.0, atol=1e-5)
    # Brightest cluster is the brightest slab.
    assert (a.memberships[2] >= 0.5)[labels == 2].mean() > 0.95
    assert a.converged and a.iterations < 200


def test_two_dimensional_input_and_bad_input():
    image, _ = phantom(shape=(60, 60, 1), noise=0.1)
    result = rfcm(image[..., 0])
    assert result.memberships.shape == (3, 60, 60)
    with pytest.raises(ValueError, match="NaN"):
        rfcm(np.full((5, 5, 5), np.nan))
    with pytest.raises(ValueError, match="voxels to cluster"):
        rfcm(np.zeros((5, 5, 5)))


def test_cluster_choice_by_dice_and_threshold():
    reference = np.zeros((10, 10, 10), bool)
    reference[2:8, 2:8, 2:8] = True
    memberships = np.zeros((3, 10, 10, 10), np.float32)
    memberships[0] = 0.2
    memberships[1][reference] = 0.9
    memberships[1][~reference] = 0.4  # below the threshold: set to 0
    memberships[2][:5] = 0.7
    choice = choose_cluster(memberships, reference, 0.5)
    assert choice.chosen == 1
    assert choice.dice[1] == pytest.approx(1.0)
    assert choice.dice[0] == 0.0
    assert np.all(choice.wm_map[~reference] == 0)
    assert np.all(choice.wm_map[reference] == pytest.approx(0.9))
    wm = white_matter_image(np.full((2, 2, 2), -1.0), np.ones((2, 2, 2)))
    assert np.all(wm == 0)  # negative intensities do not enter the clustering
