"""An encoder named by the user, resolved once (cf. timm's ``create_model``: parse once, pass the
object).

:class:`EncoderSpec` is what a command says: a name, a checkpoint, options, the pretraining preset
and steps, the seed, the device and dtype. :func:`resolve_encoder` looks the name up in the
registry (the only lookup a command makes for it), checks the options against the factory's
signature and, for an in-house encoder without a checkpoint, fixes the pretraining recipe. Every
pipeline (``run``, ``embed``, ``profile``, ``--with-control``, ``experiments/``) takes the
:class:`ResolvedEncoder` and asks it, never the registry again: its similarity, its control, where
its pretraining is cached, and for the encoder itself (:meth:`ResolvedEncoder.create`).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import numbers
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

from benchbarcode.canonical import digest
from benchbarcode.contracts import Encoder, EncoderMeta, Similarity
from benchbarcode.errors import UserError
from benchbarcode.registry import EncoderEntry, get_encoder

PRETRAINED_FORMAT = 1  # the layout of a cached pretraining's identity (its directory name)


@dataclass(frozen=True)
class EncoderSpec:
    """An encoder as a command names it; nothing is looked up or checked here."""

    name: str
    checkpoint: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)  # passed to the factory (KEY=VALUE)
    preset: str = "tiny"  # in-house encoders without a checkpoint are pretrained with this preset
    steps: int | None = None  # ... for this many steps instead of the preset's (an equal, stated budget)
    seed: int = 0
    device: str = "auto"
    dtype: str | None = None  # given to a factory that takes one (an encoder that does not says so)

    def factory_options(self) -> dict:
        """What the factory is called with, besides ``device`` (and ``seed`` for a seeded encoder)."""
        options = dict(self.options)
        if self.dtype is not None:
            options["dtype"] = self.dtype
        if self.checkpoint is not None:
            options["checkpoint"] = self.checkpoint
        return options


@dataclass(frozen=True)
class ResolvedEncoder:
    """An :class:`EncoderSpec` after its one registry lookup: its entry, checked options and, when
    ``run`` pretrains it first, the recipe (``None`` otherwise)."""

    spec: EncoderSpec
    entry: EncoderEntry
    recipe: Any = None  # benchbarcode.models.presets.Preset

    @property
    def name(self) -> str:
        return self.entry.name

    @property
    def meta(self) -> EncoderMeta:
        """The declared record (an instance completes it: :attr:`Encoder.meta`)."""
        return self.entry.meta

    @property
    def similarity(self) -> Similarity:
        return Similarity.of(self.entry.meta.similarity)

    @property
    def pretrained_first(self) -> bool:
        """Whether ``run`` pretrains or trains it (cached) before evaluating: in-house, or an
        entry with a trainer (a supervised baseline), given no checkpoint."""
        return self.recipe is not None or (self.entry.trainer is not None and self.spec.checkpoint is None)

    @property
    def trainer(self):
        """The entry's trainer for this spec's options (``epochs=1`` shortens its recipe), or None."""
        trainer = self.entry.trainer
        if trainer is None or not hasattr(trainer, "for_options"):
            return trainer
        return trainer.for_options(self.spec.options)

    def with_seed(self, seed: int) -> "ResolvedEncoder":
        """The same encoder at another seed (no lookup)."""
        return dataclasses.replace(self, spec=dataclasses.replace(self.spec, seed=seed))

    def with_options(self, **options: Any) -> "ResolvedEncoder":
        """The same entry with further options, checked against its factory (no lookup)."""
        spec = dataclasses.replace(self.spec, options={**self.spec.options, **options})
        accepted_options(self.entry, spec.factory_options())
        return dataclasses.replace(self, spec=spec)

    def control(self) -> EncoderSpec | None:
        """The spec of the control this encoder declares (same seed, device and preset), or None."""
        declared = self.entry.meta.control
        if not declared:
            return None
        return EncoderSpec(name=declared["encoder"], options=dict(declared.get("options", {})),
                           seed=self.spec.seed, device=self.spec.device, preset=self.spec.preset)

    def pretraining_key(self, data_hash: str, device: str) -> str:
        """The name of its cached pretraining: everything that sets its weights (recipe, seed,
        data, device type). Result files record it (:mod:`benchbarcode.store`). A trained entry's
        recipe is its trainer's; it has no preset (the in-house keys are unchanged)."""
        if self.recipe is None and self.entry.trainer is not None:
            identity = {"format": PRETRAINED_FORMAT, "encoder": self.name, "objective": self.meta.objective,
                        "trainer": getattr(self.trainer, "recipe", None), "seed": self.spec.seed,
                        "data": data_hash, "device_type": device.split(":")[0]}
            return f"{self.name}-{digest(identity, 16)}"
        identity = {"format": PRETRAINED_FORMAT, "encoder": self.name, "objective": self.meta.objective,
                    "preset": self.spec.preset, "recipe": self.recipe.to_dict(), "seed": self.spec.seed,
                    "data": data_hash, "device_type": device.split(":")[0]}
        return f"{self.name}-{self.spec.preset}-{digest(identity, 16)}"

    def create(self, device: str, checkpoint: str | Path | None = None, **extra: Any) -> Encoder:
        """The encoder on ``device`` (a resolved device), from ``checkpoint`` when given (e.g. the
        directory ``run`` pretrained into); ``extra`` options are checked like the others."""
        options = {**self.spec.factory_options(), "device": device, **extra}
        if self.entry.meta.seeded:
            options.setdefault("seed", self.spec.seed)
        if checkpoint is not None:
            options["checkpoint"] = str(checkpoint)
        return self.entry.create(**accepted_options(self.entry, options))


