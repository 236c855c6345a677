"""Process-level settings shared by every pipeline: which device to run on, the torchrun process
group, and the allocator."""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from typing import TYPE_CHECKING

from benchbarcode.errors import UserError

if TYPE_CHECKING:
    from typing_extensions import Self  # typing.Self from Python 3.11

DEVICES = ("auto", "cpu", "cuda")
DTYPES = ("float32", "bfloat16", "float16")  # inference and pretraining compute dtypes


def check_device(requested: str) -> None:
    """``requested`` names a device this machine has; torch is imported only to look for a GPU
    (options call this before any work: ``cpu`` and ``auto`` cost nothing)."""
    if requested not in DEVICES and not requested.startswith("cuda:"):
        raise UserError(f"--device {requested}: expected one of {', '.join(DEVICES)}")
    if requested.startswith("cuda"):
        import torch

        if not torch.cuda.is_available():
            raise UserError(f"--device {requested}: no CUDA device is available on this machine; use --device cpu "
                            "(or --device auto: the GPU when one is visible, else the CPU)")


def resolve_device(requested: str = "auto", local_rank: int | None = None) -> str:
    """The device a pipeline runs on; called once at a pipeline's entry.

    ``auto`` is ``cuda`` when a GPU is visible, else ``cpu``; ``cuda`` without a GPU is a
    UserError (:func:`check_device`). With ``local_rank`` (a torchrun process) a CUDA device is
    indexed: ``cuda:RANK``.
    """
    import torch

    check_device(requested)
    if requested == "auto":
        requested = "cuda" if torch.cuda.is_available() else "cpu"
    if requested == "cuda" and local_rank is not None:
        return f"cuda:{local_rank}"
    return requested


@dataclass(frozen=True)
class Dist:
    """This process's place among torchrun's processes (one process: rank 0 of 1)."""

    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    def barrier(self) -> None:
        """Wait for every process (nothing to wait for alone)."""
        if self.world > 1:
            import torch.distributed as tdist

            tdist.barrier()


def init_distributed(device: str) -> Dist:
    """Join the torchrun process group when launched by torchrun (WORLD_SIZE > 1): NCCL on CUDA,
    gloo on CPU."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as tdist

    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    if device.startswith("cuda"):
        import torch

        torch.cuda.set_device(local_rank)  # NCCL's barrier and collectives use the current device
    if not tdist.is_initialized():
        tdist.init_process_group(backend="nccl" if device.startswith("cuda") else "gloo")
    return Dist(tdist.get_rank(), tdist.get_world_size(), local_rank)


@dataclass(frozen=True)
class Runtime:
    """Where this process runs: its device (under torchrun, the one of its local rank) and its
    place among torchrun's processes."""

    device: str  # resolved: "cpu", "cuda", "cuda:1" under torchrun
    dist: Dist

    @property
    def main(self) -> bool:
        """Whether this is the process that prints and writes (rank 0)."""
        return self.dist.main


def setup(requested: str = "auto") -> Runtime:
    """Resolve ``requested`` (:func:`resolve_device`), join torchrun's process group when launched
    by it (:func:`init_distributed`), and there index a CUDA device by the local rank; called
    once at a pipeline's entry."""
    device = resolve_device(requested)
    dist = init_distributed(device)
    if dist.world > 1:
        device = resolve_device(device, dist.local_rank)
    return Runtime(device, dist)


class StopBetweenSteps:
    """Ctrl-C honoured between two training steps, never inside one (a context manager).

    Inside, SIGINT only sets :attr:`requested`; the loop asks :meth:`agreed` at each step boundary,
    saves what it holds and stops. A step interrupted midway would leave weights, optimizer state
    and counters from different steps (resuming from them is not the uninterrupted run). Installed
    only in the main thread and over Python's default handler (an ignored SIGINT stays ignored).
    Under torchrun every process gets the signal at a slightly different moment: :meth:`agreed`
    takes the maximum over the processes, so all stop after the same step.
    """

    def __init__(self):
        self.requested = False
        self._previous = None

    def __enter__(self) -> Self:
        import signal
        import threading

        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self._previous = signal.signal(signal.SIGINT, self._request)
        return self

    def _request(self, signum, frame) -> None:
        self.requested = True

    def __exit__(self, *exc) -> bool:
        if self._previous is not None:
            import signal

            signal.signal(signal.SIGINT, self._previous)
        return False

    def agreed(self, dist: Dist, device: str) -> bool:
        """Whether any process has been asked to stop (the same answer in every process)."""
        if dist.world == 1:
            return self.requested
        import torch
        import torch.distributed as tdist

        flag = torch.tensor([float(self.requested)], device=device)  # NCCL reduces device tensors only
        tdist.all_reduce(flag, op=tdist.ReduceOp.MAX)
        return bool(flag.item())



def compile_step(module, device: str, fullgraph: bool = True):
    """``torch.compile`` of a training step's module: shapes fixed (``dynamic=False``: the step's
    never change), ``fullgraph`` (a graph break raises). Off CUDA, dropout draws its numbers with
    aten's generator (inductor's ``fallback_random``): inductor's own per-element CPU generator made
    the compiled ``tiny`` MAE step slower than the eager one."""
    import torch

    options = None if device.startswith("cuda") else {"fallback_random": True}
    return torch.compile(module, fullgraph=fullgraph, dynamic=False, options=options)


def autocast(device: str, dtype: str):
    """``torch.autocast`` on ``device``'s type in ``dtype``; a no-op context for float32."""
    import contextlib

    import torch

    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(device.split(":")[0], dtype=getattr(torch, dtype))


TRIM_EVERY = 20  # training steps or embedding batches between two heap trims (see trim_heap)


@functools.lru_cache(maxsize=1)
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        import ctypes

        libc = ctypes.CDLL("libc.so.6")
        return libc if hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


def trim_heap() -> None:
    """Return the heap's free pages to the system (glibc ``malloc_trim(0)``); no-op elsewhere.

    Training steps and embedding batches allocate tensors of a different shape every time
    (trimmed padding, the MAE's packed visible length, the number of masked tokens), which
    fragments glibc's heap: freed pages stay resident and the resident size grows step after
    step. The earlier cure, a fixed 128 KiB mmap threshold, served every tensor by a fresh
    ``mmap`` and paid a page fault per 4 KiB touched. Calling this every :data:`TRIM_EVERY` steps
    keeps the resident size flat at a fraction of those faults (the measurements:
    ``tests/benchmarks/test_pretrain_step.py``; the guard: ``test_training_memory_stays_flat``).
    """
    libc = _libc()
    if libc is not None:
        libc.malloc_trim(0)
