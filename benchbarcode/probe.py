"""Softmax-regression probe on standardised features: the ``closed-world`` task's classifier.

A module of its own so that the task module imports torch only when it evaluates: listing
tasks, ``--help`` and argument errors never load it. The protocol's settings (weight decays,
learning rate, epochs) belong to the task and are passed in.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

PREDICT_BATCH = 8192  # rows scored at once, to bound memory

DENORMAL_FLOOR = 1e-30  # softmax probabilities below this count as 0 in the gradient


class _CrossEntropy(torch.autograd.Function):
    """Mean cross-entropy whose gradient treats probabilities below :data:`DENORMAL_FLOOR` as 0.

    Once the probe fits, most of the thousand-odd softmax probabilities of a row fall below
    float32's normal range (about 1e-38); x86 arithmetic on such denormals is many times slower,
    and the weight-gradient product then dominates. Measured on 62k x 4,096 standardised k-mer
    features, 1,023 species, 2 CPU threads: 0.64 s per minibatch step with
    ``F.cross_entropy`` vs 0.11 s with this. Values below 1e-30 change no gradient entry that
    float32 can resolve next to the others.
    """

    @staticmethod
    def forward(ctx, logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
        logp = torch.log_softmax(logits, dim=1)
        p = logp.exp()
        ctx.save_for_backward(torch.where(p < DENORMAL_FLOOR, torch.zeros_like(p), p), target)
        return -logp.gather(1, target[:, None]).mean()

    @staticmethod
    def backward(ctx, grad_output: torch.Tensor):
        p, target = ctx.saved_tensors
        grad = p.clone()
        grad[torch.arange(target.shape[0], device=grad.device), target] -= 1.0
        return grad * (grad_output / target.shape[0]), None


def cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return _CrossEntropy.apply(logits, target)


def predict(weight: torch.Tensor, bias: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
    """Class indices predicted for ``x``, computed in batches to bound memory."""
    return torch.cat([(x[i:i + PREDICT_BATCH] @ weight.T + bias).argmax(dim=1)
                      for i in range(0, x.shape[0], PREDICT_BATCH)])


def train_probe(x: torch.Tensor, y: torch.Tensor, val_x: torch.Tensor, val_y: torch.Tensor,
                n_classes: int, seed: int, *, weight_decays: tuple[float, ...], learning_rate: float,
                batch_size: int, min_steps_per_epoch: int, max_epochs: int, patience: int,
                progress: bool = False) -> dict:
    """Train one softmax regression per weight decay in ``weight_decays``; select on val.

    ``x``/``val_x`` are standardised float32 features and ``y``/``val_y`` int64 class indices,
    all on the same device. Initialisation (uniform in +-1/sqrt(D), bias 0) and minibatch
    order come from a CPU ``torch.Generator`` seeded with ``seed``. Minibatches hold
    ``batch_size`` rows, fewer for small training sets so that an epoch has at least
    ``min_steps_per_epoch`` steps. Training stops after ``max_epochs``, or after
    ``patience`` epochs without a strictly better val accuracy. Returns the selected
    ``weight``, ``bias``, ``weight_decay``, ``epoch`` (1-based) and ``val_accuracy``; ties in
    val accuracy go to the later epoch, then the larger weight decay (the more trained, the more
    regularised model).
    """
    gen = torch.Generator().manual_seed(int(seed))
    dim, dev = x.shape[1], x.device
    bound = 1.0 / dim ** 0.5
    models = []  # (weight, bias) per weight decay; own init keeps torch's global RNG untouched
    for _ in weight_decays:
        weight = torch.empty(n_classes, dim).uniform_(-bound, bound, generator=gen)
        models.append((torch.nn.Parameter(weight.to(dev)),
                       torch.nn.Parameter(torch.zeros(n_classes, device=dev))))
    optimiser = torch.optim.AdamW(
        [{"params": list(m), "weight_decay": wd} for m, wd in zip(models, weight_decays)],
        lr=learning_rate)
    batch = max(1, min(batch_size, x.shape[0] // min_steps_per_epoch))
    best = {"val_accuracy": -1.0}
    stale = 0
    for epoch in tqdm(range(1, max_epochs + 1), desc=f"probe seed {seed}", disable=not progress):
        order = torch.randperm(x.shape[0], generator=gen).to(dev)
        for start in range(0, x.shape[0], batch):
            idx = order[start:start + batch]
            xb, yb = x[idx], y[idx]
            loss = sum(cross_entropy(F.linear(xb, w, b), yb) for w, b in models)  # disjoint
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
        stale += 1
        with torch.no_grad():
            for (weight, bias), wd in zip(models, weight_decays):
                acc = (predict(weight, bias, val_x) == val_y).float().mean().item()
                if acc > best["val_accuracy"]:
                    stale = 0
                if acc >= best["val_accuracy"]:
                    best = {"val_accuracy": acc, "weight_decay": wd, "epoch": epoch,
                            "weight": weight.detach().clone(), "bias": bias.detach().clone()}
        if stale >= patience:
            break
    return best


def train_linear_sgd(x: torch.Tensor, y: torch.Tensor, n_classes: int, seed: int, *, learning_rate: float,
                     momentum: float, weight_decay: float, epochs: int, batch_size: int,
                     progress: bool = False) -> tuple[torch.Tensor, torch.Tensor]:
    """One linear layer trained with SGD (momentum, weight decay on every parameter) for ``epochs``
    full passes of shuffled minibatches of ``batch_size`` rows (the last one smaller), mean
    cross-entropy; no selection. Returns the final ``(weight, bias)``.

    Initialisation as ``torch.nn.Linear``'s (weight and bias uniform in +-1/sqrt(D)) and the
    minibatch order come from a CPU ``torch.Generator`` seeded with ``seed``: the global RNG stays
    untouched. ``x`` is float32 ``[N, D]``, ``y`` int64 class indices, on one device.
    """
    gen = torch.Generator().manual_seed(int(seed))
    dim, dev = x.shape[1], x.device
    bound = 1.0 / dim ** 0.5
    weight = torch.nn.Parameter(torch.empty(n_classes, dim).uniform_(-bound, bound, generator=gen).to(dev))
    bias = torch.nn.Parameter(torch.empty(n_classes).uniform_(-bound, bound, generator=gen).to(dev))
    optimiser = torch.optim.SGD([weight, bias], lr=learning_rate, momentum=momentum, weight_decay=weight_decay)
    for _ in tqdm(range(epochs), desc=f"probe seed {seed}", disable=not progress):
        order = torch.randperm(x.shape[0], generator=gen).to(dev)
        for start in range(0, x.shape[0], batch_size):
            idx = order[start:start + batch_size]
            loss = cross_entropy(F.linear(x[idx], weight, bias), y[idx])
            optimiser.zero_grad(set_to_none=True)
            loss.backward()
            optimiser.step()
    return weight.detach(), bias.detach()
