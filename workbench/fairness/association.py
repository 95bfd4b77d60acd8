"""Association tests of intrinsic bias: WEAT, SEAT and CEAT.

WEAT (Caliskan et al., 2017) compares two target word sets X, Y (e.g. flowers, insects) with two
attribute sets A, B (pleasant, unpleasant). With cosine similarity ``cos``:

* association of one word: ``s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b)``;
* effect size ``d = (mean_x s(x) - mean_y s(y)) / std_{w in X u Y} s(w)`` (sample std, ``ddof=1``), a
  Cohen's-d-like number in [-2, 2]; positive means X goes with A and Y with B;
* one-sided permutation p-value: the share of equal-size re-partitions (X_i, Y_i) of X u Y whose test
  statistic ``sum_x s(x) - sum_y s(y)`` is at least the observed one. All partitions are enumerated when
  there are at most ``n_permutations`` of them (exact test); otherwise ``n_permutations`` random ones are
  drawn and ``p = (1 + #{>=}) / (1 + n_permutations)`` (never 0).

SEAT (May et al., 2019) puts every word in semantically bleached sentence templates ("This is X.") and
runs WEAT on sentence embeddings: each set becomes the set of its sentences.

CEAT (Guo & Caliskan, 2021) uses *contextual* embeddings: every word has a pool of embeddings, one per
sentence that contains it. Each of N samples draws one embedding per word, computes the WEAT effect size
``d_i`` and a variance ``v_i``; the N effects are combined with a DerSimonian-Laird random-effects model
(:func:`workbench.fairness.meta.random_effects`). As in the reference code, ``v_i`` is by default the
sample variance of the associations ``s(w)`` over X u Y ("association"); ``variance="cohen"`` uses the
large-sample variance of a standardised mean difference ``(n_x + n_y) / (n_x n_y) + d^2 / (2 (n_x + n_y))``.

Caveat (reported by the notebook): the N samples re-use the same finite pools of contexts, so they are not
independent. When N is large compared with the contexts per word, the combined standard error keeps
shrinking while the information does not grow: CEAT p-values are then too small. Compare effect sizes and
their spread rather than tiny p-values.

The CEAT sampler here is vectorised: because cosines of unit vectors are dot products,
``mean_a cos(w, a_i) = w_hat . mean_a(a_hat_i)``, so one sample costs O((|X|+|Y|+|A|+|B|) D) and all N
samples are a handful of array operations (see ``benchmarks/ceat_speed.py``; :func:`ceat_loop` is the
per-sample loop the reference implementation uses, kept for validation and the benchmark).
"""
from __future__ import annotations

import itertools
import math
import warnings
from dataclasses import dataclass, field
from typing import Mapping, Sequence

import numpy as np

from workbench.validation import Interval, Options, check

from .meta import MetaResult, random_effects

__all__ = [
    "association_scores",
    "weat_effect_size",
    "weat",
    "WeatResult",
    "check_word_sets",
    "ceat_sample_indices",
    "ceat_effects",
    "ceat_loop",
    "ceat_from_pools",
    "ceat",
    "CeatResult",
    "seat",
    "static_weat",
    "VARIANCES",
]

#: Per-sample variance used by CEAT: "association" (Guo & Caliskan's code) or "cohen".
VARIANCES = ("association", "cohen")


# ----------------------------------------------------------------------------------------------- WEAT
def _as_matrix(M, name: str, *, fn: str) -> np.ndarray:
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2:
        raise ValueError(f"The '{name}' parameter of {fn} must be a 2-D array (rows = words). Got shape {M.shape} instead.")
    if M.shape[0] == 0:
        raise ValueError(f"The '{name}' parameter of {fn} must not be empty (it has no rows).")
    if not np.all(np.isfinite(M)):
        raise ValueError(f"The '{name}' parameter of {fn} must be finite (no NaN or inf).")
    return M


def _unit_rows(M: np.ndarray, name: str, *, fn: str) -> np.ndarray:
    norms = np.linalg.norm(M, axis=-1, keepdims=True)
    if np.any(norms == 0):
        raise ValueError(f"The '{name}' parameter of {fn} has an all-zero vector: its cosine similarity is undefined.")
    return M / norms


