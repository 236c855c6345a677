"""1-nearest-neighbour tasks on frozen embeddings (BIOSCAN-5M / BarcodeBERT protocol).

``open-world``: the genus of unseen species (queries ``test_unseen``) from the seen-species
training set (keys ``train``). ``unseen-species``: the species of unseen species (queries
``test_unseen``) from labelled examples of those species (keys ``key_unseen``).

Both report accuracy and balanced accuracy of raw-cosine 1-NN, as the reference code does, and
the same after subtracting the keys' mean embedding (``*_centred``): a shared offset dominates
cosine similarity in many pretrained encoders, and centring removes it without using labels.

The search is a similarity backend (:data:`benchbarcode.neighbours.SIMILARITIES`): cosine over
embeddings, or alignment over barcodes for an encoder whose rows are nucleotide codes (the
alignment baseline; no centred metrics there). The backend restates the protocol's ``distance``
and ``precision`` in its results.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from benchbarcode.api import (MIN_QUERIES, REFERENCE_PROTOCOL, QueryOutcomes, Task, TaskMeta, TaskOutcome,
                              UserError, register_task, too_few_queries)
from benchbarcode.intervals import classification_intervals

METRICS = ("accuracy", "balanced_accuracy", "accuracy_centred", "balanced_accuracy_centred")


def _scores(y_true: np.ndarray, y_pred: np.ndarray, suffix: str = "") -> dict[str, float]:
    from sklearn.metrics import accuracy_score, balanced_accuracy_score  # slow import: on use only

    with warnings.catch_warnings():  # predicted classes absent from y_true are expected here
        warnings.simplefilter("ignore", UserWarning)
        balanced = balanced_accuracy_score(y_true, y_pred)
    return {f"accuracy{suffix}": float(accuracy_score(y_true, y_pred)),
            f"balanced_accuracy{suffix}": float(balanced)}


def _meta(name: str, description: str, keys: str, rank: str, version: str = "1", **protocol) -> TaskMeta:
    return TaskMeta(
        name=name, version=version, description=description, splits=(keys, "test_unseen"),
        label_rank=rank, metrics=METRICS, main_score="accuracy", method_keys=("distance", "precision"),
        protocol={
            "classifier": "1-nearest-neighbour", "k": 1, "distance": "cosine",
            "keys": keys, "queries": "test_unseen", "label_rank": rank,
            "centring": "*_centred metrics: the keys' mean embedding is subtracted from keys and "
                        "queries before normalising (no labels used)",
            "ties": "lowest key index", "zero_vectors": "norm taken as 1 (similarity 0)",
            "precision": "float32", "missing_labels": "rows dropped and counted",
            "balanced_accuracy": "sklearn: mean recall over the classes of the queries",
            "seeds": "deterministic: one run, seed unused",
            **protocol,
        })


class NearestNeighbourTask(Task):
    """1-NN classification of ``test_unseen`` queries against the labelled keys of ``meta.splits[0]``.

    ``query_chunk`` and ``key_chunk`` bound the similarity block computed at once (None: the
    search's own default).
    """

    #: score only the queries whose class has a key (the others can never be right)
    exclude_keyless_queries = False
    similarities = ("cosine", "alignment")
    min_queries = MIN_QUERIES

    def __init__(self, query_chunk: int | None = None, key_chunk: int | None = None):
        self.query_chunk, self.key_chunk = query_chunk, key_chunk

    def evaluate(self, embeddings: Mapping[str, np.ndarray], labels: Mapping[str, pd.DataFrame], *,
                 seed: int = 0, device: str = "cpu", progress: bool = False, similarity: str = "cosine") -> TaskOutcome:
        keys_split, queries_split = self.meta.splits
        kx, ky, kdrop = self.labelled(embeddings, labels, keys_split)
        qx, qy, qdrop = self.labelled(embeddings, labels, queries_split)
        if kx.shape[1] != qx.shape[1]:
            raise UserError(f"task {self.meta.name}: {keys_split} embeddings have {kx.shape[1]} "
                            f"dimensions but {queries_split} has {qx.shape[1]}")
        qids = self.labelled_ids(labels, queries_split)
        keyless = ~np.isin(qy, ky)
        if self.exclude_keyless_queries and keyless.any():
            if keyless.all():
                raise UserError(f"task {self.meta.name}: no {queries_split} record has a "
                                f"{self.meta.label_rank} among the {keys_split} keys")
            qx, qy, qids = qx[~keyless], qy[~keyless], qids[~keyless]
        reason = too_few_queries(len(qy), self.min_queries)
        if reason:
            return TaskOutcome(unscored=reason, seeds=(int(seed),), counts={"queries": len(qy)})
        if similarity not in self.similarities:
            raise UserError(f"task {self.meta.name}: cannot compare rows by {similarity!r}")
        from benchbarcode.neighbours import search  # torch: on use only

        found, protocol, extras = search(similarity, kx, qx, device=device, query_chunk=self.query_chunk,
                                         key_chunk=self.key_chunk, progress=progress)
        scores: dict[str, float] = {}
        intervals: dict[str, dict] = {}
        for suffix, nearest in found.items():
            scores.update(_scores(qy, ky[nearest], suffix))
            intervals.update(classification_intervals(qy, ky[nearest], int(seed), suffix=suffix))
        per_query = QueryOutcomes(qids, qy, {f"predicted{suffix}": ky[nearest] for suffix, nearest in found.items()},
                                  main=("predicted",))
        counts = {"keys": len(ky), "queries": len(qy), "key_classes": len(np.unique(ky)),
                  "query_classes": len(np.unique(qy)),
                  "queries_without_key_class": int(keyless.sum()),
                  "queries_excluded": int(keyless.sum()) if self.exclude_keyless_queries else 0,
                  f"dropped_missing_{keys_split}": kdrop, f"dropped_missing_{queries_split}": qdrop}
        return TaskOutcome(scores=scores, seeds=(int(seed),), counts=counts, protocol=protocol or {},
                           extras=extras, intervals=intervals, per_query=per_query)


    def unsupported(self, labels):
        if self.exclude_keyless_queries and self.scored_queries(labels) == 0:
            keys_split, queries_split = self.meta.splits
            return f"no {queries_split} record has a {self.meta.label_rank} among the {keys_split} keys"
        return super().unsupported(labels)

    def scored_queries(self, labels) -> int:
        if not self.exclude_keyless_queries:
            return super().scored_queries(labels)
        keys_split, queries_split = self.meta.splits
        rank = self.meta.label_rank
        return int(labels[queries_split][rank].dropna().isin(labels[keys_split][rank].dropna()).sum())


@register_task
class OpenWorldTask(NearestNeighbourTask):
    """Genus of unseen species by 1-NN against the training set."""

    meta = _meta("open-world", "genus of unseen species by 1-NN (cosine) against the training set",
                 keys="train", rank="genus")

    def under(self, protocol: str) -> Task | None:
        return ReferenceOpenWorldTask() if protocol == REFERENCE_PROTOCOL else super().under(protocol)


@register_task
class UnseenSpeciesTask(NearestNeighbourTask):
    """Species of unseen species by 1-NN against labelled keys of those species."""

    exclude_keyless_queries = True
    meta = _meta("unseen-species", "species of unseen species by 1-NN (cosine) against key_unseen",
                 keys="key_unseen", rank="species", version="2",
                 queries_without_key_class="excluded and counted (a query whose species has no key "
                                           "can never be right)")


REFERENCE_METRICS = ("accuracy", "balanced_accuracy", "f1_micro", "f1_macro", "f1_weighted")


class ReferenceOpenWorldTask(Task):
    """``open-world`` under ``--protocol reference``: the BIOSCAN-5M / BarcodeMAE reference code's
    1-NN (``barcodebert/knn_probing.py``), scikit-learn's classifier itself, so that its tie
    handling and metrics are the reference's. Not registered: :meth:`OpenWorldTask.under` gives it."""

    meta = TaskMeta(
        name="open-world", version="1",
        description="genus of unseen species by 1-NN (cosine) against the training set, as the reference code",
        splits=("train", "test_unseen"), label_rank="genus", metrics=REFERENCE_METRICS, main_score="accuracy",
        method_keys=("classifier", "distance", "precision", "ties"),
        protocol={
            "protocol": REFERENCE_PROTOCOL,
            "data": "reference de-duplication: source barcode with trailing N stripped, identical barcodes "
                    "dropped over the whole file, first occurrence in file order kept",
            "classifier": "sklearn KNeighborsClassifier(n_neighbors=1, metric='cosine') fitted on train",
            "k": 1, "distance": "cosine", "keys": "train", "queries": "test_unseen", "label_rank": "genus",
            "ties": "scikit-learn's (KNeighborsClassifier.predict)",
            "missing_labels": "rows dropped and counted (the reference codes a missing genus as class -1)",
            "metrics": "sklearn accuracy_score, balanced_accuracy_score, f1_score average micro / macro / "
                       "weighted over the queries (fractions, not percentages)",
            "seeds": "deterministic: one run, seed unused",
        })

    #: an encoder without embeddings (the alignment baseline) keeps the reference's data, keys,
    #: queries and metrics, its neighbour found by alignment instead of scikit-learn's cosine
    similarities = ("cosine", "alignment")
    min_queries = MIN_QUERIES

    def evaluate(self, embeddings: Mapping[str, np.ndarray], labels: Mapping[str, pd.DataFrame], *,
                 seed: int = 0, device: str = "cpu", progress: bool = False,
                 similarity: str = "cosine") -> TaskOutcome:
        from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

        keys_split, queries_split = self.meta.splits
        kx, ky, kdrop = self.labelled(embeddings, labels, keys_split)
        qx, qy, qdrop = self.labelled(embeddings, labels, queries_split, min_classes=1)
        if kx.shape[1] != qx.shape[1]:
            raise UserError(f"task {self.meta.name}: {keys_split} embeddings have {kx.shape[1]} "
                            f"dimensions but {queries_split} has {qx.shape[1]}")
        reason = too_few_queries(len(qy), self.min_queries)
        if reason:
            return TaskOutcome(unscored=reason, seeds=(int(seed),), counts={"queries": len(qy)})
        pred, protocol, extras = _reference_neighbours(similarity, kx, ky, qx, progress=progress)
        with warnings.catch_warnings():  # predicted genera absent from the queries are expected
            warnings.simplefilter("ignore")
            scores = {"accuracy": accuracy_score(qy, pred), "balanced_accuracy": balanced_accuracy_score(qy, pred),
                      **{f"f1_{avg}": f1_score(qy, pred, average=avg) for avg in ("micro", "macro", "weighted")}}
        counts = {"keys": len(ky), "queries": len(qy), "key_classes": len(np.unique(ky)),
                  "query_classes": len(np.unique(qy)),
                  "queries_without_key_class": int((~np.isin(qy, ky)).sum()),
                  f"dropped_missing_{keys_split}": kdrop, f"dropped_missing_{queries_split}": qdrop}
        return TaskOutcome(scores={k: float(v) for k, v in scores.items()}, seeds=(int(seed),), counts=counts,
                           protocol=protocol, extras=extras,
                           intervals=classification_intervals(qy, pred, int(seed)),
                           per_query=QueryOutcomes(self.labelled_ids(labels, queries_split), qy,
                                                   {"predicted": pred}, main=("predicted",)))


def _reference_neighbours(similarity: str, kx: np.ndarray, ky: np.ndarray, qx: np.ndarray, *,
                          progress: bool) -> tuple[np.ndarray, dict, dict]:
    """The predicted label of each query, and the protocol entries and extras the search decides:
    scikit-learn's cosine 1-NN for embeddings (the reference itself), the alignment backend for
    rows that are barcodes (no reference counterpart: the one change, restated in the result)."""
    if similarity == "cosine":
        from sklearn.neighbors import KNeighborsClassifier

        return KNeighborsClassifier(n_neighbors=1, metric="cosine").fit(kx, ky).predict(qx), {}, {}
    if similarity not in ReferenceOpenWorldTask.similarities:
        raise UserError(f"task open-world: cannot compare rows by {similarity!r}")
    from benchbarcode.neighbours import search  # torch: on use only

    found, protocol, extras = search(similarity, kx, qx, progress=progress)
    protocol = {**protocol, "classifier": f"1-nearest-neighbour by {similarity} over train (the encoder has no "
                                          "embedding); the reference's data, keys, queries and metrics",
                "ties": "lowest key index"}
    return ky[found[""]], protocol, extras
