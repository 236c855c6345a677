"""Encoder and task registries: built-ins declare themselves with :func:`register_encoder` /
:func:`register_task`; third-party ones are discovered lazily from the entry-point groups
``benchbarcode.encoders`` / ``benchbarcode.tasks``.

An encoder is an object with a :class:`EncoderMeta` record in ``.meta`` and
``embed(sequences: list[str], batch_size=...) -> np.ndarray`` (float32, ``[N, D]``).

A third-party package declares ``[project.entry-points."benchbarcode.encoders"]
myenc = "mypkg.module:factory"``; ``factory(**options)`` returns such an object. If the module
itself calls :func:`register_encoder`, loading it is enough.

A task is a :class:`Task` subclass with a :class:`TaskMeta` record in ``.meta`` and
``evaluate(embeddings, labels, ...)``: it sees embeddings and labels, never an encoder. A
third-party package declares ``[project.entry-points."benchbarcode.tasks"]
mytask = "mypkg.module:MyTask"`` (a Task subclass, or a module that calls :func:`register_task`).
"""

from __future__ import annotations

import abc
import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from typing import Any

import numpy as np
import pandas as pd

from benchbarcode.errors import UserError

ENTRY_POINT_GROUP = "benchbarcode.encoders"


@dataclass(frozen=True)
class EncoderMeta:
    """What a result needs to know about an encoder (cf. MTEB's ``ModelMeta``)."""

    name: str
    family: str
    objective: str
    tokenizer: str
    k: int | None
    layers: int | None
    heads: int | None
    hidden_size: int | None
    parameters: int
    embedding_dim: int
    max_length: int | None
    pooling: str
    checkpoint: dict = field(default_factory=dict)  # identity: path, sha256, preset, seed
    budget: dict = field(default_factory=dict)  # pretraining budget (steps, tokens, FLOPs...)

    def to_dict(self) -> dict:
        return asdict(self)


class Encoder(abc.ABC):
    """Base class of encoders: ``meta`` plus ``embed``."""

    meta: EncoderMeta

    @abc.abstractmethod
    def embed(self, sequences: list[str], batch_size: int = 64, progress: bool = False) -> np.ndarray:
        """Embed ``sequences`` (cleaned, uppercase) into a float32 array ``[N, D]``."""


@dataclass(frozen=True)
class EncoderEntry:
    """One registered encoder name."""

    name: str
    factory: Callable[..., Encoder]
    family: str
    objective: str
    description: str
    pretrainable: bool = False  # built by ``benchbarcode pretrain`` (in-house objectives)
    origin: str = "built-in"
    parameters: Callable[[], int | None] | None = None  # parameters of the default configuration

    def create(self, **options: Any) -> Encoder:
        return self.factory(**options)

    def default_parameters(self) -> int | None:
        return self.parameters() if self.parameters else None


_REGISTRY: dict[str, EncoderEntry] = {}
_loaded = {"builtins": False, "entry_points": False, "task_builtins": False, "task_entry_points": False}


def register_encoder(name: str, *, family: str, objective: str, description: str,
                     pretrainable: bool = False, parameters: Callable[[], int | None] | None = None):
    """Class or function decorator declaring encoder ``name``; the decorated object is its factory."""

    def decorate(factory):
        if name in _REGISTRY and _REGISTRY[name].factory is not factory:
            raise ValueError(f"encoder {name!r} is registered twice")
        _REGISTRY[name] = EncoderEntry(name, factory, family, objective, description,
                                       pretrainable, _current_origin.get("origin", "built-in"),
                                       parameters)
        return factory

    return decorate


_current_origin: dict[str, str] = {}


def _load_builtins() -> None:
    if not _loaded["builtins"]:
        _loaded["builtins"] = True
        importlib.import_module("benchbarcode.encoders")


