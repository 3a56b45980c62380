"""Fitting personal heads: the numerical part of :mod:`models.heads.heads` (Qt-free; torch only for fitting).

Inputs are standardised embeddings ``x`` ``(N, D)`` float and integer labels ``y`` ``(N,)`` in
``0..k-1``; every function returns or takes a parameter dict of float32 arrays (``w``, ``b`` for the
logistic regression; ``w1``, ``b1``, ``w2``, ``b2`` for the MLP), the tensors a head file stores.
"""

from __future__ import annotations

import numpy as np


def fit_logreg(
    x: np.ndarray,
    y: np.ndarray,
    k: int,
    c: float,
    init: dict[str, np.ndarray] | None = None,
    iters: int = 200,
) -> dict[str, np.ndarray]:
    """L2 multinomial logistic regression with sklearn's objective: C·Σ loss + ½‖W‖² (bias unpenalised).

    ``init`` warm-starts from another solution (e.g. the previous C of a grid)."""
    import torch

    xt = torch.from_numpy(x.astype(np.float64))
    yt = torch.from_numpy(y.astype(np.int64))
    w0 = init["w"] if init else np.zeros((k, x.shape[1]))
    b0 = init["b"] if init else np.zeros(k)
    w = torch.tensor(w0, dtype=torch.float64, requires_grad=True)
    b = torch.tensor(b0, dtype=torch.float64, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], lr=1.0, max_iter=iters, tolerance_grad=1e-6, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(xt @ w.T + b, yt, reduction="sum") * c + 0.5 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return {"w": w.detach().float().numpy(), "b": b.detach().float().numpy()}


def fit_mlp(
    x: np.ndarray, y: np.ndarray, k: int, c: float, hidden: int = 64, epochs: int = 150, seed: int = 0
) -> dict[str, np.ndarray]:
    """One-hidden-layer ReLU MLP, full-batch Adam with weight decay 1/(C·N)."""
    import torch

    g = torch.Generator().manual_seed(seed)
    xt = torch.from_numpy(x.astype(np.float32))
    yt = torch.from_numpy(y.astype(np.int64))
    lin1 = torch.nn.Linear(x.shape[1], hidden)
    lin2 = torch.nn.Linear(hidden, k)
    with torch.no_grad():
        for p in (*lin1.parameters(), *lin2.parameters()):
            p.copy_(torch.randn(p.shape, generator=g) * (1.0 / max(1, p.shape[-1])) ** 0.5)
    params = [*lin1.parameters(), *lin2.parameters()]
    opt = torch.optim.Adam(params, lr=1e-2, weight_decay=1.0 / (c * len(x)))
    for _ in range(epochs):
        opt.zero_grad()
        loss = torch.nn.functional.cross_entropy(lin2(torch.relu(lin1(xt))), yt)
        loss.backward()
        opt.step()
    return {
        "w1": lin1.weight.detach().numpy().copy(),
        "b1": lin1.bias.detach().numpy().copy(),
        "w2": lin2.weight.detach().numpy().copy(),
        "b2": lin2.bias.detach().numpy().copy(),
    }


def fit(
    x: np.ndarray, y: np.ndarray, k: int, c: float, kind: str, init: dict[str, np.ndarray] | None = None
) -> dict[str, np.ndarray]:
    return fit_mlp(x, y, k, c) if kind == "mlp" else fit_logreg(x, y, k, c, init)


def predict_raw(params: dict[str, np.ndarray], x: np.ndarray, kind: str) -> np.ndarray:
    if kind == "mlp":
        return np.maximum(x @ params["w1"].T + params["b1"], 0) @ params["w2"].T + params["b2"]
    return x @ params["w"].T + params["b"]


def stratified_folds(y: np.ndarray, n_folds: int, seed: int = 0) -> list[np.ndarray]:
    """Deterministic stratified fold assignment: a list of index arrays (test indices per fold)."""
    rng = np.random.default_rng(seed)
    folds: list[list[int]] = [[] for _ in range(n_folds)]
    for cls in np.unique(y):
        idx = np.flatnonzero(y == cls)
        rng.shuffle(idx)
        for j, i in enumerate(idx):
            folds[j % n_folds].append(int(i))
    return [np.array(sorted(f), dtype=np.int64) for f in folds if f]


def standardise(x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    mean = x.mean(axis=0)
    scale = x.std(axis=0)
    scale[scale < 1e-8] = 1.0
    return mean.astype(np.float32), scale.astype(np.float32)
