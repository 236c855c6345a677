"""The pipeline behind ``benchbarcode run``: encoder -> embeddings (cached) -> tasks -> result files.

Nothing here prints; progress goes through tqdm (``progress``) and notes through the
``benchbarcode`` logger. Work survives interruption at every level: pretraining checkpoints and
resumes, embeddings are cached per split, each task's result is written atomically as soon as it
exists, and a re-run skips the results already on disk (unless ``overwrite``).
"""

from __future__ import annotations

import dataclasses
import inspect
import json
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchbarcode import checkpoints
from benchbarcode.canonical import digest
from benchbarcode.data.dataset import BarcodeDataset
from benchbarcode.embed import EmbeddingCache, cache_key_parts, embed_sequences
from benchbarcode.errors import UserError
from benchbarcode.fileio import cache_root
from benchbarcode.registry import (Encoder, EncoderEntry, EncoderMeta, Task, control_of, get_encoder, get_task,
                                   list_tasks)
from benchbarcode.results import build_result, read_result, write_result
from benchbarcode.runtime import Dist, init_distributed, resolve_device

log = logging.getLogger("benchbarcode")

LABELS = ["processid", "genus", "species", "bin"]
PRETRAINED_FORMAT = 1


@dataclass
class RunOptions:
    """Everything ``benchbarcode run`` takes besides the data set."""

    encoder: str
    checkpoint: str | None = None
    encoder_options: dict = field(default_factory=dict)
    preset: str = "tiny"  # in-house encoders without a checkpoint are pretrained with this preset
    steps: int | None = None  # ... for this many steps instead of the preset's (an equal, stated budget)
    tasks: list[str] | None = None  # None: every registered task
    results_dir: str = "results"
    device: str = "auto"
    seed: int = 0
    batch_size: int = 64
    limit: int | None = None  # at most this many records per evaluation split (random, seeded)
    overwrite: bool = False
    progress: bool = True
    cache_dir: str | None = None  # root of the caches (default: fileio.cache_root())
    use_cache: bool = True
    command: list[str] | None = None  # recorded in each result


@dataclass
class TaskOutcome:
    task: str
    status: str  # "done", "existing" (read from disk) or "skipped"
    result: dict | None = None
    path: Path | None = None
    reason: str | None = None


@dataclass
class RunReport:
    run_id: str
    encoder: dict
    directory: Path
    outcomes: list[TaskOutcome]
    timings_s: dict
    data: dict = field(default_factory=dict)  # the data set's identity, as in the result files


def select_tasks(names: list[str] | None) -> list[Task]:
    """The tasks to run (unknown names fail before any work starts)."""
    if names is None:
        return [entry.create() for entry in list_tasks()]
    return [get_task(name) for name in dict.fromkeys(names)]


# ----------------------------------------------------------------------------- encoders
def _accepted(entry: EncoderEntry, options: dict) -> dict:
    """``options`` as the factory takes them: ``device`` is dropped for a factory that does not
    take it (a third-party encoder may manage its own device); any other unknown option is an error."""
    params = inspect.signature(entry.factory).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        if "device" not in params:
            options = {k: v for k, v in options.items() if k != "device"}
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


# What the option annotations of a factory promise; a value of another kind is refused before any
# work. Annotations are strings (``from __future__ import annotations``); others are not checked.
_EXPECTED = {"int": "an integer", "float": "a number", "bool": "true or false", "str": "a string"}


def _kind(annotation) -> str | None:
    """``'int | None'`` -> ``'int'``; ``None`` for annotations this check does not read."""
    text = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", "")
    kinds = [part.strip() for part in text.split("|") if part.strip() != "None"]
    return kinds[0] if len(kinds) == 1 and kinds[0] in _EXPECTED else None


def _fits(kind: str, value) -> bool:
    if kind == "bool" or isinstance(value, bool):
        return kind == "bool" and isinstance(value, bool)
    return isinstance(value, {"int": int, "float": (int, float), "str": str}[kind])


def create_encoder(entry: EncoderEntry, options: dict) -> Encoder:
    """``entry``'s encoder from ``options``, checked against its factory first (see ``_accepted``)."""
    return entry.create(**_accepted(entry, options))


def check_encoder_options(opts: RunOptions) -> None:
    """The encoder exists and takes the given options (checked before any work)."""
    entry = get_encoder(opts.encoder)
    options = dict(opts.encoder_options)
    if opts.checkpoint is not None:
        options["checkpoint"] = opts.checkpoint
    _accepted(entry, options)


def caches(opts: RunOptions) -> Path:
    """The root of the caches: ``opts.cache_dir``, else :func:`benchbarcode.fileio.cache_root`."""
    return Path(opts.cache_dir) if opts.cache_dir else cache_root()


