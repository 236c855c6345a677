"""Encoder registry: built-ins declare themselves with :func:`register_encoder`; third-party
encoders are discovered lazily from the entry-point group ``benchbarcode.encoders``.

An encoder is an object with a :class:`EncoderMeta` record in ``.meta`` and
``embed(sequences: list[str], batch_size=...) -> np.ndarray`` (float32, ``[N, D]``).

A third-party package declares ``[project.entry-points."benchbarcode.encoders"]
myenc = "mypkg.module:factory"``; ``factory(**options)`` returns such an object. If the module
itself calls :func:`register_encoder`, loading it is enough.
"""

from __future__ import annotations

import abc
import difflib
import importlib
from dataclasses import asdict, dataclass, field
from importlib.metadata import entry_points
from typing import Any, Callable

import numpy as np

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
_loaded = {"builtins": False, "entry_points": False}


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


def _load_entry_points() -> None:
    if _loaded["entry_points"]:
        return
    _loaded["entry_points"] = True
    for ep in entry_points(group=ENTRY_POINT_GROUP):
        if ep.name in _REGISTRY:
            continue
        dist = getattr(ep, "dist", None)
        _current_origin["origin"] = f"entry point ({dist.name if dist else ep.value})"
        try:
            obj = ep.load()
        except Exception as exc:  # a broken plugin must not break the suite
            raise UserError(f"encoder plugin {ep.name!r} ({ep.value}) failed to load: {exc}") from None
        finally:
            _current_origin.clear()
        if ep.name not in _REGISTRY:  # a bare factory: describe it from its attributes
            doc = (getattr(obj, "__doc__", None) or "").strip()
            _REGISTRY[ep.name] = EncoderEntry(
                ep.name, obj, getattr(obj, "family", "third-party"),
                getattr(obj, "objective", "unknown"), doc.splitlines()[0] if doc else "",
                origin=f"entry point ({dist.name if dist else ep.value})")


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
        close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.4)
        hint = f"; did you mean {', '.join(close)}?" if close else ""
        raise UserError(f"unknown encoder {name!r}{hint} (see: benchbarcode encoders)")
    return _REGISTRY[name]
