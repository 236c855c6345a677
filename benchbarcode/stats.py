"""Summaries over seeds, in one place: mean and spread, and the paired difference of two encoders
evaluated with the same seeds.

* spread: the sample standard deviation over seeds (``ddof=1``; none for a single seed);
* paired difference: ``d_s = a_s - b_s`` for the seeds both have, its mean, and a 95 % Student-t
  interval ``mean ± t(0.975, n-1) · sd(d) / sqrt(n)`` (none for a single pair). The seed sets the
  pretraining, the random initialisation and the task repeats of both runs alike, so pairing by
  seed removes the part of the spread the two runs share.
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Mapping, Sequence

INTERVAL = "95 % t-interval over paired seeds (df = n-1)"


def mean_std(values: Sequence[float]) -> tuple[float, float | None]:
    """Mean and sample standard deviation (None for fewer than two values)."""
    values = [float(v) for v in values]
    if not values:
        raise ValueError("mean_std of no values")
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else None)


def paired_difference(a: Mapping[int, float], b: Mapping[int, float]) -> dict | None:
    """``a - b`` over the seeds both have: ``{"mean", "low", "high", "n", "seeds"}`` (low/high
    None for one pair), or None when they share no seed."""
    seeds = sorted(set(a) & set(b))
    if not seeds:
        return None
    diffs = [float(a[s]) - float(b[s]) for s in seeds]
    mean, sd = mean_std(diffs)
    low = high = None
    if sd is not None:
        from scipy.stats import t

        half = float(t.ppf(0.975, len(diffs) - 1)) * sd / math.sqrt(len(diffs))
        low, high = mean - half, mean + half
    return {"mean": mean, "low": low, "high": high, "n": len(diffs), "seeds": seeds}


def excludes_zero(diff: dict | None) -> bool:
    """Whether a paired difference's interval lies entirely above or below 0."""
    return bool(diff and diff["low"] is not None and (diff["low"] > 0 or diff["high"] < 0))
