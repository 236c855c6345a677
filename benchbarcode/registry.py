"""Encoder and task registries: one :class:`Registry` class, instantiated twice.

Built-ins declare themselves with :func:`register_encoder` / :func:`register_task` when their
package (``benchbarcode.encoders`` / ``benchbarcode.tasks``) is imported; third-party ones are
discovered lazily from the entry-point groups ``benchbarcode.encoders`` / ``benchbarcode.tasks``.

**An encoder is declared once.** ``register_encoder(name, description=..., family=...,
objective=..., **traits)`` builds the encoder's :class:`EncoderMeta` (cf. MTEB's ``ModelMeta``);
the decorated object is its factory. ``get_encoder(name).create(**options)`` calls the factory
and completes that record with what only the instance knows (its ``describe()``: dimensions,
checkpoint hash, budget...) and the options it was created with. Results quote the completed
record, and :meth:`EncoderMeta.identity` (what changes a vector) names both the run and the
embedding-cache entry. An encoder is an object with ``embed(sequences, batch_size=...,
progress=...) -> np.ndarray`` (float32, ``[N, D]``) and, optionally, ``describe() -> dict``.

A third-party package declares ``[project.entry-points."benchbarcode.encoders"]
myenc = "mypkg.module:MyEncoder"``; the module may call :func:`register_encoder` itself (then
loading it is enough), or the object is adopted with a record built from its docstring and its
``family`` / ``objective`` attributes.

A task is a :class:`Task` subclass with a :class:`TaskMeta` record in ``.meta`` and
``evaluate(embeddings, labels, ...)``: it sees embeddings and labels, never an encoder.
"""

from __future__ import annotations

import abc
import dataclasses
import difflib
import importlib
from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

import numpy as np
import pandas as pd

from benchbarcode.canonical import plain
from benchbarcode.errors import UserError

BUILT_IN = "built-in"


# --------------------------------------------------------------------------- one registry class
E = TypeVar("E")