def _check_sets(X, Y, A, B, *, fn: str):
    mats = [_as_matrix(M, n, fn=fn) for M, n in zip((X, Y, A, B), "XYAB")]
    dims = {M.shape[1] for M in mats}
    if len(dims) != 1:
        raise ValueError(f"X, Y, A and B passed to {fn} must have the same number of columns. Got {[M.shape[1] for M in mats]} instead.")
    return [_unit_rows(M, n, fn=fn) for M, n in zip(mats, "XYAB")]


def association_scores(W, A, B) -> np.ndarray:
    """``s(w, A, B) = mean_a cos(w, a) - mean_b cos(w, b)`` for every row ``w`` of ``W``.

    Examples
    --------
    >>> association_scores([[1.0, 0.0]], [[1.0, 0.0]], [[0.0, 1.0]])
    array([1.])
    """
    W, A, B = (_unit_rows(_as_matrix(M, n, fn="association_scores"), n, fn="association_scores") for M, n in zip((W, A, B), "WAB"))
    if not W.shape[1] == A.shape[1] == B.shape[1]:
        raise ValueError("W, A and B passed to association_scores must have the same number of columns.")
    return W @ A.mean(axis=0) - W @ B.mean(axis=0)


def _effect_from_scores(sx: np.ndarray, sy: np.ndarray) -> tuple[float, float]:
    """(effect size, sample variance of the scores over X u Y) from per-word associations."""
    s = np.concatenate([sx, sy])
    var = float(np.var(s, ddof=1)) if s.size > 1 else float("nan")
    if not var > 0:
        return float("nan"), var
    return float((sx.mean() - sy.mean()) / math.sqrt(var)), var


def weat_effect_size(X, Y, A, B) -> float:
    """WEAT effect size d of Caliskan et al. (2017) on static vectors.

    Parameters
    ----------
    X, Y : array-like, shape (n_x, D) and (n_y, D)
        Target word vectors (rows = words), e.g. flowers and insects.
    A, B : array-like, shape (n_a, D) and (n_b, D)
        Attribute word vectors, e.g. pleasant and unpleasant words.

    Returns
    -------
    float
        ``(mean_x s(x) - mean_y s(y)) / std_{w in X u Y} s(w)`` with the sample std (``ddof=1``). NaN (with
        a warning) when every word has the same association, so the std is 0.

    Examples
    --------
    >>> X = [[1.0, 0.1], [1.0, 0.2]]; Y = [[0.1, 1.0], [0.2, 1.0]]
    >>> A = [[1.0, 0.0]]; B = [[0.0, 1.0]]
    >>> round(weat_effect_size(X, Y, A, B), 4)
    1.7283
    >>> round(weat_effect_size(Y, X, A, B), 4)
    -1.7283
    """
    X, Y, A, B = _check_sets(X, Y, A, B, fn="weat_effect_size")
    diff = A.mean(axis=0) - B.mean(axis=0)
    d, var = _effect_from_scores(X @ diff, Y @ diff)
    if math.isnan(d):
        warnings.warn("weat_effect_size: all words have the same association (std 0); the effect size is NaN.", RuntimeWarning, stacklevel=2)
    return d


@dataclass(frozen=True)
class WeatResult:
    """Result of :func:`weat`.

    Attributes
    ----------
    effect_size : float
        Caliskan et al.'s d.
    p_value : float
        One-sided permutation p-value (H1: X is more associated with A than Y is).
    statistic : float
        ``sum_x s(x) - sum_y s(y)``.
    exact : bool
        True when every equal-size partition was enumerated.
    n_permutations : int
        Number of partitions used (all of them when exact).
    scores_x, scores_y : numpy.ndarray
        Per-word associations ``s(w, A, B)``.
    """

    effect_size: float
    p_value: float
    statistic: float
    exact: bool
    n_permutations: int
    scores_x: np.ndarray
    scores_y: np.ndarray


