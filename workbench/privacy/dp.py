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
from workbench.training import (GradientStep, History, TrainConfig, as_dataset, check_config, evaluate, make_optimizer,
                                shuffled_batches, train_loop)
from workbench.validation import Boolean, InstanceOf, Interval, Options, Seq, check, check_fields

from .accounting import ACCOUNTANTS, compose_epsilon, noise_for_epsilon

__all__ = ["DPConfig", "TrainResult", "train", "ENGINES", "STEPS", "privacy_schedule", "epsilon_sweep", "poisson_batches",
           "FastDPStep", "OpacusStep"]

#: Smallest model (trainable parameters) for which ``DPConfig(noise_prefetch=None)`` prefetches noise.
PREFETCH_MIN_PARAMETERS = 2**16
#: Gradient buffers of at least this many bytes get their prefetched noise drawn in place (one buffer, not two).
PREFETCH_IN_PLACE_MIN_BYTES = 32 * 2**20

#: Accepted values of ``DPConfig.engine``.
ENGINES = ("fast", "opacus-hooks", "opacus-ghost")
#: Accepted values of ``DPConfig.clipping`` (the fast engine's ``CLIPPING_MODES``).
CLIPPING = ("flat", "per_layer", "per_parameter")


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
    clipping : {"flat", "per_layer", "per_parameter"}
        Fast engine only: one clipping norm per sample (``"flat"``, what Opacus does), or group-wise clipping, eDP-SGD's
        knob: each layer's (or parameter tensor's) part of a sample's gradient is clipped to its share ``C_k`` of the
        budget, with ``sum_k C_k^2 = C^2`` (:class:`workbench.privacy.fast_dp.GhostClippingEngine`).
    noise_schedule : sequence of float, optional
        One factor > 0 per epoch: epoch ``e`` runs with noise multiplier ``sigma * noise_schedule[e - 1]`` (e.g.
        :func:`workbench.privacy.noise.noise_schedule` ``("linear", epochs=3, final=0.5)`` gives ``(1.0, 0.75,
        0.5)``, a decaying noise). With ``target_epsilon``, sigma is calibrated so that the composition of all
        epochs (each with its own noise, :func:`workbench.privacy.accounting.compose_epsilon`) spends the target.
        ``None``: the same noise every epoch.
    max_physical_batch_size : int, "auto" or None
        Fast engine only: the most samples one forward/backward pass holds (a batch is clipped slice by slice, with
        the same result). ``"auto"`` (default) slices only batches whose book-keeping would hold hundreds of MB,
        into as many slices as keep the step's memory near a non-private step's
        (:class:`workbench.privacy.fast_dp.GhostClippingEngine`); ``None``: never slice. The Opacus engines ignore
        ``"auto"``.

    Examples
    --------
    >>> DPConfig(target_epsilon=-1)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'target_epsilon' parameter of DPConfig must be a float > 0 or None. Got -1 instead.
    >>> DPConfig(target_epsilon=3, delta=2)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'delta' parameter of DPConfig must be a float in (0, 1). Got 2 instead.
    """

    noise_multiplier: float | None = None
    target_epsilon: float | None = None
    delta: float = 1e-5
    max_grad_norm: float = 1.0
    accountant: str = "rdp"
    poisson_sampling: bool = True
    engine: str = "fast"
    noise_prefetch: bool | None = None
    noise_schedule: tuple | None = None
    clipping: str = "flat"
    max_physical_batch_size: int | str | None = "auto"

    def __post_init__(self):
        positive = Interval(float, 0, None, closed="neither")
        check_fields(self, noise_multiplier=(Interval(float, 0, None), None), target_epsilon=(positive, None),
                     delta=Interval(float, 0, 1, closed="neither"), max_grad_norm=positive, accountant=Options(ACCOUNTANTS),
                     poisson_sampling=Boolean(), engine=Options(ENGINES), noise_prefetch=(Boolean(), None),
                     noise_schedule=(Seq(positive, min_len=1), None), clipping=Options(CLIPPING),
                     max_physical_batch_size=(Interval(int, 1, None), Options(("auto",)), None))
        if (self.noise_multiplier is None) == (self.target_epsilon is None):
            raise ValueError(
                "DPConfig needs exactly one of 'noise_multiplier' and 'target_epsilon'. "
                f"Got noise_multiplier={self.noise_multiplier!r} and target_epsilon={self.target_epsilon!r}."
            )
        if self.clipping != "flat" and self.engine != "fast":
            raise ValueError(f"The 'clipping' parameter of DPConfig needs engine='fast' for {self.clipping!r} clipping. "
                             f"Got engine={self.engine!r}; use clipping='flat' with Opacus.")
        if isinstance(self.max_physical_batch_size, int) and self.engine != "fast":
            raise ValueError(f"The 'max_physical_batch_size' parameter of DPConfig needs engine='fast'. Got "
                             f"engine={self.engine!r}; leave it 'auto' (Opacus's BatchMemoryManager slices for Opacus).")
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


def _phases(sigmas, steps_per_epoch: int, sample_rate: float):
    return [(s, sample_rate, steps_per_epoch) for s in sigmas]


def privacy_schedule(n: int, *, config: TrainConfig, dp: DPConfig) -> dict[str, Any]:
    """Sample rate, steps, noise multiplier(s) and epsilon that :func:`train` will use for ``n`` training rows.

    ``noise_multiplier`` is the base sigma; ``noise_multipliers`` holds each epoch's (the base times
    ``dp.noise_schedule``, or the base every epoch).

    Examples
    --------
    >>> s = privacy_schedule(60000, config=TrainConfig(epochs=60, batch_size=256), dp=DPConfig(noise_multiplier=1.1))
    >>> s["steps"], round(s["sample_rate"], 6), round(s["epsilon"], 2)
    (14100, 0.004255, 2.6)
    >>> s = privacy_schedule(1000, config=TrainConfig(epochs=2, batch_size=100),
    ...                      dp=DPConfig(target_epsilon=4.0, noise_schedule=(2.0, 1.0)))
    >>> [round(x / s["noise_multiplier"], 6) for x in s["noise_multipliers"]], s["epsilon"] <= 4.0
    ([2.0, 1.0], True)
    """
    owner = "privacy_schedule"
    n = check(n, Interval(int, 1, None), name="n", owner=owner)
    check_config(config, owner=owner)
    check(dp, InstanceOf(DPConfig), name="dp", owner=owner)
    factors = tuple(dp.noise_schedule) if dp.noise_schedule is not None else (1.0,) * config.epochs
    if len(factors) != config.epochs:
        raise ValueError(f"The 'noise_schedule' parameter of DPConfig must hold one factor per epoch ({config.epochs}). "
                         f"Got {len(factors)} factors.")
    steps_per_epoch = math.ceil(n / config.batch_size)
    sample_rate = 1.0 / steps_per_epoch
    steps = steps_per_epoch * config.epochs
    if dp.noise_multiplier is not None:
        sigma = float(dp.noise_multiplier)
    else:
        sigma = noise_for_epsilon(target_epsilon=dp.target_epsilon, sample_rate=sample_rate, steps=steps, delta=dp.delta,
                                  accountant=dp.accountant, schedule=None if dp.noise_schedule is None else factors)
    sigmas = [sigma * f for f in factors]
    eps = compose_epsilon(_phases(sigmas, steps_per_epoch, sample_rate), delta=dp.delta, accountant=dp.accountant)
    return {"steps_per_epoch": steps_per_epoch, "sample_rate": sample_rate, "steps": steps, "noise_multiplier": sigma,
            "noise_multipliers": sigmas, "epsilon": eps}


def poisson_batches(n: int, sample_rate: float, *, generator: torch.Generator | None):
    """One epoch of Poisson-sampled batches: ``round(1 / sample_rate)`` batches, each row in each with probability q.

    Opacus's ``UniformWithReplacementSampler`` (what its ``DPDataLoader`` uses), driven by ``generator``; batches
    may be empty.

    Examples
    --------
    >>> sizes = [len(b) for b in poisson_batches(1000, 0.1, generator=torch.Generator().manual_seed(0))]
    >>> len(sizes), 60 < sum(sizes) / len(sizes) < 140
    (10, True)
    """
    from opacus.utils.uniform_sampler import UniformWithReplacementSampler

    for b in UniformWithReplacementSampler(num_samples=n, sample_rate=sample_rate, generator=generator):
        yield torch.as_tensor(b, dtype=torch.long)


class _DPStep(GradientStep):
    """What the DP hooks share: the batches (Poisson or shuffled), the noise per epoch, epsilon in the history."""

    def __init__(self, dp: DPConfig, schedule: dict):
        self.dp, self.schedule = dp, schedule

    def start(self, model, *, n, config, generator):
        super().start(model, n=n, config=config, generator=generator)
        # as opacus.PrivacyEngine.make_private, with or without Poisson sampling
        self.expected_batch = int(n * self.schedule["sample_rate"])

    def batches(self, epoch):
        self.epoch = epoch
        if self.dp.poisson_sampling:
            return poisson_batches(self.n, self.schedule["sample_rate"], generator=self.generator)
        return shuffled_batches(self.n, self.config.batch_size, generator=self.generator)

    def end_epoch(self, epoch, *, steps):
        s = self.schedule
        spent = _phases(s["noise_multipliers"][:epoch], s["steps_per_epoch"], s["sample_rate"])
        return {"epsilon": compose_epsilon(spent, delta=self.dp.delta, accountant=self.dp.accountant) if steps else 0.0}


class FastDPStep(_DPStep):
    """The fast engine's hook: noise drawn into the gradient buffers, the clipped sum added onto it in one backward.

    The gradients live in :class:`~workbench.privacy.noise.NoisyGradients`' flat buffers: each step they already
    hold ``N(0, (sigma_e C / B)^2)`` (``sigma_e`` the epoch's noise multiplier; drawn from a generator keyed by the
    run's seed, a stream apart from the batches' so that the batches match the other engines'), and the engine adds
    the clipped sum times ``1 / B`` on top, as Opacus's ``(sum_n clip(g_n) + N(0, (sigma C)^2)) / B``.
    """

    label = "DP training (fast)"

    def start(self, model, *, n, config, generator):
        from .fast_dp import GhostClippingEngine
        from .noise import NoisyGradients

        super().start(model, n=n, config=config, generator=generator)
        self.engine = GhostClippingEngine(model, max_grad_norm=self.dp.max_grad_norm, clipping=self.dp.clipping,
                                          max_physical_batch_size=self.dp.max_physical_batch_size)
        self.grads = None
        params = self.engine.parameters
        scale = self.dp.max_grad_norm / self.expected_batch
        sigmas, per_epoch = self.schedule["noise_multipliers"], self.schedule["steps_per_epoch"]
        std = sigmas[0] * scale if len(set(sigmas)) == 1 else (lambda k: sigmas[min(k // per_epoch, len(sigmas) - 1)] * scale)
        size = sum(p.numel() for p in params)
        prefetch = self.dp.resolved_noise_prefetch(size)
        # a large model's noise is drawn into the one gradient buffer while the step's forward and backward run (the
        # engine waits for it before adding the clipped sum): no second model-sized buffer
        in_place = size * params[0].element_size() >= PREFETCH_IN_PLACE_MIN_BYTES
        self.grads = NoisyGradients(params, std=std, seed=config.seed % 2**63, prefetch=prefetch, in_place=in_place)
        self.params = params

    def gradients(self, inputs, targets, idx, loss_fn):
        for p, view in zip(self.params, self.grads.next()):
            p.grad = view
        if not len(idx):
            self.grads.wait()
            return None
        # the targets travel with their row numbers so that a sliced batch hands loss_fn the slice's own idx
        out = self.engine.clipped_grad(inputs, (targets, idx), loss_fn=lambda logits, ty: loss_fn(logits, ty[0], ty[1]),
                                       scale=1.0 / self.expected_batch, accumulate=True, before_write=self.grads.wait)
        return out["loss"]

    def close(self):
        if getattr(self, "grads", None) is not None:
            self.grads.close()
        if getattr(self, "engine", None) is not None:
            self.engine.remove()


class OpacusStep(_DPStep):
    """Opacus's per-sample gradients (``"hooks"``) or its ghost clipping (``"ghost"``, two backward passes) as the hook.

    The model is wrapped in Opacus's ``GradSampleModule`` (or ``GradSampleModuleFastGradientClipping``) and the
    optimizer in its ``DPOptimizer``; the loop supplies the same batches as for the fast engine (Poisson or
    shuffled, from the run's generator) and the noise comes from Opacus, drawn with a generator seeded from the
    run's seed. Each epoch's noise multiplier is set on the ``DPOptimizer``.
    """

    def __init__(self, dp, schedule):
        super().__init__(dp, schedule)
        self.ghost = dp.engine == "opacus-ghost"
        self.label = f"DP training ({dp.engine})"

    def start(self, model, *, n, config, generator):
        from opacus.validators import ModuleValidator

        errors = ModuleValidator.validate(model, strict=False)
        if errors:
            raise ValueError(f"Opacus cannot train this model with DP: {errors[0]} Fix it (e.g. opacus.validators.ModuleValidator.fix) "
                             "or use workbench.models / workbench.textmodels models.")
        super().start(model, n=n, config=config, generator=generator)
        from opacus.grad_sample import GradSampleModule, GradSampleModuleFastGradientClipping
        from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping

        noise_generator = torch.Generator().manual_seed(_noise_seed(config.seed))
        kwargs = dict(noise_multiplier=self.schedule["noise_multipliers"][0], max_grad_norm=self.dp.max_grad_norm,
                      expected_batch_size=self.expected_batch, loss_reduction="mean", generator=noise_generator)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # secure-RNG and full-backward-hook notices
            if self.ghost:
                self.model = GradSampleModuleFastGradientClipping(model, batch_first=True, loss_reduction="mean",
                                                                  max_grad_norm=self.dp.max_grad_norm, use_ghost_clipping=True)
                self.optimizer = DPOptimizerFastGradientClipping(self.optimizer, **kwargs)
            else:
                self.model = GradSampleModule(model, batch_first=True, loss_reduction="mean")
                self.optimizer = DPOptimizer(self.optimizer, **kwargs)
        if self.dp.poisson_sampling:
            self.model.forbid_grad_accumulation()

    def batches(self, epoch):
        self.optimizer.noise_multiplier = self.schedule["noise_multipliers"][epoch - 1]
        return super().batches(epoch)

    def gradients(self, inputs, targets, idx, loss_fn):
        self.optimizer.zero_grad(set_to_none=True)
        logits = self.model(inputs)
        if self.ghost:
            from opacus.utils.fast_gradient_clipping_utils import DPLossFastGradientClipping

            loss = DPLossFastGradientClipping(self.model, self.optimizer, nn.CrossEntropyLoss(), "mean")(logits, targets)
            loss.backward()
            return float(loss.item()) if len(idx) else None
        loss = loss_fn(logits, targets, idx)
        loss.backward()
        return float(loss.detach()) if len(idx) else None

    def close(self):
        if getattr(self, "model", None) is not None and hasattr(self.model, "to_standard_module"):
            self.model.to_standard_module()  # takes Opacus's hooks and per-sample gradients off the model


def _noise_seed(seed: int) -> int:
    import numpy as np

    return int(np.random.SeedSequence([int(seed) % 2**63, 0x6E6F697365]).generate_state(1, dtype=np.uint64)[0] >> 1)


#: The gradient hook of each engine: ``STEPS[engine](dp, schedule) -> GradientStep``.
STEPS: dict[str, Callable[[DPConfig, dict], GradientStep]] = {"fast": FastDPStep, "opacus-hooks": OpacusStep,
                                                              "opacus-ghost": OpacusStep}


def train(
    model: nn.Module,
    train,
    *,
    config: TrainConfig = TrainConfig(),
    dp: DPConfig | None = None,
    val=None,
    loss_fn: Callable | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``model`` on ``train``, privately when ``dp`` is given: the one front door of every engine.

    Parameters
    ----------
    model : torch.nn.Module
    train : (X, y) or dataset
        ``X`` float features or ``LongTensor`` token ids, ``y`` integer labels; or any dataset with ``__len__``
        and ``batch(idx) -> (inputs, targets)`` (e.g. :class:`workbench.privacy.transformer.TokenizedTexts`,
        tweets tokenized for MiniLM and padded per batch).
    config : workbench.training.TrainConfig
        Epochs, (expected) batch size, learning rate, optimizer, seed.
    dp : DPConfig, optional
        ``None`` trains exactly like :func:`workbench.training.fit`.
    val : (X, y) or dataset, optional
        Evaluated after each epoch; the final values are ``metrics``.
    loss_fn : callable, optional
        ``loss_fn(logits, y, idx)``, a **mean** over the batch of per-sample losses (DP clipping relies on it).
        Not supported by ``engine="opacus-ghost"``.
    progress : bool

    Returns
    -------
    TrainResult
    """
    owner = "train"
    check_config(config, owner=owner)
    check(dp, InstanceOf(DPConfig), None, name="dp", owner=owner)
    data = as_dataset(train, owner=owner)
    if dp is None:
        history, steps = train_loop(model, data, config=config, val=val, loss_fn=loss_fn, progress=progress)
        metrics = evaluate(model, val) if val is not None else {}
        return TrainResult(model=model, history=history, metrics=metrics, seconds_per_epoch=history.seconds_per_epoch,
                           cpu_seconds_per_epoch=history.cpu_seconds_per_epoch, steps=steps)
    if dp.engine == "opacus-ghost" and loss_fn is not None:
        raise ValueError("The 'loss_fn' parameter of train is not supported with engine='opacus-ghost' (Opacus wraps a "
                         "criterion module); use engine='fast' or 'opacus-hooks'.")
    if dp.delta >= 1.0 / len(data):
        warnings.warn(f"delta={dp.delta} is not below 1/n = {1 / len(data):.2g}: a mechanism releasing one random record would "
                      "satisfy it. Use delta < 1/n.", stacklevel=2)
    schedule = privacy_schedule(len(data), config=config, dp=dp)
    step = STEPS[dp.engine](dp, schedule)
    history, steps = train_loop(model, data, config=config, step=step, val=val, loss_fn=loss_fn, progress=progress)
    metrics = evaluate(model, val) if val is not None else {}
    return TrainResult(model=model, history=history, metrics=metrics, epsilon=history.final.get("epsilon"),
                       noise_multiplier=schedule["noise_multiplier"], seconds_per_epoch=history.seconds_per_epoch,
                       cpu_seconds_per_epoch=history.cpu_seconds_per_epoch,
                       steps=steps, sample_rate=schedule["sample_rate"], engine=dp.engine)


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
