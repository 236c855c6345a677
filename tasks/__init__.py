"""Frozen-feature evaluation tasks (importable as ``benchbarcode.tasks``): the evaluation layer.

A task sees embeddings and labels, never an encoder, and returns a
:class:`benchbarcode.api.TaskOutcome`. Importing this package registers the built-in tasks with
:mod:`benchbarcode.registry`: ``open-world`` and ``unseen-species`` (1-NN, :mod:`.knn`),
``closed-world`` (linear probe, :mod:`.linear_probe`), ``clustering`` and ``bin-reconstruction``
(:mod:`.clustering`). How runs are summarised (the harmonic mean of closed-world and open-world
accuracy) is a rule of the core: :mod:`benchbarcode.summary`.
"""

from benchbarcode.tasks import clustering, knn, linear_probe  # noqa: F401  (registration side effects)
