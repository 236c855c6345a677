"""``closed-world``: species of seen species by a linear probe on frozen embeddings.

Features are standardised with the training set's mean and standard deviation; a softmax
regression (a linear layer) is trained with minibatch AdamW on ``train``, one model per weight
decay of a small grid, all on the same minibatches. After every epoch each model is scored on
``val``; the (weight decay, epoch) with the best val accuracy is kept and scored once on
``test``. Only val/test rows whose species occurs in train are scored (closed world). The whole
procedure runs for three seeds (seed, seed+1, seed+2), which set the initialisation and the
minibatch order; scores are the means over seeds and ``scores_std`` their standard deviations.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping

import numpy as np
import pandas as pd

from benchbarcode.api import (MIN_QUERIES, REFERENCE_PROTOCOL, QueryOutcomes, Task, TaskMeta, TaskOutcome,
                              UserError, register_task, too_few_queries)
from benchbarcode.intervals import classification_intervals

WEIGHT_DECAYS = (1e-4, 1e-2, 1.0)
LEARNING_RATE = 1e-2
BATCH_SIZE = 256  # at most; small training sets use N // MIN_STEPS_PER_EPOCH
MIN_STEPS_PER_EPOCH = 16
MAX_EPOCHS = 30
PATIENCE = 3  # epochs without a strictly better val accuracy (any weight decay) before stopping
REPEATS = 3


@register_task
class ClosedWorldTask(Task):
    """Species of seen species: linear probe fitted on train, selected on val, scored on test."""

    min_queries = MIN_QUERIES

    meta = TaskMeta(
        name="closed-world", version="1",
        description="species of seen species by a linear probe (softmax regression) on frozen embeddings",
        splits=("train", "val", "test"), label_rank="species",
        metrics=("accuracy", "balanced_accuracy", "macro_f1"), main_score="accuracy",
        protocol={
            "classifier": "softmax regression (linear layer, cross-entropy)",
            "features": "standardised with the train mean and std (std 0 -> 1)",
            "fit": "train", "select": "val", "report": "test", "label_rank": "species",
            "optimiser": "AdamW", "learning_rate": LEARNING_RATE,
            "batch_size": f"{BATCH_SIZE}, or N // {MIN_STEPS_PER_EPOCH} when smaller (at least 1)",
            "weight_decay_grid": list(WEIGHT_DECAYS), "max_epochs": MAX_EPOCHS, "patience": PATIENCE,
            "init": "uniform(+-1/sqrt(D)), bias 0; seeded torch.Generator (also the minibatch order)",
            "selection": "the (weight decay, epoch) with the best val accuracy; ties: later epoch, "
                         "then larger weight decay; stop after patience epochs without a strictly "
                         "better val accuracy",
            "closed_world": "val/test rows whose species is not in train are dropped and counted",
            "missing_labels": "rows dropped and counted",
            "balanced_accuracy": "sklearn: mean recall over the species present in test",
            "macro_f1": "sklearn f1_score(average='macro') over the species present in test "
                        "(labels=those species; zero_division=0)",
            "repeats": f"{REPEATS} seeds: seed, seed+1, seed+2; scores are means",
            "scores_std": "population standard deviation over the seeds (ddof=0)",
        })

    def under(self, protocol: str) -> Task | None:
        return ReferenceClosedWorldTask() if protocol == REFERENCE_PROTOCOL else super().under(protocol)

    def evaluate(self, embeddings: Mapping[str, np.ndarray], labels: Mapping[str, pd.DataFrame], *,
                 seed: int = 0, device: str = "cpu", progress: bool = False) -> TaskOutcome:
        import torch  # slow imports: on use only
        from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

        from benchbarcode.probe import predict, train_probe

        classes, scored, test_ids, counts = self._standardised(embeddings, labels, torch.device(device))
        reason = too_few_queries(counts["test"], self.min_queries)
        if reason:
            return TaskOutcome(unscored=reason, seeds=(int(seed),), counts=counts)

        test_y = scored["test"][1].cpu().numpy()
        present = np.unique(test_y)
        runs, predictions, selected = [], {}, {"weight_decay": [], "epoch": [], "val_accuracy": []}
        seeds = [int(seed) + i for i in range(REPEATS)]
        for s in seeds:
            best = train_probe(*scored["train"], *scored["val"], len(classes), s,
                               weight_decays=WEIGHT_DECAYS, learning_rate=LEARNING_RATE,
                               batch_size=BATCH_SIZE, min_steps_per_epoch=MIN_STEPS_PER_EPOCH,
                               max_epochs=MAX_EPOCHS, patience=PATIENCE, progress=progress)
            with torch.no_grad():
                pred = predict(best["weight"], best["bias"], scored["test"][0]).cpu().numpy()
            predictions[f"predicted_seed{s}"] = classes[pred]
            with warnings.catch_warnings():  # predicted species absent from test are expected
                warnings.simplefilter("ignore", UserWarning)
                runs.append({"accuracy": accuracy_score(test_y, pred),
                             "balanced_accuracy": balanced_accuracy_score(test_y, pred),
                             "macro_f1": f1_score(test_y, pred, labels=present, average="macro",
                                                  zero_division=0)})
            for key, values in selected.items():
                values.append(best[key])
        scores = {m: float(np.mean([r[m] for r in runs])) for m in self.meta.metrics}
        scores_std = {m: float(np.std([r[m] for r in runs])) for m in self.meta.metrics}
        true = classes[test_y]
        return TaskOutcome(scores=scores, scores_std=scores_std, seeds=tuple(seeds), counts=counts,
                           extras={"selected": selected},
                           intervals=classification_intervals(true, list(predictions.values()), int(seed), f1=True),
                           per_query=QueryOutcomes(test_ids, true, predictions, main=tuple(predictions)))


    def _standardised(self, embeddings, labels, dev) -> tuple[np.ndarray, dict, np.ndarray, dict]:
        """``(classes, {split: (X, y) tensors}, test processids, counts)``: train, and the val/test
        rows whose species occurs in train, standardised by the train mean and std."""
        import torch

        data = {split: self.labelled(embeddings, labels, split) for split in self.meta.splits}
        train_x, train_y, _ = data["train"]
        classes, train_idx = np.unique(train_y, return_inverse=True)
        counts = {"train": len(train_y), "classes": len(classes)}
        counts.update({f"dropped_missing_{split}": data[split][2] for split in self.meta.splits})
        mean = train_x.mean(axis=0, dtype=np.float64)
        std = train_x.std(axis=0, dtype=np.float64)
        std[std == 0] = 1.0
        mean_t = torch.as_tensor(mean, dtype=torch.float32, device=dev)
        std_t = torch.as_tensor(std, dtype=torch.float32, device=dev)

        def tensors(x: np.ndarray, y: np.ndarray) -> tuple:
            return ((torch.as_tensor(x).to(dev) - mean_t) / std_t,
                    torch.as_tensor(y, dtype=torch.long, device=dev))

        scored = {"train": tensors(train_x, train_idx)}
        for split in ("val", "test"):
            x, y, _ = data[split]
            if x.shape[1] != train_x.shape[1]:
                raise UserError(f"task {self.meta.name}: train embeddings have {train_x.shape[1]} "
                                f"dimensions but {split} has {x.shape[1]}")
            seen = np.isin(y, classes)
            counts[split] = int(seen.sum())
            counts[f"dropped_unseen_{split}"] = int((~seen).sum())
            if not seen.any():
                raise UserError(f"task {self.meta.name}: split {split!r} has no rows whose species "
                                "occurs in train")
            scored[split] = tensors(x[seen], np.searchsorted(classes, y[seen]))
        test_seen = np.isin(data["test"][1], classes)
        return classes, scored, self.labelled_ids(labels, "test")[test_seen], counts


# The reference code's probe (BIOSCAN-5M / BarcodeMAE ``barcodebert/linear_probing.py``).
REFERENCE_PROBE = {"learning_rate": 0.01, "momentum": 0.9, "weight_decay": 1e-5, "epochs": 200, "batch_size": 1024}


class ReferenceClosedWorldTask(Task):
    """``closed-world`` under ``--protocol reference``: the reference code's linear probe, trained
    on train and scored once on test (no validation split, one seed). Not registered:
    :meth:`ClosedWorldTask.under` gives it."""

    min_queries = MIN_QUERIES

    meta = TaskMeta(
        name="closed-world", version="1",
        description="species of seen species by a linear probe on frozen embeddings, as the reference code",
        splits=("train", "test"), label_rank="species", metrics=("accuracy",), main_score="accuracy",
        protocol={
            "protocol": REFERENCE_PROTOCOL,
            "data": "reference de-duplication: source barcode with trailing N stripped, identical barcodes "
                    "dropped over the whole file, first occurrence in file order kept",
            "classifier": "one linear layer, mean cross-entropy",
            "features": "standardised by the train set's single scalar mean and std over all entries "
                        "(X.mean(), X.std(); std 0 -> 1)",
            "fit": "train", "select": "none (no validation split)", "report": "test", "label_rank": "species",
            "optimiser": "SGD", **REFERENCE_PROBE, "shuffle": "every epoch",
            "init": "as torch.nn.Linear (weight and bias uniform(+-1/sqrt(D))); seeded torch.Generator "
                    "(also the minibatch order)",
            "closed_world": "one label space from train; test rows whose species is not in train are "
                            "dropped and counted",
            "missing_labels": "rows dropped and counted",
            "repeats": "one seed: the run seed",
        })

    def evaluate(self, embeddings: Mapping[str, np.ndarray], labels: Mapping[str, pd.DataFrame], *,
                 seed: int = 0, device: str = "cpu", progress: bool = False) -> TaskOutcome:
        import torch  # slow imports: on use only

        from benchbarcode import probe

        train_x, train_y, train_drop = self.labelled(embeddings, labels, "train")
        test_x, test_y, test_drop = self.labelled(embeddings, labels, "test", min_classes=1)
        if test_x.shape[1] != train_x.shape[1]:
            raise UserError(f"task {self.meta.name}: train embeddings have {train_x.shape[1]} "
                            f"dimensions but test has {test_x.shape[1]}")
        classes, train_idx = np.unique(train_y, return_inverse=True)
        seen = np.isin(test_y, classes)
        if not seen.any():
            raise UserError(f"task {self.meta.name}: split 'test' has no rows whose species occurs in train")
        counts = {"train": len(train_y), "classes": len(classes), "test": int(seen.sum()),
                  "dropped_unseen_test": int((~seen).sum()), "dropped_missing_train": train_drop,
                  "dropped_missing_test": test_drop}
        reason = too_few_queries(counts["test"], self.min_queries)
        if reason:
            return TaskOutcome(unscored=reason, seeds=(int(seed),), counts=counts)
        mean, std = scalar_standardisation(train_x)
        dev = torch.device(device)

        def features(x: np.ndarray) -> torch.Tensor:
            return ((torch.as_tensor(x, dtype=torch.float64) - mean) / std).float().to(dev)

        weight, bias = probe.train_linear_sgd(features(train_x), torch.as_tensor(train_idx, dtype=torch.long,
                                                                                 device=dev),
                                              len(classes), int(seed), progress=progress, **REFERENCE_PROBE)
        with torch.no_grad():
            pred = probe.predict(weight, bias, features(test_x[seen])).cpu().numpy()
        accuracy = float((pred == np.searchsorted(classes, test_y[seen])).mean())
        true, predicted = test_y[seen], classes[pred]
        return TaskOutcome(scores={"accuracy": accuracy}, seeds=(int(seed),), counts=counts,
                           intervals=classification_intervals(true, predicted, int(seed), balanced=False),
                           per_query=QueryOutcomes(self.labelled_ids(labels, "test")[seen], true,
                                                   {"predicted": predicted}, main=("predicted",)))


def scalar_standardisation(x: np.ndarray) -> tuple[float, float]:
    """The single mean and standard deviation (ddof 0) over every entry of ``x``, in float64
    (std 0 -> 1)."""
    mean, std = float(x.mean(dtype=np.float64)), float(x.std(dtype=np.float64))
    return mean, (std if std > 0 else 1.0)
