"""The plugin contract: what an encoder and a task are, and what a task returns.

* An **encoder** is an :class:`Encoder` (``embed(list[str]) -> float32 [N, D]``, optionally
  ``describe() -> dict``) with an :class:`EncoderMeta` record that the registry completes per
  instance (cf. MTEB's ``ModelMeta``). :class:`Similarity` says how its rows are compared.
* A **task** is a :class:`Task` with a :class:`TaskMeta` record and
  ``evaluate(embeddings by split, labels by split) -> TaskOutcome``: it sees embeddings and labels,
  never an encoder.

Third-party code imports these through :mod:`benchbarcode.api`; nothing here imports torch.
"""

from __future__ import annotations

import abc
import dataclasses
import enum
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from benchbarcode.canonical import plain
from benchbarcode.errors import UserError


class Similarity(str, enum.Enum):
    """How the rows an encoder returns are compared: ``cosine`` (an embedding) or ``alignment``
    (rows are nucleotide codes that only an alignment search reads). A ``str`` enum: records and
    result files hold its plain value."""

    COSINE = "cosine"
    ALIGNMENT = "alignment"

    def __str__(self) -> str:
        return self.value

    @classmethod
    def of(cls, value: str | "Similarity" | None) -> "Similarity":
        """The similarity named by ``value`` (None, as in records written before it existed: cosine)."""
        try:
            return cls(value if value is not None else cls.COSINE)
        except ValueError:
            raise UserError(f"unknown similarity {value!r} (known: {', '.join(s.value for s in cls)})") from None

    @property
    def is_embedding(self) -> bool:
        """Whether rows are embeddings (the one predicate every pipeline and report asks)."""
        return self is Similarity.COSINE


def is_embedding(meta: Mapping | "EncoderMeta") -> bool:
    """Whether an encoder record (an :class:`EncoderMeta` or its dict in a result file) describes
    an embedding."""
    value = meta.get("similarity") if isinstance(meta, Mapping) else meta.similarity
    return Similarity.of(value).is_embedding


# --------------------------------------------------------------------------- encoders
#: ``EncoderMeta.budget["trained_by"]`` of weights trained outside this suite (a Hugging Face model,
#: a published ``.pt`` file): any counters beside it are the file's own, not a budget this suite set
THIRD_PARTY = "third party"


@dataclass(frozen=True)
class EncoderMeta:
    """What a result needs to know about an encoder (cf. MTEB's ``ModelMeta``).

    Declared once by :func:`register_encoder` (name, family, objective, description, traits);
    the registry completes it per instance (architecture, dimensions, checkpoint, budget, options).
    Fields an encoder does not know stay ``None``.
    """

    name: str
    family: str = "third-party"
    objective: str = "unknown"
    description: str = ""
    # architecture (None: not known / not applicable)
    tokenizer: str | None = None
    k: int | None = None
    layers: int | None = None
    heads: int | None = None
    hidden_size: int | None = None
    parameters: int | None = None
    embedding_dim: int | None = None
    max_length: int | None = None
    pooling: str | None = None
    dtype: str = "float32"
    options: dict = field(default_factory=dict)  # what the instance was created with
    #: identity of the weights: tensors_sha256 (weights this suite trained: canonical.tensors_sha256)
    #: or sha256 (a third-party file as published) or revision; preset, seed; path
    checkpoint: dict = field(default_factory=dict)
    #: pretraining budget (steps, tokens, FLOPs...): {"steps": 0, ...} for no pretraining at all,
    #: {"trained_by": THIRD_PARTY, ...} (or no steps) for weights trained elsewhere
    budget: dict = field(default_factory=dict)
    loader: dict = field(default_factory=dict)  # how an adapter loaded it (classes, policies, fixes)
    # traits the pipeline reads instead of names
    pretrainable: bool = False  # `benchbarcode pretrain` builds it (objective names the loop's objective)
    seeded: bool = False  # its weights depend on the run's --seed (e.g. random initialisation)
    #: the encoder that tells whether its training bought anything: {"encoder": NAME, "options":
    #: {...}, "carry": [option names handed on from this encoder's own options]}
    control: dict | None = None
    #: how tasks compare its rows (a :class:`Similarity` value, kept as its plain string)
    similarity: str = "cosine"

    #: fields that do not change a vector (descriptions, derived counts, traits), left out of identity()
    NOT_IDENTITY = ("family", "description", "parameters", "embedding_dim", "budget",
                    "pretrainable", "seeded", "control", "similarity")

    def __post_init__(self):
        object.__setattr__(self, "similarity", Similarity.of(self.similarity).value)

    def to_dict(self) -> dict:
        return asdict(self)

    def identity(self) -> dict:
        """Everything that changes this encoder's vectors, as plain JSON: the run id and the
        embedding-cache key both hash it. A checkpoint's ``path`` is left out (its hash names the
        weights wherever they lie)."""
        out = {k: v for k, v in self.to_dict().items() if k not in self.NOT_IDENTITY}
        out["checkpoint"] = {k: v for k, v in self.checkpoint.items() if k != "path"}
        return plain(out, f"encoder {self.name!r} metadata")

    @classmethod
    def from_dict(cls, record: dict) -> "EncoderMeta":
        """The record of a result file (fields it lacks take their defaults; unknown ones are dropped)."""
        names = {f.name for f in dataclasses.fields(cls)}
        return cls(**{k: v for k, v in record.items() if k in names})


