"""DP-SGD training behind one entry shared with non-DP training.

:func:`train` trains a model on ``(X, y)`` with or without differential privacy and returns a
:class:`TrainResult` (history, final metrics, epsilon spent, seconds per epoch), whichever engine runs:

``"opacus-hooks"``
    Opacus's ``PrivacyEngine`` with ``grad_sample_mode="hooks"``: per-sample gradients are materialised.
``"opacus-ghost"``
    Opacus's fast gradient clipping (``grad_sample_mode="ghost"``): per-sample norms, then a second backward.
``"fast"``
    The workbench's engine (:mod:`workbench.privacy.fast_dp`): ghost norms + book-keeping in one backward.

All three share the privacy semantics: each sample's gradient is clipped to ``max_grad_norm`` (C), Gaussian
noise with standard deviation ``noise_multiplier * C`` is added to the clipped sum, which is divided by the
expected batch size (``int(n * q)``, as Opacus computes it); batches are Poisson-sampled with rate ``q = 1 / steps_per_epoch`` (Opacus's convention,
``steps_per_epoch = ceil(n / batch_size)``), and epsilon comes from the same accountant
(:mod:`workbench.privacy.accounting`). With ``poisson_sampling=False`` batches are shuffled fixed-size
batches and the reported epsilon uses the same ``q`` (as Opacus does), which is then an approximation: the
amplification-by-subsampling analysis assumes Poisson sampling.

Examples
--------
>>> import torch
>>> from workbench.training import TrainConfig
>>> from workbench.models import MLP
>>> X = torch.randn(200, 4); y = (X[:, 0] > 0).long()
>>> res = train(MLP(in_features=4, out_features=2, hidden=()), (X, y), config=TrainConfig(epochs=2, batch_size=50, lr=0.05),
...             dp=DPConfig(noise_multiplier=1.0), val=(X, y), progress=False)
>>> round(res.epsilon, 2), res.noise_multiplier, sorted(res.metrics)
(6.25, 1.0, ['accuracy', 'loss'])
"""
from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from typing import Any, Callable

import torch
from torch import nn

from workbench._cores import usable_cores
from workbench.training import EpochClock, History, TrainConfig, _batches, _make_optimizer, as_tensors, evaluate, fit, set_seed

from .accounting import ACCOUNTANTS, compute_epsilon, noise_for_epsilon

__all__ = ["DPConfig", "TrainResult", "train", "ENGINES", "privacy_schedule", "epsilon_sweep"]

#: Smallest model (trainable parameters) for which ``DPConfig(noise_prefetch=None)`` prefetches noise.
PREFETCH_MIN_PARAMETERS = 2**16

#: Accepted values of ``DPConfig.engine``.
ENGINES = ("fast", "opacus-hooks", "opacus-ghost")


def _positive_number(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value) and value > 0


