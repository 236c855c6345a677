"""The cost of an encoder: ``benchbarcode profile``.

What is measured, and how:

* **Throughput** (``infer``): ``encoder.embed`` on ``B`` synthetic barcodes of ``length`` nt
  (random ACGT, seeded) for each batch size ``B``: warm-up calls, then timed repeats (at least
  ``repeats``, and at least ``min_seconds`` of timing) with the device synchronised around each;
  the median, quartiles and count of sequences/s, nucleotides/s and tokens/s (the encoder's own
  tokens, where it states a tokenizer). ``embed`` is what a user runs: tokenisation, forward,
  pooling and the copy back to the host are all in the time. ``train`` times one pretraining step
  of the encoder's objective (forward, backward, gradient clipping, AdamW) on a batch of ``B``.
* **Peak memory**: on CUDA, ``torch.cuda.max_memory_allocated`` after a reset, above what was
  allocated before the call. On CPU, a dedicated child process (spawned: nothing inherited from
  this one) builds the same encoder, warms it with one sequence and, for each batch size in
  ascending order, resets the kernel's peak-RSS counter (``/proc/self/clear_refs`` ``5``) and
  reads ``VmHWM`` after the call minus ``VmRSS`` before it: the resident memory the call added
  at its peak (weights and libraries excluded; they are in ``resident_mb``).
* **FLOPs**: counted by ``torch.utils.flop_counter.FlopCounterMode`` over one call (matmuls and
  attention; element-wise work is not counted) and, for BERT and GPT-2 encoders, derived from
  the config (:func:`forward_flops`; training: :func:`benchbarcode.pretrain.step_flops`); the
  ratio of the two is recorded. Achieved FLOP/s = counted FLOPs x sequences/s; utilisation =
  achieved / the dense-matmul FLOP/s measured (:func:`matmul_rate`) on the same device and dtype
  in the same run.

The result is a file of the task results' schema family (``kind: "profile"``, validated by
:func:`benchbarcode.results.validate_result`) at ``DIR/<encoder>/<profile-id>/profile.json``; the
leaderboard shows its sequences/s and peak memory beside the accuracy of the encoder it describes
(:func:`cost_key`). Nothing here prints.
"""

from __future__ import annotations

import dataclasses
import gc
import statistics
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from benchbarcode.canonical import digest
from benchbarcode.errors import UserError
from benchbarcode.contracts import EncoderMeta
from benchbarcode.spec import EncoderSpec, ResolvedEncoder, resolve_encoder

MODES = ("infer", "train")
COST_FIELDS = ("tokenizer", "k", "layers", "heads", "hidden_size", "max_length", "embedding_dim", "parameters")


