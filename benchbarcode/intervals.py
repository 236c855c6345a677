"""Sampling intervals of a task's scores: how far the number could move with another draw of the
same number of queries, in one place.

* a proportion (an accuracy over queries): the Wilson score interval, closed form, no seed;
* anything else (balanced accuracy, macro F1, AMI): a percentile bootstrap over the queries (or
  clustered records), seeded. A statistic takes the resample as *weights* (how often each query
  was drawn), so the metrics below are a few ``bincount`` calls per resample.

An interval is recorded as ``{"low", "high", "n", "method"}`` (:func:`record`) under the metric's
name in a result's ``intervals``; a result written before intervals existed has none, and reports
say "interval: not recorded".

This is sampling error of the evaluation data only. The spread over seeds (pretraining,
initialisation) is :mod:`benchbarcode.stats`; the two are reported side by side, never merged.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

LEVEL = 0.95
Z = 1.959963984540054  # the standard normal's 0.975 quantile
RESAMPLES = 1000  # bootstrap resamples; clustering uses fewer (its AMI is costly), stated in its protocol
WILSON = "Wilson score 95 % interval over the queries"


def bootstrap_method(resamples: int, seed: int, over: str = "queries") -> str:
    return f"percentile bootstrap 95 % over the {over} ({resamples} resamples, seed {seed})"


def wilson(successes: float, n: int, z: float = Z) -> tuple[float, float]:
    """The Wilson score interval of ``successes`` out of ``n`` (``successes`` may be fractional: a
    mean over repeats scored on the same queries)."""
    if n <= 0:
        raise ValueError("wilson interval of no trials")
    p = successes / n
    centre = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    # exactly 0 (1) when none (all) succeed; the closed form leaves float error there
    return (0.0 if successes <= 0 else max(0.0, centre - half)), (1.0 if successes >= n else min(1.0, centre + half))


def bootstrap(statistic: Callable[[np.ndarray], float], n: int, seed: int,
              resamples: int = RESAMPLES, centre: float | None = None) -> tuple[float, float]:
    """The 2.5 and 97.5 percentiles of ``statistic(weights)`` over ``resamples`` draws of ``n``
    items with replacement; ``weights[i]`` is how often item ``i`` was drawn.

    With ``centre`` (the estimate itself) the percentiles are shifted by ``centre - median``: for a
    statistic that a resample biases (AMI: a record drawn twice agrees with itself, so resampled
    clusterings look better than the original), the spread is kept and the bias removed."""
    rng = np.random.default_rng(seed)
    values = np.array([statistic(np.bincount(rng.integers(0, n, n), minlength=n).astype(np.float64))
                       for _ in range(resamples)])
    low, median, high = np.percentile(values, [100 * (1 - LEVEL) / 2, 50, 100 * (1 + LEVEL) / 2])
    shift = 0.0 if centre is None else centre - median
    return float(low + shift), float(high + shift)


def record(low: float, high: float, n: int, method: str) -> dict:
    """An interval as a result stores it."""
    return {"low": float(low), "high": float(high), "n": int(n), "method": method}


# ----------------------------------------------------------------------------- weighted metrics
def accuracy(correct: np.ndarray, weights: np.ndarray) -> float:
    """Share of (weighted) queries answered correctly; ``correct`` may be fractional."""
    return float(np.dot(weights, correct) / weights.sum())


def balanced_accuracy(true: np.ndarray, correct: np.ndarray, weights: np.ndarray) -> float:
    """Mean recall over the classes present (as scikit-learn's, with the queries weighted)."""
    total = np.bincount(true, weights)
    hit = np.bincount(true, weights * correct, minlength=len(total))
    present = total > 0
    return float((hit[present] / total[present]).mean())


def macro_f1(true: np.ndarray, predicted: np.ndarray, weights: np.ndarray) -> float:
    """Macro F1 over the classes present among the (weighted) true labels, zero division 0 (as
    scikit-learn's ``f1_score(labels=present, average='macro', zero_division=0)``)."""
    size = int(max(true.max(), predicted.max())) + 1
    total = np.bincount(true, weights, minlength=size)
    guessed = np.bincount(predicted, weights, minlength=size)
    hit = np.bincount(true, weights * (true == predicted), minlength=size)
    present = total > 0
    return float((2 * hit[present] / (total[present] + guessed[present])).mean())


def resampled(weights: np.ndarray) -> np.ndarray:
    """The indices a weight vector stands for (each ``i`` repeated ``weights[i]`` times)."""
    return np.repeat(np.arange(len(weights)), weights.astype(np.int64))


def classification_intervals(true, predicted, seed: int, *, balanced: bool = True, f1: bool = False,
                             suffix: str = "") -> dict[str, dict]:
    """Intervals of a classification's metrics from its per-query outcomes: ``true`` labels ``[n]``
    and ``predicted`` labels ``[n]`` or ``[repeats, n]`` (the metric is the mean over repeats, as
    the task reports it): accuracy (Wilson), and by bootstrap balanced accuracy and macro F1 when
    asked (named with ``suffix``, e.g. ``_centred``)."""
    true, predicted = np.asarray(true), np.atleast_2d(np.asarray(predicted))
    classes = np.unique(np.concatenate([true, predicted.ravel()]))
    true, predicted = np.searchsorted(classes, true), np.searchsorted(classes, predicted)
    n = len(true)
    correct = (predicted == true).mean(axis=0)
    out = {f"accuracy{suffix}": record(*wilson(float(correct.sum()), n), n, WILSON)}
    method = bootstrap_method(RESAMPLES, seed)
    if balanced:
        out[f"balanced_accuracy{suffix}"] = record(
            *bootstrap(lambda w: balanced_accuracy(true, correct, w), n, seed), n, method)
    if f1:
        out["macro_f1"] = record(*bootstrap(lambda w: float(np.mean([macro_f1(true, p, w) for p in predicted])),
                                            n, seed), n, method)
    return out