class Registry(Generic[E]):
    """Named entries of one kind: built-ins from a package, plugins from an entry-point group.

    ``adopt(name, loaded_object, origin)`` turns an entry point that did not register itself
    into an entry. Loading a plugin that fails is a UserError naming it.
    """

    def __init__(self, kind: str, group: str, builtins: str, adopt: Callable[[str, Any, str], E]):
        self.kind, self.group, self.builtins = kind, group, builtins
        self._adopt = adopt
        self._entries: dict[str, E] = {}
        self._builtins_loaded = self._plugins_loaded = False
        self._loading: str | None = None  # origin of the plugin being imported

    def origin(self) -> str:
        """The origin of an entry registered now: the plugin being loaded, else built-in."""
        return self._loading or BUILT_IN

    def add(self, name: str, entry: E, same: Callable[[E, E], bool]) -> None:
        old = self._entries.get(name)
        if old is not None and not same(old, entry):
            raise ValueError(f"{self.kind} {name!r} is registered twice")
        self._entries[name] = entry

    def get(self, name: str) -> E:
        """The entry of ``name``; unknown names raise a UserError listing the closest matches."""
        self._load_builtins()
        if name not in self._entries:
            self._load_plugins()
        if name not in self._entries:
            known = sorted(getattr(entry, "display", n) for n, entry in self._entries.items())
            close = difflib.get_close_matches(name, known, n=3, cutoff=0.6)
            hint = f"; did you mean {', '.join(close)}?" if close else f"; known: {', '.join(known)}"
            raise UserError(f"unknown {self.kind} {name!r}{hint} (see: benchbarcode {self.kind}s)")
        return self._entries[name]

    def all(self, plugins: bool = True) -> list[E]:
        """Every entry, built-ins first (then plugins unless ``plugins=False``), by name."""
        self._load_builtins()
        if plugins:
            self._load_plugins()
        return [self._entries[n] for n in sorted(self._entries, key=lambda n: (
            getattr(self._entries[n], "origin", BUILT_IN) != BUILT_IN, n))]

    def _load_builtins(self) -> None:
        if not self._builtins_loaded:
            self._builtins_loaded = True
            importlib.import_module(self.builtins)

    def _load_plugins(self) -> None:
        if self._plugins_loaded:
            return
        self._plugins_loaded = True
        for ep in entry_points(group=self.group):
            if ep.name in self._entries:
                continue
            dist = getattr(ep, "dist", None)
            self._loading = f"plugin {dist.name} {dist.version}" if dist else f"plugin ({ep.value})"
            try:
                obj = ep.load()
            except Exception as exc:  # a broken plugin must not break the suite
                raise UserError(f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from None
            try:
                if ep.name not in self._entries:
                    self._entries[ep.name] = self._adopt(ep.name, obj, self._loading)
            finally:
                self._loading = None


# --------------------------------------------------------------------------- encoders
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
    checkpoint: dict = field(default_factory=dict)  # identity of the weights: sha256 / revision, preset, seed; path
    budget: dict = field(default_factory=dict)  # pretraining budget (steps, tokens, FLOPs...)
    loader: dict = field(default_factory=dict)  # how an adapter loaded it (classes, policies, fixes)
    # traits the pipeline reads instead of names
    pretrainable: bool = False  # `benchbarcode pretrain` builds it (objective names the loop's objective)
    seeded: bool = False  # its weights depend on the run's --seed (e.g. random initialisation)
    control: dict | None = None  # the encoder that tells whether its training bought anything
    #: how tasks compare its rows: "cosine" (an embedding) or another search of
    #: :data:`benchbarcode.neighbours.SIMILARITIES` (e.g. "alignment": rows are nucleotide codes)
    similarity: str = "cosine"

    #: fields that do not change a vector (descriptions, derived counts, traits), left out of identity()
    NOT_IDENTITY = ("family", "description", "parameters", "embedding_dim", "budget",
                    "pretrainable", "seeded", "control", "similarity")

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


def control_of(meta: dict) -> tuple[str, dict] | None:
    """The control an encoder declares (``EncoderMeta.control``, from its record in a result or
    ``meta.to_dict()``) as ``(encoder name, options)``, of the same pretraining preset when the
    encoder records one; None when it declares none."""
    control = meta.get("control")
    if not control:
        return None
    options = dict(control.get("options", {}))
    preset = (meta.get("checkpoint") or {}).get("preset")
    if preset is not None:
        options.setdefault("preset", preset)
    return control["encoder"], options


#: options the pipeline passes that are not part of an encoder's identity (the device does not
#: change the vectors; a checkpoint is identified by its hash in ``meta.checkpoint``)
PIPELINE_OPTIONS = ("device", "checkpoint")
_DECLARED = ("name",)  # fields an instance may not restate


@dataclass(frozen=True)
class EncoderEntry:
    """One registered encoder: its declared record, its factory and where it comes from.

    ``argument`` names the factory parameter that a ``NAME:VALUE`` spelling fills (``hf:MODEL``).
    ``parameters`` counts the parameters of the default configuration for listings.
    """

    meta: EncoderMeta
    factory: Callable[..., Any]
    origin: str = BUILT_IN
    parameters: Callable[[], int | None] | None = None
    argument: str | None = None

    @property
    def name(self) -> str:
        return self.meta.name

    @property
    def description(self) -> str:
        return self.meta.description

    @property
    def display(self) -> str:
        """The name as a user types it (``hf:MODEL`` for an encoder taking an argument)."""
        return self.name + (f":{self.argument.upper()}" if self.argument else "")

    def default_parameters(self) -> int | None:
        return self.parameters() if self.parameters else self.meta.parameters

    def bind(self, value: str) -> "EncoderEntry":
        """The entry for ``NAME:VALUE``: the factory's ``argument`` set to ``value``."""
        if not value:
            raise UserError(f"encoder {self.name}:VALUE needs a value (e.g. {self.name}:{self.argument.upper()})")

        def factory(**options):
            return self.factory(**{self.argument: value}, **options)

        factory.__signature__ = _without(self.factory, self.argument)
        return dataclasses.replace(self, meta=dataclasses.replace(self.meta, name=f"{self.name}:{value}"),
                                   factory=factory, argument=None)

    def create(self, **options: Any) -> Any:
        """Call the factory with ``options`` and complete the declared record for the instance."""
        encoder = self.factory(**options)
        if not callable(getattr(encoder, "embed", None)):
            raise UserError(f"encoder {self.name!r}: its factory returned a {type(encoder).__name__}, "
                            "which has no embed(sequences) method")
        details: dict = {}
        own = getattr(encoder, "meta", None)  # an encoder may still carry a full record of its own
        if isinstance(own, EncoderMeta):
            defaults = EncoderMeta(name=own.name)
            details = {f.name: getattr(own, f.name) for f in dataclasses.fields(own)
                       if getattr(own, f.name) != getattr(defaults, f.name)}
        describe = getattr(encoder, "describe", None)
        if callable(describe):
            details.update(describe() or {})
        unknown = sorted(set(details) - {f.name for f in dataclasses.fields(EncoderMeta)})
        if unknown:
            raise UserError(f"encoder {self.name!r}: describe() returned unknown field(s) {', '.join(unknown)}")
        got = details.get("objective")
        if got is not None and self.meta.objective != "unknown" and got != self.meta.objective:
            where = details.get("checkpoint", {}).get("path", "its weights")
            raise UserError(f"{where}: holds an encoder of objective {got}, not {self.name} ({self.meta.objective})")
        own_options = details.pop("options", {})
        details = {k: v for k, v in details.items() if k not in _DECLARED}
        recorded = {k: v for k, v in options.items() if k not in PIPELINE_OPTIONS}
        encoder.meta = dataclasses.replace(self.meta, **details, options={**own_options, **recorded})
        return encoder


def _without(func: Callable, parameter: str | None):
    import inspect

    sig = inspect.signature(func)
    return sig.replace(parameters=[p for n, p in sig.parameters.items() if n != parameter])


def _adopt_encoder(name: str, obj: Any, origin: str) -> EncoderEntry:
    """An entry point that did not register itself: describe it from its attributes."""
    doc = (getattr(obj, "__doc__", None) or "").strip()
    meta = EncoderMeta(name=name, family=getattr(obj, "family", "third-party"),
                       objective=getattr(obj, "objective", "unknown"),
                       description=doc.splitlines()[0] if doc else "")
    return EncoderEntry(meta, obj, origin)


ENCODERS: Registry[EncoderEntry] = Registry("encoder", "benchbarcode.encoders", "benchbarcode.encoders",
                                            _adopt_encoder)
ENTRY_POINT_GROUP = ENCODERS.group


def register_encoder(name: str, *, description: str, family: str = "third-party",
                     objective: str = "unknown", parameters: Callable[[], int | None] | None = None,
                     argument: str | None = None, origin: str | None = None, **fields: Any):
    """Declare encoder ``name`` once; the decorated class or function is its factory.

    ``fields`` are further :class:`EncoderMeta` fields (traits such as ``pretrainable``,
    ``seeded``, ``control``; architecture facts that hold for every instance). ``parameters``
    counts the default configuration's parameters lazily, for ``benchbarcode encoders``.
    ``argument`` lets ``NAME:VALUE`` fill that factory parameter (``hf:MODEL``). ``origin`` says
    where the declaration comes from when it is not simply built-in or a plugin (e.g. a preset).
    """
    meta = EncoderMeta(name=name, family=family, objective=objective, description=description, **fields)

    def decorate(factory):
        where = ENCODERS.origin() if origin is None or ENCODERS.origin() != BUILT_IN else origin
        ENCODERS.add(name, EncoderEntry(meta, factory, where, parameters, argument),
                     same=lambda old, new: old.factory is new.factory)
        return factory

    return decorate


def get_encoder(name: str) -> EncoderEntry:
    """The entry of ``name`` (``NAME:VALUE`` for an encoder that takes an argument, e.g.
    ``hf:zhihan1996/DNABERT-2-117M``); unknown names raise a UserError with the closest matches."""
    base, sep, value = name.partition(":")
    if sep:
        entry = ENCODERS.get(base)
        if entry.argument is None:
            raise UserError(f"encoder {base!r} takes no ':VALUE' (in {name!r})")
        return entry.bind(value)
    return ENCODERS.get(name)


def list_encoders(plugins: bool = True) -> list[EncoderEntry]:
    return ENCODERS.all(plugins)


# --------------------------------------------------------------------------- tasks
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

    @abc.abstractmethod
    def evaluate(self, embeddings: Mapping[str, np.ndarray], labels: Mapping[str, pd.DataFrame], *,
                 seed: int = 0, device: str = "cpu", progress: bool = False) -> dict:
        """Score the embeddings of ``meta.splits``.

        ``embeddings[split]`` is float32 ``[N, D]``; ``labels[split]`` a DataFrame with columns
        processid, genus, species, bin (strings; missing values NA/None/NaN), in the same row
        order. Returns ``{"scores": {metric: float}, "scores_std": {metric: float}`` (only the
        metrics repeated over seeds), ``"seeds": [int, ...], "counts": {name: int}}``; a task may
        add further keys (e.g. ``"selected"``: what model selection chose). A task that cannot give
        a meaningful number for these inputs returns ``"unscored": REASON`` (and empty scores): the
        result file then says why instead of holding a number.
        """

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
        return None

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
    origin: str = BUILT_IN

    @property
    def meta(self) -> TaskMeta:
        return self.cls.meta

    @property
    def description(self) -> str:
        return self.cls.meta.description

    def create(self) -> Task:
        return self.cls()


def _is_task_class(obj: Any) -> bool:
    """Whether ``obj`` is a Task subclass carrying a TaskMeta."""
    return (isinstance(obj, type) and issubclass(obj, Task)
            and isinstance(getattr(obj, "meta", None), TaskMeta))


def _task_entry(cls: Any, origin: str) -> TaskEntry:
    if not _is_task_class(cls):
        raise TypeError(f"{cls!r} is not a Task subclass with a TaskMeta in .meta")
    return TaskEntry(cls.meta.name, cls, origin)


def _adopt_task(name: str, obj: Any, origin: str) -> TaskEntry:
    if not _is_task_class(obj):
        raise UserError(f"task plugin {name!r} is neither a Task subclass nor a module "
                        f"registering a task named {name!r}")
    if obj.meta.name != name:
        raise UserError(f"task plugin {name!r} declares a task named {obj.meta.name!r}; "
                        "the entry-point name must match")
    return _task_entry(obj, origin)


TASKS: Registry[TaskEntry] = Registry("task", "benchbarcode.tasks", "benchbarcode.tasks", _adopt_task)
TASK_ENTRY_POINT_GROUP = TASKS.group


def register_task(cls):
    """Class decorator registering Task subclass ``cls`` under ``cls.meta.name``.

    The class is instantiated lazily (``cls()``) by :func:`get_task`. Registering a different
    class under a name already taken raises ValueError.
    """
    entry = _task_entry(cls, TASKS.origin())
    TASKS.add(entry.name, entry, same=lambda old, new: old.cls is new.cls)
    return cls


def list_tasks() -> list[TaskEntry]:
    """All tasks: built-ins first, then entry points; sorted by name within each."""
    return TASKS.all()


def get_task(name: str) -> Task:
    """A new instance of task ``name``; unknown names raise a UserError listing the closest matches."""
    return TASKS.get(name).create()