@dataclass(frozen=True)
class ProfileOptions:
    """Everything ``benchbarcode profile`` takes. The encoder's spec carries its preset (the
    architecture of an in-house encoder without a checkpoint, and of --mode train), its seed (of
    the sequences and weights) and its device."""

    encoder: EncoderSpec
    mode: str = "infer"
    batch_sizes: tuple[int, ...] = (1, 16, 64, 256)
    dtype: str = "float32"
    length: int = 658  # nucleotides per synthetic barcode (the COI-5P barcode region)
    warmup: int = 2
    repeats: int = 5
    min_seconds: float = 1.0  # per batch size: repeat until this much has been timed
    memory: bool = True
    compile: bool = False  # train: the step under torch.compile (its first call, compiling, timed apart)
    results_dir: str | None = "results"  # None or '': write nothing
    command: list[str] | None = None

    def __post_init__(self):
        if isinstance(self.encoder, str):  # ProfileOptions("mae"): a name alone
            object.__setattr__(self, "encoder", EncoderSpec(self.encoder))

    def encoder_spec(self) -> EncoderSpec:
        """The spec the encoder is built from: the profile's dtype given to its factory unless it
        is the default float32 and the options do not name one."""
        if self.dtype != "float32" or "dtype" in self.encoder.options:
            return dataclasses.replace(self.encoder, dtype=self.dtype)
        return self.encoder

    def validate(self) -> ResolvedEncoder:
        """Every rule ``profile`` has, checked before any work; the resolved encoder."""
        from benchbarcode.runtime import DTYPES

        if self.mode not in MODES:
            raise UserError(f"--mode {self.mode}: expected one of {', '.join(MODES)}")
        if self.dtype not in DTYPES:
            raise UserError(f"--dtype {self.dtype}: expected one of {', '.join(DTYPES)}")
        if not self.batch_sizes or min(self.batch_sizes) < 1:
            raise UserError("--batch-sizes: expected positive integers, e.g. 1,16,64,256")
        if self.length < 1:
            raise UserError("--length must be >= 1")
        if self.repeats < 1 or self.warmup < 0:
            raise UserError("--repeats must be >= 1 and --warmup >= 0")
        if self.compile and self.mode != "train":
            raise UserError("--compile applies to --mode train (the pretraining step)")
        if self.compile and self.warmup < 1:
            raise UserError("--compile needs --warmup >= 1 (the first call compiles; it is timed apart)")
        if self.results_dir:
            from benchbarcode.fileio import check_output_dir

            check_output_dir(self.results_dir, "--results-dir")
        if self.mode == "train" and self.encoder.checkpoint is not None:  # before resolving: the path is beside the point
            raise UserError("--mode train profiles a preset's pretraining step; --checkpoint applies to --mode infer")
        encoder = resolve_encoder(self.encoder_spec())
        from benchbarcode.run import require_embedding

        require_embedding(encoder, "profile")
        if self.mode == "train":
            _check_trainable(encoder)
        return encoder


def _check_trainable(encoder: ResolvedEncoder) -> None:
    if not encoder.meta.pretrainable:
        raise UserError(f"--mode train: encoder {encoder.spec.name!r} is not pretrained by benchbarcode "
                        "(profile its inference with --mode infer)")
    if encoder.spec.options:
        raise UserError("--mode train takes no --encoder-option (the preset sets the architecture)")


# ----------------------------------------------------------------------------- what is profiled
def synthetic_barcodes(n: int, length: int, seed: int) -> list[str]:
    """``n`` random ACGT sequences of ``length`` nt (seeded)."""
    rng = np.random.default_rng([seed, length])
    letters = np.frombuffer(b"ACGT", dtype=np.uint8)[rng.integers(0, 4, size=(n, length))]
    return [row.tobytes().decode() for row in letters]


def build_encoder(encoder: ResolvedEncoder, device: str):
    """The encoder to profile, on ``device``.

    An in-house encoder without a checkpoint is its preset's architecture, randomly initialised
    from the spec's seed (its factory's ``initial_preset``): its cost does not depend on its
    weights, and nothing is pretrained to measure it."""
    if encoder.pretrained_first:
        return encoder.create(device, initial_preset=encoder.spec.preset, initial_seed=encoder.spec.seed)
    return encoder.create(device)


def cost_key(meta: dict) -> str:
    """What makes two encoder records cost the same: the name, the options that change the
    architecture (not the seed, dtype or device) and the architecture's sizes. Weights, and so
    pretraining, do not change the cost: a pretrained ``mae`` and its preset's profile match."""
    options = {k: v for k, v in (meta.get("options") or {}).items()
               if k not in ("seed", "dtype", "device", "preset")}  # a preset's cost is in the sizes
    return digest({"name": meta["name"], "options": options, **{f: meta.get(f) for f in COST_FIELDS}}, 16)


def _sync(device: str) -> None:
    if device.startswith("cuda"):
        import torch

        torch.cuda.synchronize(device)


# ----------------------------------------------------------------------------- FLOPs
#: the architectures whose layers :func:`forward_flops` describes (others may differ in more than sizes)
_FLOPS_MODEL_TYPES = ("bert", "gpt2")


