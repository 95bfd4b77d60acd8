"""Privacy accounting for DP-SGD (the subsampled Gaussian mechanism), using Opacus's accountants.

Two accountants are offered:

``"rdp"``
    Renyi DP (Mironov 2017; Mironov, Talwar, Zhang 2019) over Opacus's default orders. The RDP curve is
    converted to (epsilon, delta) with the **improved conversion** of Balle et al. 2020 (Theorem 21) /
    Canonne, Kamath, Steinke 2020, which is what Opacus (and therefore this module) reports:
    ``eps = rdp(a) + log((a-1)/a) - (log(delta) + log(a)) / (a-1)``.
    The TensorFlow Privacy MNIST tutorial (and Abadi et al.'s era of tooling) used the **classic**
    conversion of Mironov 2017, ``eps = rdp(a) + log(1/delta) / (a-1)``, which is never smaller;
    :func:`rdp_epsilon` computes either so the two can be compared.
``"prv"``
    Privacy random variables (Gopi, Lee, Wutschitz 2021): a numerically tight accountant; its epsilons
    are smaller than RDP's for the same mechanism.

Examples
--------
>>> round(compute_epsilon(noise_multiplier=1.5, sample_rate=0.04, steps=2250, delta=1e-5), 4)
7.3291
"""
from __future__ import annotations

import functools
import math
import warnings

import numpy as np

from workbench.validation import InvalidParameterError, Interval, Options, Seq, check

__all__ = ["ACCOUNTANTS", "compute_epsilon", "compose_epsilon", "noise_for_epsilon", "rdp_epsilon", "RDP_CONVERSIONS",
           "MAX_NOISE_MULTIPLIER", "PRV_NOISE_RANGE"]

#: Accepted names of the ``accountant`` parameter.
ACCOUNTANTS = ("rdp", "prv")
#: Accepted names of the ``conversion`` parameter of :func:`rdp_epsilon`.
RDP_CONVERSIONS = ("improved", "classic")
#: The noise multipliers the PRV accountant is asked about (below, it runs for minutes or never returns; above, it overflows).
PRV_NOISE_RANGE = (0.2, 1e4)
#: The largest noise multiplier :func:`noise_for_epsilon` considers: a target that needs more is unreachable.
MAX_NOISE_MULTIPLIER = 1000.0

_SIGMA = Interval(float, 0, None, closed="neither", allow_inf=True)
_RATE = Interval(float, 0, 1, closed="right")
_STEPS = Interval(int, 1, None)
_DELTA = Interval(float, 0, 1, closed="neither")


def _check_phases(phases, *, owner: str) -> list[tuple[float, float, int]]:
    if not isinstance(phases, (list, tuple)) or not phases:
        raise InvalidParameterError(f"The 'phases' parameter of {owner} must be a non-empty list of (noise_multiplier, "
                                    f"sample_rate, steps). Got {phases!r:.80} instead.")
    out = []
    for phase in phases:
        if not isinstance(phase, (list, tuple)) or len(phase) != 3:
            raise InvalidParameterError(f"The 'phases' parameter of {owner} must hold (noise_multiplier, sample_rate, steps) "
                                        f"triples. Got {phase!r:.80} instead.")
        out.append((check(phase[0], Interval(float, 0, None, allow_inf=True), name="noise_multiplier", owner=owner),
                    check(phase[1], _RATE, name="sample_rate", owner=owner), check(phase[2], _STEPS, name="steps", owner=owner)))
    return out


def _merged(phases):
    """Consecutive phases of the same (sigma, q) as one (so a constant schedule is accounted exactly as one phase);
    phases with infinite noise dropped (they release nothing)."""
    out = []
    for sigma, q, steps in phases:
        if math.isinf(sigma):
            continue
        if out and out[-1][:2] == (sigma, q):
            out[-1] = (sigma, q, out[-1][2] + steps)
        else:
            out.append((sigma, q, steps))
    return out


