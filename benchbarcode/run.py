"""The pipelines behind ``benchbarcode run`` and ``embed``: encoder -> embeddings (cached) -> tasks
-> result files.

Options validate themselves once (:meth:`RunOptions.validate`, :meth:`EmbedOptions.validate`):
every rule, the registry lookup (:func:`benchbarcode.spec.resolve_encoder`) and the output paths
are checked before any work, and the plan they return is all the pipeline reads. Nothing here
prints; progress goes through tqdm and notes through the ``benchbarcode`` logger. Work survives
interruption at every level: pretraining checkpoints and resumes, embeddings are cached per
split, each task's result is written atomically as soon as it exists, and a re-run skips the
results already stored (:mod:`benchbarcode.store`) unless ``overwrite``. Two runs on one cache
pretrain and embed each thing once: the second waits on the first's lock, then reuses its work.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from benchbarcode import checkpoints
from benchbarcode.canonical import digest
from benchbarcode.contracts import Encoder, EncoderMeta, Task, TaskOutcome
from benchbarcode.data.dataset import BarcodeDataset
from benchbarcode.data.protocols import DEFAULT_PROTOCOL, check_protocol
from benchbarcode.embed import NPZ, EmbeddingCache, cache_key_parts, embed_sequences
from benchbarcode.errors import UserError
from benchbarcode.fileio import LOCK_SUFFIX, cache_root, check_output_dir, check_output_file, exclusive
from benchbarcode.registry import control_of, get_task, list_tasks
from benchbarcode.results import build_result, read_result
from benchbarcode.runtime import Dist, Runtime, setup
from benchbarcode.spec import EncoderSpec, ResolvedEncoder, check_seed, resolve_encoder
from benchbarcode.store import ResultStore, safe_name

log = logging.getLogger("benchbarcode")

LABELS = ["processid", "genus", "species", "bin"]


# ----------------------------------------------------------------------------- options
@dataclass(frozen=True)
class Caching:
    """Where embeddings and pretrainings are cached (``root`` None: :func:`fileio.cache_root`)."""

    root: str | None = None
    enabled: bool = True

    def path(self) -> Path:
        return Path(self.root) if self.root else cache_root()

    def check(self) -> None:
        if self.enabled:
            check_output_dir(self.path(), "cache (BENCHBARCODE_CACHE)")


@dataclass(frozen=True)
class RunOptions:
    """Everything ``benchbarcode run`` takes besides the data set."""

    encoder: EncoderSpec
    tasks: tuple[str, ...] | None = None  # None: every registered task
    seeds: tuple[int, ...] | None = None  # None: the encoder spec's seed alone
    with_control: bool = False  # also run the encoder's declared control at each seed
    results_dir: str = "results"
    batch_size: int = 64
    limit: int | None = None  # at most this many records per evaluation split (random, seeded)
    overwrite: bool = False
    progress: bool = True
    caching: Caching = field(default_factory=Caching)
    command: list[str] | None = None  # recorded in each result
    #: evaluation protocol (``benchbarcode.data.protocols.PROTOCOLS``): the data set must be loaded
    #: under it, and the tasks are resolved under it (:meth:`Task.under`)
    protocol: str = DEFAULT_PROTOCOL

    def __post_init__(self):
        if isinstance(self.encoder, str):  # RunOptions("kmer"): a name alone
            object.__setattr__(self, "encoder", EncoderSpec(self.encoder))

    def validate(self) -> "RunPlan":
        """Every rule ``run`` has, checked before any work; the plan the pipeline follows."""
        if self.batch_size < 1:
            raise UserError("--batch-size must be >= 1")
        if self.limit is not None and self.limit < 2:
            raise UserError("--limit must be >= 2")
        seeds = self._seeds()
        check_protocol(self.protocol)
        skipped: dict[str, str] = {}
        tasks = select_tasks(self.tasks, self.protocol, skipped)
        if not tasks:
            raise UserError(f"--protocol {self.protocol}: none of the tasks has a {self.protocol}-protocol "
                            f"counterpart ({', '.join(skipped)})")
        encoder = resolve_encoder(self.encoder)
        check_scorable(encoder, tasks, self.protocol)
        control = None
        if self.with_control:
            spec = encoder.control()
            if spec is None:
                raise UserError(f"--with-control: encoder {self.encoder.name!r} declares no control")
            control = resolve_encoder(spec)
        check_output_dir(self.results_dir, "--results-dir")
        self.caching.check()
        return RunPlan(self, encoder, control, tuple(tasks), seeds, ResultStore(self.results_dir),
                       tuple(skipped.items()))

    def _seeds(self) -> tuple[int, ...]:
        """The seeds to run: ``seeds`` (each an integer >= 0, given once), else the spec's seed
        (checked by :func:`~benchbarcode.spec.resolve_encoder`)."""
        if self.seeds is None:
            return (self.encoder.seed,)
        if not self.seeds:
            raise UserError("--seeds needs at least one seed")
        listed = ",".join(str(seed) for seed in self.seeds)
        for position, seed in enumerate(self.seeds):
            check_seed(seed, f"--seeds {listed}: seed")
            if seed in self.seeds[:position]:
                raise UserError(f"--seeds {listed}: seed {seed} is given twice; name each seed once")
        return tuple(self.seeds)


def check_scorable(encoder: ResolvedEncoder, tasks: list[Task], protocol: str) -> None:
    """At least one of ``tasks`` compares rows the way ``encoder`` does (an encoder that is not an
    embedding, such as align, is scored by the tasks that search by its similarity only)."""
    similarity = encoder.similarity.value
    if any(similarity in task.similarities for task in tasks):
        return
    able = [t.meta.name for t in select_tasks(None, protocol) if similarity in t.similarities]
    asked = ", ".join(t.meta.name for t in tasks)
    under = "" if protocol == DEFAULT_PROTOCOL else f" under --protocol {protocol}"
    raise UserError(f"--encoder {encoder.spec.name}: not an embedding (it compares barcodes by {similarity}); "
                    f"none of the tasks asked ({asked}) can score it; tasks that can{under}: "
                    f"{', '.join(able) or 'none'}")


@dataclass(frozen=True)
class RunPlan:
    """Validated run options: the resolved encoder (and control), the tasks, the seeds, the store."""

    options: RunOptions
    encoder: ResolvedEncoder
    control: ResolvedEncoder | None
    tasks: tuple[Task, ...]
    seeds: tuple[int, ...]
    store: ResultStore
    skipped: tuple[tuple[str, str], ...] = ()  # (task, reason): requested tasks the protocol lacks

    @property
    def task_names(self) -> list[str]:
        """Every requested task, run or skipped, in the order asked."""
        return [t.meta.name for t in self.tasks] + [name for name, _ in self.skipped]


def select_tasks(names, protocol: str = DEFAULT_PROTOCOL, skipped: dict[str, str] | None = None) -> list[Task]:
    """The tasks to run, as ``protocol`` defines them (:meth:`Task.under`); those it has no
    counterpart of go into ``skipped`` as ``{task: reason}`` (unknown names fail before any work
    starts)."""
    if names is None:
        found = [entry.create() for entry in list_tasks()]
    else:
        names = list(dict.fromkeys(names))
        if not names:
            raise UserError("--tasks: no task named (see: benchbarcode tasks)")
        found = [get_task(name) for name in names]
    tasks = []
    for task in found:
        resolved = task.under(protocol)
        if resolved is not None:
            tasks.append(resolved)
        elif skipped is not None:
            skipped[task.meta.name] = f"no {protocol}-protocol counterpart"
    return tasks


# ----------------------------------------------------------------------------- encoders
def obtain_encoder(encoder: ResolvedEncoder, ds: BarcodeDataset, device: str, caching: Caching,
                   progress: bool, dist: Dist | None = None) -> tuple[Encoder, float, str | None]:
    """The encoder to evaluate, the seconds spent pretraining it, and its pretraining key.

    An in-house encoder without a checkpoint is pretrained with its recipe on ``ds``'s
    pretraining corpus, once: the directory is cached by its key (recipe, seed, data, device type)
    and an interrupted pretraining resumes there. A cached encoder or unfinished run that does
    not read back (:class:`~benchbarcode.checkpoints.DamagedCheckpoint`) is pretrained again from
    the start, as a corrupt embedding is recomputed. An entry with a trainer (a supervised
    baseline) is trained the same way, once, on the ``train`` split's species.

    Pretraining holds the key's lock (``pretrained/<key>.lock``): a second run on the same cache
    that needs the same pretraining waits, then loads what the first wrote (or resumes what it
    left when interrupted). Under torchrun (``dist``) the processes pretrain together, so none
    takes it (one holding it would stall the others' collectives).
    """
    if not encoder.pretrained_first:
        return encoder.create(device), 0.0, None
    key = encoder.pretraining_key(ds.content_hash(), device)
    directory = caching.path() / "pretrained" / key
    if checkpoints.is_complete(directory):  # the usual case, without waiting for anyone
        try:
            return encoder.create(device, checkpoint=directory), 0.0, key
        except checkpoints.DamagedCheckpoint:
            pass  # said and repaired below, once the lock is held
    lock = contextlib.nullcontext() if dist is not None and dist.world > 1 else exclusive(
        directory.parent / f"{key}{LOCK_SUFFIX}", f"pretraining {encoder.name}")
    with lock:
        damaged = False
        if checkpoints.is_complete(directory):  # written by another run meanwhile, or damaged
            try:
                return encoder.create(device, checkpoint=directory), 0.0, key
            except checkpoints.DamagedCheckpoint as exc:
                log.warning("the cached pretraining does not read back (%s): pretraining again", exc)
                damaged = True
        started = time.perf_counter()
        _pretrain_into(directory, encoder, ds, device, progress, clean=damaged)
        pretrain_s = time.perf_counter() - started
    return encoder.create(device, checkpoint=directory), pretrain_s, key


def _pretrain_into(directory: Path, encoder: ResolvedEncoder, ds: BarcodeDataset, device: str,
                   progress: bool, clean: bool) -> None:
    """Pretrain ``encoder`` into ``run``'s cache ``directory``: continue the unfinished run there,
    else (none, ``clean``, or one that does not read back) start clean. An entry with a trainer is
    trained on the ``train`` split alone (records without a species left out); an interrupted
    training continues after its last finished epoch (:class:`~benchbarcode.supervised.Partial`)."""
    spec = encoder.spec
    if encoder.entry.trainer is not None:
        train = ds.split("train")
        train = train[train["species"].notna()]
        log.info("training %s on %d labelled train records (%d species) into %s", encoder.name, len(train),
                 train["species"].nunique(), directory)
        encoder.trainer(train["sequence"].tolist(), train["species"].astype(str).tolist(), directory,
                        seed=spec.seed, device=device, progress=progress)
        return
    from benchbarcode.pretrain import PretrainJob, pretrain

    job = PretrainJob(objective=encoder.meta.objective, preset=encoder.recipe, sequences=ds.pretraining_sequences(),
                      out=directory, seed=spec.seed, data_identity=ds.identity(), preset_name=spec.preset,
                      encoder_name=encoder.name, device=device, progress=progress)
    log.info("pretraining %s (%s preset, %d steps) into %s", encoder.name, spec.preset, encoder.recipe.steps,
             directory)
    try:
        resume = not clean and checkpoints.resumable_state(directory) is not None
        pretrain(dataclasses.replace(job, resume=resume, overwrite=not resume))
    except checkpoints.DamagedCheckpoint as exc:
        log.warning("the unfinished pretraining in the cache does not read back (%s): starting it again", exc)
        pretrain(dataclasses.replace(job, overwrite=True))


def run_id_for(meta: EncoderMeta, ds: BarcodeDataset, seed: int, limit: int | None) -> str:
    """A name for the run that is the same whenever the vectors and the task seeds are the same:
    the encoder's :meth:`~EncoderMeta.identity` (as in the embedding-cache key), data, seed, limit."""
    ident = {"encoder": meta.identity(), "data": ds.content_hash(), "seed": seed, "limit": limit}
    if ds.protocol != DEFAULT_PROTOCOL:  # only then: run ids of the default protocol stay as they were
        ident["protocol"] = ds.protocol
    return f"{safe_name(ds.name)}-seed{seed}{f'-limit{limit}' if limit else ''}-{digest(ident, 12)}"


# ----------------------------------------------------------------------------- data
def evaluation_split(ds: BarcodeDataset, split: str | None, limit: int | None, seed: int) -> pd.DataFrame:
    """The rows of ``split`` (every record for None; a seeded random subset of at most ``limit``,
    in table order)."""
    table = ds.table.reset_index(drop=True) if split is None else ds.split(split)
    if limit is not None and len(table) > limit:
        rows = np.sort(np.random.default_rng([seed, limit]).choice(len(table), limit, replace=False))
        table = table.iloc[rows].reset_index(drop=True)
    return table


def embed_split(encoder: Encoder, ds: BarcodeDataset, split: str | None, *, seed: int = 0,
                limit: int | None = None, batch_size: int = 64, caching: Caching = Caching(),
                progress: bool = False, dist: Dist | None = None) -> tuple[pd.DataFrame, np.ndarray, str]:
    """The rows of ``split`` (see :func:`evaluation_split`), their embeddings, and the cache state
    ("hit", "miss" or "off"); the cache key names the limit and seed when a subset is taken.
    Under torchrun (``dist``) the processes share the work (shards under the cache root)."""
    table = evaluation_split(ds, split, limit, seed)
    cache = EmbeddingCache(caching.path() / "embeddings") if caching.enabled else None
    name = "all records" if split is None else split
    label = name if limit is None else f"{name}@limit={limit},seed={seed}"
    vectors, hit = embed_sequences(encoder, table["sequence"].tolist(),
                                   parts=cache_key_parts(encoder.meta, ds.content_hash(), label),
                                   cache=cache, batch_size=batch_size, progress=progress,
                                   dist=dist, shards=caching.path() / "shards")
    return table, vectors, "hit" if hit else ("miss" if cache is not None else "off")


def label_frame(table: pd.DataFrame) -> pd.DataFrame:
    """The labels a task sees of ``table``: processid, genus, species, bin (missing -> None)."""
    out = table[LABELS].astype(object)
    return out.where(out.notna(), None)


# ----------------------------------------------------------------------------- the run
@dataclass
class TaskStatus:
    """What became of one task in a run."""

    task: str
    status: str  # "done", "existing" (read from the store) or "skipped"
    result: dict | None = None
    path: Path | None = None
    reason: str | None = None


@dataclass
class RunReport:
    run_id: str
    encoder: dict
    directory: Path
    statuses: list[TaskStatus]
    timings_s: dict
    data: dict = field(default_factory=dict)  # the data set's identity, as in the result files
    main: bool = True  # whether this process reports (torchrun's other processes only helped embed)


@dataclass
class _Run:
    """One run in flight: what every step of :func:`run_benchmark` reads and adds to."""

    plan: RunPlan
    ds: BarcodeDataset
    runtime: Runtime
    encoder: Encoder
    run_id: str
    pretrain_s: float
    pretraining_key: str | None
    statuses: dict[str, TaskStatus] = field(default_factory=dict)
    embeddings: dict = field(default_factory=dict)
    labels: dict = field(default_factory=dict)
    embed_s: dict = field(default_factory=dict)
    cache_state: dict = field(default_factory=dict)

    @property
    def seed(self) -> int:
        return self.plan.encoder.spec.seed


def run_benchmark(plan: RunPlan | RunOptions, ds: BarcodeDataset, runtime: Runtime | None = None) -> RunReport:
    """Run ``plan``'s tasks for its encoder (at its spec's seed) on ``ds``; one result file per task
    (options are validated first)."""
    plan = plan.validate() if isinstance(plan, RunOptions) else plan
    check_data_protocol(ds, plan.options.protocol, plan.encoder)
    runtime = runtime or setup(plan.encoder.spec.device)
    done = _finished(plan, ds, runtime)
    if done is not None:
        return done
    opts = plan.options
    encoder, pretrain_s, key = obtain_encoder(plan.encoder, ds, runtime.device, opts.caching, opts.progress,
                                              runtime.dist)
    run = _Run(plan, ds, runtime, encoder, run_id_for(encoder.meta, ds, plan.encoder.spec.seed, opts.limit),
               pretrain_s, key)
    pending = _pending(run)
    _embed_splits(run, pending)
    meta = encoder.meta.to_dict()
    if meta["embedding_dim"] is None and run.embeddings:  # an encoder that does not state it
        meta["embedding_dim"] = int(next(iter(run.embeddings.values())).shape[1])
    for task in pending if runtime.main else []:  # the other torchrun processes helped embed
        _evaluate(run, task, meta)
    statuses = [run.statuses[name] for name in plan.task_names if name in run.statuses]
    return RunReport(run.run_id, meta, plan.store.run_dir(meta["name"], run.run_id), statuses,
                     {"pretrain": pretrain_s, "embed": sum(run.embed_s.values())}, _data_identity(run),
                     runtime.main)


def _data_identity(run: _Run) -> dict:
    return {**run.ds.identity(), "limit": run.plan.options.limit}


def _finished(plan: RunPlan, ds: BarcodeDataset, runtime: Runtime) -> RunReport | None:
    """The report of a finished run of an encoder that would be pretrained first: when every
    requested result exists (same pretraining, data, seed and limit), nothing is pretrained again
    just to find the results there."""
    encoder, opts = plan.encoder, plan.options
    if opts.overwrite or not encoder.pretrained_first:
        return None
    key = encoder.pretraining_key(ds.content_hash(), runtime.device)
    if checkpoints.is_complete(opts.caching.path() / "pretrained" / key):  # loading it is cheap: the normal path
        return None
    found = plan.store.finished_run(encoder.name, key, ds.content_hash(), encoder.spec.seed, opts.limit,
                                    [t.meta.name for t in plan.tasks])
    if found is None:
        return None
    run_dir, results = found
    statuses = [TaskStatus(name, "existing", result, path) for name, (path, result) in results.items()]
    first = statuses[0].result
    return RunReport(first["run_id"], first["encoder"], run_dir, statuses, {"pretrain": 0.0, "embed": 0.0},
                     first["data"], runtime.main)


def _pending(run: _Run) -> list[Task]:
    """The tasks still to evaluate: those without a stored result (all with ``overwrite``) that
    can compare this encoder's rows; the others get their status."""
    plan, name = run.plan, run.encoder.meta.name
    names = [t.meta.name for t in plan.tasks]
    existing = {} if plan.options.overwrite else plan.store.existing(name, run.run_id, names)
    for task, (path, result) in existing.items():
        run.statuses[task] = TaskStatus(task, "existing", result, path)
    for task, reason in plan.skipped:
        run.statuses[task] = TaskStatus(task, "skipped", reason=reason)
    similarity = plan.encoder.similarity
    pending = []
    for task in (t for t in plan.tasks if t.meta.name not in existing):
        if similarity.value in task.similarities:
            pending.append(task)
        else:
            reason = f"needs embeddings; {name} is compared by {similarity.value}, not an embedding"
            run.statuses[task.meta.name] = TaskStatus(task.meta.name, "skipped", reason=reason)
    return pending


def _embed_splits(run: _Run, pending: list[Task]) -> None:
    opts = run.plan.options
    for split in dict.fromkeys(s for task in pending for s in task.meta.splits):
        started = time.perf_counter()
        table, run.embeddings[split], run.cache_state[split] = embed_split(
            run.encoder, run.ds, split, seed=run.seed, limit=opts.limit, batch_size=opts.batch_size,
            caching=opts.caching, progress=opts.progress, dist=run.runtime.dist)
        run.embed_s[split] = time.perf_counter() - started
        run.labels[split] = label_frame(table)


def _evaluate(run: _Run, task: Task, meta: dict) -> None:
    """Evaluate ``task`` and store its result (or say why it was skipped)."""
    name, splits, opts = task.meta.name, task.meta.splits, run.plan.options
    empty = [s for s in splits if len(run.labels[s]) == 0]
    if empty:
        run.statuses[name] = TaskStatus(name, "skipped", reason=f"empty split(s): {', '.join(empty)}")
        return
    similarity = run.plan.encoder.similarity
    compare = {} if similarity.is_embedding else {"similarity": similarity.value}
    started = time.perf_counter()
    try:
        outcome = task.evaluate({s: run.embeddings[s] for s in splits}, {s: run.labels[s] for s in splits},
                                seed=run.seed, device=run.runtime.device, progress=opts.progress, **compare)
    except UserError as exc:
        run.statuses[name] = TaskStatus(name, "skipped", reason=str(exc))
        log.warning("task %s skipped: %s", name, exc)
        return
    timings = {"pretrain": round(run.pretrain_s, 3), "embed": round(sum(run.embed_s[s] for s in splits), 3),
               "evaluate": round(time.perf_counter() - started, 3)}
    result = build_result(
        run_id=run.run_id, task_meta=task.meta.to_dict(), encoder_meta=meta, data_identity=_data_identity(run),
        device=run.runtime.device, dtype=run.encoder.meta.dtype, batch_size=opts.batch_size,
        seeds={"run": run.seed, "split": run.ds.split_seed}, outcome=outcome, timings_s=timings,
        cache={s: run.cache_state[s] for s in splits}, command=opts.command, pretraining_key=run.pretraining_key)
    path = run.plan.store.write(result, TaskOutcome.of(outcome, name).per_query)
    run.statuses[name] = TaskStatus(name, "done", read_result(path), path)


# ----------------------------------------------------------------------------- seeds and controls
@dataclass
class SeededReport:
    role: str  # "encoder" or "control"
    seed: int
    report: RunReport


def run_seeds(plan: RunPlan | RunOptions, ds: BarcodeDataset) -> list[SeededReport]:
    """``run_benchmark`` for each of ``plan``'s seeds (each its own run directory) and, with a
    control, the control at the same seed (and the encoder's pretraining preset)."""
    plan = plan.validate() if isinstance(plan, RunOptions) else plan
    runtime = setup(plan.encoder.spec.device)
    out = []
    for seed in plan.seeds:
        encoder = plan.encoder.with_seed(seed)
        report = run_benchmark(dataclasses.replace(plan, encoder=encoder), ds, runtime)
        out.append(SeededReport("encoder", seed, report))
        if plan.control is not None:
            _, options = control_of(report.encoder)
            control = plan.control.with_seed(seed).with_options(
                **{k: v for k, v in options.items() if v is not None})
            control_plan = dataclasses.replace(plan, encoder=control, control=None)
            out.append(SeededReport("control", seed, run_benchmark(control_plan, ds, runtime)))
    return out


def task_support(ds: BarcodeDataset) -> list[dict]:
    """Which registered tasks ``ds`` can score under its protocol:
    ``[{"task", "protocol", "supported", "reason"}]``."""
    out = []
    for entry in list_tasks():
        task = entry.create().under(ds.protocol)
        reason = (f"no {ds.protocol}-protocol counterpart" if task is None
                  else task.unsupported({s: label_frame(ds.split(s)) for s in task.meta.splits}))
        out.append({"task": entry.name, "protocol": ds.protocol, "supported": reason is None, "reason": reason or ""})
    return out


def check_data_protocol(ds: BarcodeDataset, protocol: str, encoder: ResolvedEncoder) -> None:
    """``ds`` was prepared under ``protocol``; an encoder to pretrain has a corpus there."""
    if ds.protocol != protocol:
        raise UserError(f"protocol {protocol!r} but the data set was loaded under {ds.protocol!r} "
                        f"(load_barcodes(..., protocol={protocol!r}))")
    if (encoder.pretrained_first and encoder.trainer is None  # a trainer learns from train, not the corpus
            and not ds.table["split"].isin(ds.pretraining_splits).any()):
        raise UserError(f"--protocol {protocol}: {encoder.name} must be pretrained first but {ds.name} has no "
                        f"pretraining corpus ({' + '.join(ds.pretraining_splits)} is empty); pass --checkpoint")


# ----------------------------------------------------------------------------- embed
@dataclass(frozen=True)
class EmbedOptions:
    """Everything ``benchbarcode embed`` takes besides the data set."""

    encoder: EncoderSpec
    out: str
    split: str | None = None  # None: every record
    batch_size: int = 64
    progress: bool = True
    caching: Caching = field(default_factory=Caching)
    protocol: str = DEFAULT_PROTOCOL  # the data set is loaded under it (reference: de-duplicated splits)

    def validate(self) -> ResolvedEncoder:
        """Every rule ``embed`` has, checked before any work; the resolved encoder."""
        from benchbarcode.data.cleaning import SPLITS

        check_protocol(self.protocol)
        check_output_file(self.out, "--out", (NPZ,))
        if self.split is not None and self.split not in SPLITS:
            raise UserError(f"--split {self.split}: unknown split; expected one of {', '.join(SPLITS)} "
                            "(or no --split: every record)")
        if self.batch_size < 1:
            raise UserError("--batch-size must be >= 1")
        self.caching.check()
        encoder = resolve_encoder(self.encoder)
        require_embedding(encoder, "embed")
        return encoder


def require_embedding(encoder: ResolvedEncoder, command: str) -> None:
    """``embed`` and ``profile`` measure embeddings: an encoder compared otherwise is refused."""
    if not encoder.similarity.is_embedding:
        raise UserError(f"{command} --encoder {encoder.spec.name}: not an embedding (it compares barcodes "
                        f"by {encoder.similarity.value}); score it with `benchbarcode run --encoder "
                        f"{encoder.spec.name}`")


@dataclass
class EmbedReport:
    rows: int
    dim: int
    encoder: dict
    cache_state: str
    main: bool


def embed_to_file(opts: EmbedOptions, encoder: ResolvedEncoder, ds: BarcodeDataset) -> EmbedReport:
    """Embed ``opts.split`` of ``ds`` (every record for None) and write the ``.npz`` (torchrun:
    the processes share the work; the first one writes)."""
    from benchbarcode.embed import write_embeddings_npz

    check_data_protocol(ds, opts.protocol, encoder)
    rows = len(ds.table) if opts.split is None else len(ds.split(opts.split))
    if rows == 0:
        raise UserError(f"--split {opts.split}: {ds.name} has no {opts.split} records; nothing to embed "
                        "(leave out --split to embed every record)")
    runtime = setup(encoder.spec.device)
    instance, _, _ = obtain_encoder(encoder, ds, runtime.device, opts.caching, opts.progress, runtime.dist)
    table, vectors, cache_state = embed_split(instance, ds, opts.split, seed=encoder.spec.seed,
                                              batch_size=opts.batch_size, caching=opts.caching,
                                              progress=opts.progress, dist=runtime.dist)
    if runtime.main:
        write_embeddings_npz(opts.out, vectors, table)
    return EmbedReport(vectors.shape[0], vectors.shape[1], instance.meta.to_dict(), cache_state, runtime.main)