def forward_flops(config, tokens: int) -> float | None:
    """Forward FLOPs of one sequence of ``tokens`` tokens through a BERT or GPT-2 encoder: per
    layer 2 x tokens x (4 h^2 attention projections + 2 h f feed-forward) plus 4 x tokens^2 x h for
    the attention scores and their weighted sum (multiply-adds count 2). None for other configs."""
    from benchbarcode.models.sizes import transformer_sizes

    if getattr(config, "model_type", "") not in _FLOPS_MODEL_TYPES:
        return None
    sizes = transformer_sizes(config)
    h, f, layers = sizes["hidden"], sizes["ffn"], sizes["layers"]
    return float(layers * (2 * tokens * (4 * h * h + 2 * h * f) + 4 * tokens * tokens * h))


def counted_flops(call) -> float:
    """FLOPs torch counts while ``call()`` runs (``FlopCounterMode``: matmuls, convolutions, attention)."""
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with counter:
        call()
    return float(counter.get_total_flops())


def matmul_rate(device: str, dtype: str, size: int | None = None, repeats: int = 5) -> dict:
    """Dense matmul FLOP/s of ``size`` x ``size`` matrices in ``dtype`` on ``device`` (median of
    ``repeats`` after one warm-up): the ceiling a utilisation is measured against."""
    import torch

    size = size or (8192 if device.startswith("cuda") else 2048)
    gen = torch.Generator(device="cpu").manual_seed(0)
    a = torch.randn(size, size, generator=gen).to(device=device, dtype=getattr(torch, dtype))
    b = torch.randn(size, size, generator=gen).to(device=device, dtype=getattr(torch, dtype))
    times = []
    for i in range(repeats + 1):
        _sync(device)
        start = time.perf_counter()
        torch.mm(a, b)
        _sync(device)
        if i:
            times.append(time.perf_counter() - start)
    seconds = statistics.median(times)
    return {"size": size, "seconds": seconds, "flop_per_s": 2.0 * size ** 3 / seconds}


# ----------------------------------------------------------------------------- timing
def _timed(call, device: str, warmup: int, repeats: int, min_seconds: float) -> list[float]:
    for _ in range(warmup):
        call()
    times: list[float] = []
    while len(times) < repeats or (sum(times) < min_seconds and len(times) < 1000):
        _sync(device)
        start = time.perf_counter()
        call()
        _sync(device)
        times.append(time.perf_counter() - start)
    return times


def _rates(times: list[float], per_call: dict) -> dict:
    """Median and quartiles of ``amount / time`` for each amount in ``per_call``."""
    q1, median, q3 = np.percentile(times, [25, 50, 75])
    out = {"repeats": len(times), "seconds_median": float(median), "seconds_q1": float(q1),
           "seconds_q3": float(q3)}
    for name, amount in per_call.items():
        if amount is None:
            out[f"{name}_per_s"] = None
            continue
        out[f"{name}_per_s"] = amount / median
        out[f"{name}_per_s_q1"] = amount / q3  # the slower quartile of times is the lower rate
        out[f"{name}_per_s_q3"] = amount / q1
    return out


