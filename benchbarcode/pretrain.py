"""Pretraining loop shared by every in-house objective (MAE, MLM, causal).

* AdamW with a one-cycle learning rate (linear warm-up, cosine annealing to 1 % of the peak),
  gradient clipping, random offset augmentation (0..k-1 bases dropped), bf16 autocast on CUDA.
* Every random choice (batch order, offsets, masks, dropout) is a pure function of
  ``(seed, step)`` (dropout: and the rank), so ``resume`` continues exactly: the weights and the
  loss curve equal an uninterrupted run with the same seed. Ctrl-C is honoured between steps
  only (:class:`benchbarcode.runtime.StopBetweenSteps`), where the checkpoint is whole.
* A step reads nothing back from the device, so the host can queue the next one while the device
  works: the corpus is tokenised once onto the device and each batch drawn there
  (:mod:`benchbarcode.pretrain_batches`); every shape is the same at every step (the objectives
  pad to fixed widths); the loss and the budget counters accumulate in device tensors, read every
  ``READ_EVERY`` steps, at checkpoints and at the end. ``compile=True`` runs the step under
  ``torch.compile`` (one graph, no breaks).
* Runs unchanged under ``torchrun`` (DDP; gloo on CPU, NCCL on GPU): the global batch, its
  offsets and its mask are split across ranks and the loss is the global batch's mean, so without
  dropout k processes take the steps of one (up to float rounding); only rank 0 writes, and the
  ranks' final parameters are compared.
* ``DIR`` is the encoder directory of :mod:`benchbarcode.checkpoints` (the encoder, which
  ``transformers.AutoModel.from_pretrained(DIR)`` opens, and ``benchbarcode.json`` with the
  stated budget, written last); ``DIR/checkpoint/`` holds the resumable state.
* Nothing here branches on the objective's name: the module of
  :mod:`benchbarcode.models.objectives` says what it masks and what a step costs.
"""

from __future__ import annotations

import logging
import math
import platform
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from benchbarcode import __version__, checkpoints
from benchbarcode.errors import UserError
from benchbarcode.models.presets import Preset
from benchbarcode.models.sizes import transformer_sizes
from benchbarcode.runtime import (
    DTYPES,
    compile_step,
    TRIM_EVERY,
    Dist,
    Runtime,
    StopBetweenSteps,
    autocast,
    setup,
    trim_heap,
)
from benchbarcode.spec import EncoderSpec, ResolvedEncoder
from benchbarcode.tokenizers import KmerTokenizer

if TYPE_CHECKING:  # torch is imported where a step needs it: `pretrain`'s argument errors come first
    import torch

log = logging.getLogger("benchbarcode")

#: steps between two reads of the device's loss and budget counters (and, under torchrun, two
#: checks whether a process was asked to stop)
READ_EVERY = 50


def build_model(objective: str, preset: Preset):
    """:func:`benchbarcode.models.objectives.build_model`, imported when a model is built (it
    imports torch and transformers); a module attribute, so that tests can wrap it."""
    from benchbarcode.models.objectives import build_model as build

    return build(objective, preset)