def check_seed(seed: Any, flag: str = "--seed") -> None:
    """A seed is an integer >= 0 (a run id ``seed-1`` would read as seed 1, and numpy refuses it)."""
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral):
        raise UserError(f"{flag} {seed!r} is not an integer; a seed is an integer >= 0")
    if seed < 0:
        raise UserError(f"{flag} {seed} is negative; a seed is an integer >= 0")


def check_checkpoint(checkpoint: str | None) -> None:
    """``--checkpoint`` names a file or directory that exists (checked before anything heavy is
    imported; what it holds is the factory's to read)."""
    if checkpoint is not None and not Path(checkpoint).expanduser().exists():
        raise UserError(f"--checkpoint {checkpoint}: no such file or directory")


def resolve_encoder(spec: EncoderSpec) -> ResolvedEncoder:
    """``spec`` resolved: its seed, checkpoint path and device checked, the one registry lookup,
    its options checked against the factory, and the pretraining recipe of an in-house encoder
    without a checkpoint (``--steps`` >= 1)."""
    from benchbarcode.runtime import check_device

    check_seed(spec.seed)
    check_checkpoint(spec.checkpoint)
    entry = get_encoder(spec.name)
    accepted_options(entry, spec.factory_options())
    recipe = None
    if spec.checkpoint is None and entry.meta.pretrainable:
        from benchbarcode.models.presets import get_preset

        if spec.steps is not None and spec.steps < 1:
            raise UserError("--steps must be >= 1")
        recipe = get_preset(entry.meta.objective, spec.preset).with_overrides(steps=spec.steps)
    check_device(spec.device)  # last: --device cuda imports torch
    return ResolvedEncoder(spec, entry, recipe)


# ----------------------------------------------------------------------------- option checks
# What the option annotations of a factory promise; a value of another kind is refused before any
# work. Annotations are strings (``from __future__ import annotations``); others are not checked.
_EXPECTED = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def accepted_options(entry: EncoderEntry, options: Mapping[str, Any]) -> dict:
    """``options`` as the factory takes them: ``device`` is dropped for a factory that does not
    take it (a third-party encoder may manage its own device); any other unknown option, or a
    value of another kind than its annotation says, is a UserError."""
    params = inspect.signature(entry.factory).parameters
    options = dict(options)
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        if "device" not in params:
            options.pop("device", None)
        unknown = sorted(set(options) - set(params))
        if unknown:
            raise UserError(f"encoder {entry.name!r} does not take option(s) {', '.join(unknown)}")
    checked = {}
    for name, value in options.items():
        kind = _kind(params[name].annotation) if name in params else None
        if kind == "str" and isinstance(value, (int, float)) and not isinstance(value, bool):
            value = json.dumps(value)  # `revision=123` was read as JSON: the factory wants its text
        if kind is not None and value is not None and not _fits(kind, value):
            shown = value if isinstance(value, str) else json.dumps(value)
            raise UserError(f"encoder {entry.name!r} option {name}={shown}: expected {_EXPECTED[kind]}")
        checked[name] = value
    return checked


def _kind(annotation) -> str | None:
    """``'int | None'`` -> ``'int'``; ``None`` for annotations this check does not read."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    kinds = [part.strip() for part in text.split("|") if part.strip() != "None"]
    return kinds[0] if len(kinds) == 1 and kinds[0] in _EXPECTED else None


def _fits(kind: str, value) -> bool:
    if kind == "bool" or isinstance(value, bool):
        return kind == "bool" and isinstance(value, bool)
    return isinstance(value, {"int": int, "float": (int, float), "str": str}[kind])