class _Workload:
    """One call to time for batch size ``B``: an embedding (infer) or a pretraining step (train)."""

    def __init__(self, opts: ProfileOptions, encoder: ResolvedEncoder, device: str):
        self.opts, self.resolved, self.device = opts, encoder, device
        self.sequences = synthetic_barcodes(max(opts.batch_sizes), opts.length, encoder.spec.seed)
        if opts.mode == "infer":
            self.encoder = build_encoder(encoder, device)
            self.meta = self.encoder.meta
            tokenizer = getattr(self.encoder, "tokenizer", None)
            self.tokens = (int(tokenizer([self.sequences[0]])[1].sum())
                           if callable(tokenizer) and hasattr(tokenizer, "k") else None)
            model = getattr(self.encoder, "model", None)
            config = getattr(model, "config", None)
            self.analytic = forward_flops(config, self.tokens) if config is not None and self.tokens else None
            self.torch_based = model is not None
        else:
            self._build_training()

    def _build_training(self) -> None:
        import torch

        from benchbarcode.models import build_model
        from benchbarcode.models.presets import get_preset
        from benchbarcode.pretrain import build_optimizer
        from benchbarcode.runtime import compile_step
        from benchbarcode.tokenizers import KmerTokenizer

        encoder = self.resolved
        _check_trainable(encoder)
        objective, spec = encoder.meta.objective, encoder.spec
        preset = get_preset(objective, spec.preset)
        torch.manual_seed(spec.seed)
        self.model = build_model(objective, preset).to(self.device).train()
        self.forward = compile_step(self.model, self.device) if self.opts.compile else self.model
        self.optimizer = build_optimizer(self.model, preset, self.device)
        self.preset = preset
        self.tokenizer = KmerTokenizer(preset.k, max_len=preset.max_len)
        self.tokens = int(self.tokenizer([self.sequences[0]])[1].sum())
        self.torch_based = True
        in_float32 = dataclasses.replace(encoder, spec=dataclasses.replace(spec, dtype=None))
        self.meta = dataclasses.replace(build_encoder(in_float32, "cpu").meta, dtype=self.opts.dtype)
        self.batches: dict[int, tuple] = {}

    def _batch(self, size: int) -> tuple:
        import torch

        from benchbarcode.models import sample_mask

        if size not in self.batches:
            ids, attn = self.tokenizer(self.sequences[:size])
            ids_t, attn_t = torch.from_numpy(ids), torch.from_numpy(attn)
            mask = sample_mask(ids_t, attn_t, self.preset.mask_ratio,
                               generator=torch.Generator().manual_seed(self.resolved.spec.seed))
            self.batches[size] = (ids_t.to(self.device), attn_t.to(self.device), mask.to(self.device))
        return self.batches[size]

    def call(self, size: int):
        if self.opts.mode == "infer":
            seqs = self.sequences[:size]
            return lambda: self.encoder.embed(seqs, batch_size=size)
        from benchbarcode.pretrain import training_step

        batch = self._batch(size)
        return lambda: training_step(self.forward, self.optimizer, batch, self.opts.dtype, self.preset.grad_clip)

    def analytic_flops(self, size: int) -> float | None:
        """Derived FLOPs of one call of batch ``size``."""
        if self.opts.mode == "infer":
            return None if self.analytic is None else self.analytic * size
        from benchbarcode.pretrain import step_flops

        import torch

        ids, attn, mask = self._batch(size)
        cost = {key: int(v) for key, v in self.model.step_tokens(attn, mask).items()}
        with torch.no_grad():
            predicted = int(self.model(ids, attn, mask)["n_predicted"])
        return step_flops(self.model, cost["encoder_tokens"], cost["encoder_len"], cost["decoder_tokens"],
                          cost["decoder_len"], predicted)

    def counted_flops(self, size: int) -> float | None:
        """FLOPs torch counts in one call (the optimizer's element-wise update is not counted)."""
        if not self.torch_based:
            return None
        if self.opts.mode == "infer":
            return counted_flops(self.call(size))
        from benchbarcode.runtime import autocast

        model, batch = self.model, self._batch(size)

        def forward_backward():
            with autocast(self.device, self.opts.dtype):
                loss = model(*batch)["loss"]
            loss.backward()
            model.zero_grad(set_to_none=True)

        return counted_flops(forward_backward)


# ----------------------------------------------------------------------------- memory
#: why CPU peak memory is not measured on a kernel without a writable /proc/self/clear_refs
#: (a limitation of the machine, unlike an error in the measuring child)
PEAK_RESET_UNSUPPORTED = "the peak resident size cannot be reset here (/proc/self/clear_refs)"