@dataclass(frozen=True)
class DPConfig:
    """How to make training differentially private (give exactly one of ``noise_multiplier`` / ``target_epsilon``).

    Parameters
    ----------
    noise_multiplier : float, optional
        sigma: noise std divided by the clipping norm. ``0`` means clipping without noise (epsilon = inf).
    target_epsilon : float, optional
        Epsilon to spend over the whole training; sigma is then found by the accountant.
    delta : float
        In (0, 1); keep it below 1 / (training-set size).
    max_grad_norm : float
        Clipping norm C, > 0.
    accountant : {"rdp", "prv"}
    poisson_sampling : bool
        Poisson-sampled batches (what the accountant assumes) or shuffled fixed-size batches.
    engine : {"fast", "opacus-hooks", "opacus-ghost"}
    noise_prefetch : bool or None
        Fast engine only: draw the next step's Gaussian noise on a background thread while this step computes
        (:class:`workbench.privacy.noise.NoisyGradients`; same values either way). ``None`` (default) turns it
        on when the process may use more cores than torch's intra-op threads (a core is spare) and the model
        has at least ``PREFETCH_MIN_PARAMETERS`` trainable parameters.

    Examples
    --------
    >>> DPConfig(target_epsilon=-1)
    Traceback (most recent call last):
    ...
    ValueError: The 'target_epsilon' parameter of DPConfig must be > 0. Got -1 instead.
    >>> DPConfig(target_epsilon=3, delta=2)
    Traceback (most recent call last):
    ...
    ValueError: The 'delta' parameter of DPConfig must be in (0, 1). Got 2 instead.
    """

    noise_multiplier: float | None = None
    target_epsilon: float | None = None
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    poisson_sampling: bool = True
    engine: str = "fast"
    noise_prefetch: bool | None = None

    def __post_init__(self):
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise ValueError(
                "DPConfig needs exactly one of 'noise_multiplier' and 'target_epsilon'. "
                f"Got noise_multiplier={self.noise_multiplier!r} and target_epsilon={self.target_epsilon!r}."
            )
        if self.target_epsilon is not None and not _positive_number(self.target_epsilon):
            raise ValueError(f"The 'target_epsilon' parameter of DPConfig must be > 0. Got {self.target_epsilon!r} instead.")
        if self.noise_multiplier is not None and not (
            isinstance(self.noise_multiplier, (int, float)) and not isinstance(self.noise_multiplier, bool)
            and math.isfinite(self.noise_multiplier) and self.noise_multiplier >= 0
        ):
            raise ValueError(f"The 'noise_multiplier' parameter of DPConfig must be >= 0. Got {self.noise_multiplier!r} instead.")
        if not (isinstance(self.delta, (int, float)) and not isinstance(self.delta, bool) and 0 < self.delta < 1):
            raise ValueError(f"The 'delta' parameter of DPConfig must be in (0, 1). Got {self.delta!r} instead.")
        if not _positive_number(self.max_grad_norm):
            raise ValueError(f"The 'max_grad_norm' parameter of DPConfig must be > 0. Got {self.max_grad_norm!r} instead.")
        if self.accountant not in ACCOUNTANTS:
            raise ValueError(f"The 'accountant' parameter of DPConfig must be one of {ACCOUNTANTS}. Got {self.accountant!r} instead.")
        if not isinstance(self.poisson_sampling, bool):
            raise ValueError(f"The 'poisson_sampling' parameter of DPConfig must be True or False. Got {self.poisson_sampling!r} instead.")
        if self.engine not in ENGINES:
            raise ValueError(f"The 'engine' parameter of DPConfig must be one of {ENGINES}. Got {self.engine!r} instead.")
        if self.noise_prefetch not in (None, True, False):
            raise ValueError(f"The 'noise_prefetch' parameter of DPConfig must be None, True or False. Got {self.noise_prefetch!r} instead.")
        if self.noise_prefetch and self.engine != "fast":
            raise ValueError(f"The 'noise_prefetch' parameter of DPConfig needs engine='fast' (Opacus draws its own noise). "
                             f"Got engine={self.engine!r}; leave noise_prefetch=None.")

    def resolved_noise_prefetch(self, n_parameters: int) -> bool:
        """Whether the fast engine prefetches noise for a model of ``n_parameters`` trainable parameters.

        ``noise_prefetch`` if set; for ``None``: when a core is spare and the noise is worth a thread (at least
        ``PREFETCH_MIN_PARAMETERS`` values per step: below that, handing buffers between threads costs more
        than drawing the noise).
        """
        if self.noise_prefetch is not None:
            return self.noise_prefetch
        return self.engine == "fast" and n_parameters >= PREFETCH_MIN_PARAMETERS and usable_cores() > torch.get_num_threads()


@dataclass
class TrainResult:
    """What :func:`train` returns, with or without DP."""

    model: nn.Module
    history: History
    metrics: dict = field(default_factory=dict)
    epsilon: float | None = None
    noise_multiplier: float | None = None
    seconds_per_epoch: float = float("nan")
    cpu_seconds_per_epoch: float = float("nan")
    steps: int = 0
    sample_rate: float | None = None
    engine: str | None = None

    def summary(self) -> dict[str, Any]:
        """Flat scalars for a run record."""
        out = {f"val_{k}": v for k, v in self.metrics.items()}
        out.update(epsilon=self.epsilon, noise_multiplier=self.noise_multiplier, seconds_per_epoch=self.seconds_per_epoch,
                   steps=self.steps, sample_rate=self.sample_rate, engine=self.engine)
        return out


