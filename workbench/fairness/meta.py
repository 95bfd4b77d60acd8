"""Random-effects meta-analysis (DerSimonian-Laird), the combination step of CEAT.

Given k effect sizes ``e_i`` with within-study variances ``v_i``:

* fixed-effect weights ``w_i = 1 / v_i`` and Cochran's ``Q = sum w_i (e_i - e_FE)^2`` with ``k - 1``
  degrees of freedom (heterogeneity of the effects beyond what the ``v_i`` explain);
* DerSimonian-Laird between-study variance ``tau^2 = max(0, (Q - (k - 1)) / c)`` with
  ``c = sum w_i - sum w_i^2 / sum w_i``;
* random-effects weights ``w*_i = 1 / (v_i + tau^2)``, combined effect ``sum w*_i e_i / sum w*_i``, its
  variance ``1 / sum w*_i``, ``z = effect / se`` and ``I^2 = max(0, (Q - (k - 1)) / Q)`` (the share of the
  variation due to heterogeneity).

This is exactly what Guo & Caliskan (2021) use to combine the N per-sample WEAT effect sizes of CEAT,
and what ``statsmodels.stats.meta_analysis.combine_effects(..., method_re="dl")`` computes (the tests
check both agree).
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import stats

from workbench.validation import Options, check

__all__ = ["MetaResult", "random_effects", "ALTERNATIVES"]

#: Accepted values of ``alternative``: H1 says the combined effect is > 0, < 0, or != 0.
ALTERNATIVES = ("greater", "less", "two-sided")


@dataclass(frozen=True)
class MetaResult:
    """A DerSimonian-Laird random-effects combination of ``k`` effects.

    Attributes
    ----------
    effect, se : float
        Combined (random-effects) effect size and its standard error.
    z, p_value : float
        ``effect / se`` and its normal p-value under ``alternative``.
    ci_low, ci_high : float
        Two-sided 95% normal confidence interval of the combined effect.
    q, df, q_p_value : float, int, float
        Cochran's Q, its degrees of freedom ``k - 1`` and the chi-square p-value of homogeneity.
    tau2, i2 : float
        Between-study variance and the heterogeneity share ``I^2`` in [0, 1] (NaN when Q = 0).
    fixed_effect, fixed_se : float
        Inverse-variance (fixed-effect) combination, for comparison.
    weights : numpy.ndarray
        Normalised random-effects weights (sum to 1).
    k : int
        Number of effects combined.
    alternative : str
    """

    effect: float
    se: float
    z: float
    p_value: float
    ci_low: float
    ci_high: float
    q: float
    df: int
    q_p_value: float
    tau2: float
    i2: float
    fixed_effect: float
    fixed_se: float
    weights: np.ndarray
    k: int
    alternative: str

    def as_dict(self) -> dict:
        """Scalars only (no weights), e.g. for a results table."""
        return {k: v for k, v in self.__dict__.items() if k != "weights"}


def _p_value(z: float, alternative: str) -> float:
    if alternative == "greater":
        return float(stats.norm.sf(z))
    if alternative == "less":
        return float(stats.norm.cdf(z))
    return float(2 * stats.norm.sf(abs(z)))


def random_effects(effects, variances=None, *, alternative: str = "greater") -> MetaResult:
    """Combine effect sizes with a DerSimonian-Laird random-effects model.

    Parameters
    ----------
    effects : array-like, shape (k,)
        Effect sizes (finite).
    variances : array-like, shape (k,)
        Their within-study variances (finite, > 0).
    alternative : {"greater", "less", "two-sided"}
        Alternative hypothesis of the p-value. CEAT reports the one-sided "greater" p-value.

    Returns
    -------
    MetaResult

    Examples
    --------
    Identical effects have no heterogeneity: tau^2 = 0 and the result is the inverse-variance mean.

    >>> r = random_effects([0.5, 0.5, 0.5], [0.1, 0.1, 0.1])
    >>> round(r.effect, 6), round(r.tau2, 6), round(r.se ** 2, 6)
    (0.5, 0.0, 0.033333)
    >>> r = random_effects([0.0, 1.0], [0.01, 0.01])
    >>> round(r.q, 3), round(r.tau2, 3), round(r.i2, 3)
    (50.0, 0.49, 0.98)
    """
    check(alternative, Options(ALTERNATIVES), name="alternative", owner="random_effects")
    e = np.asarray(effects, dtype=np.float64).ravel()
    if variances is None:
        raise ValueError("The 'variances' parameter of random_effects is required (one within-study variance per effect).")
    v = np.asarray(variances, dtype=np.float64).ravel()
    if e.size == 0:
        raise ValueError("The 'effects' parameter of random_effects must not be empty.")
    if e.shape != v.shape:
        raise ValueError(f"The 'effects' and 'variances' parameters of random_effects must have the same length. Got {e.size} and {v.size} instead.")
    if not np.all(np.isfinite(e)):
        raise ValueError("The 'effects' parameter of random_effects must be finite (no NaN or inf).")
    if not np.all(np.isfinite(v)) or np.any(v <= 0):
        raise ValueError("The 'variances' parameter of random_effects must be finite and > 0.")
    k = int(e.size)
    w = 1.0 / v
    sw = w.sum()
    fixed = float((w * e).sum() / sw)
    q = float((w * (e - fixed) ** 2).sum())
    df = k - 1
    c = sw - (w ** 2).sum() / sw
    tau2 = float(max(0.0, (q - df) / c)) if c > 0 else 0.0
    w_star = 1.0 / (v + tau2)
    effect = float((w_star * e).sum() / w_star.sum())
    se = float(np.sqrt(1.0 / w_star.sum()))
    z = effect / se
    i2 = float(max(0.0, (q - df) / q)) if q > 0 else float("nan")
    q_p = float(stats.chi2.sf(q, df)) if df > 0 else float("nan")
    half = stats.norm.ppf(0.975) * se
    return MetaResult(
        effect=effect, se=se, z=float(z), p_value=_p_value(z, alternative), ci_low=effect - half, ci_high=effect + half,
        q=q, df=df, q_p_value=q_p, tau2=tau2, i2=i2, fixed_effect=fixed, fixed_se=float(np.sqrt(1.0 / sw)),
        weights=w_star / w_star.sum(), k=k, alternative=alternative,
    )