def _status_kb(field_name: str) -> int | None:
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith(field_name + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def _reset_peak_rss() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as fh:
            fh.write("5")
        return True
    except OSError:
        return False


def _memory_child(opts: ProfileOptions, device: str, queue) -> None:
    """In a spawned child: the resident memory each batch size's call adds at its peak."""
    try:
        before = _status_kb("VmRSS")
        work = _Workload(opts, resolve_encoder(opts.encoder_spec()), device)  # its own process: its own lookup
        work.call(1)()  # lazy initialisation (kernels, optimizer state) is not the call's memory
        built = _status_kb("VmRSS")
        out = {}
        for size in sorted(opts.batch_sizes):
            call = work.call(size)
            gc.collect()
            if not _reset_peak_rss():
                queue.put({"unsupported": PEAK_RESET_UNSUPPORTED})
                return
            base = _status_kb("VmRSS")
            call()
            peak = _status_kb("VmHWM")
            out[size] = {"peak_mb": (peak - base) / 1024, "resident_mb": peak / 1024}
        queue.put({"sizes": out, "model_mb": (built - before) / 1024 if built and before else None})
    except BaseException as exc:  # reported by the parent, which owns the error message
        queue.put({"error": f"{type(exc).__name__}: {exc}"})


def cpu_peak_memory(opts: ProfileOptions, device: str) -> dict:
    """``{"sizes": {batch size: {"peak_mb", "resident_mb"}}, "model_mb"}`` measured in a spawned
    child process; instead ``{"unsupported": reason}`` where this kernel cannot reset the peak, or
    ``{"error": message}`` where the child raised."""
    import multiprocessing

    ctx = multiprocessing.get_context("spawn")
    queue = ctx.Queue()
    child = ctx.Process(target=_memory_child, args=(opts, device, queue), daemon=True)
    child.start()
    try:
        return queue.get(timeout=1800)
    finally:
        child.join(timeout=60)
        if child.is_alive():
            child.kill()


# ----------------------------------------------------------------------------- the pipeline
def profile_id(meta: EncoderMeta, opts: ProfileOptions, device: str, machine: str) -> str:
    ident = {"encoder": meta.identity(), "mode": opts.mode, "preset": opts.encoder.preset, "device": device,
             "dtype": opts.dtype, "length": opts.length, "batch_sizes": sorted(opts.batch_sizes), "machine": machine,
             **({"compile": True} if opts.compile else {})}
    return f"profile-{opts.mode}-{device.split(':')[0]}-{opts.dtype}-{digest(ident, 12)}"


def machine_name(device: str) -> str:
    """The processor that ran the profile: the GPU's name, else the CPU model."""
    import platform

    if device.startswith("cuda"):
        import torch

        return torch.cuda.get_device_name(device)
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def profile_encoder(opts: ProfileOptions, encoder: ResolvedEncoder | None = None, progress: bool = False) -> dict:
    """Profile the encoder of ``opts`` (``encoder``: its resolved spec, from :meth:`ProfileOptions.validate`);
    returns the profile result (see the module docstring)."""
    import torch

    from benchbarcode.results import build_profile_result
    from benchbarcode.runtime import setup

    encoder = encoder or opts.validate()
    device = setup(encoder.spec.device).device
    work = _Workload(opts, encoder, device)
    ceiling = matmul_rate(device, opts.dtype) if work.torch_based else None
    sizes = sorted(set(opts.batch_sizes))
    bar = None
    if progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=len(sizes), desc=f"profile {encoder.spec.name} ({opts.mode})", unit="batch size",
                   leave=False)
    rows = []
    for size in sizes:
        rows.append(_measure(work, size, ceiling))
        if bar is not None:
            bar.update(1)
    if bar is not None:
        bar.close()
    memory_note = _cpu_memory(opts, device, rows) if device == "cpu" else None
    machine = machine_name(device)
    meta, spec = work.meta, encoder.spec
    return build_profile_result(
        run_id=profile_id(meta, opts, device, machine), encoder_meta=meta.to_dict(), device=device,
        dtype=opts.dtype, command=opts.command,
        profile={"mode": opts.mode, "preset": spec.preset if opts.mode == "train" or spec.checkpoint is None else None,
                 "machine": machine, "threads": torch.get_num_threads(), "length_nt": opts.length,
                 "tokens_per_sequence": work.tokens, "warmup": opts.warmup, "min_repeats": opts.repeats,
                 "min_seconds": opts.min_seconds, "seed": spec.seed, "cost_key": cost_key(meta.to_dict()),
                 "matmul": ceiling, "memory_method": _memory_method(device, opts.memory),
                 **({"compile": True} if opts.compile else {}),
                 **({"memory_note": memory_note} if memory_note else {}),
                 "measurements": rows})


