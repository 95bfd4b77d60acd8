"""Privacy auditing with one training run (Steinke, Nasr and Jagielski, NeurIPS 2023): a lower bound on epsilon
measured from a single trained model.

The game. ``m`` audit examples (canaries) are each included in training independently with probability 1/2 (the
hidden bits ``S``). After training once, the auditor scores every canary (higher = "more likely included"), guesses
"in" for the ``k_plus`` highest scores, "out" for the ``k_minus`` lowest and abstains on the rest: ``r = k_plus +
k_minus`` guesses, ``v`` of them correct.

The theorem. If training is (epsilon, delta)-DP, the number of correct guesses is stochastically dominated by a
binomial ``Binomial(r, q)`` with ``q = e^eps / (1 + e^eps)`` (the accuracy of epsilon-DP randomized response), up to
a ``delta`` term (their Theorem 5.2 and Algorithm 2):

    P[W >= v] <= P[Binomial(r, q) >= v] + 2 m delta * max_{i = 1..v} P[v - i <= Binomial(r, q) < v] / i

:func:`audit_p_value` computes that right-hand side. A measured ``v`` whose p-value is below ``1 - confidence``
rejects "the training is (eps, delta)-DP"; :func:`epsilon_lower_bound` returns the largest epsilon rejected, i.e.
a lower bound on the true epsilon that holds with probability at least ``confidence`` over the canaries' coin flips.
The auditor picks ``k_plus`` and ``k_minus`` before looking at the outcome; :func:`one_run_audit` tries a few
settings and pays for it with a Bonferroni correction (each at level ``(1 - confidence) / settings``).

Unlike the ROC-based :func:`workbench.privacy.attacks.empirical_epsilon`, this bound is a proper statistical
guarantee of one run: the canaries' independent inclusion is what makes the guesses' errors (nearly) independent.
The bound is capped by the
audit's size: ``r`` perfect guesses certify only :func:`max_auditable_epsilon` (5.8 for 1,000 canaries at 95%),
so a large epsilon can never be confirmed with few canaries.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from workbench.validation import Interval, check

__all__ = ["audit_p_value", "epsilon_lower_bound", "max_auditable_epsilon", "count_correct_guesses", "AuditResult",
           "one_run_audit", "DEFAULT_GUESS_FRACTIONS"]

#: ``k_plus = k_minus = fraction * m`` settings that :func:`one_run_audit` tries by default (Bonferroni-corrected).
DEFAULT_GUESS_FRACTIONS = (0.02, 0.05, 0.1, 0.25, 0.5)


def _check_counts(m, r, v, *, owner: str) -> tuple[int, int, int]:
    m = check(m, Interval(int, 1, None), name="m", owner=owner)
    r = check(r, Interval(int, 0, m), name="r", owner=owner)
    v = check(v, Interval(int, 0, r), name="v", owner=owner)
    return m, r, v


def audit_p_value(v: int, *, r: int, m: int, epsilon: float, delta: float = 0.0) -> float:
    """Largest probability that an (epsilon, delta)-DP training run lets an auditor make ``>= v`` correct guesses
    out of ``r`` on ``m`` canaries (Steinke et al. 2023, Theorem 5.2; the p-value of "the run is (eps, delta)-DP").

    Parameters
    ----------
    v : int
        Correct guesses, ``0 <= v <= r``.
    r : int
        Guesses made (abstentions excluded), ``r <= m``.
    m : int
        Canaries, each included independently with probability 1/2.
    epsilon : float
        The epsilon of the null hypothesis, ``>= 0``.
    delta : float
        Its delta, in ``[0, 1]``.

    Returns
    -------
    float
        ``min(1, P[Binomial(r, q) >= v] + 2 m delta * alpha)`` with ``q = e^eps / (1 + e^eps)`` and ``alpha`` the
        largest ``P[v - i <= Binomial(r, q) < v] / i`` over ``i = 1 .. v``.

    Examples
    --------
    >>> round(audit_p_value(10, r=10, m=10, epsilon=0.0), 6)   # 10 of 10 by coin flips: 2**-10
    0.000977
    >>> audit_p_value(5, r=10, m=10, epsilon=0.0) > 0.5
    True
    """
    owner = "audit_p_value"
    m, r, v = _check_counts(m, r, v, owner=owner)
    epsilon = check(epsilon, Interval(float, 0, None, allow_inf=True), name="epsilon", owner=owner)
    delta = check(delta, Interval(float, 0, 1), name="delta", owner=owner)
    from scipy.stats import binom

    q = 1.0 / (1.0 + np.exp(-epsilon))
    beta = float(binom.sf(v - 1, r, q))  # P[Binomial(r, q) >= v]
    if v == 0 or delta == 0:
        return min(1.0, beta)
    pmf = binom.pmf(np.arange(v - 1, -1, -1), r, q)  # P[B = v - i] for i = 1 .. v
    alpha = float(np.max(np.cumsum(pmf) / np.arange(1, v + 1)))
    return min(1.0, beta + alpha * delta * 2 * m)


def epsilon_lower_bound(v: int, *, r: int, m: int, delta: float = 0.0, confidence: float = 0.95,
                        tolerance: float = 1e-6) -> float:
    """The largest epsilon that ``v`` correct guesses out of ``r`` (on ``m`` canaries) reject at ``confidence``:
    with probability at least ``confidence``, the training run is not (eps, delta)-DP for any smaller eps.

    Bisection on :func:`audit_p_value`, which increases with epsilon. 0 when nothing is rejected.

    Parameters
    ----------
    v, r, m : int
        Correct guesses, guesses, canaries (``0 <= v <= r <= m``).
    delta : float
        The delta of the guarantee being audited.
    confidence : float
        In (0, 1); 0.95 by default.
    tolerance : float
        Bisection stops when the bracket is narrower than this.

    Examples
    --------
    >>> epsilon_lower_bound(50, r=100, m=1000)            # chance level: nothing certified
    0.0
    >>> round(epsilon_lower_bound(100, r=100, m=1000), 2)  # 100 of 100 right
    3.49
    >>> epsilon_lower_bound(90, r=100, m=1000) < epsilon_lower_bound(95, r=100, m=1000)
    True
    """
    owner = "epsilon_lower_bound"
    m, r, v = _check_counts(m, r, v, owner=owner)
    delta = check(delta, Interval(float, 0, 1), name="delta", owner=owner)
    confidence = check(confidence, Interval(float, 0, 1, closed="neither"), name="confidence", owner=owner)
    tolerance = check(tolerance, Interval(float, 0, None, closed="neither"), name="tolerance", owner=owner)
    p = 1.0 - confidence

    def rejected(eps: float) -> bool:
        return audit_p_value(v, r=r, m=m, epsilon=eps, delta=delta) < p

    if not rejected(0.0):
        return 0.0
    lo, hi = 0.0, 1.0
    while rejected(hi):  # p-value -> >= P[B(r, 1) >= v] = 1 as eps grows, so this ends
        lo, hi = hi, 2 * hi
    while hi - lo > tolerance:
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if rejected(mid) else (lo, mid)
    return lo


def max_auditable_epsilon(m: int, *, r: int | None = None, delta: float = 0.0, confidence: float = 0.95) -> float:
    """The bound that ``r`` perfect guesses (``r = m`` by default) would certify: no audit with these sizes can
    show more, however leaky the model.

    Examples
    --------
    >>> max_auditable_epsilon(100) < max_auditable_epsilon(1000)
    True
    """
    r = m if r is None else r
    return epsilon_lower_bound(r, r=r, m=m, delta=delta, confidence=confidence)


def count_correct_guesses(scores, *, included, k_plus: int, k_minus: int) -> int:
    """Correct guesses of the rule "in" for the ``k_plus`` highest scores and "out" for the ``k_minus`` lowest.

    Ties are broken by position (stable sort), which the canaries' random order makes random.

    Examples
    --------
    >>> count_correct_guesses([0.9, 0.8, 0.1, 0.2], included=[1, 0, 0, 1], k_plus=1, k_minus=1)
    2
    """
    owner = "count_correct_guesses"
    s = np.asarray(scores, dtype=float).reshape(-1)
    inc = np.asarray(included).reshape(-1)
    if inc.shape != s.shape:
        raise ValueError(f"The 'included' parameter of {owner} must have one entry per score ({len(s)}). Got {len(inc)} instead.")
    if not np.isfinite(s).all():
        raise ValueError(f"The 'scores' parameter of {owner} must be finite (no NaN or inf).")
    inc = inc.astype(bool)
    k_plus = check(k_plus, Interval(int, 0, len(s)), name="k_plus", owner=owner)
    k_minus = check(k_minus, Interval(int, 0, len(s) - k_plus), name="k_minus", owner=owner)
    order = np.argsort(-s, kind="mergesort")
    top, bottom = order[:k_plus], order[len(s) - k_minus:]
    return int(inc[top].sum() + (~inc[bottom]).sum())


@dataclass(frozen=True)
class AuditResult:
    """What :func:`one_run_audit` found.

    ``epsilon_lb`` is the best bound over the settings tried (each computed at the Bonferroni-corrected level, so
    the best one still holds at ``confidence``); ``k_plus``, ``k_minus``, ``guesses`` and ``correct`` describe the
    setting that gave it; ``m`` canaries, ``settings`` settings tried; ``max_epsilon_lb`` is what perfect guesses
    in that setting would have certified (:func:`max_auditable_epsilon`).
    """

    epsilon_lb: float
    confidence: float
    delta: float
    m: int
    k_plus: int
    k_minus: int
    guesses: int
    correct: int
    settings: int
    max_epsilon_lb: float

    @property
    def accuracy(self) -> float:
        """Fraction of the guesses that were right."""
        return self.correct / self.guesses if self.guesses else float("nan")

    def summary(self) -> dict:
        """Flat fields for a table row."""
        return {"epsilon_lb": self.epsilon_lb, "confidence": self.confidence, "canaries": self.m, "guesses": self.guesses,
                "correct": self.correct, "guess_accuracy": self.accuracy, "max_epsilon_lb": self.max_epsilon_lb}


def one_run_audit(scores, *, included, delta: float = 0.0, confidence: float = 0.95,
                  guesses: Sequence[tuple] | None = None) -> AuditResult:
    """Lower bound on epsilon from canary scores of one training run (Steinke et al. 2023).

    Parameters
    ----------
    scores : array (m,)
        One score per canary, higher = "more likely included" (e.g. minus the trained model's loss).
    included : bool array (m,)
        Which canaries training actually used; each must have been included independently with probability 1/2,
        or the guarantee does not hold.
    delta : float
        The delta of the guarantee being audited (the accountant's).
    confidence : float
        Probability that the bound holds, in (0, 1).
    guesses : sequence of (k_plus, k_minus), optional
        Guess settings to try; default ``k_plus = k_minus = f * m`` for ``f`` in :data:`DEFAULT_GUESS_FRACTIONS`
        (at least 1 each). The confidence is split among them (Bonferroni).

    Returns
    -------
    AuditResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> included = rng.random(1000) < 0.5
    >>> one_run_audit(rng.random(1000), included=included).epsilon_lb     # scores know nothing
    0.0
    >>> round(one_run_audit(included + 0.0, included=included).epsilon_lb, 2)   # scores are the bits
    4.68
    """
    owner = "one_run_audit"
    s = np.asarray(scores, dtype=float).reshape(-1)
    m = len(s)
    if m < 2:
        raise ValueError(f"The 'scores' parameter of {owner} needs at least 2 canaries. Got {m}.")
    delta = check(delta, Interval(float, 0, 1), name="delta", owner=owner)
    confidence = check(confidence, Interval(float, 0, 1, closed="neither"), name="confidence", owner=owner)
    if guesses is None:
        half = m // 2
        guesses = sorted({(max(1, min(half, int(round(f * m)))),) * 2 for f in DEFAULT_GUESS_FRACTIONS})
    guesses = [tuple(g) for g in guesses]
    if not guesses or any(len(g) != 2 for g in guesses):
        raise ValueError(f"The 'guesses' parameter of {owner} must be a non-empty sequence of (k_plus, k_minus) pairs. "
                         f"Got {guesses!r} instead.")
    level = 1 - (1 - confidence) / len(guesses)
    best = None
    for k_plus, k_minus in guesses:
        v = count_correct_guesses(s, included=included, k_plus=k_plus, k_minus=k_minus)
        r = k_plus + k_minus
        eps = epsilon_lower_bound(v, r=r, m=m, delta=delta, confidence=level)
        if best is None or eps > best[0]:
            best = (eps, k_plus, k_minus, v)
    eps, k_plus, k_minus, v = best
    r = k_plus + k_minus
    return AuditResult(epsilon_lb=eps, confidence=confidence, delta=delta, m=m, k_plus=k_plus, k_minus=k_minus, guesses=r,
                       correct=v, settings=len(guesses), max_epsilon_lb=max_auditable_epsilon(m, r=r, delta=delta, confidence=level))