def privacy_schedule(n: int, *, config: TrainConfig, dp: DPConfig) -> dict[str, float]:
    """Sample rate, steps and noise multiplier that :func:`train` will use for ``n`` training rows.

    Examples
    --------
    >>> s = privacy_schedule(60000, config=TrainConfig(epochs=60, batch_size=256), dp=DPConfig(noise_multiplier=1.1))
    >>> s["steps"], round(s["sample_rate"], 6), round(s["epsilon"], 2)
    (14100, 0.004255, 2.6)
    """
    steps_per_epoch = math.ceil(n / config.batch_size)
    sample_rate = 1.0 / steps_per_epoch
    steps = steps_per_epoch * config.epochs
    if dp.noise_multiplier is not None:
        sigma = float(dp.noise_multiplier)
    else:
        sigma = noise_for_epsilon(target_epsilon=dp.target_epsilon, sample_rate=sample_rate, steps=steps, delta=dp.delta,
                                  accountant=dp.accountant)
    eps = compute_epsilon(noise_multiplier=sigma, sample_rate=sample_rate, steps=steps, delta=dp.delta,
                          accountant=dp.accountant) if sigma > 0 else float("inf")
    return {"steps_per_epoch": steps_per_epoch, "sample_rate": sample_rate, "steps": steps, "noise_multiplier": sigma, "epsilon": eps}


def _default_loss(logits, target, idx):
    return nn.functional.cross_entropy(logits, target)