def _permutation_p(s: np.ndarray, n_x: int, observed: float, *, n_permutations: int, seed) -> tuple[float, bool, int]:
    """One-sided p-value of ``sum_{X_i} s - sum_{Y_i} s >= observed`` over partitions of ``s``."""
    n = s.size
    total = s.sum()
    tol = 1e-12 * max(1.0, float(np.abs(s).sum()))
    n_partitions = math.comb(n, n_x)
    if n_partitions <= n_permutations:
        count = 0
        # stream the combinations in blocks to bound memory
        it = itertools.combinations(range(n), n_x)
        while True:
            block = np.fromiter(itertools.chain.from_iterable(itertools.islice(it, 65536)), dtype=np.int64)
            if block.size == 0:
                break
            stats = 2.0 * s[block.reshape(-1, n_x)].sum(axis=1) - total
            count += int(np.count_nonzero(stats >= observed - tol))
        return count / n_partitions, True, n_partitions
    rng = np.random.default_rng(seed)
    count, done = 0, 0
    while done < n_permutations:
        m = min(4096, n_permutations - done)
        idx = np.argsort(rng.random((m, n)), axis=1)[:, :n_x]
        stats = 2.0 * s[idx].sum(axis=1) - total
        count += int(np.count_nonzero(stats >= observed - tol))
        done += m
    return (1 + count) / (1 + n_permutations), False, n_permutations


def weat(X, Y, A, B, *, n_permutations: int = 10_000, seed=0) -> WeatResult:
    """WEAT: effect size and one-sided permutation p-value.

    Parameters
    ----------
    X, Y, A, B : array-like, 2-D
        Word vectors, rows = words (see :func:`weat_effect_size`).
    n_permutations : int
        Enumerate all partitions of X u Y into sets of sizes |X| and |Y| when there are at most this many
        (exact p-value); otherwise draw this many at random.
    seed : int or numpy.random.Generator
        Randomness of the sampled permutations.

    Returns
    -------
    WeatResult

    Examples
    --------
    >>> X = [[1.0, 0.1], [1.0, 0.2], [1.0, 0.3]]; Y = [[0.1, 1.0], [0.2, 1.0], [0.3, 1.0]]
    >>> r = weat(X, Y, [[1.0, 0.0]], [[0.0, 1.0]])
    >>> r.exact, r.n_permutations, r.p_value   # 1 of the C(6, 3) = 20 partitions is as extreme
    (True, 20, 0.05)
    """
    n_permutations = check(n_permutations, Interval(int, 1, None), name="n_permutations", owner="weat")
    X, Y, A, B = _check_sets(X, Y, A, B, fn="weat")
    diff = A.mean(axis=0) - B.mean(axis=0)
    sx, sy = X @ diff, Y @ diff
    d, _ = _effect_from_scores(sx, sy)
    observed = float(sx.sum() - sy.sum())
    if math.isnan(d):
        warnings.warn("weat: all words have the same association (std 0); effect size and p-value are NaN.", RuntimeWarning, stacklevel=2)
        return WeatResult(d, float("nan"), observed, False, 0, sx, sy)
    p, exact, used = _permutation_p(np.concatenate([sx, sy]), sx.size, observed, n_permutations=int(n_permutations), seed=seed)
    return WeatResult(d, p, observed, exact, used, sx, sy)


def check_word_sets(X: Sequence[str], Y: Sequence[str], A: Sequence[str], B: Sequence[str], *, fn: str = "ceat") -> None:
    """Raise ``ValueError`` when a word set is empty or two sets share a word (case-insensitive).

    Examples
    --------
    >>> check_word_sets(["rose"], ["ant"], ["love"], ["hate"])
    >>> check_word_sets(["rose"], ["Rose"], ["love"], ["hate"])
    Traceback (most recent call last):
    ...
    ValueError: Word sets X and Y passed to ceat overlap: ['rose']. Every word must belong to one set.
    """
    sets = {"X": X, "Y": Y, "A": A, "B": B}
    for name, words in sets.items():
        if isinstance(words, str):
            raise TypeError(f"The word set {name} passed to {fn} must be a sequence of words, not one string.")
        if len(words) == 0:
            raise ValueError(f"The word set {name} passed to {fn} must not be empty.")
    for (n1, w1), (n2, w2) in itertools.combinations(sets.items(), 2):
        common = sorted({w.lower() for w in w1} & {w.lower() for w in w2})
        if common:
            raise ValueError(f"Word sets {n1} and {n2} passed to {fn} overlap: {common}. Every word must belong to one set.")


