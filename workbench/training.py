"""One fit/evaluate loop for every study, with progress bars and a :class:`History` result.

Data is given as a pair of tensors ``(X, y)``. Training batches also carry each sample's index into the
training set, so a custom ``loss_fn(logits, y, idx)`` can look up per-sample side information (e.g. an
old model's logits for focal distillation).
"""
from __future__ import annotations

import random
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Callable

import numpy as np
import torch
from torch import nn

__all__ = ["TrainConfig", "History", "EpochClock", "fit", "evaluate", "predict", "set_seed", "as_tensors", "torch_threads"]

LossFn = Callable[[torch.Tensor, torch.Tensor, torch.Tensor], torch.Tensor]
_OPTIMIZERS = ("adam", "sgd")


@dataclass(frozen=True)
class TrainConfig:
    """Hyper-parameters of :func:`fit`.

    Examples
    --------
    >>> TrainConfig(epochs=0)
    Traceback (most recent call last):
    ...
    ValueError: The 'epochs' parameter of TrainConfig must be an int >= 1. Got 0 instead.
    """

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self):
        for name in ("epochs", "batch_size"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"The '{name}' parameter of TrainConfig must be an int >= 1. Got {value!r} instead.")
        if not self.lr > 0:
            raise ValueError(f"The 'lr' parameter of TrainConfig must be > 0. Got {self.lr!r} instead.")
        if self.optimizer not in _OPTIMIZERS:
            raise ValueError(f"The 'optimizer' parameter of TrainConfig must be one of {_OPTIMIZERS}. Got {self.optimizer!r} instead.")
        if self.weight_decay < 0 or not 0 <= self.momentum < 1:
            raise ValueError("The 'weight_decay' parameter of TrainConfig must be >= 0 and 'momentum' in [0, 1).")


@dataclass
class History:
    """Per-epoch metrics of a training run (``epoch``, ``train_loss``, ``seconds``, ``val_*``...)."""

    epochs: list[dict] = field(default_factory=list)

    def to_records(self) -> list[dict]:
        return [dict(e) for e in self.epochs]

    def to_frame(self):
        import pandas as pd

        return pd.DataFrame(self.epochs)

    @property
    def final(self) -> dict:
        """Metrics of the last epoch (empty if none)."""
        return dict(self.epochs[-1]) if self.epochs else {}

    @property
    def seconds_per_epoch(self) -> float:
        return float(np.mean([e["seconds"] for e in self.epochs])) if self.epochs else float("nan")

    @property
    def cpu_seconds_per_epoch(self) -> float:
        """Process CPU time (all threads) per epoch; above ``seconds_per_epoch`` when several cores worked."""
        values = [e["cpu_seconds"] for e in self.epochs if "cpu_seconds" in e]
        return float(np.mean(values)) if values else float("nan")


class EpochClock:
    """Wall and process CPU time since creation, as the ``seconds`` / ``cpu_seconds`` of an epoch's history row.

    Examples
    --------
    >>> sorted(EpochClock().elapsed())
    ['cpu_seconds', 'seconds']
    """

    def __init__(self):
        self.wall, self.cpu = time.perf_counter(), time.process_time()

    def elapsed(self) -> dict[str, float]:
        return {"seconds": time.perf_counter() - self.wall, "cpu_seconds": time.process_time() - self.cpu}


def set_seed(seed: int) -> torch.Generator:
    """Seed python, numpy and torch; return a torch generator seeded the same way."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)
    return torch.Generator().manual_seed(seed)


@contextmanager
def torch_threads(n: int | None = 1):
    """Run a block with ``n`` torch intra-op threads (restored afterwards; ``None`` leaves them alone).

    The workbench's models are small: each op takes microseconds, so extra threads only add
    synchronisation, and on a busy machine they make each step many times slower.

    Examples
    --------
    >>> before = torch.get_num_threads()
    >>> with torch_threads(1):
    ...     torch.get_num_threads()
    1
    >>> torch.get_num_threads() == before
    True
    """
    if n is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def as_tensors(x, y=None) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Convert array-likes to tensors: floats to float32, integer labels to int64."""
    def conv(a, *, label):
        t = a if isinstance(a, torch.Tensor) else torch.as_tensor(np.asarray(a))
        if label:
            return t.long()
        return t.float() if t.is_floating_point() or t.dtype == torch.uint8 else t
    return conv(x, label=False), (None if y is None else conv(y, label=True))


