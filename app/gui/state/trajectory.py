"""Qt-free embedding trajectory: an incremental 2-D PCA and a bounded history of projected points.

The GUI draws the live embedding stream (and each file's embeddings) as a 2-D path. The projection is
a PCA fitted on everything heard so far: :class:`IncrementalPCA` keeps a running mean and covariance
(Welford/Chan update, O(D²) per batch) and refines its two leading eigenvectors with a few steps of
warm-started subspace (orthogonal) iteration, so an update never needs a full eigendecomposition and the
axes do not jump between frames (signs are aligned with the previous axes).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


class IncrementalPCA:
    """Running PCA of a stream of float vectors (no Qt, no torch).

    Args:
        n_components: number of axes kept (2 for the trajectory view).
        iterations: subspace-iteration steps run per :meth:`partial_fit` call.
    """

    def __init__(self, n_components: int = 2, iterations: int = 4) -> None:
        self.n_components = n_components
        self.iterations = iterations
        self.n_seen = 0
        self.mean_: np.ndarray | None = None  # (D,) float64
        self._m2: np.ndarray | None = None  # (D, D) float64: sum of outer products of deviations
        self.components_: np.ndarray | None = None  # (k, D) float64, orthonormal rows

    @property
    def dim(self) -> int | None:
        return None if self.mean_ is None else int(self.mean_.shape[0])

    def partial_fit(self, x: np.ndarray) -> IncrementalPCA:
        """Add rows ``x`` (N, D) or one vector (D,) and refine the axes. Non-finite rows are ignored."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if x.ndim != 2 or x.shape[0] == 0:
            return self
        x = x[np.all(np.isfinite(x), axis=1)]
        if x.shape[0] == 0:
            return self
        if self.mean_ is None:
            d = x.shape[1]
            self.mean_ = np.zeros(d)
            self._m2 = np.zeros((d, d))
        elif x.shape[1] != self.mean_.shape[0]:
            raise ValueError(f"embedding size changed from {self.mean_.shape[0]} to {x.shape[1]}")
        assert self._m2 is not None
        n_b = x.shape[0]
        mean_b = x.mean(axis=0)
        dev = x - mean_b
        m2_b = dev.T @ dev
        n_a = self.n_seen
        n = n_a + n_b
        delta = mean_b - self.mean_
        self.mean_ = self.mean_ + delta * (n_b / n)
        self._m2 += m2_b + np.outer(delta, delta) * (n_a * n_b / n)
        self.n_seen = n
        self._refine()
        return self

    def covariance(self) -> np.ndarray:
        """(D, D) sample covariance of everything seen (zeros before two samples)."""
        if self._m2 is None or self.n_seen < 2:
            d = 0 if self.mean_ is None else self.mean_.shape[0]
            return np.zeros((d, d))
        return self._m2 / (self.n_seen - 1)

    def _refine(self) -> None:
        cov = self.covariance()
        d = cov.shape[0]
        k = min(self.n_components, d)
        prev = self.components_
        if prev is None or prev.shape != (k, d):
            rng = np.random.default_rng(0)
            q = np.linalg.qr(rng.standard_normal((d, k)))[0]
        else:
            q = prev.T.copy()
        for _ in range(self.iterations):
            z = cov @ q
            if not np.any(z):
                break
            q = np.linalg.qr(z)[0]
        # order by explained variance (Rayleigh quotients), then align signs with the previous axes
        ray = np.einsum("dk,dk->k", q, cov @ q)
        q = q[:, np.argsort(-ray)]
        comps = q.T
        if prev is not None and prev.shape == comps.shape:
            signs = np.sign(np.einsum("kd,kd->k", comps, prev))
            signs[signs == 0] = 1.0
            comps = comps * signs[:, None]
        else:  # deterministic sign: largest-magnitude coordinate positive
            idx = np.argmax(np.abs(comps), axis=1)
            signs = np.sign(comps[np.arange(k), idx])
            signs[signs == 0] = 1.0
            comps = comps * signs[:, None]
        self.components_ = comps

    def explained_variance(self) -> np.ndarray:
        """(k,) variance along each axis."""
        if self.components_ is None:
            return np.zeros(0)
        cov = self.covariance()
        return np.einsum("kd,kd->k", self.components_, self.components_ @ cov)

    def transform(self, x: np.ndarray) -> np.ndarray:
        """Project (N, D) → (N, n_components) float32; zeros before anything was fitted."""
        x = np.asarray(x, dtype=np.float64)
        if x.ndim == 1:
            x = x[None, :]
        if self.components_ is None or self.mean_ is None:
            return np.zeros((x.shape[0], self.n_components), dtype=np.float32)
        out = (x - self.mean_) @ self.components_.T
        if out.shape[1] < self.n_components:
            out = np.pad(out, ((0, 0), (0, self.n_components - out.shape[1])))
        return out.astype(np.float32)