# ----------------------------------------------------------------------------------------------- CEAT
def _pools(P, name: str) -> list[np.ndarray]:
    if isinstance(P, np.ndarray) and P.ndim == 2:
        raise ValueError(f"The '{name}' pools must be a list of 2-D arrays (one per word, rows = contexts), not one 2-D array.")
    pools = []
    for i, p in enumerate(P):
        p = np.asarray(p, dtype=np.float64)
        if p.ndim != 2 or p.shape[0] == 0:
            raise ValueError(f"Word {i} of the '{name}' pools has no contexts (shape {p.shape}); every word needs >= 1 embedding.")
        if not np.all(np.isfinite(p)):
            raise ValueError(f"Word {i} of the '{name}' pools has non-finite embeddings.")
        pools.append(_unit_rows(p, name, fn="ceat"))
    if not pools:
        raise ValueError(f"The '{name}' pools must not be empty.")
    return pools


def ceat_sample_indices(sizes: Sequence[int], *, n_samples: int, seed=0) -> np.ndarray:
    """Which context each word uses in each sample: int array (n_words, n_samples), uniform with replacement.

    Examples
    --------
    >>> ceat_sample_indices([1, 3], n_samples=4, seed=0).shape
    (2, 4)
    """
    rng = np.random.default_rng(seed)
    return np.stack([rng.integers(0, int(k), size=n_samples) for k in sizes]) if len(sizes) else np.empty((0, n_samples), int)


def _split_pools(X, Y, A, B):
    pools = [_pools(P, n) for P, n in zip((X, Y, A, B), "XYAB")]
    dims = {p.shape[1] for ps in pools for p in ps}
    if len(dims) != 1:
        raise ValueError(f"All CEAT embeddings must have the same dimension. Got {sorted(dims)} instead.")
    return pools


def ceat_effects(X, Y, A, B, *, n_samples: int = 1000, seed=0, variance: str = "association",
                 indices: np.ndarray | None = None, chunk_size: int = 2048) -> tuple[np.ndarray, np.ndarray]:
    """Per-sample WEAT effect sizes and variances of CEAT, vectorised over samples.

    Parameters
    ----------
    X, Y, A, B : list of array-like, each (k_w, D)
        One pool of contextual embeddings per word.
    n_samples : int
        Number of samples N.
    seed : int or numpy.random.Generator
        Randomness of the draws (ignored when ``indices`` is given).
    variance : {"association", "cohen"}
        See the module docstring.
    indices : int array (n_words, N), optional
        Pre-drawn context indices in X, Y, A, B word order (see :func:`ceat_sample_indices`).
    chunk_size : int
        Samples processed at once (bounds memory to about ``chunk_size * D * 8`` bytes per array).

    Returns
    -------
    (effects, variances) : two float arrays of shape (N,)
    """
    check(variance, Options(VARIANCES), name="variance", owner="ceat")
    pools = _split_pools(X, Y, A, B)
    flat = [p for ps in pools for p in ps]
    if indices is None:
        n_samples = check(n_samples, Interval(int, 2, None), name="n_samples", owner="ceat")
        indices = ceat_sample_indices([p.shape[0] for p in flat], n_samples=int(n_samples), seed=seed)
    indices = np.asarray(indices)
    if indices.shape[0] != len(flat):
        raise ValueError(f"The 'indices' of ceat must have one row per word ({len(flat)}). Got {indices.shape[0]} instead.")
    nx, ny, na, nb = (len(ps) for ps in pools)
    N = indices.shape[1]
    effects, variances = np.empty(N), np.empty(N)
    for start in range(0, N, chunk_size):
        sl = slice(start, min(N, start + chunk_size))
        rows = iter(zip(flat, indices[:, sl]))
        sx = [next(rows) for _ in range(nx)]
        sy = [next(rows) for _ in range(ny)]
        mean_a = sum(p[i] for p, i in (next(rows) for _ in range(na))) / na
        mean_b = sum(p[i] for p, i in (next(rows) for _ in range(nb))) / nb
        diff = mean_a - mean_b  # (n, D): s(w) = w_hat . diff
        s_x = np.stack([np.einsum("nd,nd->n", p[i], diff) for p, i in sx], axis=1)
        s_y = np.stack([np.einsum("nd,nd->n", p[i], diff) for p, i in sy], axis=1)
        s = np.concatenate([s_x, s_y], axis=1)
        var = s.var(axis=1, ddof=1)
        d = (s_x.mean(axis=1) - s_y.mean(axis=1)) / np.sqrt(var)
        effects[sl] = d
        variances[sl] = var if variance == "association" else (nx + ny) / (nx * ny) + d ** 2 / (2 * (nx + ny))
    return effects, variances


