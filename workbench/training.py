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

__all__ = ["TrainConfig", "History", "EpochClock", "GradientStep", "TensorData", "fit", "train_loop", "evaluate", "predict", "set_seed",
           "as_tensors", "as_dataset", "shuffled_batches", "make_optimizer", "cross_entropy", "check_config", "torch_threads"]

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
    workbench.validation.InvalidParameterError: The 'epochs' parameter of TrainConfig must be an int >= 1. Got 0 instead.
    >>> TrainConfig(lr=float("inf"))
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'lr' parameter of TrainConfig must be a float > 0. Got inf instead.
    """

    epochs: int = 5
    batch_size: int = 64
    lr: float = 1e-3
    optimizer: str = "adam"
    momentum: float = 0.0
    weight_decay: float = 0.0
    seed: int = 0

    def __post_init__(self):
        from workbench.validation import Interval, Options, check_fields

        check_fields(self, epochs=Interval(int, 1, None), batch_size=Interval(int, 1, None),
                     lr=Interval(float, 0, None, closed="neither"), optimizer=Options(_OPTIMIZERS),
                     momentum=Interval(float, 0, 1, closed="left"), weight_decay=Interval(float, 0, None),
                     seed=Interval(int))


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


def shuffled_batches(n: int, batch_size: int, *, generator: torch.Generator | None):
    """Row numbers of one epoch in shuffled fixed-size batches (the last one may be smaller).

    Examples
    --------
    >>> [b.tolist() for b in shuffled_batches(5, 2, generator=torch.Generator().manual_seed(0))]
    [[4, 0], [1, 3], [2]]
    """
    order = torch.randperm(n, generator=generator)
    for start in range(0, n, batch_size):
        yield order[start : start + batch_size]


def make_optimizer(model: nn.Module, config: TrainConfig) -> torch.optim.Optimizer:
    """The optimizer ``config`` names, over the parameters of ``model`` that require gradients.

    Examples
    --------
    >>> type(make_optimizer(nn.Linear(2, 1), TrainConfig(optimizer="sgd"))).__name__
    'SGD'
    """
    params = [p for p in model.parameters() if p.requires_grad]
    if not params:
        raise ValueError("The 'model' has no parameter that requires gradients: nothing to train.")
    if config.optimizer == "sgd":
        return torch.optim.SGD(params, lr=config.lr, momentum=config.momentum, weight_decay=config.weight_decay)
    return torch.optim.Adam(params, lr=config.lr, weight_decay=config.weight_decay)


class TensorData:
    """Training data held as two tensors ``(X, y)``: what :func:`as_dataset` makes of a tuple.

    Any object with ``__len__`` and ``batch(idx) -> (inputs, targets)`` can stand in for it (e.g.
    :class:`workbench.privacy.transformer.TokenizedTexts`, which pads each batch to its longest text).

    Examples
    --------
    >>> data = TensorData(torch.zeros(4, 2), [0, 1, 0, 1])
    >>> len(data), [tuple(t.shape) for t in data.batch(torch.tensor([0, 2]))]
    (4, [(2, 2), (2,)])
    """

    def __init__(self, X, y, *, owner: str = "TensorData"):
        self.X, self.y = as_tensors(X, y)
        if len(self.X) != len(self.y):
            raise ValueError(f"The 'train' parameter of {owner} must hold as many labels as inputs. "
                             f"Got {len(self.X)} inputs and {len(self.y)} labels.")

    def __len__(self) -> int:
        return len(self.y)

    def batch(self, idx: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[idx], self.y[idx]


def as_dataset(data, *, name: str = "train", owner: str = "fit"):
    """``data`` as an object with ``__len__`` and ``batch(idx)``: a pair ``(X, y)`` becomes a :class:`TensorData`.

    Examples
    --------
    >>> len(as_dataset((torch.zeros(3, 1), [0, 1, 1])))
    3
    >>> as_dataset("tweets")
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'train' parameter of fit must be a pair (X, y) or a dataset with batch(idx). Got 'tweets' instead.
    """
    from workbench.validation import InvalidParameterError

    if hasattr(data, "batch") and hasattr(data, "__len__"):
        out = data
    elif isinstance(data, (tuple, list)) and len(data) == 2:
        out = TensorData(*data, owner=owner)
    else:
        raise InvalidParameterError(f"The {name!r} parameter of {owner} must be a pair (X, y) or a dataset with batch(idx). "
                                    f"Got {data!r:.80} instead.")
    if len(out) == 0:
        raise ValueError(f"The {name!r} parameter of {owner} must not be empty.")
    return out


def cross_entropy(logits: torch.Tensor, target: torch.Tensor, idx: torch.Tensor | None = None) -> torch.Tensor:
    """The default ``loss_fn(logits, y, idx)``: mean cross-entropy over the batch (``idx`` unused)."""
    return nn.functional.cross_entropy(logits, target)


class GradientStep:
    """The training loop's hook: how one batch becomes parameter gradients (here: a plain backward pass).

    :func:`train_loop` calls :meth:`start` once, then per epoch :meth:`batches` and, per batch,
    :meth:`gradients` followed by ``self.optimizer.step()``, then :meth:`end_epoch` (extra history columns) and
    finally :meth:`close`. The DP engines of :mod:`workbench.privacy.dp` subclass it (clip + noise instead of a
    plain backward; Poisson-sampled batches; epsilon in the history).
    """

    #: progress-bar label
    label = "training"

    def start(self, model: nn.Module, *, n: int, config: TrainConfig, generator: torch.Generator) -> None:
        """Set up for ``n`` training rows: make ``self.model`` (what the loop calls) and ``self.optimizer``."""
        self.model, self.n, self.config, self.generator = model, n, config, generator
        self.optimizer = make_optimizer(model, config)

    def batches(self, epoch: int):
        """Row numbers of each batch of ``epoch`` (1-based)."""
        return shuffled_batches(self.n, self.config.batch_size, generator=self.generator)

    def gradients(self, inputs, targets: torch.Tensor, idx: torch.Tensor, loss_fn) -> float | None:
        """Put the batch's gradients in ``.grad``; return its mean loss (``None`` for an empty batch)."""
        self.optimizer.zero_grad(set_to_none=True)
        loss = loss_fn(self.model(inputs), targets, idx)
        loss.backward()
        return float(loss.detach())

    def end_epoch(self, epoch: int, *, steps: int) -> dict:
        """Extra columns of the epoch's history row."""
        return {}

    def close(self) -> None:
        """Release hooks, threads and wrappers (called even when training fails)."""


