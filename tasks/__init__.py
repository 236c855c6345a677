"""Frozen-feature evaluation tasks (importable as ``benchbarcode.tasks``).

A task sees embeddings and labels, never an encoder. Importing this package registers the
built-in tasks with :mod:`benchbarcode.registry`: ``open-world`` and ``unseen-species``
(1-NN, :mod:`.knn`), ``closed-world`` (linear probe, :mod:`.linear_probe`), ``clustering`` and
``bin-reconstruction`` (:mod:`.clustering`).

The summary of a run is BarcodeMAE's: the harmonic mean of the main scores of :data:`SUMMARY_OF`.
Tables list tasks in :func:`canonical_order` (the two summarised tasks, the summary, the rest).
"""

from benchbarcode.tasks import clustering, knn, linear_probe  # noqa: F401  (registration side effects)

SUMMARY = "harmonic mean"  # the name of the summary score in tables
SUMMARY_OF = ("closed-world", "open-world")
_FIRST = (*SUMMARY_OF, SUMMARY, "unseen-species", "clustering", "bin-reconstruction")


def summary_score(closed_world_accuracy: float, open_world_accuracy: float) -> float:
    """Harmonic mean of closed-world and open-world accuracy (BarcodeMAE's summary); 0 if either is 0."""
    a, b = float(closed_world_accuracy), float(open_world_accuracy)
    return 0.0 if a <= 0 or b <= 0 else 2 * a * b / (a + b)


def summary_of(main_values: dict) -> float | None:
    """The summary score from ``{task: main value}``, or None when a summarised task is missing."""
    if not all(name in main_values for name in SUMMARY_OF):
        return None
    return summary_score(*(main_values[name] for name in SUMMARY_OF))


def canonical_order(names) -> list:
    """``names`` (task names and possibly :data:`SUMMARY`) in table order: closed-world,
    open-world, the summary, unseen-species, clustering, bin-reconstruction, then the rest by name."""
    names = list(dict.fromkeys(names))
    return sorted(names, key=lambda n: (_FIRST.index(n) if n in _FIRST else len(_FIRST), n))