def ceat_loop(X, Y, A, B, *, indices: np.ndarray, variance: str = "association") -> tuple[np.ndarray, np.ndarray]:
    """Reference-style CEAT: a Python loop over samples and words (like Guo & Caliskan's ``ceat.py``).

    Same inputs and outputs as :func:`ceat_effects` with pre-drawn ``indices``; slow, kept to validate the
    vectorised sampler and to benchmark it.
    """
    pools = _split_pools(X, Y, A, B)
    flat = [p for ps in pools for p in ps]
    nx, ny, na, nb = (len(ps) for ps in pools)

    def cos(w, M):
        return (M @ w) / (np.linalg.norm(M, axis=1) * np.linalg.norm(w))

    def associate(w, Am, Bm):
        return cos(w, Am).mean() - cos(w, Bm).mean()

    effects, variances = [], []
    for j in range(indices.shape[1]):
        vecs = [p[indices[r, j]] for r, p in enumerate(flat)]
        Xs = np.array(vecs[:nx]); Ys = np.array(vecs[nx:nx + ny])
        As = np.array(vecs[nx + ny:nx + ny + na]); Bs = np.array(vecs[nx + ny + na:])
        sx = [associate(Xs[i], As, Bs) for i in range(nx)]
        sy = [associate(Ys[i], As, Bs) for i in range(ny)]
        std = np.std(sx + sy, ddof=1)
        d = (np.mean(sx) - np.mean(sy)) / std
        effects.append(d)
        variances.append(std ** 2 if variance == "association" else (nx + ny) / (nx * ny) + d ** 2 / (2 * (nx + ny)))
    return np.array(effects), np.array(variances)


@dataclass(frozen=True)
class CeatResult:
    """Result of :func:`ceat` / :func:`ceat_from_pools`.

    Attributes
    ----------
    effect_size, se, p_value : float
        Combined random-effects effect size, its standard error and one-sided p-value (H1: effect > 0).
    q, tau2, i2 : float
        Cochran's Q, the DerSimonian-Laird between-sample variance and I^2 (share in [0, 1]).
    effects, variances : numpy.ndarray, shape (N,)
        Per-sample effect sizes and variances.
    n_samples : int
    meta : MetaResult
        The full meta-analysis (confidence interval, fixed-effect estimate, weights, ...).
    contexts_per_word : dict
        Number of contexts each word's pool had.
    test, encoder, layer, pooling : optional labels
    """

    effect_size: float
    se: float
    p_value: float
    q: float
    tau2: float
    i2: float
    effects: np.ndarray
    variances: np.ndarray
    n_samples: int
    meta: MetaResult
    contexts_per_word: dict = field(default_factory=dict)
    test: str | None = None
    encoder: str | None = None
    layer: int | None = None
    pooling: str | None = None

    def summary(self) -> dict:
        """Scalars for a results table (one row per test x encoder x layer)."""
        return {
            "test": self.test, "encoder": self.encoder, "layer": self.layer, "pooling": self.pooling,
            "effect_size": self.effect_size, "se": self.se, "p_value": self.p_value, "ci_low": self.meta.ci_low,
            "ci_high": self.meta.ci_high, "q": self.q, "tau2": self.tau2, "i2": self.i2, "n_samples": self.n_samples,
            "mean_sample_effect": float(np.mean(self.effects)), "sd_sample_effect": float(np.std(self.effects, ddof=1)),
            "min_contexts": int(min(self.contexts_per_word.values())) if self.contexts_per_word else None,
        }


