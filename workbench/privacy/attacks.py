"""Membership-inference attacks and the hypothesis-testing view of differential privacy.

An attack gets a trained *target* model and a set of candidate examples, half of which were in the
target's training set, and outputs one *score* per example (higher = "more likely a member"). Sweeping a
threshold over the scores gives an ROC curve; we report its AUC and, following Carlini et al. (2022,
"Membership inference attacks from first principles"), the TPR at a low FPR (0.1% and 1%), which is what
matters for privacy: an attack that confidently identifies a few members is a real leak even when its
average-case AUC is close to 0.5.

Attacks
-------
``loss``         Yeom et al. (2018): members have lower loss; score = -loss.
``reference``    Difficulty calibration with reference models (Watson et al. 2022, Ye et al. 2022):
                 score = (mean loss of reference models that did NOT train on the example) - target loss.
``lira-offline`` LiRA, offline: per-example Gaussian fit of the logit-scaled confidence
                 ``phi = log(p_y / (1 - p_y))`` under shadow models that did not train on the example;
                 one-sided test ``score = Phi((phi - mu_out) / sigma_out)`` (reported as ``-log(1 - Phi)``,
                 same order, better resolution at the top).
``lira-online``  LiRA, online: likelihood ratio of the in- and out-Gaussians,
                 ``score = log N(phi; mu_in, s_in) - log N(phi; mu_out, s_out)``.
``rmia-online``  RMIA (Zarifzadeh et al. 2024): the fraction of population samples ``z`` that the candidate ``x``
                 dominates in the pairwise likelihood ratio ``[Pr(x|theta)/Pr(x)] / [Pr(z|theta)/Pr(z)]``, with
                 ``Pr(.)`` averaged over IN and OUT reference models.
``rmia-offline`` RMIA with OUT reference models only and the paper's ``a`` correction of ``Pr(x)``.

Shadow models are trained on random halves of the candidate pool: every example is "in" for exactly
``k // 2`` of the ``k`` shadow models (Carlini et al.'s balanced scheme).

Theory vs practice
------------------
A mechanism is (epsilon, delta)-DP iff every membership test on it satisfies (Kairouz et al. 2015)
``TPR <= e^eps * FPR + delta`` and ``1 - FPR >= e^eps * (1 - TPR) - delta`` (i.e.
``TPR <= 1 - e^-eps * (1 - delta - FPR)``). :func:`dp_tpr_bound` draws that region's upper edge;
:func:`empirical_epsilon` inverts it with Clopper-Pearson intervals (Jagielski et al. 2020) to get the
epsilon lower bound a measured ROC certifies.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable, Sequence

import numpy as np

from workbench.metrics import curve_auc, roc_auc, roc_curve, tpr_at_fpr
from workbench.validation import Boolean, Interval, check

__all__ = [
    "ATTACKS",
    "AttackResult",
    "ShadowModels",
    "MembershipReport",
    "roc_curve",
    "roc_auc",
    "curve_auc",
    "tpr_at_fpr",
    "FPR_TARGETS",
    "evaluate_scores",
    "per_example_loss",
    "logit_confidence",
    "loss_threshold_attack",
    "reference_attack",
    "lira_scores",
    "lira_attack",
    "rmia_scores",
    "rmia_attack",
    "tpr_key",
    "random_halves",
    "paired_halves",
    "train_shadow_models",
    "model_outputs",
    "run_attacks",
    "membership_inference",
    "dp_tpr_bound",
    "dp_auc_bound",
    "clopper_pearson",
    "empirical_epsilon",
    "bound_violations",
]

#: FPRs at which every result reports the TPR (0.1% and 1%).
FPR_TARGETS = (0.001, 0.01)


def tpr_key(fpr: float) -> str:
    """Column / metric name of the TPR at FPR ``fpr``.

    Examples
    --------
    >>> tpr_key(0.001)
    'tpr_at_fpr_0.001'
    """
    return f"tpr_at_fpr_{fpr:g}"


# --------------------------------------------------------------------------------------------- validation
def _as_1d(name: str, value, *, func: str, dtype=float) -> np.ndarray:
    arr = np.asarray(value.detach().cpu().numpy() if hasattr(value, "detach") else value, dtype=dtype)
    if arr.ndim != 1:
        raise ValueError(f"The '{name}' parameter of {func} must be 1-D. Got shape {arr.shape} instead.")
    return arr


def _membership(is_member, *, n: int, func: str) -> np.ndarray:
    m = np.asarray(is_member.detach().cpu().numpy() if hasattr(is_member, "detach") else is_member)
    if m.ndim != 1 or len(m) != n:
        raise ValueError(
            f"The 'is_member' parameter of {func} must be 1-D with one entry per score ({n}). Got shape {m.shape} instead."
        )
    if m.dtype != bool:
        if not np.isin(m, (0, 1)).all():
            raise ValueError(f"The 'is_member' parameter of {func} must hold booleans or 0/1.")
        m = m.astype(bool)
    if m.all() or not m.any():
        raise ValueError(f"The 'is_member' parameter of {func} must contain both members and non-members.")
    return m


# --------------------------------------------------------------------------------------------- ROC metrics
# The one ROC / AUC / TPR-at-FPR of the workbench (workbench.metrics), re-exported for callers of this module.
# ``curve_auc(fpr, tpr=...)`` is the area under given ROC points (formerly ``attacks.roc_auc(fpr, tpr=...)``).


@dataclass(frozen=True)
class AttackResult:
    """Scores of one attack and its ROC summary.

    ``tpr_at`` maps each FPR in :data:`FPR_TARGETS` to the TPR there; ``advantage`` is
    ``max(TPR - FPR)`` (the membership advantage of Yeom et al.).
    """

    name: str
    scores: np.ndarray
    is_member: np.ndarray
    fpr: np.ndarray
    tpr: np.ndarray
    thresholds: np.ndarray
    auc: float
    tpr_at: dict
    advantage: float

    @property
    def n_members(self) -> int:
        return int(self.is_member.sum())

    @property
    def n_nonmembers(self) -> int:
        return int((~self.is_member).sum())

    def summary(self) -> dict:
        """Flat metrics: ``auc``, ``tpr_at_fpr_0.001``, ``tpr_at_fpr_0.01``, ``advantage`` (names of the run records'
        one scheme, :func:`workbench.results.metric_key`)."""
        out = {"attack": self.name, "auc": self.auc}
        out.update({tpr_key(k): v for k, v in self.tpr_at.items()})
        out["advantage"] = self.advantage
        return out


def evaluate_scores(scores, *, is_member, name: str = "attack", fpr_targets: Sequence[float] = FPR_TARGETS) -> AttackResult:
    """Turn attack scores (higher = member) into an :class:`AttackResult`.

    Examples
    --------
    >>> r = evaluate_scores([3.0, 2.0, 1.0, 0.0], is_member=[1, 1, 0, 0])
    >>> r.auc, r.summary()["tpr_at_fpr_0.01"]
    (1.0, 1.0)
    """
    s = _as_1d("scores", scores, func="evaluate_scores")
    m = _membership(is_member, n=len(s), func="evaluate_scores")
    fpr, tpr, thr = roc_curve(s, m)
    return AttackResult(
        name=name, scores=s, is_member=m, fpr=fpr, tpr=tpr, thresholds=thr, auc=curve_auc(fpr, tpr=tpr),
        tpr_at={float(t): tpr_at_fpr(fpr, tpr=tpr, target=t) for t in fpr_targets}, advantage=float(np.max(tpr - fpr)),
    )


# --------------------------------------------------------------------------------------------- model outputs
def _logits_labels(logits, labels, *, func: str) -> tuple[np.ndarray, np.ndarray]:
    z = np.asarray(logits.detach().cpu().numpy() if hasattr(logits, "detach") else logits, dtype=np.float64)
    y = _as_1d("labels", labels, func=func, dtype=np.int64)
    if z.ndim != 2 or len(z) != len(y):
        raise ValueError(
            f"The 'logits' parameter of {func} must have shape (n, n_classes) with n = len(labels) = {len(y)}. "
            f"Got shape {z.shape} instead."
        )
    if len(y) and (y.min() < 0 or y.max() >= z.shape[1]):
        raise ValueError(f"The 'labels' parameter of {func} must be class ids in [0, {z.shape[1] - 1}].")
    return z, y


def _logsumexp(z: np.ndarray, axis: int) -> np.ndarray:
    top = np.max(z, axis=axis, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    return np.squeeze(top, axis) + np.log(np.sum(np.exp(z - top), axis=axis))


def per_example_loss(logits, *, labels) -> np.ndarray:
    """Cross-entropy of each example, ``-log softmax(logits)[label]``.

    Examples
    --------
    >>> per_example_loss([[0.0, 0.0]], labels=[1]).round(4).tolist()
    [0.6931]
    """
    z, y = _logits_labels(logits, labels, func="per_example_loss")
    return _logsumexp(z, 1) - z[np.arange(len(y)), y]


def logit_confidence(logits, *, labels) -> np.ndarray:
    """LiRA's logit-scaled confidence ``phi = log(p_y / (1 - p_y))`` of the true class, computed stably
    as ``z_y - logsumexp(z_{j != y})`` (no rounding of ``p_y`` to 1).

    Examples
    --------
    >>> logit_confidence([[2.0, 0.0]], labels=[0]).round(4).tolist()   # p = sigmoid(2)
    [2.0]
    """
    z, y = _logits_labels(logits, labels, func="logit_confidence")
    rows = np.arange(len(y))
    others = z.copy()
    others[rows, y] = -np.inf
    return z[rows, y] - _logsumexp(others, 1)


# --------------------------------------------------------------------------------------------- attacks
def loss_threshold_attack(losses, *, is_member) -> AttackResult:
    """Yeom et al.'s attack: the lower the target model's loss on an example, the likelier a member.

    Examples
    --------
    >>> loss_threshold_attack([0.1, 0.2, 1.0, 2.0], is_member=[1, 1, 0, 0]).auc
    1.0
    """
    losses = _as_1d("losses", losses, func="loss_threshold_attack")
    return evaluate_scores(-losses, is_member=is_member, name="loss")


def reference_attack(target_losses, *, reference_losses, is_member) -> AttackResult:
    """Calibrate each example's loss by its loss under reference models that did not train on it.

    Parameters
    ----------
    target_losses : array (n,)
    reference_losses : array (n,) or (k, n)
        Losses of reference models on the same examples; with ``k`` rows, NaN marks "this reference model
        trained on the example" (ignored), and the mean over the remaining rows is used.
    is_member : array (n,)

    Examples
    --------
    >>> # example 0 is hard for everyone, example 1 only for references: 1 is the member
    >>> reference_attack([2.0, 0.1], reference_losses=[2.0, 1.0], is_member=[0, 1]).auc
    1.0
    """
    t = _as_1d("target_losses", target_losses, func="reference_attack")
    ref = np.asarray(reference_losses, dtype=float)
    if ref.ndim == 1:
        ref = ref[None]
    if ref.ndim != 2 or ref.shape[1] != len(t):
        raise ValueError(
            f"The 'reference_losses' parameter of reference_attack must have shape ({len(t)},) or (k, {len(t)}). "
            f"Got shape {np.shape(reference_losses)} instead."
        )
    counts = np.sum(~np.isnan(ref), axis=0)
    if (counts == 0).any():
        raise ValueError(
            "The 'reference_losses' parameter of reference_attack has examples with no reference loss "
            f"({int((counts == 0).sum())} columns all NaN); train more reference models."
        )
    return evaluate_scores(np.nanmean(ref, axis=0) - t, is_member=is_member, name="reference")


def _gauss_fit(phi: np.ndarray, mask: np.ndarray, *, fix_variance: bool) -> tuple[np.ndarray, np.ndarray]:
    """Per-example mean and std of ``phi[mask]`` along axis 0 (models)."""
    cnt = mask.sum(0)
    x = np.where(mask, phi, 0.0)
    mu = x.sum(0) / np.maximum(cnt, 1)
    resid2 = np.where(mask, (phi - mu) ** 2, 0.0)
    with np.errstate(invalid="ignore", divide="ignore"):
        std = np.sqrt(resid2.sum(0) / (cnt - 1))
    has_std = cnt >= 2
    if has_std.any():
        global_std = float(np.median(std[has_std]))  # Carlini et al.'s "global variance": median per-example std
    else:
        # one observation per example (k = 2): only the spread across examples is left to estimate a scale
        global_std = float(np.std(phi[mask]))
    global_std = max(global_std, 1e-6)
    if fix_variance:
        std = np.full_like(mu, global_std)
    else:
        std = np.where(has_std, np.maximum(np.nan_to_num(std), 1e-6), global_std)
    return mu, std


def lira_scores(target_phi, *, shadow_phi, shadow_in, online: bool = True, fix_variance: bool = True) -> np.ndarray:
    """LiRA membership scores from the target's and the shadow models' logit-scaled confidences.

    Parameters
    ----------
    target_phi : array (n,)
        :func:`logit_confidence` of the target model on the candidates.
    shadow_phi : array (k, n)
        The same for ``k`` shadow models.
    shadow_in : bool array (k, n)
        ``shadow_in[j, i]``: shadow model ``j`` trained on candidate ``i``.
    online : bool
        Online (in- and out-Gaussians, likelihood ratio; needs k >= 2) or offline (out-Gaussian only,
        one-sided test).
    fix_variance : bool
        Use one global std per distribution (the median of the per-example stds) instead of per-example
        stds: Carlini et al.'s recommendation when k is small (< 64).

    Examples
    --------
    >>> phi = np.array([[0.0, 0.0], [4.0, 4.0], [0.2, 3.8], [3.9, 0.1]])
    >>> keep = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], bool)
    >>> int(lira_scores(np.array([4.0, 0.0]), shadow_phi=phi, shadow_in=keep).argmax())   # example 0 looks like an "in"
    0
    """
    t = _as_1d("target_phi", target_phi, func="lira_scores")
    phi = np.asarray(shadow_phi, dtype=float)
    keep = np.asarray(shadow_in)
    if phi.ndim != 2 or phi.shape[1] != len(t) or keep.shape != phi.shape:
        raise ValueError(
            f"The 'shadow_phi' and 'shadow_in' parameters of lira_scores must both have shape (k, {len(t)}). "
            f"Got {phi.shape} and {keep.shape} instead."
        )
    keep = keep.astype(bool)
    k = phi.shape[0]
    if online and k < 2:
        raise ValueError(f"Online LiRA needs k >= 2 shadow models (some in, some out). Got k={k}; use online=False or train more.")
    if not (~keep).any(0).all():
        raise ValueError("Every candidate needs at least one shadow model that did not train on it ('shadow_in' all True in a column).")
    if online and not keep.any(0).all():
        raise ValueError("Online LiRA needs at least one shadow model that trained on each candidate ('shadow_in' all False in a column).")
    from scipy.stats import norm

    mu_out, sd_out = _gauss_fit(phi, ~keep, fix_variance=fix_variance)
    if not online:
        return -norm.logsf(t, loc=mu_out, scale=sd_out)
    mu_in, sd_in = _gauss_fit(phi, keep, fix_variance=fix_variance)
    return norm.logpdf(t, loc=mu_in, scale=sd_in) - norm.logpdf(t, loc=mu_out, scale=sd_out)


def lira_attack(target_phi, *, shadow_phi, shadow_in, is_member, online: bool = True, fix_variance: bool = True) -> AttackResult:
    """:func:`lira_scores` evaluated against the true membership (name ``lira-online`` / ``lira-offline``)."""
    scores = lira_scores(target_phi, shadow_phi=shadow_phi, shadow_in=shadow_in, online=online, fix_variance=fix_variance)
    return evaluate_scores(scores, is_member=is_member, name="lira-online" if online else "lira-offline")


def _sigmoid(phi: np.ndarray) -> np.ndarray:
    """``p = 1 / (1 + e^-phi)``: the true-class probability back from LiRA's logit-scaled confidence."""
    from scipy.special import expit

    return expit(phi)


