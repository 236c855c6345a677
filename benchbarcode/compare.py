"""Two results on the same data and protocol, compared query by query.

For a classification task (the 1-NN tasks, the probes) each query is right or wrong for each
encoder (a probe's repeats: the share of repeats that were right, whose mean is the main score):

* the difference of the main scores with a **paired bootstrap** interval: the same resampled
  queries for both encoders, so what the two share (hard queries) cancels;
* an **exact McNemar test** on the queries exactly one of them got right (a probe's repeats: right
  in more than half of them): under "equally good" each such query is a fair coin.

For a clustering task the paired bootstrap resamples records and recomputes both AMIs (no McNemar:
a record is not right or wrong on its own). :func:`summary_difference` does the same for the
harmonic mean of closed- and open-world accuracy, resampling each task's queries: the leaderboard's
control column where there are fewer than three seeds.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from benchbarcode import intervals, per_query
from benchbarcode.errors import UserError
from benchbarcode.results import is_profile, read_result, task_variant
from benchbarcode.summary import SUMMARY_OF, summary_score

RESAMPLES = 2000
CLUSTERING_RESAMPLES = 200
SEED = 0  # the bootstrap's seed: fixed, printed with every interval


def mcnemar_exact(a_only: int, b_only: int) -> float:
    """Two-sided exact McNemar p-value: the binomial probability of a split of the discordant
    queries at least as uneven as ``a_only`` : ``b_only`` under p = 1/2 (1.0 with none)."""
    from scipy.stats import binom

    n = a_only + b_only
    if n == 0:
        return 1.0
    return float(min(1.0, 2 * binom.cdf(min(a_only, b_only), n, 0.5)))


P_FLOOR = 1e-300  # below this a float p-value may have underflowed to 0; shown as "< 1e-300"


def p_text(p: float) -> str:
    """A p-value for display: three significant digits, or ``< 1e-300`` where float64 underflows."""
    return f"< {P_FLOOR:.0e}" if p < P_FLOOR else f"{p:.3g}"


@dataclass
class Side:
    """One result to compare: its file, its record, its per-query outcomes."""

    path: Path
    result: dict
    outcomes: pd.DataFrame

    @property
    def label(self) -> str:
        return f"{self.result['encoder']['name']} ({self.result['run_id']})"


def results_in(path: str | Path) -> dict[str, tuple[Path, dict]]:
    """``{task: (file, result)}`` of a result file or of a run directory's task results."""
    path = Path(path)
    if path.is_dir():
        files = sorted(p for p in path.glob("*.json") if not p.name.startswith("."))
    elif path.is_file():
        files = [path]
    else:
        raise UserError(f"{path}: no such result file or run directory")
    found = {}
    for file in files:
        result = read_result(file)
        if not is_profile(result):
            found[result["task"]["name"]] = (file, result)
    if not found:
        raise UserError(f"{path}: no task result (expected <task>.json files of one run)")
    return found


def _side(path: Path, result: dict) -> Side:
    frame = per_query.read(path, result)
    if frame is None:
        raise UserError(f"{path}: no per-query outcomes (written by benchbarcode before they were stored); "
                        "`benchbarcode run ... --overwrite` writes them")
    return Side(path, result, frame)


def _check_comparable(a: dict, b: dict, task: str) -> None:
    """Same data, splits, limit, task version and protocol (less the method's own entries)."""
    da, db = a["data"], b["data"]
    for field in ("content_hash", "split_seed", "split_sizes", "limit", "protocol"):
        if da.get(field) != db.get(field):
            raise UserError(f"{task}: the two results were computed on different data ({field}: "
                            f"{da.get(field)!r} vs {db.get(field)!r}); only results on the same data compare")
    if task_variant(a) != task_variant(b):
        raise UserError(f"{task}: the two results differ in task version or protocol; they do not compare")