def ceat_from_pools(X, Y, A, B, *, n_samples: int = 1000, seed=0, variance: str = "association",
                    words: Sequence[str] | None = None, **labels) -> CeatResult:
    """CEAT on pools of embeddings: N per-sample effect sizes combined by random-effects meta-analysis.

    Parameters
    ----------
    X, Y, A, B : list of array-like, each (k_w, D)
        One pool of contextual embeddings per word (k_w >= 1 contexts).
    n_samples : int
        Number of samples N (Guo & Caliskan use 10,000).
    seed : int or numpy.random.Generator
    variance : {"association", "cohen"}
    words : sequence of str, optional
        Word names in X, Y, A, B order, to label ``contexts_per_word``.
    **labels
        ``test``, ``encoder``, ``layer``, ``pooling`` stored on the result.

    Returns
    -------
    CeatResult

    Examples
    --------
    >>> rng = np.random.default_rng(0)
    >>> pool = lambda c: [rng.normal(size=(5, 8)) + c for _ in range(4)]
    >>> r = ceat_from_pools(pool(1), pool(-1), pool(1), pool(-1), n_samples=100)
    >>> r.effect_size > 1, r.p_value < 1e-6, r.effects.shape
    (True, True, (100,))
    """
    effects, variances = ceat_effects(X, Y, A, B, n_samples=n_samples, seed=seed, variance=variance)
    bad = ~np.isfinite(effects) | ~(variances > 0)
    if bad.all():
        raise ValueError("ceat: every sample had identical associations for all words (std 0); the effect size is undefined.")
    if bad.any():
        warnings.warn(f"ceat: dropped {int(bad.sum())} of {effects.size} samples whose associations had std 0.", RuntimeWarning, stacklevel=2)
        effects, variances = effects[~bad], variances[~bad]
    meta = random_effects(effects, variances, alternative="greater")
    sizes = [len(p) for P in (X, Y, A, B) for p in P]
    names = list(words) if words is not None else [f"w{i}" for i in range(len(sizes))]
    return CeatResult(
        effect_size=meta.effect, se=meta.se, p_value=meta.p_value, q=meta.q, tau2=meta.tau2, i2=meta.i2,
        effects=effects, variances=variances, n_samples=int(effects.size), meta=meta,
        contexts_per_word=dict(zip(names, sizes)), **labels,
    )


def ceat(test, *, encoder: str = "minilm", layer: int = -1, n_samples: int = 1000, seed=0, pooling: str = "mean",
         variance: str = "association", contexts=None, sources: Sequence[str] = ("tweets", "shakespeare", "templates"),
         max_contexts: int = 20, min_contexts: int = 5, pools: Mapping[str, np.ndarray] | None = None,
         progress: bool | None = None) -> CeatResult:
    """CEAT of one test (a :class:`~workbench.datasets.WeatTest` or its name "C1".."C10") on a real encoder.

    Parameters
    ----------
    test : WeatTest or str
    encoder : str
        A name in :data:`workbench.datasets.ENCODERS` ("minilm", "smollm2").
    layer : int
        Hidden layer (0 = input embeddings, -1 = last).
    n_samples : int
        Number of CEAT samples N.
    seed : int
    pooling : {"mean", "first", "last"}
        How a word's sub-token vectors become one vector.
    variance : {"association", "cohen"}
    contexts : workbench.fairness.contexts.Contexts, optional
        Sentences per word; default: :func:`~workbench.fairness.contexts.find_contexts` over ``sources``.
    sources, max_contexts, min_contexts
        Passed to ``find_contexts`` (a warning names words with fewer than ``min_contexts``).
    pools : mapping word -> array (k_w, D), optional
        Pre-computed contextual embeddings (skips contexts and encoder).
    progress : bool, optional

    Returns
    -------
    CeatResult
    """
    if isinstance(test, str):
        from workbench.datasets import load_weat_tests

        test = load_weat_tests([test])[test]
    check_word_sets(test.X, test.Y, test.A, test.B, fn="ceat")
    words = [*test.X, *test.Y, *test.A, *test.B]
    if pools is None:
        from .contextual import word_pools
        from .contexts import find_contexts

        if contexts is None:
            contexts = find_contexts(words, sources=sources, max_per_word=max_contexts, min_per_word=min_contexts, seed=seed)
        pools = word_pools(contexts, words=words, encoder=encoder, layers=[layer], pooling=pooling, progress=progress)
        pools = {w: p[:, 0] for w, p in pools.items()}
    missing = [w for w in words if w not in pools or len(pools[w]) == 0]
    if missing:
        raise ValueError(f"ceat: no contexts for {missing}. Add a context source (e.g. 'templates') or drop these words.")
    sets = [[pools[w] for w in ws] for ws in (test.X, test.Y, test.A, test.B)]
    return ceat_from_pools(*sets, n_samples=n_samples, seed=seed, variance=variance, words=words,
                           test=test.name, encoder=encoder, layer=layer, pooling=pooling)