def _rmia_marginal(p: np.ndarray, keep: np.ndarray, *, online: bool, offline_a: float) -> np.ndarray:
    """RMIA's ``Pr(x)``: the average of ``Pr(x | theta_ref)`` over reference models, per column.

    Online: ``(mean over IN models + mean over OUT models) / 2`` (the average over a balanced set of reference
    models). Offline (only OUT models used): ``((1 + a) * mean over OUT + (1 - a)) / 2``, the paper's linear
    approximation of the missing IN average.
    """
    out_cnt = (~keep).sum(0)
    p_out = np.where(~keep, p, 0.0).sum(0) / np.maximum(out_cnt, 1)
    if not online:
        return ((1 + offline_a) * p_out + (1 - offline_a)) / 2
    in_cnt = keep.sum(0)
    p_in = np.where(keep, p, 0.0).sum(0) / np.maximum(in_cnt, 1)
    return (p_in + p_out) / 2


def rmia_scores(target_phi, *, shadow_phi, shadow_in, population=None, gamma: float = 1.0, online: bool = True,
                offline_a: float = 0.3) -> np.ndarray:
    """RMIA membership scores (Zarifzadeh, Liu, Shokri and Hu, ICML 2024; the attack of ML Privacy Meter).

    For a candidate ``x`` and a population sample ``z``, the pairwise likelihood ratio is

        LR(x, z) = [Pr(x | theta) / Pr(x)] / [Pr(z | theta) / Pr(z)]

    where ``Pr(. | theta)`` is the target's probability of the true label and ``Pr(.)`` its average over reference
    (shadow) models; the score of ``x`` is the fraction of population samples it dominates,
    ``Pr_z[LR(x, z) >= gamma]``. Comparing with ``z`` calibrates ``x``'s ratio against how the target treats
    typical non-training data, which is why RMIA stays strong with few reference models. Working on probabilities,
    it loses the signal of examples that every model already fits with ``p ~ 1``, where LiRA's logit scaling still
    separates members (``tests/privacy/test_attacks.py`` shows both cases).

    Parameters
    ----------
    target_phi : array (n,)
        :func:`logit_confidence` of the target on the candidates (``Pr(x | theta) = sigmoid(phi)``).
    shadow_phi : array (k, n)
        The same for ``k`` reference models.
    shadow_in : bool array (k, n)
        ``shadow_in[j, i]``: reference model ``j`` trained on candidate ``i``.
    population : int array or bool mask, optional
        Which candidates serve as population samples ``z`` (default: all of them; a candidate is never compared
        with itself). The attacker knows the candidates but not which the target used, so z mixes members and
        non-members; the paper draws z from population data the target did not see.
    gamma : float
        The likelihood-ratio threshold, ``> 0`` (the paper uses 1 online and about 2 offline).
    online : bool
        ``Pr(x)`` from IN and OUT reference models (needs both for every candidate) or, offline, from OUT models
        only with the ``offline_a`` correction.
    offline_a : float
        ``a`` in ``Pr(x) = ((1 + a) Pr_OUT(x) + (1 - a)) / 2``, in ``[0, 1]`` (the paper tunes it on one pair of
        reference models; 0.3 by default).

    Returns
    -------
    numpy.ndarray (n,)
        Scores in [0, 1], higher = more likely a member.

    Examples
    --------
    >>> phi = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])     # reference models: every candidate alike
    >>> keep = np.array([[1, 0, 1], [0, 1, 0]], bool)
    >>> rmia_scores(np.array([3.0, 0.0, -3.0]), shadow_phi=phi, shadow_in=keep).tolist()   # target fits x0 best
    [1.0, 0.5, 0.0]
    """
    owner = "rmia_scores"
    t = _as_1d("target_phi", target_phi, func=owner)
    phi = np.asarray(shadow_phi, dtype=float)
    keep = np.asarray(shadow_in)
    if phi.ndim != 2 or phi.shape[1] != len(t) or keep.shape != phi.shape:
        raise ValueError(f"The 'shadow_phi' and 'shadow_in' parameters of {owner} must both have shape (k, {len(t)}). "
                         f"Got {phi.shape} and {keep.shape} instead.")
    keep = keep.astype(bool)
    gamma = check(gamma, Interval(float, 0, None, closed="neither"), name="gamma", owner=owner)
    online = check(online, Boolean(), name="online", owner=owner)
    offline_a = check(offline_a, Interval(float, 0, 1), name="offline_a", owner=owner)
    if not (~keep).any(0).all():
        raise ValueError(f"Every candidate of {owner} needs at least one reference model that did not train on it "
                         "('shadow_in' all True in a column).")
    if online and not keep.any(0).all():
        raise ValueError(f"Online RMIA ({owner}) needs at least one reference model that trained on each candidate "
                         "('shadow_in' all False in a column); use online=False or train more.")
    n = len(t)
    if population is None:
        z = np.arange(n)
    else:
        z = np.asarray(population)
        z = np.flatnonzero(z) if z.dtype == bool and z.shape == (n,) else z.astype(np.int64).reshape(-1)
        if len(z) == 0 or z.min() < 0 or z.max() >= n:
            raise ValueError(f"The 'population' parameter of {owner} must be a non-empty bool mask of length {n} or "
                             f"indices in [0, {n - 1}]. Got {len(z)} entries instead.")
    # work in logs: ratio = log Pr(x | theta) - log Pr(x)
    p_target = _sigmoid(t)
    p_marginal = _rmia_marginal(_sigmoid(phi), keep, online=online, offline_a=offline_a)
    with np.errstate(divide="ignore"):
        ratio = np.log(p_target) - np.log(p_marginal)
    ratio_z = np.sort(ratio[z])
    # LR(x, z) >= gamma  <=>  ratio_z <= ratio_x - log(gamma)
    counts = np.searchsorted(ratio_z, ratio - np.log(gamma), side="right").astype(float)
    in_z = np.zeros(n, bool)
    in_z[z] = True
    self_counted = in_z & (gamma <= 1.0)  # x compared with itself: LR = 1 >= gamma
    counts -= self_counted
    return counts / (len(z) - in_z.astype(float))