def _aligned(a: Side, b: Side, task: str) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both outcome tables in the same query order; the same queries with the same labels, or an error."""
    if set(a.outcomes["processid"]) != set(b.outcomes["processid"]) or len(a.outcomes) != len(b.outcomes):
        raise UserError(f"{task}: the two results scored different queries ({len(a.outcomes)} vs "
                        f"{len(b.outcomes)}); they do not compare query by query")
    fa = a.outcomes.set_index("processid", drop=False)
    fb = b.outcomes.set_index("processid", drop=False).loc[fa.index]
    if not (fa["true"].to_numpy() == fb["true"].to_numpy()).all():
        raise UserError(f"{task}: the same queries carry different labels in the two results")
    return fa, fb


def _check_reproduces(side: Side, value: float) -> None:
    if abs(value - side.result["main_value"]) > 1e-9:
        raise UserError(f"{side.path}: its per-query outcomes give {value:.6f}, not its main score "
                        f"{side.result['main_value']:.6f}")


def compare_task(a: Side, b: Side, seed: int = SEED) -> dict:
    """One task's comparison (see the module docstring) as a plain record."""
    task = a.result["task"]["name"]
    _check_comparable(a.result, b.result, task)
    fa, fb = _aligned(a, b, task)
    kind = a.result["per_query"]["kind"]
    n = len(fa)
    out = {"task": task, "metric": a.result["main_score"], "n": n, "a": a.result["main_value"],
           "b": b.result["main_value"]}
    if kind == "clustering":
        from sklearn.metrics import adjusted_mutual_info_score as ami

        true = fa["true"].to_numpy()
        ca, cb = fa[a.result["per_query"]["main"][0]].to_numpy(), fb[b.result["per_query"]["main"][0]].to_numpy()

        def diff(weights: np.ndarray) -> float:
            idx = intervals.resampled(weights)
            return float(ami(true[idx], ca[idx]) - ami(true[idx], cb[idx]))

        low, high = intervals.bootstrap(diff, n, seed, CLUSTERING_RESAMPLES, centre=out["a"] - out["b"])
        method = intervals.bootstrap_method(CLUSTERING_RESAMPLES, seed, over="records, paired, re-centred on "
                                                                          "the difference")
        return {**out, "difference": out["a"] - out["b"], "low": low, "high": high, "method": method,
                "mcnemar": None}
    ra = per_query.correctness(fa.reset_index(drop=True), a.result["per_query"]["main"])
    rb = per_query.correctness(fb.reset_index(drop=True), b.result["per_query"]["main"])
    _check_reproduces(a, float(ra.mean()))
    _check_reproduces(b, float(rb.mean()))
    delta = ra - rb
    low, high = intervals.bootstrap(lambda w: float(np.dot(w, delta) / w.sum()), n, seed, RESAMPLES)
    right_a, right_b = ra > 0.5, rb > 0.5
    a_only, b_only = int((right_a & ~right_b).sum()), int((right_b & ~right_a).sum())
    return {**out, "difference": float(delta.mean()), "low": low, "high": high,
            "method": intervals.bootstrap_method(RESAMPLES, seed, over="queries, paired"),
            "mcnemar": {"a_only": a_only, "b_only": b_only, "p": mcnemar_exact(a_only, b_only),
                        "method": "exact McNemar (two-sided binomial on the discordant queries"
                                  + ("; a query is right when right in most repeats)" if max(
                                      len(a.result["per_query"]["main"]), len(b.result["per_query"]["main"])) > 1
                                     else ")")}}


def compare(path_a: str | Path, path_b: str | Path, seed: int = SEED) -> list[dict]:
    """Every task both hold, compared (see :func:`compare_task`); an error when they share none."""
    a, b = results_in(path_a), results_in(path_b)
    shared = [t for t in a if t in b]
    if not shared:
        raise UserError(f"{path_a} and {path_b} share no task ({', '.join(a)} vs {', '.join(b)})")
    from benchbarcode.summary import canonical_order

    for t in shared:  # what does not compare is said before any outcome file is read
        _check_comparable(a[t][1], b[t][1], t)
    return [compare_task(_side(*a[t]), _side(*b[t]), seed) for t in canonical_order(shared)]


# ----------------------------------------------------------------------------- the summary
def summary_difference(encoder: Mapping[int, Mapping[str, tuple[dict, pd.DataFrame]]],
                       control: Mapping[int, Mapping[str, tuple[dict, pd.DataFrame]]],
                       seed: int = SEED) -> dict | None:
    """The harmonic-mean difference encoder - control over the seeds both have, with a paired
    bootstrap interval over the queries of both summarised tasks (resampled independently, the same
    draw for both encoders and every seed). ``{seed: {task: (result, outcomes)}}`` for each side;
    None when a seed lacks a task or its outcomes, or the queries differ."""
    seeds = sorted(s for s in set(encoder) & set(control)
                   if all(t in encoder[s] and t in control[s] for t in SUMMARY_OF))
    if not seeds:
        return None
    right: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {t: [] for t in SUMMARY_OF}
    for s in seeds:
        for task in SUMMARY_OF:
            (ra, fa), (rb, fb) = encoder[s][task], control[s][task]
            if fa is None or fb is None:
                return None
            if set(fa["processid"]) != set(fb["processid"]) or len(fa) != len(fb):
                return None
            fb = fb.set_index("processid", drop=False).loc[fa["processid"]].reset_index(drop=True)
            right[task].append((per_query.correctness(fa, ra["per_query"]["main"]),
                                per_query.correctness(fb, rb["per_query"]["main"])))
    sizes = {task: len(pairs[0][0]) for task, pairs in right.items()}
    if any(len(a) != sizes[task] for task, pairs in right.items() for a, _ in pairs):
        return None  # seeds scored different queries (another split): no paired draw exists

    def statistic(weights: Mapping[str, np.ndarray] | None) -> float:
        diffs = []
        for i in range(len(seeds)):
            means = {}
            for task in SUMMARY_OF:
                a, b = right[task][i]
                w = weights[task] if weights is not None else None
                means[task] = (np.average(a, weights=w), np.average(b, weights=w))
            diffs.append(summary_score(*(means[t][0] for t in SUMMARY_OF))
                         - summary_score(*(means[t][1] for t in SUMMARY_OF)))
        return float(np.mean(diffs))

    rng = np.random.default_rng(seed)
    draws = [statistic({t: np.bincount(rng.integers(0, n, n), minlength=n).astype(float)
                        for t, n in sizes.items()}) for _ in range(RESAMPLES // 2)]
    low, high = np.percentile(draws, [2.5, 97.5])
    return {"mean": statistic(None), "low": float(low), "high": float(high), "n": len(seeds), "seeds": seeds,
            "method": intervals.bootstrap_method(RESAMPLES // 2, seed, over="queries of both tasks, paired"),
            "over": "queries"}


def outcomes_reader(paths: Mapping[int, Path]) -> Callable[[dict], pd.DataFrame | None]:
    """A reader of a scanned result's per-query outcomes, by the result's identity in ``paths``."""
    def read(result: dict) -> pd.DataFrame | None:
        path = paths.get(id(result))
        return None if path is None else per_query.read(path, result)
    return read