def compose_epsilon(phases, *, delta: float, accountant: str = "rdp") -> float:
    """Epsilon of DP-SGD run in phases with different noise (or sampling rates), composed exactly.

    Parameters
    ----------
    phases : list of (noise_multiplier, sample_rate, steps)
        In the order they ran (Opacus's accountant history format). ``noise_multiplier=inf`` releases nothing;
        ``0`` (clipping without noise) makes epsilon infinite.
    delta : float
    accountant : {"rdp", "prv"}
        RDP: the per-step RDP curves, times each phase's steps, summed over phases (RDP composes additively),
        then converted once; PRV: Opacus's ``PRVAccountant`` with the phases as its history.

    Examples
    --------
    >>> one = compute_epsilon(noise_multiplier=1.0, sample_rate=0.01, steps=300, delta=1e-5)
    >>> compose_epsilon([(1.0, 0.01, 100), (1.0, 0.01, 200)], delta=1e-5) == one
    True
    >>> compose_epsilon([(2.0, 0.01, 100), (1.0, 0.01, 200)], delta=1e-5) < one
    True
    """
    owner = "compose_epsilon"
    return _compose(_check_phases(phases, owner=owner), delta=check(delta, _DELTA, name="delta", owner=owner),
                    accountant=check(accountant, Options(ACCOUNTANTS), name="accountant", owner=owner), owner=owner)


def _compose(phases, *, delta, accountant, owner) -> float:
    phases = _merged(phases)
    if not phases:
        return 0.0
    if any(sigma == 0 for sigma, _, _ in phases):
        return float("inf")  # a step without noise releases its clipped gradient exactly
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha" for tiny epsilons
        if accountant == "rdp":
            from opacus.accountants import RDPAccountant
            from opacus.accountants.analysis.rdp import get_privacy_spent

            rdp = sum(_rdp_per_step(sigma, q) * steps for sigma, q, steps in phases)
            return float(get_privacy_spent(orders=RDPAccountant.DEFAULT_ALPHAS, rdp=rdp, delta=delta)[0])
        from opacus.accountants import create_accountant

        sigmas = [sigma for sigma, _, _ in phases]
        if not PRV_NOISE_RANGE[0] <= min(sigmas) <= max(sigmas) <= PRV_NOISE_RANGE[1]:
            # PRV's discretisation explodes as sigma -> 0 (minutes, then hangs) and overflows for huge sigma
            bad = min(sigmas) if min(sigmas) < PRV_NOISE_RANGE[0] else max(sigmas)
            raise InvalidParameterError(
                f"The 'noise_multiplier' parameter of {owner} must be in [{PRV_NOISE_RANGE[0]:g}, {PRV_NOISE_RANGE[1]:g}] with "
                f"accountant='prv'. Got {bad:g} instead; use accountant='rdp' for it.")
        acc = create_accountant(mechanism=accountant)
        acc.history = list(phases)
        return float(acc.get_epsilon(delta=delta))


