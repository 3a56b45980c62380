"""Qt-free tests of the trajectory projection (app/trajectory.py)."""

from __future__ import annotations

import numpy as np
import pytest

from app.gui.state.trajectory import IncrementalPCA, Trajectory, trail_colours


def _data(n: int = 600, d: int = 24, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    basis = np.linalg.qr(rng.standard_normal((d, d)))[0]
    scales = np.r_[5.0, 2.0, np.full(d - 2, 0.3)]
    return (rng.standard_normal((n, d)) * scales) @ basis.T + rng.standard_normal(d)


def test_incremental_pca_matches_batch_pca() -> None:
    x = _data()
    pca = IncrementalPCA(2)
    for chunk in np.array_split(x, 60):
        pca.partial_fit(chunk)
    assert pca.n_seen == x.shape[0]
    np.testing.assert_allclose(pca.mean_, x.mean(axis=0), atol=1e-9)
    np.testing.assert_allclose(pca.covariance(), np.cov(x, rowvar=False), atol=1e-8)
    _, vecs = np.linalg.eigh(np.cov(x, rowvar=False))
    top = vecs[:, ::-1][:, :2].T
    # same subspace, same order: |cos| close to 1 per axis
    cos = np.abs(np.einsum("kd,kd->k", pca.components_, top))
    assert np.all(cos > 0.999), cos
    var = pca.explained_variance()
    assert var[0] > var[1] > 0


def test_pca_signs_are_stable_between_updates() -> None:
    x = _data(seed=1)
    pca = IncrementalPCA(2).partial_fit(x[:300])
    before = pca.components_.copy()
    pca.partial_fit(x[300:310])
    assert np.all(np.einsum("kd,kd->k", pca.components_, before) > 0.9)


def test_pca_transform_before_fit_and_bad_rows() -> None:
    pca = IncrementalPCA(2)
    assert pca.transform(np.ones((3, 5))).shape == (3, 2)
    pca.partial_fit(np.array([[np.nan, 1.0, 2.0]]))
    assert pca.n_seen == 0
    pca.partial_fit(np.ones((2, 3)))
    with pytest.raises(ValueError, match="embedding size"):
        pca.partial_fit(np.ones((2, 4)))


def test_trajectory_bounded_and_ordered() -> None:
    x = _data(n=50, d=8)
    traj = Trajectory(capacity=20)
    for i, row in enumerate(x):
        traj.add(i * 0.25, row)
    snap = traj.snapshot()
    assert len(traj) == 20 and snap.xy.shape == (20, 2) and snap.xy.dtype == np.float32
    np.testing.assert_allclose(snap.times, np.arange(30, 50) * 0.25)
    expected = traj.pca.transform(x[30:])
    np.testing.assert_allclose(snap.xy, expected, rtol=1e-5, atol=1e-5)
    # clicking on a point gives back its time
    assert snap.nearest_time(float(snap.xy[7, 0]), float(snap.xy[7, 1])) == pytest.approx(snap.times[7])
    traj.extend(np.arange(100) * 1.0, _data(n=100, d=8))
    assert len(traj) == 20 and traj.snapshot().times[-1] == 99.0


def test_trail_colours_fade_in() -> None:
    c = trail_colours(10)
    assert c.shape == (10, 4) and c.dtype == np.uint8
    assert np.all(np.diff(c[:, 3].astype(int)) >= 0) and c[-1, 3] == 255
    assert trail_colours(0).shape == (0, 4)