# ----------------------------------------------------------------------------------------------- SEAT / static
def _encode_words(words, *, encoder, layer, pooling, templates):
    from workbench.datasets import encode_texts

    sentences = [t.format(w) for w in words for t in templates]
    return encode_texts(sentences, encoder=encoder, layer=layer, pooling=pooling, progress=False)


def seat(test, *, encoder: str = "minilm", layer: int = -1, pooling: str = "mean", templates: Sequence[str] | None = None,
         n_permutations: int = 10_000, seed=0) -> WeatResult:
    """SEAT (May et al., 2019): WEAT on sentence embeddings of the words placed in bleached templates.

    Every word of X, Y, A, B is placed in each template ("This is {}.", ...); the sets become the sets of
    their sentences' embeddings (``encode_texts`` with ``pooling``) and :func:`weat` runs on them.

    Parameters
    ----------
    test : WeatTest or str
    encoder, layer, pooling
        Passed to :func:`workbench.datasets.encode_texts` (pooling "mean" | "cls" | "max").
    templates : sequence of str, optional
        Format strings with one ``{}``; default :data:`workbench.fairness.contexts.SEAT_TEMPLATES`.
    n_permutations, seed
        Passed to :func:`weat`.
    """
    from .contexts import SEAT_TEMPLATES

    if isinstance(test, str):
        from workbench.datasets import load_weat_tests

        test = load_weat_tests([test])[test]
    check_word_sets(test.X, test.Y, test.A, test.B, fn="seat")
    templates = list(SEAT_TEMPLATES if templates is None else templates)
    if not templates or any("{}" not in t for t in templates):
        raise ValueError("The 'templates' parameter of seat must be non-empty format strings with one '{}'.")
    mats = [_encode_words(ws, encoder=encoder, layer=layer, pooling=pooling, templates=templates)
            for ws in (test.X, test.Y, test.A, test.B)]
    return weat(*mats, n_permutations=n_permutations, seed=seed)


def static_weat(test, *, encoder: str = "minilm", layer: int = 0, pooling: str = "mean", n_permutations: int = 10_000, seed=0) -> WeatResult:
    """WEAT on decontextualised word vectors: each word encoded alone, pooled over its own sub-tokens.

    Layer 0 is the input-embedding layer (sub-token plus position embeddings): the closest thing a
    transformer has to the static word vectors WEAT was designed for.
    """
    from .contextual import static_word_vectors

    if isinstance(test, str):
        from workbench.datasets import load_weat_tests

        test = load_weat_tests([test])[test]
    check_word_sets(test.X, test.Y, test.A, test.B, fn="static_weat")
    mats = [static_word_vectors(ws, encoder=encoder, layers=[layer], pooling=pooling)[:, 0] for ws in (test.X, test.Y, test.A, test.B)]
    return weat(*mats, n_permutations=n_permutations, seed=seed)