def _measure(work: "_Workload", size: int, ceiling: dict | None) -> dict:
    """One batch size: rates over the timed calls, CUDA peak memory, FLOPs and utilisation."""
    import torch

    opts, device = work.opts, work.device
    call = work.call(size)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats(device)
    compiling = None
    if opts.compile:  # the first call compiles the step for this batch size: timed apart
        _sync(device)
        start = time.perf_counter()
        call()
        _sync(device)
        compiling = round(time.perf_counter() - start, 3)
    times = _timed(call, device, opts.warmup - (compiling is not None), opts.repeats, opts.min_seconds)
    row = {"batch_size": size, **_rates(times, {"sequences": size, "nucleotides": size * opts.length,
                                                 "tokens": None if work.tokens is None else size * work.tokens})}
    if compiling is not None:
        row["compile_seconds"] = compiling
    if device.startswith("cuda"):
        base = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        call()
        _sync(device)
        row["peak_mb"] = (torch.cuda.max_memory_allocated(device) - base) / 2 ** 20
        row["resident_mb"] = torch.cuda.max_memory_allocated(device) / 2 ** 20
    counted = work.counted_flops(size)
    analytic = work.analytic_flops(size)
    row["flops_per_sequence"] = None if counted is None else counted / size
    row["flops_per_sequence_derived"] = None if analytic is None else analytic / size
    row["flops_counted_vs_derived"] = counted / analytic if counted and analytic else None
    achieved = counted / row["seconds_median"] if counted else None
    row["flop_per_s"] = achieved
    row["utilisation"] = achieved / ceiling["flop_per_s"] if achieved and ceiling else None
    return row


def _cpu_memory(opts: ProfileOptions, device: str, rows: list[dict]) -> str | None:
    """Fill ``peak_mb`` / ``resident_mb`` of CPU ``rows`` from a child process; the note on why
    they are missing, if they are."""
    if not opts.memory:
        for row in rows:
            row["peak_mb"] = row["resident_mb"] = None
        return "not measured (--no-memory)"
    report = cpu_peak_memory(opts, device)
    reason = report.get("unsupported") or report.get("error")
    for row in rows:
        measured = (report.get("sizes") or {}).get(row["batch_size"], {})
        row["peak_mb"], row["resident_mb"] = measured.get("peak_mb"), measured.get("resident_mb")
    return f"not measured: {reason}" if reason else None


def _memory_method(device: str, memory: bool) -> str:
    if device.startswith("cuda"):
        return "torch.cuda.max_memory_allocated after a reset, above memory_allocated before the call"
    if not memory:
        return "not measured"
    return ("a spawned child process: VmHWM after the call minus VmRSS before it, the peak reset "
            "(/proc/self/clear_refs 5) before each batch size, ascending")


def write_profile(results_dir: str | Path, result: dict) -> Path:
    """Write ``result`` to ``DIR/<encoder>/<profile-id>/profile.json`` (atomically)."""
    from benchbarcode.store import ResultStore

    return ResultStore(results_dir).write(result)