def rmia_attack(target_phi, *, shadow_phi, shadow_in, is_member, online: bool = True, gamma: float = 1.0,
                offline_a: float = 0.3) -> AttackResult:
    """:func:`rmia_scores` (population: every candidate) evaluated against the true membership (name ``rmia-online`` /
    ``rmia-offline``)."""
    scores = rmia_scores(target_phi, shadow_phi=shadow_phi, shadow_in=shadow_in, gamma=gamma, online=online,
                         offline_a=offline_a)
    return evaluate_scores(scores, is_member=is_member, name="rmia-online" if online else "rmia-offline")


# --------------------------------------------------------------------------------------------- shadow models
def random_halves(n: int, *, k: int, seed: int = 0) -> np.ndarray:
    """Boolean ``(k, n)`` inclusion matrix: each of the ``n`` examples is in exactly ``k // 2`` of ``k`` subsets.

    Examples
    --------
    >>> keep = random_halves(5, k=4, seed=0)
    >>> keep.shape, keep.sum(0).tolist()
    ((4, 5), [2, 2, 2, 2, 2])
    """
    n = check(n, Interval(int, 1, None), name="n", owner="random_halves")
    k = check(k, Interval(int, 1, None), name="k", owner="random_halves")
    rng = np.random.default_rng(seed)
    if k == 1:
        return rng.permutation(n)[None] < n // 2
    return np.argsort(rng.random((k, n)), axis=0) < k // 2