def compute_epsilon(*, noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp") -> float:
    """Epsilon spent by ``steps`` steps of DP-SGD with Poisson sampling rate ``sample_rate``.

    Parameters
    ----------
    noise_multiplier : float
        Noise standard deviation divided by the clipping norm (sigma), > 0. ``inf`` (noise that drowns everything)
        gives epsilon 0 at once.
    sample_rate : float
        Probability that a record is in a batch (expected batch size / dataset size).
    steps : int
        Number of noisy gradient steps.
    delta : float
        Target delta, in (0, 1); usually below 1 / dataset size.
    accountant : {"rdp", "prv"}
        RDP reports with the improved RDP-to-DP conversion (see the module docstring).

    Returns
    -------
    float

    Examples
    --------
    >>> round(compute_epsilon(noise_multiplier=1.5, sample_rate=0.04, steps=2249, delta=1e-5, accountant="prv"), 3)
    6.777
    >>> compute_epsilon(noise_multiplier=float("inf"), sample_rate=0.04, steps=100, delta=1e-5)
    0.0
    """
    owner = "compute_epsilon"
    phase = (check(noise_multiplier, _SIGMA, name="noise_multiplier", owner=owner),
             check(sample_rate, _RATE, name="sample_rate", owner=owner), check(steps, _STEPS, name="steps", owner=owner))
    return _compose([phase], delta=check(delta, _DELTA, name="delta", owner=owner),
                    accountant=check(accountant, Options(ACCOUNTANTS), name="accountant", owner=owner), owner=owner)


@functools.lru_cache(maxsize=1024)
def _rdp_per_step(noise_multiplier: float, sample_rate: float) -> np.ndarray:
    """RDP of one step at Opacus's default orders (cached: RDP composes linearly, so ``steps`` steps cost
    ``steps`` times this). Opacus's ``RDPAccountant.get_epsilon`` computes the same array times ``steps``
    from scratch on every call (about 0.25 s here), which made the per-epoch epsilon of a training run cost
    more than the epoch itself for small models; the numbers are identical."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import compute_rdp

    try:
        out = np.asarray(compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=RDPAccountant.DEFAULT_ALPHAS))
    except (OverflowError, ZeroDivisionError):  # sigma**2 out of float range: RDP 0 (huge noise) or infinite (vanishing noise)
        out = np.full(len(RDPAccountant.DEFAULT_ALPHAS), 0.0 if noise_multiplier > 1 else np.inf)
    out.setflags(write=False)
    return out


def noise_for_epsilon(*, target_epsilon: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp",
                      tolerance: float = 0.01, schedule=None) -> float:
    """Smallest noise multiplier (to a binary-search ``tolerance`` in epsilon) whose epsilon is <= ``target_epsilon``.

    The search is Opacus's (:func:`opacus.accountants.utils.get_noise_multiplier`: double sigma from 20 until the
    target is met, then bisect), so the result equals what ``PrivacyEngine.make_private_with_epsilon`` would pick
    for the same steps. Unlike Opacus's, it first checks that the target can be met at all, with at most
    :data:`MAX_NOISE_MULTIPLIER`, and fails at once with a named error if not (RDP cannot go below a floor set
    by delta and its largest order, about 0.10 at delta 1e-5, however large the noise).

    Parameters
    ----------
    schedule : sequence of float, optional
        Relative noise per phase: the ``steps`` are split into ``len(schedule)`` equal phases and phase ``i`` runs
        with ``sigma * schedule[i]`` (e.g. one factor per epoch for a decaying noise); the returned base sigma makes
        their composition (:func:`compose_epsilon`) meet the target. ``steps`` must be a multiple of its length.

    Examples
    --------
    >>> sigma = noise_for_epsilon(target_epsilon=8, sample_rate=0.04, steps=2000, delta=1e-5)
    >>> round(sigma, 4), compute_epsilon(noise_multiplier=sigma, sample_rate=0.04, steps=2000, delta=1e-5) <= 8
    (1.3562, True)
    >>> noise_for_epsilon(target_epsilon=0.05, sample_rate=0.04, steps=2000, delta=1e-5)
    Traceback (most recent call last):
    ...
    ValueError: target_epsilon=0.05 is out of reach: even noise_multiplier=1000 spends epsilon 0.103 with the rdp accountant (delta=1e-05, 2000 steps at sample_rate=0.04). Raise target_epsilon above 0.103, raise delta, or use accountant='prv' (tighter).
    """
    owner = "noise_for_epsilon"
    target_epsilon = check(target_epsilon, Interval(float, 0, None, closed="neither"), name="target_epsilon", owner=owner)
    sample_rate = check(sample_rate, _RATE, name="sample_rate", owner=owner)
    steps = check(steps, _STEPS, name="steps", owner=owner)
    delta = check(delta, _DELTA, name="delta", owner=owner)
    accountant = check(accountant, Options(ACCOUNTANTS), name="accountant", owner=owner)
    tolerance = check(tolerance, Interval(float, 0, None, closed="neither"), name="tolerance", owner=owner)
    if schedule is not None:
        schedule = check(schedule, Seq(Interval(float, 0, None, closed="neither"), min_len=1), name="schedule", owner=owner)
        if steps % len(schedule):
            raise InvalidParameterError(f"The 'steps' parameter of {owner} must be a multiple of len(schedule) = {len(schedule)}. "
                                        f"Got {steps} instead.")
    return _noise_for_epsilon(target_epsilon, sample_rate, steps, delta, accountant, tolerance, schedule)


@functools.lru_cache(maxsize=256)
def _noise_for_epsilon(target_epsilon, sample_rate, steps, delta, accountant, tolerance, schedule) -> float:
    # Opacus's search (get_noise_multiplier) on our composition: cached, since notebooks and panels ask again
    factors = schedule or (1.0,)
    per_phase = steps // len(factors)

    def epsilon(sigma):
        if accountant == "prv" and sigma * min(factors) < PRV_NOISE_RANGE[0]:
            return float("inf")  # outside what PRV is asked about: treated as too little noise for any target
        return _compose([(sigma * f, sample_rate, per_phase) for f in factors], delta=delta, accountant=accountant,
                        owner="noise_for_epsilon")

    floor = epsilon(MAX_NOISE_MULTIPLIER)
    if floor > target_epsilon:
        raise ValueError(
            f"target_epsilon={target_epsilon:g} is out of reach: even noise_multiplier={MAX_NOISE_MULTIPLIER:g} spends epsilon "
            f"{floor:.3g} with the {accountant} accountant (delta={delta:g}, {steps} steps at sample_rate={sample_rate:g}). "
            f"Raise target_epsilon above {floor:.3g}, raise delta"
            + (", or use accountant='prv' (tighter)." if accountant == "rdp" else ", or train fewer steps."))
    eps_high, sigma_low, sigma_high = float("inf"), 0.0, 10.0
    while eps_high > target_epsilon:
        sigma_high = min(2 * sigma_high, MAX_NOISE_MULTIPLIER)
        eps_high = epsilon(sigma_high)
    while target_epsilon - eps_high > tolerance:
        sigma = (sigma_low + sigma_high) / 2
        eps = epsilon(sigma)
        if eps < target_epsilon:
            sigma_high, eps_high = sigma, eps
        else:
            sigma_low = sigma
    return float(sigma_high)


def rdp_epsilon(*, noise_multiplier: float, sample_rate: float, steps: int, delta: float, conversion: str = "improved",
                orders=None) -> tuple[float, float]:
    """Epsilon and the optimal order from the RDP curve, with either RDP-to-(eps, delta) conversion.

    ``conversion="improved"`` is Balle et al. 2020 (what Opacus and :func:`compute_epsilon` report);
    ``"classic"`` is Mironov 2017, ``eps = min_a rdp(a) + log(1/delta)/(a-1)``, as in the TF Privacy tutorial.
    ``orders`` default to TF Privacy's ``[1 + x / 10 for x in range(1, 100)] + list(range(12, 64))``.

    Examples
    --------
    >>> improved, _ = rdp_epsilon(noise_multiplier=1.1, sample_rate=256 / 60000, steps=14063, delta=1e-5)
    >>> classic, _ = rdp_epsilon(noise_multiplier=1.1, sample_rate=256 / 60000, steps=14063, delta=1e-5, conversion="classic")
    >>> improved < classic
    True
    """
    owner = "rdp_epsilon"
    conversion = check(conversion, Options(RDP_CONVERSIONS), name="conversion", owner=owner)
    noise_multiplier = check(noise_multiplier, Interval(float, 0, None, closed="neither"), name="noise_multiplier", owner=owner)
    sample_rate = check(sample_rate, _RATE, name="sample_rate", owner=owner)
    steps = check(steps, _STEPS, name="steps", owner=owner)
    delta = check(delta, _DELTA, name="delta", owner=owner)
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    orders = np.asarray(orders if orders is not None else [1 + x / 10.0 for x in range(1, 100)] + list(range(12, 64)), float)
    rdp = np.asarray(compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=int(steps), orders=list(orders)))
    if conversion == "improved":
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            eps, order = get_privacy_spent(orders=orders, rdp=rdp, delta=delta)
        return float(eps), float(order)
    eps = rdp - math.log(delta) / (orders - 1)
    i = int(np.nanargmin(eps))
    return float(eps[i]), float(orders[i])
