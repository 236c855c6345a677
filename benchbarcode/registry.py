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
``evaluate(embeddings, labels, ...) -> TaskOutcome``: it sees embeddings and labels, never an
encoder. The contract types live in :mod:`benchbarcode.contracts` (re-exported here and, for
plugins, by :mod:`benchbarcode.api`).

A plugin that fails to import does not break the suite: the listing marks it broken with its
error (:meth:`Registry.broken`), and only asking for it by name raises that error.
"""

from __future__ import annotations

import dataclasses
import difflib
import importlib
from collections.abc import Callable
from dataclasses import dataclass
from importlib.metadata import entry_points
from typing import Any, Generic, TypeVar

from benchbarcode.contracts import (LABEL_RANKS, Encoder, EncoderMeta, Similarity, Task, TaskMeta,  # noqa: F401
                                    TaskOutcome, is_embedding)
from benchbarcode.errors import UserError

BUILT_IN = "built-in"


# --------------------------------------------------------------------------- one registry class
E = TypeVar("E")


class Registry(Generic[E]):
    """Named entries of one kind: built-ins from a package, plugins from an entry-point group.

    ``adopt(name, loaded_object, origin)`` turns an entry point that did not register itself
    into an entry. A plugin that fails to load is kept aside with its error (:meth:`broken`):
    the other entries stay usable, and only :meth:`get` of its name raises that error.
    """

    def __init__(self, kind: str, group: str, builtins: str, adopt: Callable[[str, Any, str], E]):
        self.kind, self.group, self.builtins = kind, group, builtins
        self._adopt = adopt
        self._entries: dict[str, E] = {}
        self._broken: dict[str, str] = {}  # plugin name -> its one-line error
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
        """The entry of ``name``; a broken plugin raises its load error, an unknown name a
        UserError listing the closest matches."""
        self._load_builtins()
        if name not in self._entries:
            self._load_plugins()
        if name in self._broken:
            raise UserError(self._broken[name])
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

    def broken(self) -> dict[str, str]:
        """``{name: error}`` of the plugins that failed to load (after loading them all)."""
        self.all()
        return dict(self._broken)

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
                if ep.name not in self._entries:
                    self._entries[ep.name] = self._adopt(ep.name, obj, self._loading)
            except Exception as exc:  # a broken plugin must not break the suite: kept aside
                text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
                what = text if isinstance(exc, UserError) else f"{type(exc).__name__}: {text}"
                self._broken[ep.name] = f"{self.kind} plugin {ep.name!r} ({ep.value}) failed to load: {what}"
            finally:
                self._loading = None


# --------------------------------------------------------------------------- encoders
def control_of(meta: dict) -> tuple[str, dict] | None:
    """The control an encoder declares (``EncoderMeta.control``, from its record in a result or
    ``meta.to_dict()``) as ``(encoder name, options)``, of the same pretraining preset when the
    encoder records one; None when it declares none. The options the declaration's ``carry`` names
    take the encoder's own value (None where it has none: the factory's default), so that e.g.
    ``cnn features=reference`` is compared with ``cnn-init features=reference``."""
    control = meta.get("control")
    if not control:
        return None
    options = dict(control.get("options", {}))
    own = meta.get("options") or {}
    options.update({name: own.get(name) for name in control.get("carry", ())})
    preset = (meta.get("checkpoint") or {}).get("preset")
    if preset is not None:
        options.setdefault("preset", preset)
    return control["encoder"], options


#: options the pipeline passes that are not part of an encoder's identity (the device does not
#: change the vectors; a checkpoint is identified by its hash in ``meta.checkpoint``, an initial
#: architecture by the preset and seed the encoder records there)
PIPELINE_OPTIONS = ("device", "checkpoint", "initial_preset", "initial_seed")
_DECLARED = ("name",)  # fields an instance may not restate


@dataclass(frozen=True)
class EncoderEntry:
    """One registered encoder: its declared record, its factory and where it comes from.

    ``argument`` names the factory parameter that a ``NAME:VALUE`` spelling fills (``hf:MODEL``).
    ``parameters`` counts the parameters of the default configuration for listings.
    ``trainer`` trains the encoder on labelled sequences (a supervised baseline): called as
    ``trainer(sequences, labels, directory, *, seed, device, progress)``, with a ``recipe`` dict
    (what sets the weights besides data and seed) and, optionally, ``for_options(options)`` giving
    the trainer for the encoder's options (:class:`benchbarcode.supervised.Trainer`). Like
    ``parameters`` it is a callable, not part of the frozen record.
    """

    meta: EncoderMeta
    factory: Callable[..., Any]
    origin: str = BUILT_IN
    parameters: Callable[[], int | None] | None = None
    argument: str | None = None
    trainer: Callable[..., None] | None = None

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


def register_encoder(name: str, *, description: str, family: str = "third-party",
                     objective: str = "unknown", parameters: Callable[[], int | None] | None = None,
                     argument: str | None = None, origin: str | None = None,
                     trainer: Callable[..., None] | None = None, **fields: Any):
    """Declare encoder ``name`` once; the decorated class or function is its factory.

    ``fields`` are further :class:`EncoderMeta` fields (traits such as ``pretrainable``,
    ``seeded``, ``control``; architecture facts that hold for every instance). ``parameters``
    counts the default configuration's parameters lazily, for ``benchbarcode encoders``.
    ``argument`` lets ``NAME:VALUE`` fill that factory parameter (``hf:MODEL``). ``origin`` says
    where the declaration comes from when it is not simply built-in or a plugin (e.g. a preset).
    ``trainer`` trains it on the train split's labels when ``run`` has no checkpoint for it
    (see :class:`EncoderEntry`).
    """
    meta = EncoderMeta(name=name, family=family, objective=objective, description=description, **fields)

    def decorate(factory):
        where = ENCODERS.origin() if origin is None or ENCODERS.origin() != BUILT_IN else origin
        ENCODERS.add(name, EncoderEntry(meta, factory, where, parameters, argument, trainer),
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