def pretraining_recipe(entry: EncoderEntry, opts: RunOptions):
    """The preset ``run`` pretrains ``entry`` with: ``opts.preset``, with ``opts.steps`` if given."""
    from benchbarcode.models.presets import get_preset

    if opts.steps is not None and opts.steps < 1:
        raise UserError("--steps must be >= 1")
    return get_preset(entry.meta.objective, opts.preset).with_overrides(steps=opts.steps)


def pretrained_directory(entry: EncoderEntry, preset_name: str, preset, seed: int, ds: BarcodeDataset,
                         device: str, root: Path) -> Path:
    """Where the cached pretraining of ``entry`` on ``ds`` lives, named by everything that sets
    its weights (``preset``: the recipe, possibly with overridden steps)."""
    identity = {"format": PRETRAINED_FORMAT, "encoder": entry.name, "objective": entry.meta.objective,
                "preset": preset_name, "recipe": preset.to_dict(), "seed": seed,
                "data": ds.content_hash(), "device_type": device.split(":")[0]}
    return root / "pretrained" / f"{entry.name}-{preset_name}-{digest(identity, 16)}"


def load_encoder(opts: RunOptions, ds: BarcodeDataset, device: str) -> tuple[Encoder, float]:
    """The encoder to evaluate and the seconds this call spent pretraining it.

    An in-house encoder without ``checkpoint`` is pretrained with its preset's default budget on
    ``ds``'s pretraining corpus, once: the directory is cached by identity (recipe, seed, data,
    device type) and an interrupted pretraining resumes there. A cached encoder or unfinished run
    that does not read back (:class:`~benchbarcode.checkpoints.DamagedCheckpoint`) is pretrained
    again from the start, as a corrupt embedding is recomputed.
    """
    entry = get_encoder(opts.encoder)
    options = dict(opts.encoder_options)
    options.setdefault("device", device)
    if entry.meta.seeded:
        options.setdefault("seed", opts.seed)
    if opts.checkpoint is not None:
        options["checkpoint"] = opts.checkpoint
    if opts.checkpoint is not None or not entry.meta.pretrainable:
        return create_encoder(entry, options), 0.0
    recipe = pretraining_recipe(entry, opts)
    directory = pretrained_directory(entry, opts.preset, recipe, opts.seed, ds, device, caches(opts))
    options["checkpoint"] = str(directory)
    damaged = False
    if checkpoints.is_complete(directory):
        try:
            return create_encoder(entry, options), 0.0
        except checkpoints.DamagedCheckpoint as exc:
            log.warning("the cached pretraining does not read back (%s): pretraining again", exc)
            damaged = True
    started = time.perf_counter()
    _pretrain_into(directory, entry, recipe, opts, ds, device, clean=damaged)
    return create_encoder(entry, options), time.perf_counter() - started


def _pretrain_into(directory: Path, entry: EncoderEntry, recipe, opts: RunOptions, ds: BarcodeDataset,
                   device: str, clean: bool) -> None:
    """Pretrain ``entry`` into ``run``'s cache ``directory``: continue the unfinished run there,
    else (none, ``clean``, or one that does not read back) start clean."""
    from benchbarcode.pretrain import pretrain

    def train(**how) -> None:
        pretrain(entry.meta.objective, recipe, ds.pretraining_sequences(), directory, seed=opts.seed,
                 data_identity=ds.identity(), preset_name=opts.preset, encoder_name=entry.name,
                 device=device, progress=opts.progress, **how)

    log.info("pretraining %s (%s preset, %d steps) into %s", entry.name, opts.preset, recipe.steps, directory)
    try:
        resume = not clean and checkpoints.resumable_state(directory) is not None
        train(resume=resume, overwrite=not resume)
    except checkpoints.DamagedCheckpoint as exc:
        log.warning("the unfinished pretraining in the cache does not read back (%s): starting it again", exc)
        train(overwrite=True)


def safe_name(text: str) -> str:
    """``text`` as one path component: characters other than letters, digits, ``-_.`` become
    ``-`` (``hf:org/model`` -> ``hf-org-model``)."""
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in text)
    while "--" in name:
        name = name.replace("--", "-")
    return name.strip("-.") or "encoder"


def run_id_for(meta: EncoderMeta, ds: BarcodeDataset, opts: RunOptions) -> str:
    """A name for the run that is the same whenever the vectors and the task seeds are the same:
    the encoder's :meth:`~EncoderMeta.identity` (as in the embedding-cache key), data, seed, limit."""
    ident = {"encoder": meta.identity(), "data": ds.content_hash(), "seed": opts.seed, "limit": opts.limit}
    return f"{safe_name(ds.name)}-seed{opts.seed}{f'-limit{opts.limit}' if opts.limit else ''}-{digest(ident, 12)}"