@dataclass(frozen=True)
class TrajectorySnapshot:
    """What the view draws: times (N,) float64 seconds and xy (N, 2) float32, oldest first."""

    times: np.ndarray
    xy: np.ndarray

    def nearest_time(self, x: float, y: float) -> float | None:
        """Time of the point nearest to (x, y), or None when empty."""
        if self.times.size == 0:
            return None
        d2 = (self.xy[:, 0] - x) ** 2 + (self.xy[:, 1] - y) ** 2
        return float(self.times[int(np.argmin(d2))])


class Trajectory:
    """Bounded history of (time, embedding) with a PCA fitted incrementally on every point added.

    The PCA sees all points ever added (it is a running statistic); only the last ``capacity`` points are
    kept for drawing. Memory: ``capacity × D`` float32.
    """

    def __init__(self, capacity: int = 1200, n_components: int = 2) -> None:
        self.capacity = capacity
        self.pca = IncrementalPCA(n_components)
        self._times = np.zeros(0)
        self._embs: np.ndarray | None = None
        self._n = 0
        self._head = 0  # next write slot in the circular storage

    def __len__(self) -> int:
        return self._n

    def clear(self) -> None:
        self.pca = IncrementalPCA(self.pca.n_components)
        self._embs = None
        self._n = 0
        self._head = 0

    def add(self, time_s: float, embedding: np.ndarray, fit: bool = True) -> None:
        """Append one point; ``fit=False`` skips the PCA update (call :meth:`fit_pending` later)."""
        self.extend(np.asarray([time_s], dtype=np.float64), np.asarray(embedding)[None, :], fit=fit)

    def extend(self, times: np.ndarray, embeddings: np.ndarray, fit: bool = True) -> None:
        """Append points: times (N,) seconds, embeddings (N, D)."""
        emb = np.asarray(embeddings, dtype=np.float32)
        if emb.ndim != 2 or emb.shape[0] == 0:
            return
        if self._embs is None or self._embs.shape[1] != emb.shape[1]:
            self._embs = np.zeros((self.capacity, emb.shape[1]), dtype=np.float32)
            self._times = np.zeros(self.capacity)
            self._n = 0
            self._head = 0
        if fit:
            self.pca.partial_fit(emb)
        times = np.asarray(times, dtype=np.float64)[-self.capacity :]
        for t, row in zip(times, emb[-self.capacity :], strict=True):
            self._embs[self._head] = row
            self._times[self._head] = t
            self._head = (self._head + 1) % self.capacity
            self._n = min(self._n + 1, self.capacity)

    def _ordered(self) -> tuple[np.ndarray, np.ndarray]:
        if self._embs is None or self._n == 0:
            return np.zeros(0), np.zeros((0, 0), dtype=np.float32)
        if self._n < self.capacity:
            return self._times[: self._n], self._embs[: self._n]
        order = np.r_[self._head : self.capacity, 0 : self._head]
        return self._times[order], self._embs[order]

    def snapshot(self) -> TrajectorySnapshot:
        """Current projection of the kept points (oldest first)."""
        times, embs = self._ordered()
        if times.size == 0:
            return TrajectorySnapshot(np.zeros(0), np.zeros((0, 2), dtype=np.float32))
        return TrajectorySnapshot(times.copy(), self.pca.transform(embs)[:, :2])


def trail_colours(n: int, dark: bool = False, min_alpha: int = 25) -> np.ndarray:
    """(n, 4) uint8 RGBA trail colours, oldest first: hue runs blue → yellow with time, alpha fades in."""
    if n <= 0:
        return np.zeros((0, 4), dtype=np.uint8)
    t = np.linspace(0.0, 1.0, n)
    # a compact viridis-like ramp (dark blue → teal → green → yellow)
    stops = np.array([[68, 1, 84], [59, 82, 139], [33, 145, 140], [94, 201, 98], [253, 231, 37]], dtype=float)
    pos = t * (len(stops) - 1)
    i = np.minimum(pos.astype(int), len(stops) - 2)
    frac = (pos - i)[:, None]
    rgb = stops[i] * (1 - frac) + stops[i + 1] * frac
    if dark:
        rgb = 0.85 * rgb + 0.15 * 255
    alpha = min_alpha + (255 - min_alpha) * t**1.5
    return np.concatenate([rgb, alpha[:, None]], axis=1).round().astype(np.uint8)
