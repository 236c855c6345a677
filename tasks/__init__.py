"""Frozen-feature evaluation tasks (importable as ``benchbarcode.tasks``).

A task sees embeddings and labels, never an encoder. Importing this package registers the
built-in tasks with :mod:`benchbarcode.registry`: ``open-world`` and ``unseen-species``
(1-NN, :mod:`.knn`), ``closed-world`` (linear probe, :mod:`.linear_probe`), ``clustering`` and
``bin-reconstruction`` (:mod:`.clustering`).
"""

from benchbarcode.tasks import clustering, knn, linear_probe  # noqa: F401  (registration side effects)


def summary_score(closed_world_accuracy: float, open_world_accuracy: float) -> float:
    """Harmonic mean of closed-world and open-world accuracy (BarcodeMAE's summary); 0 if either is 0."""
    a, b = float(closed_world_accuracy), float(open_world_accuracy)
    return 0.0 if a <= 0 or b <= 0 else 2 * a * b / (a + b)