# ----------------------------------------------------------------------------- data
def evaluation_split(ds: BarcodeDataset, split: str | None, limit: int | None, seed: int) -> pd.DataFrame:
    """The rows of ``split`` (every record for None; a seeded random subset of at most ``limit``,
    in table order)."""
    table = ds.table.reset_index(drop=True) if split is None else ds.split(split)
    if limit is not None and len(table) > limit:
        rows = np.sort(np.random.default_rng([seed, limit]).choice(len(table), limit, replace=False))
        table = table.iloc[rows].reset_index(drop=True)
    return table


def embed_split(encoder: Encoder, ds: BarcodeDataset, split: str | None, opts: RunOptions,
                dist: Dist | None = None) -> tuple[pd.DataFrame, np.ndarray, str]:
    """The rows of ``split`` (see :func:`evaluation_split`), their embeddings, and the cache state
    ("hit", "miss" or "off"); the cache key names the limit and seed when a subset is taken.
    Under torchrun (``dist``) the processes share the work (shards under the cache root)."""
    table = evaluation_split(ds, split, opts.limit, opts.seed)
    cache = EmbeddingCache(caches(opts) / "embeddings") if opts.use_cache else None
    name = "all records" if split is None else split
    label = name if opts.limit is None else f"{name}@limit={opts.limit},seed={opts.seed}"
    vectors, hit = embed_sequences(encoder, table["sequence"].tolist(),
                                   parts=cache_key_parts(encoder.meta, ds.content_hash(), label),
                                   cache=cache, batch_size=opts.batch_size, progress=opts.progress,
                                   dist=dist, shards=caches(opts) / "shards")
    return table, vectors, "hit" if hit else ("miss" if cache is not None else "off")


