"""Client-level privacy of DP-FedAvg, per client: every device has its own sampling rate.

In DP-FedAvg (McMahan et al. 2018) a round clips every selected device's update, averages and adds Gaussian
noise, so each round is a subsampled Gaussian mechanism *at the level of a whole device's data*. A device
selected with probability ``q_i`` per round spends the privacy of ``rounds`` steps at rate ``q_i``. Uniform
selection gives everybody ``q = k / n``; activity-based selection gives heavy devices a larger ``q_i`` and so
a larger epsilon: the price of their larger say in the model.

* :func:`inclusion_probabilities` - an upper bound on each device's probability of being selected in a round
  (exact for uniform selection).
* :func:`per_client_epsilon` - each device's epsilon from its rates (RDP, Opacus's orders and conversion; with
  equal rates it is Opacus's epsilon, which the tests check).
* :func:`client_epsilon` - the single-rate case (one number for the worst-off device).

Fixed-size selection is treated like Poisson sampling at the device's inclusion probability, the usual
approximation (it is what Opacus does for fixed-size batches too).

Examples
--------
>>> sizes = np.array([100, 10, 10, 10, 0])
>>> q = inclusion_probabilities("activity", sizes, k=1)
>>> q.round(3).tolist()  # one draw: exactly p_i = n_i / sum(n)
[0.769, 0.077, 0.077, 0.077, 0.0]
>>> eps = per_client_epsilon(noise_multiplier=1.0, sample_rates=q, rounds=50, delta=1e-5)
>>> bool(eps[0] > eps[1]), float(eps[4])  # the heavy device pays most; a device never selected pays nothing
(True, 0.0)
"""
from __future__ import annotations

import math
import warnings

import numpy as np

from workbench.validation import Interval, check

from .selection import PowerOfChoiceSelection, RoundRobinSelection, SelectionStrategy, UniformSelection, make_strategy

__all__ = ["client_epsilon", "inclusion_probabilities", "per_client_epsilon", "worst_case_epsilon"]


def client_epsilon(*, noise_multiplier: float, sample_rate: float, rounds: int, delta: float) -> float:
    """Client-level epsilon of DP-FedAvg: ``rounds`` subsampled Gaussian steps at ``sample_rate`` (RDP).

    Examples
    --------
    >>> round(client_epsilon(noise_multiplier=1.0, sample_rate=0.01, rounds=100, delta=1e-5), 2)
    1.21
    """
    from workbench.privacy.accounting import compute_epsilon

    return float(compute_epsilon(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=rounds, delta=delta))


def inclusion_probabilities(strategy: SelectionStrategy | str, sizes, *, k: int, **params) -> np.ndarray:
    """Upper bound on each device's probability of being among the ``k`` devices selected in one round.

    ``uniform``: exactly ``k / n_available``. Weighted strategies (successive draws with weights ``w``):
    ``P(i in S) <= min(1, w_i * sum_{j<k} 1 / (W - sum of the j largest weights))``, since at every draw
    device ``i`` is picked with probability ``w_i / (remaining weight)``; exact for ``k = 1``.
    ``power_of_choice``: the bound for its ``d`` activity-drawn candidates (a device must be a candidate to
    be selected; which candidates are kept depends on their private losses, which this accounting does not
    cover). ``round_robin`` is deterministic: rate 1 on the rounds a device takes part (see
    :func:`worst_case_epsilon`), so it has no sampling rate and raises ``ValueError``.

    Examples
    --------
    >>> inclusion_probabilities("uniform", [5, 0, 1, 3], k=2).tolist()
    [0.6666666666666666, 0.0, 0.6666666666666666, 0.6666666666666666]
    """
    strategy = make_strategy(strategy, **params)
    sizes = np.asarray(sizes)
    k = check(k, Interval(int, 1, None), name="k", owner="inclusion_probabilities")
    available = int(np.count_nonzero(sizes))
    if available == 0:
        return np.zeros(sizes.shape)
    if isinstance(strategy, RoundRobinSelection):
        raise ValueError("round_robin selection is deterministic: it has no sampling rate (see worst_case_epsilon).")
    if isinstance(strategy, UniformSelection):
        return np.where(sizes > 0, min(1.0, k / available), 0.0)
    if isinstance(strategy, PowerOfChoiceSelection):
        k = strategy.n_candidates(k, available)
        weights = sizes.astype(np.float64)
    else:
        weights = np.asarray(strategy.weights(sizes), dtype=np.float64)
    k = min(k, available)
    top = np.sort(weights)[::-1]
    remaining = weights.sum() - np.concatenate([[0.0], np.cumsum(top[: k - 1])])
    if np.any(remaining <= 0):
        return np.where(weights > 0, 1.0, 0.0)
    return np.minimum(1.0, weights * float(np.sum(1.0 / remaining)))


