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

__all__ = ["ACCOUNTANTS", "compute_epsilon", "noise_for_epsilon", "rdp_epsilon", "RDP_CONVERSIONS"]

#: Accepted names of the ``accountant`` parameter.
ACCOUNTANTS = ("rdp", "prv")
#: Accepted names of the ``conversion`` parameter of :func:`rdp_epsilon`.
RDP_CONVERSIONS = ("improved", "classic")


def _check(*, noise_multiplier=None, sample_rate, steps, delta, accountant, owner):
    if accountant not in ACCOUNTANTS:
        raise ValueError(f"The 'accountant' parameter of {owner} must be one of {ACCOUNTANTS}. Got {accountant!r} instead.")
    if noise_multiplier is not None and not (isinstance(noise_multiplier, (int, float)) and noise_multiplier > 0):
        raise ValueError(f"The 'noise_multiplier' parameter of {owner} must be > 0. Got {noise_multiplier!r} instead.")
    if not (isinstance(sample_rate, (int, float)) and 0 < sample_rate <= 1):
        raise ValueError(f"The 'sample_rate' parameter of {owner} must be in (0, 1]. Got {sample_rate!r} instead.")
    if isinstance(steps, bool) or not isinstance(steps, (int, np.integer)) or steps < 1:
        raise ValueError(f"The 'steps' parameter of {owner} must be an int >= 1. Got {steps!r} instead.")
    if not (isinstance(delta, (int, float)) and 0 < delta < 1):
        raise ValueError(f"The 'delta' parameter of {owner} must be in (0, 1). Got {delta!r} instead.")


def _accountant(name: str, noise_multiplier: float, sample_rate: float, steps: int):
    from opacus.accountants import create_accountant

    acc = create_accountant(mechanism=name)
    acc.history = [(float(noise_multiplier), float(sample_rate), int(steps))]
    return acc


def compute_epsilon(*, noise_multiplier: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp") -> float:
    """Epsilon spent by ``steps`` steps of DP-SGD with Poisson sampling rate ``sample_rate``.

    Parameters
    ----------
    noise_multiplier : float
        Noise standard deviation divided by the clipping norm (sigma).
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
    """
    _check(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps, delta=delta,
           accountant=accountant, owner="compute_epsilon")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "optimal order is the largest alpha" for tiny epsilons
        if accountant == "rdp":
            from opacus.accountants import RDPAccountant
            from opacus.accountants.analysis.rdp import get_privacy_spent

            rdp = _rdp_per_step(float(noise_multiplier), float(sample_rate)) * int(steps)
            return float(get_privacy_spent(orders=RDPAccountant.DEFAULT_ALPHAS, rdp=rdp, delta=delta)[0])
        return float(_accountant(accountant, noise_multiplier, sample_rate, steps).get_epsilon(delta=delta))


@functools.lru_cache(maxsize=1024)
def _rdp_per_step(noise_multiplier: float, sample_rate: float) -> np.ndarray:
    """RDP of one step at Opacus's default orders (cached: RDP composes linearly, so ``steps`` steps cost
    ``steps`` times this). Opacus's ``RDPAccountant.get_epsilon`` computes the same array times ``steps``
    from scratch on every call (about 0.25 s here), which made the per-epoch epsilon of a training run cost
    more than the epoch itself for small models; the numbers are identical."""
    from opacus.accountants import RDPAccountant
    from opacus.accountants.analysis.rdp import compute_rdp

    out = np.asarray(compute_rdp(q=sample_rate, noise_multiplier=noise_multiplier, steps=1, orders=RDPAccountant.DEFAULT_ALPHAS))
    out.setflags(write=False)
    return out


def noise_for_epsilon(*, target_epsilon: float, sample_rate: float, steps: int, delta: float, accountant: str = "rdp",
                      tolerance: float = 0.01) -> float:
    """Smallest noise multiplier (to a binary-search ``tolerance`` in epsilon) whose epsilon is <= ``target_epsilon``.

    Wraps :func:`opacus.accountants.utils.get_noise_multiplier`, so the result equals what
    ``PrivacyEngine.make_private_with_epsilon`` would pick for the same steps.

    Examples
    --------
    >>> sigma = noise_for_epsilon(target_epsilon=8, sample_rate=0.04, steps=2000, delta=1e-5)
    >>> round(sigma, 4), compute_epsilon(noise_multiplier=sigma, sample_rate=0.04, steps=2000, delta=1e-5) <= 8
    (1.3562, True)
    """
    if not (isinstance(target_epsilon, (int, float)) and math.isfinite(target_epsilon) and target_epsilon > 0):
        raise ValueError(f"The 'target_epsilon' parameter of noise_for_epsilon must be a finite number > 0. Got {target_epsilon!r} instead.")
    _check(sample_rate=sample_rate, steps=steps, delta=delta, accountant=accountant, owner="noise_for_epsilon")
    return _noise_for_epsilon(float(target_epsilon), float(sample_rate), int(steps), float(delta), accountant, float(tolerance))


@functools.lru_cache(maxsize=256)
def _noise_for_epsilon(target_epsilon, sample_rate, steps, delta, accountant, tolerance) -> float:
    # a binary search over ~20 accountant calls: cached, since notebooks and panels ask the same question again
    from opacus.accountants.utils import get_noise_multiplier

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(get_noise_multiplier(target_epsilon=target_epsilon, target_delta=delta, sample_rate=sample_rate,
                                          steps=steps, accountant=accountant, epsilon_tolerance=tolerance))


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
    if conversion not in RDP_CONVERSIONS:
        raise ValueError(f"The 'conversion' parameter of rdp_epsilon must be one of {RDP_CONVERSIONS}. Got {conversion!r} instead.")
    _check(noise_multiplier=noise_multiplier, sample_rate=sample_rate, steps=steps, delta=delta, accountant="rdp", owner="rdp_epsilon")
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