def one_cycle_lr(step: int, preset: Preset) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine down to 1 % of the peak."""
    peak, warm = preset.lr, min(preset.warmup_steps, preset.steps)
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, preset.steps - warm)
    return peak * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


# ----------------------------------------------------------------------------- budget
def _block_params(module: torch.nn.Module | None) -> int:
    """Parameters of a transformer stack without its embedding tables."""
    if module is None:
        return 0
    emb = sum(p.numel() for n, p in module.named_parameters() if "embeddings" in n or n.startswith(("wte", "wpe")))
    return sum(p.numel() for p in module.parameters()) - emb


def step_flops(model: torch.nn.Module, enc_tokens, enc_len, dec_tokens, dec_len, predicted):
    """Training FLOPs of one step: 6 x (non-embedding params x tokens + attention) + head. The
    counts are numbers or float64 tensors (then so is the result, computed where they are)."""
    enc = model.encoder
    sizes = transformer_sizes(enc.config)
    flops = 6.0 * _block_params(enc) * enc_tokens + 6.0 * 2 * sizes["layers"] * sizes["hidden"] * enc_len * enc_tokens
    dec = getattr(model, "decoder", None)
    if dec is not None:
        dec_sizes = transformer_sizes(dec.config)
        flops += (6.0 * _block_params(dec) * dec_tokens
                  + 6.0 * 2 * dec_sizes["layers"] * dec_sizes["hidden"] * dec_len * dec_tokens)
        proj = getattr(model, "proj", None)
        flops += 6.0 * sum(p.numel() for p in proj.parameters()) * enc_tokens if proj is not None else 0
    flops += 6.0 * sum(p.numel() for p in model.head.parameters()) * predicted
    return flops


def versions() -> dict:
    import torch
    import transformers

    return {"benchbarcode": __version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


# ----------------------------------------------------------------------------- one step
def build_optimizer(model: torch.nn.Module, preset: Preset, device: str = "cpu") -> torch.optim.Optimizer:
    """AdamW (betas 0.9/0.98, eps 1e-6), weight decay on matrices only; the fused kernel (on CPU
    too: the for-each one reads each parameter's step count back to the host every step)."""
    import torch

    def decays(name: str, p) -> bool:
        return p.ndim >= 2 and "LayerNorm" not in name and "ln_" not in name

    decay = [p for n, p in model.named_parameters() if decays(n, p)]
    no_decay = [p for n, p in model.named_parameters() if not decays(n, p)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": preset.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=preset.lr, betas=(0.9, 0.98), eps=1e-6, fused=True)


def default_dtype(device: str) -> str:
    """The pretraining compute dtype when none is asked for: bfloat16 autocast on CUDA, float32 on CPU."""
    return "bfloat16" if device.startswith("cuda") else "float32"


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: tuple, dtype: str,
                  grad_clip: float | None, dist: Dist | None = None) -> dict:
    """One optimiser step on ``batch = (input_ids, attention_mask, mask)`` (on the model's device):
    forward under autocast in ``dtype``, backward, gradient clipping, ``optimizer.step()``.
    Returns the model's outputs (``loss`` still on the device: reading it synchronises).
    ``model`` may be the module compiled by ``torch.compile``.

    Under torchrun (``dist``) each process holds part of the global batch, and its mean loss is
    weighted by its share of the predicted tokens, so that DDP's average of the gradients is the
    gradient of the whole batch's mean loss (the step one process would take on it); ``loss`` is
    then that weighted loss, whose mean over the processes is the whole batch's."""
    import torch

    with autocast(str(batch[0].device), dtype):
        outputs = model(*batch)
    if dist is not None and dist.world > 1:
        outputs = {**outputs, "loss": outputs["loss"] * _token_share(outputs["n_predicted"], dist)}
    optimizer.zero_grad(set_to_none=True)
    outputs["loss"].backward()
    if grad_clip:
        torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    optimizer.step()
    return outputs


# ----------------------------------------------------------------------------- the job
@dataclass(frozen=True)
class PretrainJob:
    """One pretraining run: ``objective`` pretrained on ``sequences`` with the recipe ``preset``
    into the encoder directory ``out``.

    ``dtype``: the autocast compute dtype (default :func:`default_dtype`: bfloat16 on CUDA,
    float32 on CPU); weights and optimizer state stay float32. ``compile``: run the step's forward
    and backward under ``torch.compile`` (``fullgraph``; its first steps pay the compilation,
    recorded as ``budget.compile_seconds``). ``checkpoint_every``: steps between
    two resumable checkpoints (default ``max(50, steps // 10)``). ``data_identity``,
    ``preset_name`` and ``encoder_name`` (default: the objective) are recorded in the metadata.
    """

    objective: str
    preset: Preset
    sequences: Sequence[str] = field(repr=False)
    out: Path
    seed: int = 0
    data_identity: dict | None = None
    preset_name: str = "custom"
    encoder_name: str | None = None
    resume: bool = False
    overwrite: bool = False
    device: str = "auto"
    checkpoint_every: int | None = None
    progress: bool = True
    dtype: str | None = None
    compile: bool = False

    def __post_init__(self):
        object.__setattr__(self, "out", Path(self.out))

    @property
    def encoder(self) -> str:
        return self.encoder_name or self.objective


@dataclass(eq=False)
class _Run:
    """A run under way: what the start hands the loop, and the loop the final write."""

    job: PretrainJob
    rt: Runtime
    dtype: str
    model: torch.nn.Module
    forward: Callable  # what a step calls: ``model``, wrapped in DDP under torchrun, compiled if asked
    tokenizer: KmerTokenizer
    optimizer: torch.optim.Optimizer
    state: dict  # what the checkpoint holds: step, loss_history, budget, config, train_seconds
    window: list[float]  # losses not yet averaged into the history
    saved: int | None  # the step the checkpoint on disk holds
    t_start: float = 0.0  # perf_counter() at step 0, the time of earlier sessions included
    #: the losses of the steps not read yet, and the budget so far (float64, in the order of
    #: ``_empty_budget``), on the device (read by ``read``)
    losses: list = field(default_factory=list)
    budget: torch.Tensor | None = None
    compile_seconds: float | None = None  # the first compiled step's time (compilation included)

    @property
    def step(self) -> int:
        return self.state["step"]

    def read(self) -> float | None:
        """Bring the device's losses and counters into the state (the loss history, the budget):
        the only place the training loop waits for the device. Returns the last loss read."""
        import torch

        if not self.losses:
            return None
        losses = torch.stack(self.losses)
        dist = self.rt.dist
        if dist.world > 1:  # each process holds its share: the loss's mean over them is the batch's
            import torch.distributed as tdist

            tdist.all_reduce(losses)
            losses /= dist.world
        state, log_every = self.state, max(1, self.job.preset.steps // 2000)
        first = state["step"] - len(self.losses)
        for step, loss in enumerate(losses.tolist(), start=first + 1):
            self.window.append(loss)
            if step % log_every == 0 or step == self.job.preset.steps:
                state["loss_history"].append([step, round(float(np.mean(self.window)), 5)])
                self.window = []
        state["budget"] = {key: v if key == "flops" else int(v) for key, v in zip(_empty_budget(), self.budget.tolist())}
        self.losses = []
        return loss

    def save(self) -> None:
        """Write the resumable checkpoint (rank 0), unless the one on disk holds this step."""
        self.read()
        if self.rt.main and self.step > 0 and self.saved != self.step:
            self.state["train_seconds"] = time.perf_counter() - self.t_start
            checkpoints.save_resumable(self.job.out, self.model, self.optimizer,
                                       {**self.state, "window": self.window})
        self.saved = self.step


# ----------------------------------------------------------------------------- the run
def pretrain(job: PretrainJob, on_step: Callable[[int], None] | None = None) -> dict:
    """Pretrain ``job.objective`` on ``job.sequences`` and write the encoder to ``job.out``.

    Returns the metadata written to ``job.out/benchbarcode.json`` (in every torchrun process).
    ``on_step(step)`` is called after every optimiser step (tests use it to interrupt a run; the
    loss is read later, every ``READ_EVERY`` steps).
    """
    run = _start_or_resume(job, *_set_up(job))
    _train(run, on_step)
    return _finish(run)


def _set_up(job: PretrainJob) -> tuple[Runtime, str, dict, dict | None]:
    """The runtime, the compute dtype, the run's config, and the state of the unfinished run to
    resume (None: start clean), all checked before any work."""
    rt = setup(job.device)
    dtype = job.dtype or default_dtype(rt.device)
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype}: expected one of {', '.join(DTYPES)}")
    if job.preset.batch_size % rt.dist.world:
        raise UserError(f"--batch-size {job.preset.batch_size} is not divisible by the "
                        f"{rt.dist.world} processes")
    config = {"objective": job.objective, "encoder": job.encoder, "preset": job.preset_name,
              "recipe": job.preset.to_dict(), "seed": job.seed, "world_size": rt.dist.world, "dtype": dtype,
              "compile": job.compile}
    existing = check_out(job.out, resume=job.resume, overwrite=job.overwrite)
    if job.overwrite:
        if rt.main:
            checkpoints.clear(job.out)
        existing = None
    if existing is not None:  # a state saved before dtype (compile) was recorded ran the default
        existing["config"] = {"dtype": default_dtype(rt.device), "compile": False, **existing["config"]}
    if existing is not None and existing["config"] != config:
        raise UserError(f"{job.out}: the unfinished run was started with other settings "
                        f"({_diff(existing['config'], config)}); use the same ones or --overwrite")
    return rt, dtype, config, existing


def check_out(directory: str | Path, *, resume: bool, overwrite: bool) -> dict | None:
    """What pretraining may do with its output ``directory`` (:func:`checkpoints.check_target`: the
    unfinished run to resume, or None to start clean), after refusing a directory of someone
    else's: one that is not empty yet holds neither an encoder nor an unfinished run would get the
    model written among its files, and ``overwrite`` would delete its ``config.json`` and
    ``model.safetensors`` (:func:`checkpoints.clear`)."""
    d = Path(directory)
    foreign = _foreign_entries(d)
    if foreign:
        held = ", ".join(foreign[:3]) + (f" and {len(foreign) - 3} more" if len(foreign) > 3 else "")
        remedy = ("; --overwrite replaces only what 'benchbarcode pretrain' wrote, so nothing was deleted"
                  if overwrite else "")
        raise UserError(f"--out {d}: not empty and not a pretraining directory (it holds {held}; no "
                        f"{checkpoints.META_FILE}, no unfinished run){remedy}; choose a new or empty directory")
    return checkpoints.check_target(d, resume=resume, overwrite=overwrite)


def _foreign_entries(directory: Path) -> list[str]:
    """The names in ``directory`` when it is not a pretraining directory (no encoder, no
    unfinished run, damaged or not), leftovers of an interrupted write (``.NAME.tmp``) aside."""
    if not directory.is_dir() or checkpoints.is_complete(directory):
        return []
    try:
        if checkpoints.resumable_state(directory) is not None:
            return []
    except checkpoints.DamagedCheckpoint:  # an unfinished run all the same: check_target says so
        return []
    return sorted(p.name for p in directory.iterdir() if not (p.name.startswith(".") and p.name.endswith(".tmp")))


def _start_or_resume(job: PretrainJob, rt: Runtime, dtype: str, config: dict, existing: dict | None) -> _Run:
    """The model (seeded), tokenizer and optimizer at step 0, or restored from the checkpoint."""
    import torch

    torch.manual_seed(job.seed)
    model = build_model(job.objective, job.preset).to(rt.device)
    tokenizer = KmerTokenizer(job.preset.k, max_len=job.preset.max_len)
    optimizer = build_optimizer(model, job.preset, rt.device)
    state = {"step": 0, "loss_history": [], "budget": _empty_budget(), "config": config,
             "train_seconds": 0.0}
    if existing is not None:
        state = checkpoints.load_resumable(job.out, model, optimizer, rt.device)
        log.info("resuming %s in %s from step %d of %d", job.objective, job.out, state["step"], job.preset.steps)
    forward = model
    if rt.dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        forward = DistributedDataParallel(model, device_ids=[rt.dist.local_rank] if rt.device.startswith("cuda") else None)
    if job.compile:  # one graph, shapes fixed; DDP splits it at its buckets
        forward = compile_step(forward, rt.device, fullgraph=rt.dist.world == 1)
    budget = torch.tensor([float(state["budget"][key]) for key in _empty_budget()], dtype=torch.float64,
                          device=rt.device)
    return _Run(job, rt, dtype, model, forward, tokenizer, optimizer, state, window=state.pop("window", []),
                saved=state["step"] if existing is not None else None, budget=budget)


def _train(run: _Run, on_step: Callable[[int], None] | None) -> None:
    """Take the steps left, checkpointing every ``checkpoint_every`` steps and when interrupted.

    A step changes the weights, the optimizer state and the counters one after the other: only
    between steps do they describe the same step, so only there is an interrupt honoured (a
    SIGINT waits for the step in flight) and a checkpoint written. Under torchrun the processes
    agree to stop every ``READ_EVERY`` steps (agreeing reads the device)."""
    job, preset, dist = run.job, run.job.preset, run.rt.dist
    corpus = _corpus(run)
    every = job.checkpoint_every or max(50, preset.steps // 10)
    bar = _progress(preset.steps, run.step, job.progress and dist.main, job.objective)
    run.model.train()
    run.t_start = time.perf_counter() - run.state["train_seconds"]
    in_step = False
    with StopBetweenSteps() as stop:
        try:
            while run.step < preset.steps:
                if (dist.world == 1 or run.step % READ_EVERY == 0) and (stopping := stop.agreed(dist, run.rt.device)):
                    break
                in_step = True
                _timed_step(run, corpus)
                in_step = False
                if run.step % TRIM_EVERY == 0:
                    trim_heap()
                if run.step % READ_EVERY == 0 or run.step == preset.steps:
                    _show(run, bar, run.read())
                if bar is not None:
                    bar.update(1)
                if on_step is not None:
                    on_step(run.step)
                if run.step % every == 0 and run.step < preset.steps:
                    run.save()
            else:
                stopping = False
            if stopping:
                run.save()
                raise KeyboardInterrupt(f"pretraining stopped after step {run.step} of {preset.steps}" + (
                    f", saved in {job.out / checkpoints.CHECKPOINT_DIR}" if run.step else ""))
        except KeyboardInterrupt:
            if not in_step:
                run.save()
            elif dist.main:  # raised inside a step (not by SIGINT, which waits): its state is not whole
                log.warning("interrupted inside step %d: the checkpoint %s is kept", run.step + 1,
                            f"of step {run.saved}" if run.saved else "(none yet)")
            raise
        finally:
            if bar is not None:
                bar.close()
    run.read()


def _corpus(run: _Run):
    """The pretraining corpus, tokenised onto the device (:class:`DeviceCorpus`)."""
    from benchbarcode.pretrain_batches import DeviceCorpus

    job = run.job
    started = time.perf_counter()
    corpus = DeviceCorpus(job.sequences, run.tokenizer, job.preset.batch_size, job.seed, run.rt.device,
                          mask_ratio=job.preset.mask_ratio if run.model.masks else None)
    log.debug("tokenised %d sequences at %d offsets onto %s in %.1f s (%.0f MB)", corpus.n, corpus.n_offsets,
              run.rt.device, time.perf_counter() - started, corpus.nbytes / 2**20)
    return corpus


def _timed_step(run: _Run, corpus) -> None:
    """:func:`_one_step`; the first compiled one is timed (it compiles the step), the device awaited."""
    if not run.job.compile or run.compile_seconds is not None:
        return _one_step(run, corpus)
    started = time.perf_counter()
    _one_step(run, corpus)
    run.read()
    run.compile_seconds = round(time.perf_counter() - started, 2)
    if run.rt.main:
        log.info("compiled the %s step in %.1f s", run.job.objective, run.compile_seconds)


def _show(run: _Run, bar, loss: float | None) -> None:
    if bar is not None and loss is not None:
        rate = run.state["budget"]["sequences"] / max(1e-9, time.perf_counter() - run.t_start)
        bar.set_postfix(loss=f"{loss:.3f}", seq_s=f"{rate:.0f}")


def _one_step(run: _Run, corpus) -> None:
    """Step ``run.step`` on this process's part of its global batch; the state then follows the
    weights (step; the loss and budget counters, kept on the device until :meth:`_Run.read`).
    Nothing here reads the device (a test holds it to that)."""
    import torch

    job, preset, dist, step = run.job, run.job.preset, run.rt.dist, run.step
    ids, attn, mask = corpus.batch(step, dist.rank, dist.world)
    torch.manual_seed(int(np.random.default_rng([job.seed, 4, step, dist.rank]).integers(2**62)))
    for g in run.optimizer.param_groups:
        g["lr"] = one_cycle_lr(step, preset)
    outputs = training_step(run.forward, run.optimizer, (ids, attn, mask), run.dtype, preset.grad_clip, dist)
    counts = _step_counts(run.model, attn, mask, outputs, dist)
    run.losses.append(outputs["loss"].detach().float())
    run.budget = run.budget + counts  # step after step, as the budget was always summed
    run.state["step"] = step + 1  # the step is done: the state follows the weights


def _finish(run: _Run) -> dict:
    """Write the encoder and its metadata (rank 0; the metadata last) once every process is done."""
    job, preset, dist, device = run.job, run.job.preset, run.rt.dist, run.rt.device
    checksums = _param_checksums(run.model, dist)
    run.read()
    meta = {
        "format_version": checkpoints.FORMAT_VERSION,
        "complete": True,
        "encoder": job.encoder,
        "objective": job.objective,
        "preset": job.preset_name,
        "recipe": preset.to_dict(),
        "tokenizer": run.tokenizer.to_dict(),
        "pooling": preset.pooling,
        "seed": job.seed,
        "budget": {**run.state["budget"], "steps": run.step, "batch_size": preset.batch_size,
                   "train_seconds": round(time.perf_counter() - run.t_start, 2),
                   "device": device.split(":")[0], "dtype": run.dtype, "world_size": dist.world,
                   **({"compile": True, "compile_seconds": run.compile_seconds} if job.compile else {}),
                   "encoder_parameters": run.model.encoder_parameters(),
                   "total_parameters": sum(p.numel() for p in run.model.parameters())},
        "loss_history": run.state["loss_history"],
        "data": job.data_identity or {},
        "versions": versions(),
        "ddp": {"world_size": dist.world, "param_checksums": checksums},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if run.rt.main:
        checkpoints.write_encoder(job.out, run.model, meta)
    dist.barrier()
    return meta


def _empty_budget() -> dict:
    return {"sequences": 0, "input_tokens": 0, "encoder_tokens": 0, "predicted_tokens": 0,
            "flops": 0.0}


def _step_counts(model, attn, mask, outputs, dist: Dist):
    """The step's sequences, tokens and FLOPs, summed over the processes: float64 ``[5]`` on the
    device, in the order of the budget's keys."""
    import torch

    cost = {key: v.to(torch.float64) for key, v in model.step_tokens(attn, mask).items()}
    predicted = outputs["n_predicted"].to(torch.float64)
    flops = step_flops(model, cost["encoder_tokens"], cost["encoder_len"], cost["decoder_tokens"],
                       cost["decoder_len"], predicted)
    rows = torch.full((), attn.shape[0], dtype=torch.float64, device=attn.device)
    counts = torch.stack([rows, attn.sum().to(torch.float64), cost["encoder_tokens"], predicted, flops])
    if dist.world > 1:  # on the device: NCCL reduces device tensors only
        import torch.distributed as tdist

        tdist.all_reduce(counts)
    return counts


def _token_share(n_predicted: torch.Tensor, dist: Dist) -> torch.Tensor:
    """This process's predicted tokens over the mean per process (1 when all hold as many)."""
    import torch
    import torch.distributed as tdist

    total = n_predicted.detach().to(torch.float64).clone()
    tdist.all_reduce(total)
    return (n_predicted.to(torch.float64) * dist.world / total.clamp(min=1)).float()


def _param_checksums(model, dist: Dist) -> list[float]:
    """Sum of every parameter on each rank (one per rank): equal values mean the ranks agree."""
    import torch

    device = next(model.parameters()).device  # NCCL gathers device tensors only
    local = torch.tensor([float(sum(p.detach().double().sum() for p in model.parameters()))],
                         dtype=torch.float64, device=device)
    if dist.world == 1:
        return [float(local)]
    import torch.distributed as tdist

    gathered = [torch.zeros_like(local) for _ in range(dist.world)]
    tdist.all_gather(gathered, local)
    return [float(g) for g in gathered]


def _diff(a: dict, b: dict) -> str:
    keys = [k for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]
    return ", ".join(f"{k}: {a.get(k)!r} vs {b.get(k)!r}" for k in keys)[:300]


def _progress(total: int, initial: int, enabled: bool, label: str):
    if not enabled:
        return None
    from tqdm.auto import tqdm

    return tqdm(total=total, initial=initial, desc=f"pretrain {label}", unit="step",
                dynamic_ncols=True, file=sys.stderr)


# ----------------------------------------------------------------------------- the command's options
@dataclass(frozen=True)
class PretrainOptions:
    """Everything ``benchbarcode pretrain`` takes besides the data set: the encoder (its preset,
    steps, seed, device and dtype in the spec) and the recipe's overrides."""

    encoder: EncoderSpec
    out: str | Path
    batch_size: int | None = None
    lr: float | None = None
    warmup_steps: int | None = None
    mask_ratio: float | None = None
    loss_on: str | None = None
    max_length: int | None = None
    checkpoint_every: int | None = None
    resume: bool = False
    overwrite: bool = False
    progress: bool = True
    compile: bool = False

    def validate(self) -> PretrainPlan:
        """Every rule ``pretrain`` has, checked before any work (the output directory included);
        those that need no model code first, so that their errors come before torch is imported."""
        from benchbarcode.models.presets import get_preset
        from benchbarcode.registry import list_encoders
        from benchbarcode.spec import resolve_encoder

        self._check_numbers()
        encoder = resolve_encoder(self.encoder)  # --seed, --steps, --preset, --device
        trainable = [e.name for e in list_encoders(plugins=False) if e.meta.pretrainable]
        if not encoder.meta.pretrainable:
            raise UserError(f"encoder {self.encoder.name!r} is not pretrained by benchbarcode "
                            f"(pretrainable: {', '.join(trainable)})")
        preset = get_preset(encoder.meta.objective, self.encoder.preset).with_overrides(
            steps=self.encoder.steps, batch_size=self.batch_size, lr=self.lr, max_len=self.max_length,
            loss_on=self.loss_on, warmup_steps=self.warmup_steps, mask_ratio=self.mask_ratio)
        check_out(self.out, resume=self.resume, overwrite=self.overwrite)
        self._check_objective_options(encoder)
        return PretrainPlan(self, encoder, preset)

    def _check_numbers(self) -> None:
        if self.batch_size is not None and self.batch_size < 1:  # --steps: checked by resolve_encoder
            raise UserError("--batch-size must be >= 1")
        if self.lr is not None and not self.lr > 0:
            raise UserError("--lr must be > 0")
        if self.warmup_steps is not None and self.warmup_steps < 0:
            raise UserError("--warmup-steps must be >= 0")
        if self.mask_ratio is not None and not 0 < self.mask_ratio < 1:
            raise UserError("--mask-ratio must be between 0 and 1 (exclusive)")

    def _check_objective_options(self, encoder: ResolvedEncoder) -> None:
        """``--mask-ratio`` and ``--loss-on`` go to objectives that take them (their traits are
        read from the objective's module, which imports torch)."""
        from benchbarcode.models import objective_class
        from benchbarcode.registry import list_encoders

        def having(trait: str) -> str:  # the pretrainable encoders whose objective has ``trait``
            return " and ".join(e.name for e in list_encoders(plugins=False)
                                if e.meta.pretrainable and getattr(objective_class(e.meta.objective), trait))

        module = objective_class(encoder.meta.objective)
        if self.mask_ratio is not None and not module.masks:
            raise UserError(f"--mask-ratio applies to {having('masks')}, not {self.encoder.name}")
        if self.loss_on is not None and not module.chooses_loss_positions:
            raise UserError(f"--loss-on applies to {having('chooses_loss_positions')}, not {self.encoder.name}")


@dataclass(frozen=True)
class PretrainPlan:
    """Validated pretraining options: the resolved encoder and its recipe."""

    options: PretrainOptions
    encoder: ResolvedEncoder
    preset: Preset

    def job(self, ds) -> PretrainJob:
        """The job on ``ds``'s pretraining corpus (a :class:`~benchbarcode.data.BarcodeDataset`)."""
        opts, spec = self.options, self.encoder.spec
        sequences = ds.pretraining_sequences()
        if not sequences:
            raise UserError(f"{ds.name}: the pretraining corpus (splits {', '.join(ds.pretraining_splits)}) "
                            "holds no records")
        return PretrainJob(objective=self.encoder.meta.objective, preset=self.preset,
                           sequences=sequences, out=Path(opts.out), seed=spec.seed,
                           data_identity=ds.identity(), preset_name=spec.preset, encoder_name=self.encoder.name,
                           resume=opts.resume, overwrite=opts.overwrite, device=spec.device,
                           checkpoint_every=opts.checkpoint_every, progress=opts.progress, dtype=spec.dtype,
                           compile=opts.compile)