def per_client_epsilon(*, noise_multiplier: float, sample_rates, rounds, delta: float, max_exact: int | None = 16) -> np.ndarray:
    """Each device's client-level epsilon of DP-FedAvg from its own per-round sampling rate(s).

    Parameters
    ----------
    noise_multiplier : float
        Noise standard deviation over the clipping norm.
    sample_rates : array, shape (n_clients,) or (n_periods, n_clients)
        Each device's selection probability per round (per period, when rates change over time).
    rounds : int or array of int, shape (n_periods,)
        Rounds run (per period).
    delta : float
    max_exact : int or None
        With one period and more distinct rates than this, epsilon is computed exactly at ``max_exact``
        geometrically spaced rates spanning them (the smallest and largest included) and interpolated
        linearly in log-log for the others (epsilon is smooth and increasing in the rate; the tests bound the
        error at 1%). Opacus's RDP at its fractional orders costs ~0.4 s per rate, so hundreds of devices
        would take minutes. ``None``: every rate exactly.

    Returns
    -------
    numpy.ndarray
        Epsilon per device (0 for devices never at risk of selection): RDP composed over the periods at
        Opacus's default orders, converted with Opacus's (improved) conversion.

    Examples
    --------
    >>> per_client_epsilon(noise_multiplier=1.0, sample_rates=[[0.01, 0.0], [0.02, 0.0]], rounds=[10, 10], delta=1e-5).shape
    (2,)
    """
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import compute_rdp, get_privacy_spent

    owner = "per_client_epsilon"
    sigma = check(noise_multiplier, Interval(float, 0, None, closed="neither"), name="noise_multiplier", owner=owner)
    delta = check(delta, Interval(float, 0, 1, closed="neither"), name="delta", owner=owner)
    rates = np.atleast_2d(np.asarray(sample_rates, dtype=np.float64))
    if rates.size == 0 or np.any(~np.isfinite(rates)) or rates.min() < 0 or rates.max() > 1:
        raise ValueError(f"The 'sample_rates' parameter of {owner} must hold probabilities in [0, 1].")
    steps = np.atleast_1d(np.asarray(rounds))
    if steps.shape != (rates.shape[0],) or not np.issubdtype(steps.dtype, np.integer) or steps.min() < 0:
        raise ValueError(f"The 'rounds' parameter of {owner} must be an int >= 0 per period ({rates.shape[0]} periods). Got {rounds!r} instead.")
    orders = RDPAccountant.DEFAULT_ALPHAS
    positive = np.unique(rates[rates > 0])
    if rates.shape[0] == 1 and max_exact is not None and len(positive) > max(int(max_exact), 2):
        grid = np.unique(np.geomspace(positive[0], positive[-1], int(max_exact)))
        grid[0], grid[-1] = positive[0], positive[-1]
        exact = per_client_epsilon(noise_multiplier=sigma, sample_rates=grid, rounds=steps, delta=delta, max_exact=None)
        out = np.zeros(rates.shape[1])
        held = rates[0] > 0
        out[held] = np.exp(np.interp(np.log(rates[0][held]), np.log(grid), np.log(np.maximum(exact, 1e-300))))
        return out
    cache: dict[float, np.ndarray] = {}
    out = np.zeros(rates.shape[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha" for tiny epsilons
        for i in range(rates.shape[1]):
            rdp = np.zeros(len(orders))
            for p in range(rates.shape[0]):
                q = float(rates[p, i])
                if q > 0 and steps[p] > 0:
                    if q not in cache:
                        cache[q] = np.asarray(compute_rdp(q=q, noise_multiplier=sigma, steps=1, orders=orders))
                    rdp = rdp + cache[q] * int(steps[p])
            if rdp.any():
                out[i] = float(get_privacy_spent(orders=orders, rdp=rdp, delta=delta)[0])
    return out


def worst_case_epsilon(strategy: SelectionStrategy, sizes_per_period: list[np.ndarray], *, k: int, rounds: int,
                       noise_multiplier: float, delta: float) -> tuple[float | None, str]:
    """One client-level epsilon valid for every device, and a note saying how it was obtained.

    Random strategies: ``rounds`` steps at the largest inclusion bound over devices and periods. Round-robin:
    the most participations any device can have, each at rate 1. Power-of-choice: ``None`` (selection depends
    on private losses).
    """
    if isinstance(strategy, PowerOfChoiceSelection):
        return None, "DP-FedAvg with power-of-choice: selection depends on private losses, so no epsilon is reported."
    if isinstance(strategy, RoundRobinSelection):
        participations = max(math.ceil(rounds * k / np.count_nonzero(s)) for s in sizes_per_period)
        return (client_epsilon(noise_multiplier=noise_multiplier, sample_rate=1.0, rounds=participations, delta=delta),
                "Round-robin participation is deterministic: epsilon composes each device's participations without sampling amplification.")
    q = min(1.0, max(float(inclusion_probabilities(strategy, s, k=k).max()) for s in sizes_per_period))
    note = (f"Client-level epsilon uses the RDP accountant with sampling rate q={q:.4g} (an upper bound on any device's "
            "selection probability); fixed-size selection is treated like Poisson sampling, the usual approximation.")
    return client_epsilon(noise_multiplier=noise_multiplier, sample_rate=q, rounds=rounds, delta=delta), note