def train(
    model: nn.Module,
    train: tuple,
    *,
    config: TrainConfig = TrainConfig(),
    dp: DPConfig | None = None,
    val: tuple | None = None,
    loss_fn: Callable | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` on ``train = (X, y)``, privately when ``dp`` is given.

    Parameters
    ----------
    model : torch.nn.Module
    train : (X, y)
        ``X`` float features or ``LongTensor`` token ids; ``y`` integer labels.
    config : workbench.training.TrainConfig
        Epochs, (expected) batch size, learning rate, optimizer, seed.
    dp : DPConfig, optional
        ``None`` trains exactly like :func:`workbench.training.fit`.
    val : (X, y), optional
        Evaluated after each epoch; the final values are ``metrics``.
    loss_fn : callable, optional
        ``loss_fn(logits, y, idx)``, a **mean** over the batch of per-sample losses (DP clipping relies on it).
        Not supported by ``engine="opacus-ghost"``.
    progress : bool

    Returns
    -------
    TrainResult
    """
    if dp is not None and not isinstance(dp, DPConfig):
        raise ValueError(f"The 'dp' parameter of train must be a DPConfig or None. Got {type(dp).__name__} instead.")
    if dp is None:
        history = fit(model, train, config=config, val=val, loss_fn=loss_fn, progress=progress)
        metrics = evaluate(model, val) if val is not None else {}
        return TrainResult(model=model, history=history, metrics=metrics, seconds_per_epoch=history.seconds_per_epoch,
                           cpu_seconds_per_epoch=history.cpu_seconds_per_epoch,
                           steps=config.epochs * math.ceil(len(train[1]) / config.batch_size))
    X, y = as_tensors(*train)
    if len(X) != len(y):
        raise ValueError(f"The 'train' parameter of train must hold as many labels as inputs. Got {len(X)} inputs and {len(y)} labels.")
    if len(X) == 0:
        raise ValueError("The 'train' parameter of train must not be empty.")
    if dp.delta >= 1.0 / len(X):
        warnings.warn(f"delta={dp.delta} is not below 1/n = {1 / len(X):.2g}: a mechanism releasing one random record would "
                      "satisfy it. Use delta < 1/n.", stacklevel=2)
    schedule = privacy_schedule(len(X), config=config, dp=dp)
    if dp.engine == "fast":
        history, steps = _train_fast(model, X, y, config=config, dp=dp, schedule=schedule, val=val, loss_fn=loss_fn, progress=progress)
    else:
        history, steps = _train_opacus(model, X, y, config=config, dp=dp, schedule=schedule, val=val, loss_fn=loss_fn, progress=progress)
    metrics = evaluate(model, val) if val is not None else {}
    return TrainResult(model=model, history=history, metrics=metrics, epsilon=history.final.get("epsilon"),
                       noise_multiplier=schedule["noise_multiplier"], seconds_per_epoch=history.seconds_per_epoch,
                       cpu_seconds_per_epoch=history.cpu_seconds_per_epoch,
                       steps=steps, sample_rate=schedule["sample_rate"], engine=dp.engine)


def _epsilon(sigma, q, steps, dp):
    if steps == 0:
        return 0.0
    if sigma == 0:
        return float("inf")
    return compute_epsilon(noise_multiplier=sigma, sample_rate=q, steps=steps, delta=dp.delta, accountant=dp.accountant)


def _end_epoch(history, epoch, model, *, total, count, clock, sigma, q, steps, dp, val):
    row = {"epoch": epoch, "train_loss": total / max(count, 1), **clock.elapsed(), "epsilon": _epsilon(sigma, q, steps, dp)}
    if val is not None:
        row.update({f"val_{k}": v for k, v in evaluate(model, val).items()})
    history.epochs.append(row)


def _train_fast(model, X, y, *, config, dp, schedule, val, loss_fn, progress):
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler
    from tqdm.auto import tqdm

    from .fast_dp import GhostClippingEngine
    from .noise import NoisyGradients

    generator = set_seed(config.seed)
    optimizer = _make_optimizer(model, config)
    engine = GhostClippingEngine(model, max_grad_norm=dp.max_grad_norm)
    loss_fn = loss_fn or _default_loss
    sigma, q, n = schedule["noise_multiplier"], schedule["sample_rate"], len(X)
    expected_batch = int(n * q)  # as opacus.PrivacyEngine.make_private, with or without Poisson sampling
    std = sigma * dp.max_grad_norm / expected_batch
    params = engine.parameters
    # The gradients live in NoisyGradients' flat buffers: each step they already hold N(0, (sigma C / B)^2),
    # drawn by a sampler faster than torch.normal_ (keyed from the run's seed, a stream apart from `generator`,
    # so the batches match the other engines'), and the engine adds the clipped sum times 1/B on top, as
    # Opacus's (sum_n clip(g_n) + N(0, (sigma C)^2)) / B. No zero fill, no add or divide pass, no allocation.
    prefetch = dp.resolved_noise_prefetch(sum(p.numel() for p in params))
    history, steps, grads = History(), 0, None
    try:
        grads = NoisyGradients(params, std=std, seed=config.seed % 2**63, prefetch=prefetch)
        for epoch in tqdm(range(1, config.epochs + 1), desc="DP training (fast)", unit="epoch", disable=not progress):
            model.train()
            clock, total, count = EpochClock(), 0.0, 0
            if dp.poisson_sampling:
                batches = (torch.as_tensor(b, dtype=torch.long)
                           for b in UniformWithReplacementSampler(num_samples=n, sample_rate=q, generator=generator))
            else:
                batches = _batches(n, config.batch_size, shuffle=True, generator=generator)
            for idx in batches:
                for p, view in zip(params, grads.next()):
                    p.grad = view
                if len(idx):
                    out = engine.clipped_grad(X[idx], y[idx], loss_fn=lambda logits, target, idx=idx: loss_fn(logits, target, idx),
                                              scale=1.0 / expected_batch, accumulate=True)
                    total += out["loss"] * len(idx)
                    count += len(idx)
                optimizer.step()
                steps += 1
            _end_epoch(history, epoch, model, total=total, count=count, clock=clock, sigma=sigma, q=q, steps=steps, dp=dp, val=val)
    finally:
        if grads is not None:
            grads.close()
        engine.remove()
    return history, steps


class _EpochBatches:
    """A batch sampler yielding :func:`workbench.training._batches` (a fresh shuffle per epoch)."""

    def __init__(self, n, batch_size, generator):
        self.n, self.batch_size, self.generator = n, batch_size, generator

    def __iter__(self):
        for idx in _batches(self.n, self.batch_size, shuffle=True, generator=self.generator):
            yield idx.tolist()

    def __len__(self):
        return math.ceil(self.n / self.batch_size)


def _train_opacus(model, X, y, *, config, dp, schedule, val, loss_fn, progress):
    from opacus import PrivacyEngine
    from opacus.validators import ModuleValidator
    from torch.utils.data import DataLoader, TensorDataset
    from tqdm.auto import tqdm

    errors = ModuleValidator.validate(model, strict=False)
    if errors:
        raise ValueError(f"Opacus cannot train this model with DP: {errors[0]} Fix it (e.g. opacus.validators.ModuleValidator.fix) "
                         "or use workbench.models / workbench.textmodels models.")
    ghost = dp.engine == "opacus-ghost"
    if ghost and loss_fn is not None:
        raise ValueError("The 'loss_fn' parameter of train is not supported with engine='opacus-ghost' (Opacus wraps a "
                         "criterion module); use engine='fast' or 'opacus-hooks'.")
    generator = set_seed(config.seed)
    optimizer = _make_optimizer(model, config)
    # The same shuffled batches as workbench.training.fit and the fast engine (before Opacus replaces them by
    # Poisson batches when poisson_sampling=True); the DataLoader itself gets no generator so that its worker-seed
    # draw does not consume ours.
    loader = DataLoader(TensorDataset(X, y, torch.arange(len(X))), batch_sampler=_EpochBatches(len(X), config.batch_size, generator))
    sigma, q = schedule["noise_multiplier"], schedule["sample_rate"]
    engine = PrivacyEngine(accountant=dp.accountant)
    kwargs = dict(module=model, optimizer=optimizer, data_loader=loader, noise_multiplier=sigma, max_grad_norm=dp.max_grad_norm,
                  poisson_sampling=dp.poisson_sampling, noise_generator=generator,
                  grad_sample_mode="ghost" if ghost else "hooks")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # secure-RNG and full-backward-hook notices
        if ghost:
            private, dp_optimizer, criterion, dp_loader = engine.make_private(criterion=nn.CrossEntropyLoss(), **kwargs)
        else:
            private, dp_optimizer, dp_loader = engine.make_private(**kwargs)
            criterion = None
    loss_fn = loss_fn or _default_loss
    history, steps = History(), 0
    try:
        for epoch in tqdm(range(1, config.epochs + 1), desc=f"DP training ({dp.engine})", unit="epoch", disable=not progress):
            private.train()
            clock, total, count = EpochClock(), 0.0, 0
            for xb, yb, idx in dp_loader:
                dp_optimizer.zero_grad(set_to_none=True)
                logits = private(xb)
                loss = criterion(logits, yb) if ghost else loss_fn(logits, yb, idx)
                loss.backward()
                dp_optimizer.step()
                steps += 1
                if len(yb):
                    total += float(loss.item() if ghost else loss.detach()) * len(yb)
                    count += len(yb)
            _end_epoch(history, epoch, model, total=total, count=count, clock=clock, sigma=sigma, q=q, steps=steps, dp=dp, val=val)
    finally:
        private._close()
    return history, steps


def epsilon_sweep(
    model_fn: Callable[[], nn.Module],
    train_data: tuple,
    *,
    epsilons,
    config: TrainConfig = TrainConfig(),
    dp: DPConfig | None = None,
    val: tuple | None = None,
    output_dir,
    include_non_dp: bool = True,
    notebook: str | None = None,
    progress: bool = False,
):
    """Train a fresh ``model_fn()`` per target epsilon (and once without DP); one run record per point.

    Each point is written with :func:`workbench.results.save_record` to ``<output_dir>/eps=<value>`` (or
    ``non_dp``); a point whose record is already "completed" is read back instead of retrained, so an
    interrupted sweep resumes. ``dp`` supplies the other DP settings (its epsilon / noise are replaced).

    Returns
    -------
    pandas.DataFrame
        One row per point: ``epsilon_target``, ``epsilon``, ``noise_multiplier``, ``val_accuracy``,
        ``val_loss``, ``seconds_per_epoch``, ``engine``, ``run_dir``, ``resumed``.
    """
    import dataclasses
    from pathlib import Path

    import pandas as pd

    from workbench.results import RECORD_NAME, load_record, save_record

    base = dp or DPConfig(target_epsilon=1.0)
    points = ([None] if include_non_dp else []) + [float(e) for e in epsilons]
    rows = []
    for eps in points:
        run_dir = Path(output_dir) / ("non_dp" if eps is None else f"eps={eps:g}")
        record_path = run_dir / RECORD_NAME
        if record_path.exists() and load_record(record_path).get("status") == "completed":
            rec = load_record(record_path)
            rows.append({**rec["metrics"], "run_dir": str(run_dir), "resumed": True})
            continue
        point_dp = None if eps is None else dataclasses.replace(base, target_epsilon=eps, noise_multiplier=None)
        result = train(model_fn(), train_data, config=config, dp=point_dp, val=val, progress=progress)
        metrics = {"epsilon_target": eps, **result.summary()}
        save_record(run_dir, config={"train": config, "dp": point_dp}, metrics=metrics, history=result.history,
                    timings={"seconds_per_epoch": result.seconds_per_epoch}, seed=config.seed, notebook=notebook)
        rows.append({**metrics, "run_dir": str(run_dir), "resumed": False})
    return pd.DataFrame(rows)