def label_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The labels a task sees of ``table``: processid, genus, species, bin (missing -> None)."""
    out = table[LABELS].astype(object)
    return out.where(out.notna(), None)


# ----------------------------------------------------------------------------- the run
def _already_done(opts: RunOptions, ds: BarcodeDataset, tasks: list[Task], device: str) -> RunReport | None:
    """The report of a finished run of an in-house encoder that would be pretrained first: when
    every requested result exists (same pretraining, data, seed and limit), nothing is pretrained
    again just to find the results there."""
    entry = get_encoder(opts.encoder)
    if opts.overwrite or opts.checkpoint is not None or not entry.meta.pretrainable:
        return None
    pretrained = pretrained_directory(entry, opts.preset, pretraining_recipe(entry, opts), opts.seed, ds,
                                      device, caches(opts))
    if checkpoints.is_complete(pretrained):  # loading it is cheap: the normal path
        return None
    for run_dir in sorted((Path(opts.results_dir) / safe_name(entry.name)).glob("*")):
        paths = {t.meta.name: run_dir / f"{t.meta.name}.json" for t in tasks}
        if not all(p.is_file() for p in paths.values()):
            continue
        found = {name: read_result(p) for name, p in paths.items()}
        first = next(iter(found.values()))
        if (Path(first["encoder"]["checkpoint"].get("path", "")).name == pretrained.name
                and first["data"]["content_hash"] == ds.content_hash()
                and first["seeds"].get("run") == opts.seed and first["data"].get("limit") == opts.limit):
            outcomes = [TaskOutcome(name, "existing", found[name], paths[name]) for name in paths]
            return RunReport(first["run_id"], first["encoder"], run_dir, outcomes,
                             {"pretrain": 0.0, "embed": 0.0}, first["data"])
    return None


def run_benchmark(opts: RunOptions, ds: BarcodeDataset) -> RunReport:
    """Run ``opts.tasks`` for ``opts.encoder`` on ``ds``; write one result file per task."""
    tasks = select_tasks(opts.tasks)
    if opts.limit is not None and opts.limit < 2:
        raise UserError("--limit must be >= 2")
    device = resolve_device(opts.device)
    dist = init_distributed(device)
    if dist.world > 1:
        device = resolve_device(opts.device, dist.local_rank)
    done = _already_done(opts, ds, tasks, device)
    if done is not None:
        return done
    encoder, pretrain_s = load_encoder(opts, ds, device)
    run_id = run_id_for(encoder.meta, ds, opts)
    directory = Path(opts.results_dir) / safe_name(encoder.meta.name) / run_id
    data_identity = {**ds.identity(), "limit": opts.limit}
    outcomes: dict[str, TaskOutcome] = {}
    pending: list[Task] = []
    for task in tasks:
        path = directory / f"{task.meta.name}.json"
        if path.is_file() and not opts.overwrite:
            outcomes[task.meta.name] = TaskOutcome(task.meta.name, "existing", read_result(path), path)
        else:
            pending.append(task)

    similarity = encoder.meta.similarity
    for task in [t for t in pending if similarity not in t.similarities]:
        reason = f"needs embeddings; {encoder.meta.name} is compared by {similarity}, not an embedding"
        outcomes[task.meta.name] = TaskOutcome(task.meta.name, "skipped", reason=reason)
        pending.remove(task)
    compare = {} if similarity == "cosine" else {"similarity": similarity}
    embeddings, labels, embed_s, cache_state = {}, {}, {}, {}
    for split in dict.fromkeys(s for task in pending for s in task.meta.splits):
        started = time.perf_counter()
        table, embeddings[split], cache_state[split] = embed_split(encoder, ds, split, opts, dist)
        embed_s[split] = time.perf_counter() - started
        labels[split] = label_frame(table)
    meta = encoder.meta.to_dict()
    if meta["embedding_dim"] is None and embeddings:  # an encoder that does not state it
        meta["embedding_dim"] = int(next(iter(embeddings.values())).shape[1])

    if not dist.main:  # the other torchrun processes helped embed; the first one evaluates and writes
        pending = []
    for task in pending:
        name = task.meta.name
        empty = [s for s in task.meta.splits if len(labels[s]) == 0]
        if empty:
            outcomes[name] = TaskOutcome(name, "skipped", reason=f"empty split(s): {', '.join(empty)}")
            continue
        started = time.perf_counter()
        try:
            outcome = task.evaluate({s: embeddings[s] for s in task.meta.splits},
                                    {s: labels[s] for s in task.meta.splits}, seed=opts.seed,
                                    device=device, progress=opts.progress, **compare)
        except UserError as exc:
            outcomes[name] = TaskOutcome(name, "skipped", reason=str(exc))
            log.warning("task %s skipped: %s", name, exc)
            continue
        timings = {"pretrain": round(pretrain_s, 3),
                   "embed": round(sum(embed_s[s] for s in task.meta.splits), 3),
                   "evaluate": round(time.perf_counter() - started, 3)}
        result = build_result(
            run_id=run_id, task_meta=task.meta.to_dict(), encoder_meta=meta, data_identity=data_identity,
            device=device, dtype=encoder.meta.dtype, batch_size=opts.batch_size,
            seeds={"run": opts.seed, "split": ds.split_seed}, outcome=outcome, timings_s=timings,
            cache={s: cache_state[s] for s in task.meta.splits}, command=opts.command)
        path = directory / f"{name}.json"
        write_result(path, result)
        outcomes[name] = TaskOutcome(name, "done", result, path)
    ordered = [outcomes[t.meta.name] for t in tasks if t.meta.name in outcomes]
    return RunReport(run_id, meta, directory, ordered,
                     {"pretrain": pretrain_s, "embed": sum(embed_s.values())}, data_identity)


# ----------------------------------------------------------------------------- seeds and controls
@dataclass
class SeededReport:
    role: str  # "encoder" or "control"
    seed: int
    report: RunReport


def run_seeds(opts: RunOptions, ds: BarcodeDataset, seeds: list[int], with_control: bool = False
              ) -> list[SeededReport]:
    """``run_benchmark`` for each seed (each its own run directory) and, with ``with_control``,
    the encoder's declared control at the same seed (and pretraining preset)."""
    seeds = list(dict.fromkeys(seeds))
    if not seeds:
        raise UserError("--seeds needs at least one seed")
    if with_control and get_encoder(opts.encoder).meta.control is None:
        raise UserError(f"encoder {opts.encoder!r} declares no control; run it without --with-control")
    out = []
    for seed in seeds:
        report = run_benchmark(dataclasses.replace(opts, seed=seed), ds)
        out.append(SeededReport("encoder", seed, report))
        if with_control:
            name, options = control_of(report.encoder)
            control = dataclasses.replace(opts, encoder=name, encoder_options=options, checkpoint=None, seed=seed)
            out.append(SeededReport("control", seed, run_benchmark(control, ds)))
    return out


def task_support(ds: BarcodeDataset) -> list[dict]:
    """Which registered tasks ``ds`` can score: ``[{"task", "supported", "reason"}]``."""
    out = []
    for entry in list_tasks():
        task = entry.create()
        reason = task.unsupported({s: label_frame(ds.split(s)) for s in task.meta.splits})
        out.append({"task": entry.name, "supported": reason is None, "reason": reason or ""})
    return out
