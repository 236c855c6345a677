"""Pretraining loop shared by every in-house objective (MAE, MLM, causal).

* AdamW with a one-cycle learning rate (linear warm-up, cosine annealing to 1 % of the peak),
  gradient clipping, random offset augmentation (0..k-1 bases dropped), bf16 autocast on CUDA.
* Every random choice (batch order, offsets, masks, dropout) is a pure function of
  ``(seed, step)`` (dropout: and the rank), so ``resume`` continues exactly: the weights and the
  loss curve equal an uninterrupted run with the same seed. Ctrl-C is honoured between steps
  only (:class:`benchbarcode.runtime.StopBetweenSteps`), where the checkpoint is whole.
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
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from benchbarcode import __version__, checkpoints
from benchbarcode.errors import UserError
from benchbarcode.models import sample_mask
from benchbarcode.models.objectives import build_model
from benchbarcode.models.presets import Preset
from benchbarcode.runtime import (DTYPES, TRIM_EVERY, Dist, StopBetweenSteps, autocast, init_distributed,
                                  resolve_device, trim_heap)
from benchbarcode.tokenizers import KmerTokenizer

log = logging.getLogger("benchbarcode")


def one_cycle_lr(step: int, preset: Preset) -> float:
    """Learning rate at ``step`` (0-based): linear warm-up, then cosine down to 1 % of the peak."""
    peak, warm = preset.lr, min(preset.warmup_steps, preset.steps)
    if step < warm:
        return peak * (step + 1) / warm
    progress = (step - warm) / max(1, preset.steps - warm)
    return peak * (0.01 + 0.99 * 0.5 * (1.0 + math.cos(math.pi * min(1.0, progress))))


# ----------------------------------------------------------------------------- data order
class BatchPlan:
    """Which sequences and offsets form each step's global batch: a pure function of the step."""

    def __init__(self, n: int, batch_size: int, seed: int, k: int):
        if n == 0:
            raise UserError("the pretraining corpus is empty (splits pretrain, other_heldout, train)")
        self.n, self.batch_size, self.seed, self.k = n, batch_size, seed, k
        self._perms: dict[int, np.ndarray] = {}

    def _perm(self, epoch: int) -> np.ndarray:
        if epoch not in self._perms:
            self._perms = {epoch: np.random.default_rng([self.seed, 1, epoch]).permutation(self.n)}
        return self._perms[epoch]

    def indices(self, step: int) -> np.ndarray:
        pos = np.arange(step * self.batch_size, (step + 1) * self.batch_size)
        out = np.empty(self.batch_size, dtype=np.int64)
        for epoch in np.unique(pos // self.n):
            sel = pos // self.n == epoch
            out[sel] = self._perm(int(epoch))[pos[sel] % self.n]
        return out

    def offsets(self, step: int) -> np.ndarray:
        return np.random.default_rng([self.seed, 2, step]).integers(0, self.k, size=self.batch_size)


# ----------------------------------------------------------------------------- budget
def _block_params(module: torch.nn.Module | None) -> int:
    """Parameters of a transformer stack without its embedding tables."""
    if module is None:
        return 0
    emb = sum(p.numel() for n, p in module.named_parameters() if "embeddings" in n or n.startswith("wte") or n.startswith("wpe"))
    return sum(p.numel() for p in module.parameters()) - emb


def step_flops(model: torch.nn.Module, enc_tokens: int, enc_len: int, dec_tokens: int,
               dec_len: int, predicted: int) -> float:
    """Training FLOPs of one step: 6 x (non-embedding params x tokens + attention) + head."""
    enc = model.encoder
    cfg = enc.config
    layers = getattr(cfg, "num_hidden_layers", None) or cfg.n_layer
    hidden = getattr(cfg, "hidden_size", None) or cfg.n_embd
    flops = 6.0 * _block_params(enc) * enc_tokens + 6.0 * 2 * layers * hidden * enc_len * enc_tokens
    dec = getattr(model, "decoder", None)
    if dec is not None:
        dh, dl = dec.config.hidden_size, dec.config.num_hidden_layers
        flops += 6.0 * _block_params(dec) * dec_tokens + 6.0 * 2 * dl * dh * dec_len * dec_tokens
        proj = getattr(model, "proj", None)
        flops += 6.0 * sum(p.numel() for p in proj.parameters()) * enc_tokens if proj is not None else 0
    flops += 6.0 * sum(p.numel() for p in model.head.parameters()) * predicted
    return flops


def versions() -> dict:
    import transformers

    return {"benchbarcode": __version__, "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


# ----------------------------------------------------------------------------- one step
def build_optimizer(model: torch.nn.Module, preset: Preset, device: str = "cpu") -> torch.optim.Optimizer:
    """AdamW (betas 0.9/0.98, eps 1e-6), weight decay on matrices only; the fused kernel on CUDA."""
    def decays(name: str, p) -> bool:
        return p.ndim >= 2 and "LayerNorm" not in name and "ln_" not in name

    decay = [p for n, p in model.named_parameters() if decays(n, p)]
    no_decay = [p for n, p in model.named_parameters() if not decays(n, p)]
    return torch.optim.AdamW([{"params": decay, "weight_decay": preset.weight_decay},
                              {"params": no_decay, "weight_decay": 0.0}],
                             lr=preset.lr, betas=(0.9, 0.98), eps=1e-6, fused=device.startswith("cuda"))


def default_dtype(device: str) -> str:
    """The pretraining compute dtype when none is asked for: bfloat16 autocast on CUDA, float32 on CPU."""
    return "bfloat16" if device.startswith("cuda") else "float32"


def training_step(model: torch.nn.Module, optimizer: torch.optim.Optimizer, batch: tuple, dtype: str,
                  grad_clip: float | None, dist: Dist | None = None) -> dict:
    """One optimiser step on ``batch = (input_ids, attention_mask, mask)`` (on the model's device):
    forward under autocast in ``dtype``, backward, gradient clipping, ``optimizer.step()``.
    Returns the model's outputs (``loss`` still on the device: reading it synchronises).

    Under torchrun (``dist``) each process holds part of the global batch, and its mean loss is
    weighted by its share of the predicted tokens, so that DDP's average of the gradients is the
    gradient of the whole batch's mean loss (the step one process would take on it); ``loss`` is
    then that weighted loss, whose mean over the processes is the whole batch's."""
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


# ----------------------------------------------------------------------------- the loop
def pretrain(objective: str, preset: Preset, sequences: list[str], out_dir: str | Path, *,
             seed: int = 0, data_identity: dict | None = None, preset_name: str = "custom",
             encoder_name: str | None = None, resume: bool = False, overwrite: bool = False,
             device: str = "auto", checkpoint_every: int | None = None, progress: bool = True,
             dtype: str | None = None, on_step: Callable[[int, float], None] | None = None) -> dict:
    """Pretrain ``objective`` on ``sequences`` and write the encoder to ``out_dir``.

    ``dtype``: the autocast compute dtype (default :func:`default_dtype`: bfloat16 on CUDA,
    float32 on CPU); weights and optimizer state stay float32.

    Returns the metadata written to ``out_dir/benchbarcode.json``. ``on_step(step, loss)`` is
    called after every optimiser step (tests use it to interrupt a run).
    """
    out = Path(out_dir)
    device = resolve_device(device)
    dist = init_distributed(device)
    if dist.world > 1:
        device = resolve_device(device, dist.local_rank)
    dtype = dtype or default_dtype(device)
    if dtype not in DTYPES:
        raise UserError(f"--dtype {dtype}: expected one of {', '.join(DTYPES)}")
    if preset.batch_size % dist.world:
        raise UserError(f"--batch-size {preset.batch_size} is not divisible by the "
                        f"{dist.world} processes")
    config = {"objective": objective, "encoder": encoder_name or objective, "preset": preset_name,
              "recipe": preset.to_dict(), "seed": seed, "world_size": dist.world, "dtype": dtype}
    existing = checkpoints.check_target(out, resume=resume, overwrite=overwrite)
    if overwrite:
        if dist.main:
            checkpoints.clear(out)
        existing = None
    if existing is not None:  # a state saved before dtype was recorded ran the default
        existing["config"] = {"dtype": default_dtype(device), **existing["config"]}
    if existing is not None and existing["config"] != config:
        raise UserError(f"{out}: the unfinished run was started with other settings "
                        f"({_diff(existing['config'], config)}); use the same ones or --overwrite")

    torch.manual_seed(seed)
    model = build_model(objective, preset).to(device)
    tokenizer = KmerTokenizer(preset.k, max_len=preset.max_len)
    optimizer = build_optimizer(model, preset, device)
    state = {"step": 0, "loss_history": [], "budget": _empty_budget(), "config": config,
             "train_seconds": 0.0}
    if existing is not None:
        state = checkpoints.load_resumable(out, model, optimizer, device)
        log.info("resuming %s in %s from step %d of %d", objective, out, state["step"], preset.steps)
    ddp_model = model
    if dist.world > 1:
        from torch.nn.parallel import DistributedDataParallel

        ddp_model = DistributedDataParallel(model, device_ids=[dist.local_rank] if device.startswith("cuda") else None)

    plan = BatchPlan(len(sequences), preset.batch_size, seed, preset.k)
    every = checkpoint_every or max(50, preset.steps // 10)
    log_every = max(1, preset.steps // 2000)
    bar = _progress(preset.steps, state["step"], progress and dist.main, objective)
    model.train()
    window: list[float] = state.pop("window", [])  # losses not yet averaged into the history
    t_start = time.perf_counter() - state["train_seconds"]
    step = state["step"]
    saved = step if existing is not None else None  # the step the checkpoint on disk holds

    def save() -> None:
        nonlocal saved
        if dist.main and step > 0 and saved != step:
            state["train_seconds"] = time.perf_counter() - t_start
            checkpoints.save_resumable(out, model, optimizer, {**state, "window": window})
        saved = step

    # A step changes the weights, the optimizer state and the counters one after the other: only
    # between steps do they describe the same step, so only there is an interrupt honoured (a
    # SIGINT waits for the step in flight) and a checkpoint written.
    in_step = False
    with StopBetweenSteps() as stop:
        try:
            while not (stopping := stop.agreed(dist, device)) and step < preset.steps:
                in_step = True
                idx = plan.indices(step)[dist.rank::dist.world]
                offsets = plan.offsets(step)[dist.rank::dist.world]
                ids, attn = tokenizer([sequences[i] for i in idx], offset=offsets)
                ids_t, attn_t = torch.from_numpy(ids), torch.from_numpy(attn)
                # the mask of the whole global batch, this process's rows of it (as the sequences)
                gen = torch.Generator().manual_seed(int(np.random.default_rng([seed, 3, step, 0]).integers(2**62)))
                scores = torch.rand((preset.batch_size, ids.shape[1]), generator=gen)[dist.rank::dist.world]
                mask = sample_mask(ids_t, attn_t, preset.mask_ratio, scores=scores)
                torch.manual_seed(int(np.random.default_rng([seed, 4, step, dist.rank]).integers(2**62)))
                for g in optimizer.param_groups:
                    g["lr"] = one_cycle_lr(step, preset)
                outputs = training_step(ddp_model, optimizer, (ids_t.to(device), attn_t.to(device), mask.to(device)),
                                        dtype, preset.grad_clip, dist)
                loss_value = _mean_across(outputs["loss"].detach().float(), dist)
                counts = _step_counts(model, attn_t, mask, outputs, dist)
                step += 1  # the step is done: the state follows the weights
                state["step"] = step
                state["budget"] = {key: state["budget"][key] + counts[key] for key in counts}
                window.append(loss_value)
                if step % log_every == 0 or step == preset.steps:
                    state["loss_history"].append([step, round(float(np.mean(window)), 5)])
                    window = []
                in_step = False
                if step % TRIM_EVERY == 0:
                    trim_heap()
                if bar is not None:
                    bar.update(1)
                    bar.set_postfix(loss=f"{loss_value:.3f}",
                                    seq_s=f"{state['budget']['sequences'] / max(1e-9, time.perf_counter() - t_start):.0f}")
                if on_step is not None:
                    on_step(step, loss_value)
                if step % every == 0 and step < preset.steps:
                    save()
            if stopping:
                save()
                raise KeyboardInterrupt(f"pretraining stopped after step {step} of {preset.steps}" + (
                    f", saved in {out / checkpoints.CHECKPOINT_DIR}" if step else ""))
        except KeyboardInterrupt:
            if not in_step:
                save()
            elif dist.main:  # raised inside a step (not by SIGINT, which waits): its state is not whole
                log.warning("interrupted inside step %d: the checkpoint %s is kept", step + 1,
                            f"of step {saved}" if saved else "(none yet)")
            raise
        finally:
            if bar is not None:
                bar.close()

    checksums = _param_checksums(model, dist)
    meta = {
        "format_version": checkpoints.FORMAT_VERSION,
        "complete": True,
        "encoder": encoder_name or objective,
        "objective": objective,
        "preset": preset_name,
        "recipe": preset.to_dict(),
        "tokenizer": tokenizer.to_dict(),
        "pooling": preset.pooling,
        "seed": seed,
        "budget": {**state["budget"], "steps": step, "batch_size": preset.batch_size,
                   "train_seconds": round(time.perf_counter() - t_start, 2),
                   "device": device.split(":")[0], "dtype": dtype, "world_size": dist.world,
                   "encoder_parameters": model.encoder_parameters(),
                   "total_parameters": sum(p.numel() for p in model.parameters())},
        "loss_history": state["loss_history"],
        "data": data_identity or {},
        "versions": versions(),
        "ddp": {"world_size": dist.world, "param_checksums": checksums},
        "created": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
    }
    if dist.main:
        checkpoints.write_encoder(out, model, meta)
    dist.barrier()
    return meta


def _empty_budget() -> dict:
    return {"sequences": 0, "input_tokens": 0, "encoder_tokens": 0, "predicted_tokens": 0,
            "flops": 0.0}


def _step_counts(model, attn, mask, outputs, dist: Dist) -> dict:
    """This step's sequences, tokens and FLOPs, summed over the processes (budget keys)."""
    input_tokens = int(attn.bool().sum())
    cost = model.step_tokens(attn, mask)
    enc_tokens = cost["encoder_tokens"]
    predicted = int(outputs["n_predicted"])
    flops = step_flops(model, enc_tokens, cost["encoder_len"], cost["decoder_tokens"],
                       cost["decoder_len"], predicted)
    vals = torch.tensor([attn.shape[0], input_tokens, enc_tokens, predicted, flops], dtype=torch.float64,
                        device=next(model.parameters()).device)  # NCCL reduces device tensors only
    if dist.world > 1:
        import torch.distributed as tdist

        tdist.all_reduce(vals)
    return {key: (v if key == "flops" else int(v))
            for key, v in zip(_empty_budget(), vals.tolist())}


def _token_share(n_predicted: torch.Tensor, dist: Dist) -> torch.Tensor:
    """This process's predicted tokens over the mean per process (1 when all hold as many)."""
    import torch.distributed as tdist

    total = n_predicted.detach().to(torch.float64).clone()
    tdist.all_reduce(total)
    return (n_predicted.to(torch.float64) * dist.world / total.clamp(min=1)).float()


def _mean_across(x: torch.Tensor, dist: Dist) -> float:
    if dist.world > 1:
        import torch.distributed as tdist

        x = x.clone()
        tdist.all_reduce(x)
        x /= dist.world
    return float(x)


def _param_checksums(model, dist: Dist) -> list[float]:
    """Sum of every parameter on each rank (one per rank): equal values mean the ranks agree."""
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
