"""Scores of a bank's lenses on labelled rows, all lenses at once (numpy, on the host).

    logits (M, N), labels (M, N) bool --> per lens: precision, recall, F1, accuracy, AUROC, positives
    train positive rate (N,) --> the majority-class baseline's F1 and accuracy on the same rows

A prediction is positive when its logit is above 0 (the classes are balanced in training). Where a
score is undefined (no positive prediction, no positive label, one class only for AUROC) it is NaN,
written as null, and never graduates a lens.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.stats import rankdata

GRADUATE_F1 = 0.85  # a lens graduates with test F1 >= this ...
GRADUATE_GAP = 0.10  # ... and train F1 - test F1 <= this


def lens_scores(logits: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """Each score as an (N,) array; ``logits`` float (M, N), ``labels`` bool (M, N)."""
    labels = labels.astype(bool)
    predicted = logits > 0
    tp = (predicted & labels).sum(0).astype(np.float64)
    fp = (predicted & ~labels).sum(0).astype(np.float64)
    fn = (~predicted & labels).sum(0).astype(np.float64)
    M = max(1, labels.shape[0])
    with np.errstate(invalid="ignore", divide="ignore"):
        precision = tp / (tp + fp)
        recall = tp / (tp + fn)
        f1 = 2 * tp / (2 * tp + fp + fn)
    return {
        "precision": precision,
        "recall": recall,
        "f1": f1,
        "accuracy": (predicted == labels).sum(0) / M,
        "auroc": auroc(logits, labels),
        "positive_rate": labels.sum(0) / M,
        "rows": np.full(labels.shape[1], labels.shape[0], np.float64),
    }


def auroc(scores: np.ndarray, labels: np.ndarray) -> np.ndarray:
    """Area under the ROC curve per column (N,): the Mann-Whitney statistic, ties counted half."""
    labels = labels.astype(bool)
    ranks = rankdata(scores, axis=0)  # (M, N), ties share their average rank
    positives = labels.sum(0).astype(np.float64)
    negatives = labels.shape[0] - positives
    with np.errstate(invalid="ignore", divide="ignore"):
        u = (ranks * labels).sum(0) - positives * (positives + 1) / 2
        return np.where((positives > 0) & (negatives > 0), u / (positives * negatives), np.nan)


def majority_baseline(train_positive_rate: np.ndarray, labels: np.ndarray) -> dict[str, np.ndarray]:
    """F1 and accuracy (N,) of predicting each lens's majority training class for every row."""
    labels = labels.astype(bool)
    says_true = np.asarray(train_positive_rate) > 0.5
    rate = labels.mean(0) if labels.shape[0] else np.zeros(labels.shape[1])
    with np.errstate(invalid="ignore", divide="ignore"):
        f1 = np.where(says_true, 2 * rate / (1 + rate), 0.0)
    return {"f1": f1, "accuracy": np.where(says_true, rate, 1 - rate)}


def graduates(train_f1: float | None, test_f1: float | None) -> bool:
    """The graduation rule: readable (test F1 >= 0.85) and not memorised (train - test <= 0.10)."""
    if not _finite(train_f1) or not _finite(test_f1):
        return False
    assert train_f1 is not None and test_f1 is not None
    return test_f1 >= GRADUATE_F1 and train_f1 - test_f1 <= GRADUATE_GAP


def per_lens(scores: dict[str, np.ndarray], index: int) -> dict[str, Any]:
    """Lens ``index``'s scores as JSON values (NaN -> None)."""
    return {key: _json(value[index]) for key, value in scores.items()}


def _json(value: Any) -> float | None:
    value = float(value)
    return value if math.isfinite(value) else None


def _finite(value: float | None) -> bool:
    return value is not None and math.isfinite(value)