def train_loop(model: nn.Module, train, *, config: TrainConfig, step: GradientStep | None = None, val=None,
               loss_fn: LossFn | None = None, progress: bool = True) -> tuple[History, int]:
    """The one training loop: epochs of batches, a hook per step, per-epoch history; returns ``(history, steps)``.

    :func:`fit` (plain training) and :func:`workbench.privacy.dp.train` (the fast DP engine and both Opacus
    modes) are this loop with different ``step`` hooks. ``train`` is a pair ``(X, y)`` or a dataset with
    ``batch(idx)``; the history rows hold ``epoch``, ``train_loss``, ``seconds``, ``cpu_seconds``, what the hook
    adds, and ``val_loss`` / ``val_accuracy`` when ``val`` is given.

    Examples
    --------
    >>> X = torch.randn(32, 2); y = (X[:, 0] > 0).long()
    >>> history, steps = train_loop(nn.Linear(2, 2), (X, y), config=TrainConfig(epochs=2, batch_size=8), progress=False)
    >>> steps, [row["epoch"] for row in history.epochs]
    (8, [1, 2])
    """
    from tqdm.auto import tqdm

    data = as_dataset(train)
    step = step or GradientStep()
    loss_fn = loss_fn or cross_entropy
    generator = set_seed(config.seed)
    history, steps = History(), 0
    step.start(model, n=len(data), config=config, generator=generator)
    try:
        for epoch in tqdm(range(1, config.epochs + 1), desc=step.label, unit="epoch", disable=not progress):
            model.train()
            clock, total, count = EpochClock(), 0.0, 0
            for idx in step.batches(epoch):
                inputs, targets = data.batch(idx)
                loss = step.gradients(inputs, targets, idx, loss_fn)
                step.optimizer.step()
                steps += 1
                if loss is not None and len(idx):
                    total += loss * len(idx)
                    count += len(idx)
            row = {"epoch": epoch, "train_loss": total / max(count, 1), **clock.elapsed(), **step.end_epoch(epoch, steps=steps)}
            if val is not None:
                row.update({f"val_{k}": v for k, v in evaluate(model, val).items()})
            history.epochs.append(row)
    finally:
        step.close()
    return history, steps


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
    train : (X, y) or dataset
        Tensors or arrays (``y`` holds integer class ids), or an object with ``__len__`` and
        ``batch(idx) -> (inputs, targets)``.
    config : TrainConfig
    val : (X, y) or dataset, optional
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
    check_config(config, owner="fit")
    history, _ = train_loop(model, train, config=config, val=val, loss_fn=loss_fn, progress=progress)
    return history


def check_config(config, *, owner: str) -> TrainConfig:
    """``config`` if it is a :class:`TrainConfig`, else a named error."""
    from workbench.validation import InstanceOf, check

    return check(config, InstanceOf(TrainConfig), name="config", owner=owner)


def _chunks(data, batch_size: int):
    """``(inputs, targets or None)`` of consecutive rows of an array-like, a pair or a dataset with ``batch(idx)``."""
    if hasattr(data, "batch") and hasattr(data, "__len__"):
        for i in range(0, len(data), batch_size):
            yield data.batch(torch.arange(i, min(i + batch_size, len(data))))
        return
    X, y = as_tensors(*data) if isinstance(data, (tuple, list)) and len(data) == 2 else (as_tensors(data)[0], None)
    for i in range(0, len(X), batch_size):
        yield X[i : i + batch_size], (None if y is None else y[i : i + batch_size])


@torch.no_grad()
def _logits_and_labels(model: nn.Module, data, batch_size: int):
    was_training = model.training
    model.eval()
    try:
        parts = [(model(inputs), targets) for inputs, targets in _chunks(data, batch_size)]
    finally:
        model.train(was_training)
    labels = None if parts and parts[0][1] is None else torch.cat([t for _, t in parts])
    return torch.cat([p for p, _ in parts]), labels


def predict(model: nn.Module, x, *, batch_size: int = 1024) -> torch.Tensor:
    """Logits of ``model`` on ``x`` (array-like inputs, or a dataset with ``batch(idx)``), in eval mode, in batches."""
    if hasattr(x, "batch") and hasattr(x, "__len__"):
        return _logits_and_labels(model, x, batch_size)[0]
    return _logits_and_labels(model, as_tensors(x)[0], batch_size)[0]


def evaluate(model: nn.Module, data, *, batch_size: int = 1024) -> dict[str, float]:
    """Mean cross-entropy ``loss`` and ``accuracy`` of ``model`` on ``data = (X, y)`` (or a dataset with ``batch(idx)``)."""
    logits, y = _logits_and_labels(model, data, batch_size)
    return {
        "loss": float(nn.functional.cross_entropy(logits, y)),
        "accuracy": float((logits.argmax(1) == y).float().mean()),
    }