def _load_plugins(group: str, kind: str, registered: dict, adopt: Callable[[str, Any, str], None]) -> None:
    """Load every entry point of ``group`` not yet in ``registered``.

    Loading may register the plugin itself (its module calls the register decorator, which
    records the origin); otherwise ``adopt(name, loaded_object, origin)`` registers it.
    A plugin that fails to load raises a UserError naming it.
    """
    for ep in entry_points(group=group):
        if ep.name in registered:
            continue
        dist = getattr(ep, "dist", None)
        origin = f"entry point ({dist.name if dist else ep.value})"
        _current_origin["origin"] = origin
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break the suite
            raise UserError(f"{kind} plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from None
        finally:
            _current_origin.clear()
        if ep.name not in registered:
            adopt(ep.name, obj, origin)


def _unknown_name(kind: str, name: str, known: list[str]) -> UserError:
    """The UserError for an unknown ``kind`` name, listing the closest known names."""
    close = difflib.get_close_matches(name, known, n=3, cutoff=0.4)
    hint = f"; did you mean {', '.join(close)}?" if close else ""
    return UserError(f"unknown {kind} {name!r}{hint} (see: benchbarcode {kind}s)")


def _load_entry_points() -> None:
    if _loaded["entry_points"]:
        return
    _loaded["entry_points"] = True

    def adopt(name: str, obj: Any, origin: str) -> None:  # a bare factory: describe it from its attributes
        doc = (getattr(obj, "__doc__", None) or "").strip()
        _REGISTRY[name] = EncoderEntry(
            name, obj, getattr(obj, "family", "third-party"),
            getattr(obj, "objective", "unknown"), doc.splitlines()[0] if doc else "", origin=origin)

    _load_plugins(ENTRY_POINT_GROUP, "encoder", _REGISTRY, adopt)


def list_encoders() -> list[EncoderEntry]:
    _load_builtins()
    _load_entry_points()
    return sorted(_REGISTRY.values(), key=lambda e: (e.origin != "built-in", e.name))


def get_encoder(name: str) -> EncoderEntry:
    """The entry of ``name``; unknown names raise a UserError listing the closest matches."""
    _load_builtins()
    if name not in _REGISTRY:
        _load_entry_points()
    if name not in _REGISTRY:
        raise _unknown_name("encoder", name, list(_REGISTRY))
    return _REGISTRY[name]


# --------------------------------------------------------------------------- tasks

TASK_ENTRY_POINT_GROUP = "benchbarcode.tasks"
LABEL_RANKS = ("species", "genus", "bin")


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

    def __post_init__(self):
        if self.label_rank not in LABEL_RANKS:
            raise ValueError(f"task {self.name!r}: label_rank must be one of {LABEL_RANKS}")
        if self.main_score not in self.metrics:
            raise ValueError(f"task {self.name!r}: main_score {self.main_score!r} is not a metric")

    def to_dict(self) -> dict:
        return asdict(self)


class Task(abc.ABC):
    """Base class of tasks: ``meta`` plus ``evaluate``. A task sees embeddings and labels only."""

    meta: TaskMeta

    @abc.abstractmethod
    def evaluate(self, embeddings: Mapping[str, np.ndarray], labels: Mapping[str, pd.DataFrame], *,
                 seed: int = 0, device: str = "cpu", progress: bool = False) -> dict:
        """Score the embeddings of ``meta.splits``.

        ``embeddings[split]`` is float32 ``[N, D]``; ``labels[split]`` a DataFrame with columns
        processid, genus, species, bin (strings; missing values NA/None/NaN), in the same row
        order. Returns ``{"scores": {metric: float}, "scores_std": {metric: float}`` (only the
        metrics repeated over seeds), ``"seeds": [int, ...], "counts": {name: int}}``; a task may
        add further keys (e.g. ``"selected"``: what model selection chose).
        """

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
        missing = (column.isna() | (column.astype(str).str.strip() == "")).to_numpy(dtype=bool)
        y = np.asarray(column.astype(str).to_numpy(), dtype=str)  # fixed-width: fast unique/isin
        dropped = int(missing.sum())
        if dropped:
            x, y = x[~missing], y[~missing]
        classes = len(np.unique(y))
        if classes < min_classes:
            raise UserError(f"{where}: {classes} {rank} class(es) after dropping {dropped} rows "
                            f"without a {rank}; at least {min_classes} needed")
        return x, y, dropped


@dataclass(frozen=True)
class TaskEntry:
    """One registered task name; ``create()`` instantiates the task class."""

    name: str
    cls: type
    origin: str = "built-in"

    @property
    def meta(self) -> TaskMeta:
        return self.cls.meta

    @property
    def description(self) -> str:
        return self.cls.meta.description

    def create(self) -> Task:
        return self.cls()


_TASKS: dict[str, TaskEntry] = {}


def _is_task_class(obj: Any) -> bool:
    """Whether ``obj`` is a Task subclass carrying a TaskMeta."""
    return (isinstance(obj, type) and issubclass(obj, Task)
            and isinstance(getattr(obj, "meta", None), TaskMeta))


def _add_task(cls: type, origin: str) -> None:
    if not _is_task_class(cls):
        raise TypeError(f"{cls!r} is not a Task subclass with a TaskMeta in .meta")
    name = cls.meta.name
    if name in _TASKS and _TASKS[name].cls is not cls:
        raise ValueError(f"task {name!r} is registered twice")
    _TASKS[name] = TaskEntry(name, cls, origin)


def register_task(cls):
    """Class decorator registering Task subclass ``cls`` under ``cls.meta.name``.

    The class is instantiated lazily (``cls()``) by :func:`get_task`. Registering a different
    class under a name already taken raises ValueError.
    """
    _add_task(cls, _current_origin.get("origin", "built-in"))
    return cls


def _load_task_builtins() -> None:
    if not _loaded["task_builtins"]:
        _loaded["task_builtins"] = True
        importlib.import_module("benchbarcode.tasks")


def _load_task_entry_points() -> None:
    if _loaded["task_entry_points"]:
        return
    _loaded["task_entry_points"] = True

    def adopt(name: str, obj: Any, origin: str) -> None:
        if _is_task_class(obj):
            if obj.meta.name != name:
                raise UserError(f"task plugin {name!r} declares a task named {obj.meta.name!r}; "
                                "the entry-point name must match")
            _add_task(obj, origin)
        else:
            raise UserError(f"task plugin {name!r} is neither a Task subclass nor a module "
                            f"registering a task named {name!r}")

    _load_plugins(TASK_ENTRY_POINT_GROUP, "task", _TASKS, adopt)


def list_tasks() -> list[TaskEntry]:
    """All tasks: built-ins first, then entry points; sorted by name within each."""
    _load_task_builtins()
    _load_task_entry_points()
    return sorted(_TASKS.values(), key=lambda e: (e.origin != "built-in", e.name))


def get_task(name: str) -> Task:
    """A new instance of task ``name``; unknown names raise a UserError listing the closest matches."""
    _load_task_builtins()
    if name not in _TASKS:
        _load_task_entry_points()
    if name not in _TASKS:
        raise _unknown_name("task", name, list(_TASKS))
    return _TASKS[name].create()
