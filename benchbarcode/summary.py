"""The summary rule and the aggregation over seeds that ``run``'s printed tables and the
leaderboard both render from.

* The summary of a run is BarcodeMAE's: the harmonic mean of the main scores of closed-world and
  open-world accuracy (:data:`SUMMARY_OF`); 0 when either is 0.
* Tables list tasks in :func:`canonical_order`: the two summarised tasks, the summary, then
  unseen-species, clustering, bin-reconstruction and any other task by name.
* Over seeds, a column is a :class:`Metric` (its value per seed: mean, spread, n) and two
  encoders run with the same seeds are compared by their paired difference
  (:func:`benchbarcode.stats.paired_difference`). :func:`metric_text` and :func:`difference_text`
  are the one way both are written.
* An encoder's pretraining is one of three cases (:func:`pretraining_origin`), and the two that
  state no budget of this suite's read the same everywhere (:data:`NOT_PRETRAINED`,
  :data:`THIRD_PARTY_WEIGHTS`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from benchbarcode.contracts import THIRD_PARTY
from benchbarcode.stats import excludes_zero, mean_std, paired_difference

SUMMARY = "harmonic mean"  # the name of the summary score in tables
SUMMARY_OF = ("closed-world", "open-world")
_FIRST = (*SUMMARY_OF, SUMMARY, "unseen-species", "clustering", "bin-reconstruction")
DIGITS = 4  # decimals shown for scores


NOT_PRETRAINED = "none (not pretrained)"  # k-mer, alignment, random initialisation
THIRD_PARTY_WEIGHTS = "not stated (third-party weights)"  # a Hugging Face model, a published .pt file


def pretraining_origin(budget: Mapping | None) -> str:
    """Whose pretraining an encoder record's ``budget`` describes: ``"this suite"`` (the steps it
    counted), ``"none"`` (zero steps: no pretraining at all) or ``"third party"`` (weights trained
    elsewhere, so marked by their loader; a record stating no steps, as a Hugging Face model's
    written before the mark, or a plugin's, reads the same)."""
    budget = budget or {}
    if budget.get("trained_by") == THIRD_PARTY or budget.get("steps") is None:
        return "third party"
    return "none" if budget["steps"] == 0 else "this suite"


def unstated_budget(budget: Mapping | None) -> str | None:
    """What a budget that is not this suite's says (:data:`NOT_PRETRAINED`,
    :data:`THIRD_PARTY_WEIGHTS`); None for this suite's, whose numbers the caller writes."""
    return {"none": NOT_PRETRAINED, "third party": THIRD_PARTY_WEIGHTS}.get(pretraining_origin(budget))


def summary_score(closed_world_accuracy: float, open_world_accuracy: float) -> float:
    """Harmonic mean of closed-world and open-world accuracy (BarcodeMAE's summary); 0 if either is 0."""
    a, b = float(closed_world_accuracy), float(open_world_accuracy)
    return 0.0 if a <= 0 or b <= 0 else 2 * a * b / (a + b)


def summary_of(main_values: Mapping[str, float]) -> float | None:
    """The summary score from ``{task: main value}``, or None when a summarised task is missing."""
    if not all(name in main_values for name in SUMMARY_OF):
        return None
    return summary_score(*(main_values[name] for name in SUMMARY_OF))


def with_summary(main_values: Mapping[str, float]) -> dict[str, float]:
    """``{task: main value}`` of one run, with the summary added when both its tasks are there."""
    summary = summary_of(main_values)
    return dict(main_values) if summary is None else {**main_values, SUMMARY: summary}


def canonical_order(names: Iterable[str]) -> list[str]:
    """``names`` (task names and possibly :data:`SUMMARY`) in table order."""
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda n: (_FIRST.index(n) if n in _FIRST else len(_FIRST), n))


@dataclass
class Metric:
    """One column's values over seeds."""

    values: dict[int, float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float:
        return mean_std(list(self.values.values()))[0]

    @property
    def std(self) -> float | None:
        return mean_std(list(self.values.values()))[1]


def aggregate(by_seed: Mapping[int, Mapping[str, float]]) -> dict[str, Metric]:
    """``{seed: {task: main value}}`` -> ``{column: Metric}``, the summary computed per seed."""
    metrics: dict[str, Metric] = {}
    for seed, values in by_seed.items():
        for name, value in with_summary(values).items():
            metrics.setdefault(name, Metric({})).values[seed] = value
    return metrics


def difference(a: Metric | None, b: Metric | None) -> dict | None:
    """The paired difference ``a - b`` over the seeds both have (None when either is missing)."""
    if a is None or b is None:
        return None
    return paired_difference(a.values, b.values)


def number(value: float | None, digits: int = DIGITS, sign: bool = False) -> str:
    """The one place a float is rounded for display; None is ``-`` (never 0)."""
    if value is None:
        return "-"
    return f"{value:+.{digits}f}" if sign else f"{value:.{digits}f}"


def distinct_digits(values, digits: int = DIGITS, most: int = 8) -> int:
    """The fewest decimals (at least ``digits``, at most ``most``) at which values that differ
    also print differently: two scores shown as the same number read as one copied from the other."""
    values = {v for v in values if v is not None}
    for shown in range(digits, most):
        if len({number(v, shown) for v in values}) == len(values):
            return shown
    return most


NOT_RECORDED = "interval: not recorded"


def shown(metric: str, value: float) -> float:
    """A score as tables print it: an AMI clipped to [0, 1] (its chance level is 0 and float error
    can put a perfect match at 1.0000000000000004); the stored value is never changed."""
    return min(1.0, max(0.0, value)) if metric.startswith("ami") else value


def interval_text(result: dict, metric: str | None = None, digits: int = DIGITS) -> str:
    """``[low, high] n=N`` of a result's sampling interval of ``metric`` (its main score by
    default); results written before intervals existed say so."""
    metric = metric or result["main_score"]
    interval = (result.get("intervals") or {}).get(metric)
    if interval is None:
        return NOT_RECORDED if "intervals" not in result else "-"
    low, high = shown(metric, interval["low"]), shown(metric, interval["high"])
    return f"[{number(low, digits)}, {number(high, digits)}] n={interval['n']:,}"


def metric_text(metric: Metric | None, seeds: int | None = None, name: str = "") -> str:
    """``mean ± std`` of a column; ``(n=K)`` when it has fewer values than the row has ``seeds``;
    the mean as :func:`shown` prints metric ``name``."""
    if metric is None:
        return "-"
    return (number(shown(name, metric.mean)) + (f" ± {number(metric.std)}" if metric.std is not None else "")
            + (f" (n={metric.n})" if seeds is not None and metric.n != seeds else ""))


def difference_text(diff: dict | None) -> str:
    """A paired difference: ``+mean [low, high]`` with ``*`` when the interval excludes 0."""
    if diff is None:
        return "-"
    text = number(diff["mean"], sign=True)
    if diff["low"] is None:
        return text + " (1 seed)"
    return f"{text} [{number(diff['low'], sign=True)}, {number(diff['high'], sign=True)}]" + (
        " *" if excludes_zero(diff) else "") + (" (queries)" if diff.get("over") == "queries" else "")