def _batches(n: int, batch_size: int, *, shuffle: bool, generator: torch.Generator | None):
    order = torch.randperm(n, generator=generator) if shuffle else torch.arange(n)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def _make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


def fit(
    model: nn.Module,
    train: tuple,
    *,
    config: TrainConfig = TrainConfig(),
    val: tuple | None = None,
    loss_fn: LossFn | None = None,
    progress: bool = True,
) -> History:
    """Train ``model`` on ``train = (X, y)`` and return its per-epoch :class:`History`.

    Parameters
    ----------
    model : torch.nn.Module
        Maps a batch of ``X`` to logits.
    train : (X, y)
        Tensors or arrays; ``y`` holds integer class ids.
    config : TrainConfig
    val : (X, y), optional
        Evaluated after each epoch (``val_loss``, ``val_accuracy`` in the history).
    loss_fn : callable, optional
        ``loss_fn(logits, y, idx) -> scalar``; ``idx`` are the batch's row numbers in ``train``.
        Default: mean cross-entropy.
    progress : bool
        Show a progress bar over epochs.

    Examples
    --------
    >>> X = torch.randn(64, 2); y = (X[:, 0] > 0).long()
    >>> h = fit(MLP := __import__("workbench.models", fromlist=["MLP"]).MLP(in_features=2, out_features=2),
    ...         (X, y), config=TrainConfig(epochs=30, lr=0.05), val=(X, y), progress=False)
    >>> h.final["val_accuracy"] > 0.9
    True
    """
    from tqdm.auto import tqdm

    X, y = as_tensors(*train)
    if len(X) != len(y):
        raise ValueError(f"The 'train' parameter of fit must hold as many labels as inputs. Got {len(X)} inputs and {len(y)} labels.")
    if len(X) == 0:
        raise ValueError("The 'train' parameter of fit must not be empty.")
    generator = set_seed(config.seed)
    optimizer = _make_optimizer(model, config)
    loss_fn = loss_fn or (lambda logits, target, idx: nn.functional.cross_entropy(logits, target))
    history = History()
    for epoch in tqdm(range(1, config.epochs + 1), desc="training", unit="epoch", disable=not progress):
        model.train()
        clock, total, count = EpochClock(), 0.0, 0
        for idx in _batches(len(X), config.batch_size, shuffle=True, generator=generator):
            optimizer.zero_grad(set_to_none=True)
            loss = loss_fn(model(X[idx]), y[idx], idx)
            loss.backward()
            optimizer.step()
            total += float(loss.detach()) * len(idx)
            count += len(idx)
        row = {"epoch": epoch, "train_loss": total / count, **clock.elapsed()}
        if val is not None:
            row.update({f"val_{k}": v for k, v in evaluate(model, val).items()})
        history.epochs.append(row)
    return history


@torch.no_grad()
def predict(model: nn.Module, x, *, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` on ``x``, computed in eval mode in batches."""
    X, _ = as_tensors(x)
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])
    finally:
        model.train(was_training)


def evaluate(model: nn.Module, data: tuple, *, batch_size: int = 1024) -> dict[str, float]:
    """Mean cross-entropy ``loss`` and ``accuracy`` of ``model`` on ``data = (X, y)``."""
    X, y = as_tensors(*data)
    logits = predict(model, X, batch_size=batch_size)
    return {
        "loss": float(nn.functional.cross_entropy(logits, y)),
        "accuracy": float((logits.argmax(1) == y).float().mean()),
    }