class Encoder(abc.ABC):
    """Base class of encoders: ``embed`` plus, optionally, ``describe``.

    ``meta`` is set by the registry when the encoder is created (``get_encoder(name).create()``).
    """

    meta: EncoderMeta

    def describe(self) -> dict:
        """What only this instance knows, as :class:`EncoderMeta` fields (e.g. ``embedding_dim``,
        ``parameters``, ``checkpoint``, ``budget``); the declaration supplies the rest."""
        return {}

    @abc.abstractmethod
    def embed(self, sequences: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embed ``sequences`` (cleaned, uppercase) into a float32 array ``[N, D]``."""



# --------------------------------------------------------------------------- tasks
LABEL_RANKS = ("species", "genus", "bin")
#: below this many scored queries a classification task says "too few to score" instead of a number:
#: the 95 % interval of an accuracy over 30 queries is still about ±0.17 wide
MIN_QUERIES = 30


def too_few_queries(queries: int, minimum: int = MIN_QUERIES) -> str | None:
    """Why ``queries`` scored queries give no number worth printing, or None."""
    if queries < minimum:
        return f"too few to score: {queries} queries (needs at least {minimum})"
    return None


@dataclass(frozen=True)
class TaskMeta:
    """What a result needs to know about a task: its identity, inputs, metrics and protocol."""

    name: str  # e.g. "open-world"
    version: str  # bumped whenever the protocol changes
    description: str  # one line
    splits: tuple[str, ...]  # the splits whose embeddings evaluate() needs
    label_rank: str  # "species" | "genus" | "bin"
    metrics: tuple[str, ...]  # the metric names that appear in scores
    main_score: str  # one of metrics
    protocol: dict  # every protocol choice, named (it goes into result files)
    #: protocol entries the compared method decides (e.g. the distance): a result may restate
    #: them (its outcome's ``protocol``), and the leaderboard compares methods without them
    method_keys: tuple[str, ...] = ()

    def __post_init__(self):
        if self.label_rank not in LABEL_RANKS:
            raise ValueError(f"task {self.name!r}: label_rank must be one of {LABEL_RANKS}")
        if self.main_score not in self.metrics:
            raise ValueError(f"task {self.name!r}: main_score {self.main_score!r} is not a metric")

    def to_dict(self) -> dict:
        return asdict(self)


class Task(abc.ABC):
    """Base class of tasks: ``meta`` plus ``evaluate``. A task sees embeddings and labels only.

    ``similarities`` names the ways of comparing rows the task can score: a task listing more
    than ``"cosine"`` takes ``evaluate(..., similarity=NAME)`` for encoders whose rows are not
    embeddings (``EncoderMeta.similarity``); the pipeline skips the others for such encoders."""

    meta: TaskMeta
    similarities: tuple[str, ...] = ("cosine",)
    #: the fewest labelled records of the scored split (the last of ``meta.splits``) it scores
    min_queries: int = 0

    @abc.abstractmethod
    def evaluate(self, embeddings: Mapping[str, np.ndarray], labels: Mapping[str, pd.DataFrame], *,
                 seed: int = 0, device: str = "cpu", progress: bool = False) -> "TaskOutcome":
        """Score the embeddings of ``meta.splits``.

        ``embeddings[split]`` is float32 ``[N, D]``; ``labels[split]`` a DataFrame with columns
        processid, genus, species, bin (strings; missing values NA/None/NaN), in the same row
        order. Returns a :class:`TaskOutcome`: the scores (the metrics repeated over seeds with
        their spread), the seeds, counts, and any extras (e.g. ``selected``: what model selection
        chose). A task that cannot give a meaningful number for these inputs returns
        ``TaskOutcome(unscored=REASON)``: the result file then says why instead of holding a number.
        """

    def under(self, protocol: str) -> "Task | None":
        """This task as evaluation ``protocol`` defines it (see ``--protocol``): itself under the
        default ``"benchbarcode"``; under another protocol a variant whose ``meta.protocol`` records
        it, or None when the protocol has no counterpart of this task."""
        return self if protocol == "benchbarcode" else None

    def unsupported(self, labels: Mapping[str, pd.DataFrame]) -> str | None:
        """Why this task cannot score a data set with these labels (by split), or None; what
        ``benchbarcode data describe`` reports. The base check: every split holds at least two
        classes at the task's label rank."""
        for split in self.meta.splits:
            frame = labels.get(split)
            column = None if frame is None else frame[self.meta.label_rank]
            present = column[column.notna() & (column.astype(str).str.strip() != "")] if column is not None else []
            classes = len(set(present)) if len(present) else 0
            if classes < 2:
                return f"{split}: {classes} {self.meta.label_rank} class(es) with labelled records (needs 2)"
        return too_few_queries(self.scored_queries(labels), self.min_queries) if self.min_queries else None

    def scored_queries(self, labels: Mapping[str, pd.DataFrame]) -> int:
        """How many queries these labels give the task to score (the base: the labelled records of
        the last of ``meta.splits``), checked against :attr:`min_queries`."""
        return int((~missing_labels(labels[self.meta.splits[-1]][self.meta.label_rank])).sum())

    def labelled(self, embeddings: Mapping[str, np.ndarray], labels: Mapping[str, pd.DataFrame],
                 split: str, min_classes: int = 2) -> tuple[np.ndarray, np.ndarray, int]:
        """Validated ``(X, y, dropped)`` of ``split`` at the task's label rank.

        X is float32 ``[n, D]`` and y the labels, a fixed-width numpy string array. Rows whose
        label is missing (NA, None, NaN or blank) are dropped and counted in ``dropped``.
        Missing splits, mismatched row counts, non-finite values and fewer than ``min_classes``
        classes raise a UserError.
        """
        where = f"task {self.meta.name}: split {split!r}"
        for kind, given in (("embeddings", embeddings), ("labels", labels)):
            if split not in given:
                raise UserError(f"{where} is missing from the {kind} (have: {', '.join(given) or 'none'})")
        x = np.asarray(embeddings[split])
        if x.ndim != 2 or x.shape[0] == 0 or x.shape[1] == 0:
            raise UserError(f"{where}: embeddings must be a non-empty [N, D] array, got shape {x.shape}")
        x = np.ascontiguousarray(x, dtype=np.float32)
        frame = labels[split]
        if len(frame) != x.shape[0]:
            raise UserError(f"{where}: {x.shape[0]} embedding rows but {len(frame)} label rows")
        rank = self.meta.label_rank
        if rank not in frame.columns:
            raise UserError(f"{where}: the labels have no {rank!r} column")
        if not np.isfinite(x.sum(dtype=np.float64)):  # cheap; a float32 sum in float64 cannot overflow
            row = int(np.flatnonzero(~np.isfinite(x).all(axis=1))[0])
            raise UserError(f"{where}: non-finite embedding values (first in row {row})")
        column = frame[rank]
        missing = missing_labels(column)
        y = np.asarray(column.astype(str).to_numpy(), dtype=str)  # fixed-width: fast unique/isin
        dropped = int(missing.sum())
        if dropped:
            x, y = x[~missing], y[~missing]
        classes = len(np.unique(y))
        if classes < min_classes:
            raise UserError(f"{where}: {classes} {rank} class(es) after dropping {dropped} rows "
                            f"without a {rank}; at least {min_classes} needed")
        return x, y, dropped

    def labelled_ids(self, labels: Mapping[str, pd.DataFrame], split: str) -> np.ndarray:
        """The processids of the rows :meth:`labelled` keeps, in its order (per-query outcomes
        name their queries by them; the row number where a frame has no processid)."""
        frame = labels[split]
        ids = frame["processid"] if "processid" in frame.columns else pd.Series(range(len(frame)))
        return np.asarray(ids.astype(str).to_numpy()[~missing_labels(frame[self.meta.label_rank])], dtype=object)


def missing_labels(column: pd.Series) -> np.ndarray:
    """Which labels are missing (NA, None, NaN or blank): the rows every task drops and counts."""
    return (column.isna() | (column.astype(str).str.strip() == "")).to_numpy(dtype=bool)


QUERY_KINDS = ("classification", "clustering")


@dataclass(frozen=True, eq=False)
class QueryOutcomes:
    """What a task answered for each query, so that two results on the same data and protocol can
    be compared query by query (``benchbarcode compare``).

    ``ids``: the queries' processids; ``true``: their labels; ``predicted``: column name -> one
    answer per query (a predicted label, or a cluster id for ``kind="clustering"``); ``main``: the
    columns the main score is computed from (several: repeats whose mean the task reports).
    """

    ids: Any
    true: Any
    predicted: Mapping[str, Any]
    main: tuple[str, ...]
    kind: str = "classification"

    def __post_init__(self):
        if self.kind not in QUERY_KINDS:
            raise ValueError(f"per-query outcomes: kind must be one of {QUERY_KINDS}, not {self.kind!r}")
        missing = [c for c in self.main if c not in self.predicted]
        if missing or not self.main:
            raise ValueError(f"per-query outcomes: main column(s) {missing or '(none)'} not among the predictions")
        sizes = {len(self.ids), len(self.true), *(len(v) for v in self.predicted.values())}
        if len(sizes) != 1:
            raise ValueError(f"per-query outcomes: columns of different lengths {sorted(sizes)}")

    def __eq__(self, other) -> bool:
        return (isinstance(other, QueryOutcomes) and (self.main, self.kind) == (other.main, other.kind)
                and self.frame().equals(other.frame()))

    def frame(self) -> pd.DataFrame:
        """One row per query: ``processid``, ``true`` and the prediction columns."""
        return pd.DataFrame({"processid": np.asarray(self.ids, dtype=str), "true": np.asarray(self.true),
                             **{name: np.asarray(values) for name, values in self.predicted.items()}})


@dataclass(frozen=True)
class TaskOutcome:
    """What :meth:`Task.evaluate` returns (cf. MTEB's ``TaskResult``); result files serialise it.

    ``scores``: metric -> value (the task's main score among them, unless ``unscored``);
    ``scores_std``: the spread of the metrics repeated over ``seeds``; ``counts``: named counts
    (records, classes, dropped rows...); ``unscored``: why no meaningful number exists for these
    inputs (``scores`` then empty); ``protocol``: entries of the task's ``method_keys`` this
    evaluation decided (e.g. the distance of an alignment search); ``extras``: further named
    facts kept in the result under their names (e.g. ``selected``: what model selection chose);
    ``intervals``: metric -> its 95 % sampling interval (:func:`benchbarcode.intervals.record`);
    ``per_query``: the :class:`QueryOutcomes` the main score came from (stored beside the result).
    """

    scores: Mapping[str, float] = field(default_factory=dict)
    scores_std: Mapping[str, float] = field(default_factory=dict)
    seeds: tuple[int, ...] = ()
    counts: Mapping[str, int] = field(default_factory=dict)
    unscored: str | None = None
    protocol: Mapping[str, Any] = field(default_factory=dict)
    extras: Mapping[str, Any] = field(default_factory=dict)
    intervals: Mapping[str, Mapping] = field(default_factory=dict)
    per_query: QueryOutcomes | None = None

    FIELDS = ("scores", "scores_std", "seeds", "counts", "unscored", "protocol", "intervals", "per_query")

    @classmethod
    def of(cls, value: "TaskOutcome | Mapping", task: str = "?") -> "TaskOutcome":
        """``value`` as an outcome: a plugin written before this type returned a dict with these
        keys (and further keys as extras); it is upgraded here."""
        if isinstance(value, TaskOutcome):
            return value
        if not isinstance(value, Mapping):
            raise UserError(f"task {task!r}: evaluate() returned a {type(value).__name__}, not a TaskOutcome")
        known = {k: value[k] for k in cls.FIELDS if k in value}
        if "seeds" in known:
            known["seeds"] = tuple(known["seeds"])
        return cls(**known, extras={k: v for k, v in value.items() if k not in cls.FIELDS})