def paired_halves(n: int, *, k: int, seed: int = 0) -> np.ndarray:
    """Boolean ``(k, n)`` inclusion matrix of ``k // 2`` complementary pairs: shadow ``2j + 1`` trains on exactly the
    examples shadow ``2j`` leaves out (``k`` even). Every even prefix of the rows is balanced too (each example in
    exactly half of the first ``2p`` shadows), so a study can read the attacks at 2, 4, 8, ... shadows from one
    training of ``k``.

    Examples
    --------
    >>> keep = paired_halves(5, k=4, seed=0)
    >>> keep[:2].sum(0).tolist(), keep.sum(0).tolist()
    ([1, 1, 1, 1, 1], [2, 2, 2, 2, 2])
    """
    n = check(n, Interval(int, 2, None), name="n", owner="paired_halves")
    k = check(k, Interval(int, 2, None), name="k", owner="paired_halves")
    if k % 2:
        raise ValueError(f"The 'k' parameter of paired_halves must be an even int >= 2. Got {k} instead.")
    rng = np.random.default_rng([seed, 17])
    first = np.stack([rng.permutation(n) < n // 2 for _ in range(k // 2)])
    return np.stack([first, ~first], axis=1).reshape(k, n)


def model_outputs(model, *, X, y) -> dict[str, np.ndarray]:
    """Per-example ``loss`` and LiRA ``phi`` of a torch model on ``(X, y)`` (eval mode, no grad)."""
    from workbench.training import predict

    logits = predict(model, X).double().numpy()
    y = np.asarray(y.numpy() if hasattr(y, "numpy") else y)
    return {"loss": per_example_loss(logits, labels=y), "phi": logit_confidence(logits, labels=y)}


@dataclass
class ShadowModels:
    """Outputs of ``k`` shadow models on the candidate pool: ``keep`` (k, n) membership, ``loss`` and ``phi`` (k, n),
    each model's ``info`` and ``timings`` (``train_seconds``, ``score_seconds``: totals over the shadows)."""

    keep: np.ndarray
    loss: np.ndarray
    phi: np.ndarray
    info: list = field(default_factory=list)
    timings: dict = field(default_factory=dict)

    @property
    def k(self) -> int:
        return int(self.keep.shape[0])

    def first(self, k: int) -> "ShadowModels":
        """The first ``k`` shadows (what an attacker with a budget of ``k`` would have trained).

        Examples
        --------
        >>> s = ShadowModels(keep=paired_halves(4, k=4), loss=np.zeros((4, 4)), phi=np.zeros((4, 4)))
        >>> s.first(2).k
        2
        """
        k = check(k, Interval(int, 1, self.k), name="k", owner="ShadowModels.first")
        return ShadowModels(keep=self.keep[:k], loss=self.loss[:k], phi=self.phi[:k], info=self.info[:k])


TrainFn = Callable[..., object]


def _call_train(train_fn: TrainFn, X, y, *, seed: int):
    out = train_fn(X, y, seed=seed)
    model, info = (out if isinstance(out, tuple) else (out, {}))
    return model, dict(info)


def _check_pool(X, y, *, func: str):
    n = len(X)
    if len(y) != n:
        raise ValueError(f"The 'X' and 'y' parameters of {func} must have the same length. Got {n} and {len(y)}.")
    if n < 4:
        raise ValueError(f"The candidate pool of {func} needs at least 4 examples. Got {n}.")
    return n


def train_shadow_models(train_fn: TrainFn, *, X, y, k: int, seed: int = 0, keep=None, progress: bool = False) -> ShadowModels:
    """Train ``k`` shadow models on random halves of ``(X, y)`` and record their loss and phi on all of it.

    ``train_fn(X_subset, y_subset, seed=...)`` must return a torch model (or ``(model, info_dict)``);
    it is the attacker's copy of the target's training recipe (same architecture, same DP settings). Shadow ``j``
    trains with seed ``seed * 1000 + j + 1``, so the same arguments give the same models and scores.

    Parameters
    ----------
    keep : bool array (k, n), optional
        Which examples each shadow trains on; default :func:`random_halves` ``(n, k=k, seed=seed)`` (use
        :func:`paired_halves` to read results at every even number of shadows).
    progress : bool
        A tqdm bar over the shadows.
    """
    n = _check_pool(X, y, func="train_shadow_models")
    k = check(k, Interval(int, 1, None), name="k", owner="train_shadow_models")
    if keep is None:
        keep = random_halves(n, k=k, seed=seed)
    keep = np.asarray(keep, dtype=bool)
    if keep.shape != (k, n):
        raise ValueError(f"The 'keep' parameter of train_shadow_models must have shape ({k}, {n}). Got {keep.shape} instead.")
    from tqdm.auto import tqdm

    import time

    losses, phis, infos = [], [], []
    train_seconds = score_seconds = 0.0
    for j in tqdm(range(k), desc="shadow models", disable=not progress):
        idx = np.flatnonzero(keep[j])
        start = time.perf_counter()
        model, info = _call_train(train_fn, X[idx], y[idx], seed=seed * 1000 + j + 1)
        middle = time.perf_counter()
        out = model_outputs(model, X=X, y=y)
        score_seconds += time.perf_counter() - middle
        train_seconds += middle - start
        losses.append(out["loss"])
        phis.append(out["phi"])
        infos.append(info)
    return ShadowModels(keep=keep, loss=np.stack(losses), phi=np.stack(phis), info=infos,
                        timings={"train_seconds": train_seconds, "score_seconds": score_seconds})


#: Attack name -> function(target_outputs, shadows, is_member) -> AttackResult.
ATTACKS: dict[str, Callable[[dict, ShadowModels, np.ndarray], AttackResult]] = {
    "loss": lambda t, s, m: loss_threshold_attack(t["loss"], is_member=m),
    "reference": lambda t, s, m: reference_attack(t["loss"], reference_losses=np.where(s.keep, np.nan, s.loss), is_member=m),
    "lira-offline": lambda t, s, m: lira_attack(t["phi"], shadow_phi=s.phi, shadow_in=s.keep, is_member=m, online=False),
    "lira-online": lambda t, s, m: lira_attack(t["phi"], shadow_phi=s.phi, shadow_in=s.keep, is_member=m, online=True),
    "rmia-offline": lambda t, s, m: rmia_attack(t["phi"], shadow_phi=s.phi, shadow_in=s.keep, is_member=m, online=False),
    "rmia-online": lambda t, s, m: rmia_attack(t["phi"], shadow_phi=s.phi, shadow_in=s.keep, is_member=m, online=True),
}


def run_attacks(target_outputs: dict, *, shadows: ShadowModels, is_member, attacks: Sequence[str] = tuple(ATTACKS)) -> dict[str, AttackResult]:
    """Run the named attacks (keys of :data:`ATTACKS`) on a target's outputs ``{"loss", "phi"}``."""
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ValueError(f"The 'attacks' parameter of run_attacks must hold names in {sorted(ATTACKS)}. Got {unknown} instead.")
    m = _membership(is_member, n=len(target_outputs["loss"]), func="run_attacks")
    return {a: ATTACKS[a](target_outputs, shadows, m) for a in attacks}


@dataclass
class MembershipReport:
    """Everything :func:`membership_inference` measured: the target's membership, attack results, shadows."""

    is_member: np.ndarray
    results: dict
    shadows: ShadowModels
    target_outputs: dict
    target_info: dict

    def summary(self) -> list[dict]:
        """One row per attack (``attack``, ``auc``, ``tpr@0.1%fpr``, ``tpr@1%fpr``, ``advantage``) + target info."""
        extra = {k: v for k, v in self.target_info.items() if isinstance(v, (int, float, str, type(None)))}
        return [{**r.summary(), **extra} for r in self.results.values()]


def membership_inference(
    train_fn: TrainFn,
    *,
    X,
    y,
    k: int = 8,
    attacks: Sequence[str] = tuple(ATTACKS),
    seed: int = 0,
    progress: bool = False,
) -> MembershipReport:
    """Train a target on a random half of the pool ``(X, y)``, ``k`` shadow models on other random halves,
    and attack the target.

    The target's membership is drawn independently of the shadows' (the attacker does not know it).

    Parameters
    ----------
    train_fn : callable
        ``train_fn(X_subset, y_subset, seed=...) -> model`` or ``(model, info)``; ``info`` (e.g. the
        epsilon spent) is kept in the report.
    X, y : tensors
        The candidate pool.
    k : int
        Number of shadow models (>= 2 for online LiRA and the reference attack).
    attacks : sequence of str
        Names in :data:`ATTACKS`.
    """
    n = _check_pool(X, y, func="membership_inference")
    unknown = [a for a in attacks if a not in ATTACKS]
    if unknown:
        raise ValueError(f"The 'attacks' parameter of membership_inference must hold names in {sorted(ATTACKS)}. Got {unknown} instead.")
    k = check(k, Interval(int, 1, None), name="k", owner="membership_inference")
    if k < 2 and any(a in ("lira-online", "rmia-online", "reference") for a in attacks):
        raise ValueError(f"Online LiRA and RMIA and the reference attack need k >= 2 shadow models. Got k={k}.")
    rng = np.random.default_rng([seed, 7])
    is_member = rng.permutation(n) < n // 2
    idx = np.flatnonzero(is_member)
    target, info = _call_train(train_fn, X[idx], y[idx], seed=seed * 1000)
    target_out = model_outputs(target, X=X, y=y)
    shadows = train_shadow_models(train_fn, X=X, y=y, k=k, seed=seed, progress=progress)
    results = run_attacks(target_out, shadows=shadows, is_member=is_member, attacks=attacks)
    return MembershipReport(is_member=is_member, results=results, shadows=shadows, target_outputs=target_out, target_info=info)


# --------------------------------------------------------------------------------------------- DP theory
def _check_eps_delta(epsilon, delta, *, func: str) -> tuple[float, float]:
    epsilon = check(epsilon, Interval(float, 0, None), name="epsilon", owner=func)
    delta = check(delta, Interval(float, 0, 1, closed="left"), name="delta", owner=func)
    return epsilon, delta


def dp_tpr_bound(fpr, *, epsilon: float, delta: float) -> np.ndarray:
    """Largest TPR any membership test can reach at ``fpr`` against an (epsilon, delta)-DP mechanism:
    ``min(1, e^eps * fpr + delta, 1 - e^-eps * (1 - delta - fpr))`` (Kairouz et al. 2015).

    Examples
    --------
    >>> dp_tpr_bound([0.0, 0.01, 0.5], epsilon=1.0, delta=0.0).round(4).tolist()
    [0.0, 0.0272, 0.8161]
    >>> dp_tpr_bound([0.2], epsilon=0.0, delta=0.0).tolist()   # eps = 0: no better than guessing
    [0.2]
    """
    epsilon, delta = _check_eps_delta(epsilon, delta, func="dp_tpr_bound")
    f = np.clip(np.asarray(fpr, float), 0, 1)
    e = np.exp(epsilon)
    return np.minimum.reduce([np.ones_like(f), e * f + delta, 1 - (1 - delta - f) / e])


def clopper_pearson(successes, *, trials, alpha: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """Two-sided ``1 - alpha`` Clopper-Pearson interval of a binomial proportion (exact, conservative).

    Examples
    --------
    >>> lo, hi = clopper_pearson(0, trials=10)
    >>> float(lo), round(float(hi), 4)
    (0.0, 0.3085)
    """
    from scipy.stats import beta

    k = np.asarray(successes, float)
    n = np.asarray(trials, float)
    with np.errstate(invalid="ignore"):
        lo = np.where(k > 0, beta.ppf(alpha / 2, k, n - k + 1), 0.0)
        hi = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, n - k), 1.0)
    return np.nan_to_num(lo), np.nan_to_num(hi, nan=1.0)


def _roc_intervals(result: AttackResult, alpha: float):
    n_pos, n_neg = result.n_members, result.n_nonmembers
    tp = np.rint(result.tpr * n_pos)
    fp = np.rint(result.fpr * n_neg)
    tpr_lo, _ = clopper_pearson(tp, trials=n_pos, alpha=alpha)
    _, fpr_hi = clopper_pearson(fp, trials=n_neg, alpha=alpha)
    fnr_hi = 1 - tpr_lo
    tnr_lo = 1 - fpr_hi
    return tpr_lo, fpr_hi, fnr_hi, tnr_lo


def empirical_epsilon(result: AttackResult, *, delta: float, alpha: float = 0.05, confidence_interval: bool = True) -> float:
    """Lower bound on epsilon certified by a measured ROC (Jagielski et al. 2020).

    For each threshold, ``eps >= max(log((TPR - delta) / FPR), log((1 - FPR - delta) / (1 - TPR)))``; with
    ``confidence_interval`` the TPR is replaced by its Clopper-Pearson lower and the FPR by its upper limit
    (each at level ``1 - alpha``), so sampling luck does not count as leakage. The maximum over thresholds is
    returned (0 if nothing is certified). The max over many thresholds is not corrected for multiple
    comparisons, and members' scores come from one target model, so this is a heuristic, not an audit.

    Examples
    --------
    >>> r = evaluate_scores(np.r_[np.ones(50), np.zeros(50)], is_member=np.r_[np.ones(50), np.zeros(50)])
    >>> empirical_epsilon(r, delta=0.0, confidence_interval=False)   # perfect attack: no finite bound
    inf
    """
    _, delta = _check_eps_delta(0.0, delta, func="empirical_epsilon")
    if confidence_interval:
        tpr, fpr, fnr, tnr = _roc_intervals(result, alpha)
    else:
        tpr, fpr = result.tpr, result.fpr
        fnr, tnr = 1 - tpr, 1 - fpr
    with np.errstate(divide="ignore", invalid="ignore"):
        a = np.log(np.maximum(tpr - delta, 0) / fpr)
        b = np.log(np.maximum(tnr - delta, 0) / fnr)
    vals = np.r_[a, b]
    vals = vals[~np.isnan(vals)]
    return float(max(0.0, vals.max())) if len(vals) else 0.0


def bound_violations(result: AttackResult, *, epsilon: float, delta: float, alpha: float = 0.05) -> dict:
    """Compare a measured ROC with the (epsilon, delta)-DP region.

    Returns ``{"max_excess": max(TPR - bound(FPR)) over ROC points (raw), "max_excess_ci": the same with
    the TPR at its Clopper-Pearson lower and the FPR at its upper limit, "n_violations_ci": how many points
    exceed the bound even then}``. ``n_violations_ci > 0`` means the measured leakage is larger than the
    claimed epsilon allows by more than sampling error: a bug in training or accounting (or a broken
    independence assumption).
    """
    raw = result.tpr - dp_tpr_bound(result.fpr, epsilon=epsilon, delta=delta)
    tpr_lo, fpr_hi, _, _ = _roc_intervals(result, alpha)
    ci = tpr_lo - dp_tpr_bound(fpr_hi, epsilon=epsilon, delta=delta)
    return {"max_excess": float(raw.max()), "max_excess_ci": float(ci.max()), "n_violations_ci": int((ci > 1e-12).sum())}


def dp_auc_bound(*, epsilon: float, delta: float, grid: int = 20001) -> float:
    """Largest ROC AUC any membership attack can reach against an (epsilon, delta)-DP mechanism
    (area under :func:`dp_tpr_bound`).

    Examples
    --------
    >>> round(dp_auc_bound(epsilon=0.0, delta=0.0), 4)
    0.5
    >>> round(dp_auc_bound(epsilon=1.0, delta=1e-5), 3)
    0.731
    """
    f = np.linspace(0, 1, grid)
    return curve_auc(f, tpr=dp_tpr_bound(f, epsilon=epsilon, delta=delta))
