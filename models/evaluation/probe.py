"""Linear probes (HARES protocol) on frozen embeddings.

StandardScaler + multinomial logistic regression (lbfgs); the inverse regularisation ``C`` is chosen
from a small fixed grid by stratified k-fold cross-validation on the train part, the pipeline is refit
on the whole train part with the chosen ``C``, and accuracy is measured on the test part. Tasks without
a test split use cross-validation folds: each fold is the test part once and the accuracies are
averaged. Everything is seeded, so the same embeddings give the same figures.
"""

from __future__ import annotations

import warnings
from collections import Counter
from dataclasses import dataclass

import numpy as np

from models.evaluation.tasks import Task

C_GRID: tuple[float, ...] = (0.01, 0.1, 1.0, 10.0)
INNER_FOLDS = 5
MAX_ITER = 5000


@dataclass(frozen=True)
class ProbeResult:
    """Accuracy of one probe; for CV tasks the mean over folds (``fold_accuracies`` lists them).

    ``val_accuracy``: the inner cross-validation accuracy of the chosen ``C`` on the train part (mean over
    outer folds for CV tasks), a figure that never sees the test clips, for choosing between candidates
    without spending the test set; None where the grid has one ``C`` (no inner CV is run)."""

    accuracy: float
    n_train: int
    n_test: int
    chosen_c: tuple[float, ...]
    fold_accuracies: tuple[float, ...]
    val_accuracy: float | None = None


def _pipeline(c: float, seed: int):  # -> sklearn Pipeline
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    return make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=MAX_ITER, random_state=seed))


def select_c(
    x: np.ndarray, y: np.ndarray, cs: tuple[float, ...] = C_GRID, folds: int = INNER_FOLDS, seed: int = 0
) -> tuple[float, float | None]:
    """The ``C`` with the best mean accuracy over stratified ``folds``-fold CV of (x (N, D), y (N,)), and
    that accuracy (None for a one-value grid, where no CV is run).

    Ties go to the smaller ``C`` (stronger regularisation). The fold count is lowered to the size of
    the rarest class when that is smaller (at least 2).
    """
    from sklearn.model_selection import StratifiedKFold, cross_val_score

    if len(cs) == 1:
        return cs[0], None
    k = max(2, min(folds, min(Counter(y.tolist()).values())))
    cv = StratifiedKFold(n_splits=k, shuffle=True, random_state=seed)
    best_c, best = cs[0], -1.0
    for c in cs:
        score = float(np.mean(cross_val_score(_pipeline(c, seed), x, y, cv=cv, scoring="accuracy")))
        if score > best + 1e-12:
            best_c, best = c, score
    return best_c, best


def fit_and_score(
    x_train: np.ndarray,
    y_train: np.ndarray,
    x_test: np.ndarray,
    y_test: np.ndarray,
    cs: tuple[float, ...] = C_GRID,
    folds: int = INNER_FOLDS,
    seed: int = 0,
) -> tuple[float, float, float | None]:
    """Select C on the train part, refit, return (test accuracy, chosen C, its inner-CV accuracy on the
    train part). Arrays: x (N, D) float, y (N,)."""
    from threadpoolctl import threadpool_limits

    # One BLAS thread: the matrices are small, and spinning BLAS threads on a busy CPU cost far more.
    with warnings.catch_warnings(), threadpool_limits(limits=1):
        warnings.simplefilter("ignore")  # convergence / small-class warnings: the grid handles them
        c, val = select_c(x_train, y_train, cs, folds, seed)
        model = _pipeline(c, seed).fit(x_train, y_train)
        acc = float(np.mean(model.predict(x_test) == y_test))
    return acc, c, val


def probe_task(
    x: np.ndarray, task: Task, cs: tuple[float, ...] = C_GRID, folds: int = INNER_FOLDS, seed: int = 0
) -> ProbeResult:
    """Run the probe protocol on embeddings x (len(task), D) float32 of ``task`` (rows in task order)."""
    x = np.nan_to_num(np.asarray(x, dtype=np.float64), nan=0.0, posinf=0.0, neginf=0.0)
    if x.ndim != 2 or x.shape[0] != len(task):
        raise ValueError(f"{task.name}: embeddings shape {x.shape} does not match {len(task)} clips")
    y = np.asarray(task.labels)
    if task.folds:
        fold = np.asarray(task.fold_ids)
        parts = [(fold != f, fold == f) for f in range(task.folds)]
    else:
        test = np.asarray([s == "test" for s in task.splits])
        if not test.any() or test.all():
            raise ValueError(f"{task.name}: needs both train and test examples")
        parts = [(~test, test)]
    accs, chosen, vals = [], [], []
    for tr, te in parts:
        acc, c, val = fit_and_score(x[tr], y[tr], x[te], y[te], cs, folds, seed)
        accs.append(acc)
        chosen.append(c)
        vals.append(val)
    tr0, te0 = parts[0]
    known = [v for v in vals if v is not None]
    return ProbeResult(
        accuracy=float(np.mean(accs)),
        n_train=int(tr0.sum()),
        n_test=int(te0.sum()),
        chosen_c=tuple(chosen),
        fold_accuracies=tuple(accs),
        val_accuracy=float(np.mean(known)) if len(known) == len(vals) else None,
    )
