"""Device-selection strategies: which ``k`` devices train in a federated round.

Every strategy is a small object with ``select(rng, *, sizes, k, round_idx=0, loss_fn=None)`` returning
the selected device numbers (``int64``, in draw order, without repeats). ``sizes`` holds the number of
training samples each device has *now* (0 = nothing to train on: never selected). Randomness comes only
from the ``numpy.random.Generator`` the caller passes, so the same generator state gives the same devices.

==================  ==========================================================================================
name                rule
==================  ==========================================================================================
``uniform``         every device holding data equally likely (a uniform random subset of size k)
``activity``        successive draws with probability proportional to the device's samples, p_i ~ n_i
``tempered``        the same with p_i ~ n_i ** t (``t=0`` is uniform, ``t=1`` is activity); default t = 0.5
``power_of_choice`` draw ``d`` candidates by activity, keep the ``k`` with the highest current local loss
                    (Cho et al. 2020, "pi_pow-d"); needs ``loss_fn(candidates) -> losses``
``round_robin``     devices holding data in index order, ``k`` per round, wrapping around
==================  ==========================================================================================

Weighted strategies sample *without replacement by successive draws* (the Plackett-Luce scheme): the first
device is drawn with probability p_i, the next from the rest renormalised, and so on. For ``k = 1`` the
selection probability is exactly p_i; for ``k > 1`` inclusion probabilities are flatter than ``k * p_i``
(which can exceed 1). Below 65,536 devices a draw costs one cumulative sum over the devices plus O(k log n). From
there on, weighted draws start by rejection from uniform proposals (accept device i with probability w_i / max w),
which costs O(k * max w / mean w) and no pass over the weights: 100 of 10^6 devices in 1-2.5 ms on a 2-core Xeon. When the
weights are so concentrated that rejection would need more than n / 10 proposals, the remaining draws go through the
cumulative weights; every draw still comes from the right distribution, so the result is exact either way.

Examples
--------
>>> rng = np.random.default_rng(0)
>>> sizes = np.array([5, 0, 1, 100, 3])
>>> sorted(make_strategy("uniform").select(rng, sizes=sizes, k=4).tolist())  # all devices holding data
[0, 2, 3, 4]
>>> 1 in make_strategy("activity").select(rng, sizes=sizes, k=4).tolist()  # empty device: never
False
>>> make_strategy("round_robin").select(rng, sizes=sizes, k=3, round_idx=1).tolist()
[4, 0, 2]
"""
from __future__ import annotations

from typing import Callable, ClassVar

import numpy as np

from workbench.registry import make_registered
from workbench.validation import InstanceOf, Interval, check

__all__ = [
    "SelectionStrategy",
    "UniformSelection",
    "ActivitySelection",
    "TemperedSelection",
    "PowerOfChoiceSelection",
    "RoundRobinSelection",
    "STRATEGIES",
    "make_strategy",
    "select_clients",
    "first_draw_probabilities",
]

LossFn = Callable[[np.ndarray], np.ndarray]
_TABLE_SIZE = 4096


def _check_inputs(rng, sizes, k, who: str) -> tuple[np.ndarray, int]:
    """The validated ``sizes`` array and the number of devices holding data."""
    check(rng, InstanceOf(np.random.Generator), name="rng", owner=who)
    sizes = np.asarray(sizes)
    if sizes.ndim != 1 or sizes.size == 0:
        raise ValueError(f"The 'sizes' parameter of {who} must be a non-empty 1-D array of sample counts.")
    if not np.issubdtype(sizes.dtype, np.number) or sizes.min() < 0:
        raise ValueError(f"The 'sizes' parameter of {who} must hold counts >= 0.")
    check(k, Interval(int, 1, None), name="k", owner=who)
    available = int(np.count_nonzero(sizes))
    if available == 0:
        raise ValueError(f"{who}: every device is empty (all sizes are 0); there is nobody to select.")
    if k > available:
        raise ValueError(
            f"The 'k' parameter of {who} must be <= the number of devices holding data ({available} of "
            f"{sizes.size}). Got k={k} instead."
        )
    return sizes, available


def _buffer(owner, name: str, n: int, dtype) -> np.ndarray:
    """A work array kept on ``owner`` between calls: at 10^6 devices a fresh 8 MB array costs about a millisecond of
    page faults on every selection, more than the arithmetic done in it."""
    buf = owner.__dict__.get(name)
    if buf is None or buf.shape != (n,) or buf.dtype != dtype:
        buf = np.empty(n, dtype=dtype)
        owner.__dict__[name] = buf
    return buf


#: Devices per block of the two-level cumulative weights in :func:`_successive_draws`.
_BLOCK = 256


def _locate(weights: np.ndarray, block_cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    """``np.searchsorted(np.cumsum(weights), u, side="right")``, exactly, without the full cumulative sum: the
    block of each draw from the blocks' cumulative sums, then the cumulative sum inside the drawn blocks only (a
    full cumulative sum over 10^6 devices takes about 3 ms, more than everything else a selection does)."""
    n = weights.size
    b = np.searchsorted(block_cdf, u, side="right")  # the block holding each draw
    base = np.where(b > 0, block_cdf[np.maximum(b - 1, 0)], 0)
    idx = (b * _BLOCK)[:, None] + np.arange(_BLOCK)
    local = np.where(idx < n, weights[np.minimum(idx, n - 1)], 0)
    np.cumsum(local, axis=1, out=local)
    local += base[:, None]
    return b * _BLOCK + np.count_nonzero(local <= u[:, None], axis=1)


#: From this many devices on, weighted selection starts with :func:`_rejection_draws`.
_REJECTION_MIN_DEVICES = 1 << 16
#: Rejection gives up beyond n / this many proposals: one proposal costs about as much as ten devices' share of a
#: pass over the cumulative weights (measured at 10^6 devices: about 14 ns against 1.4 ns).
_REJECTION_BUDGET_DIVISOR = 10


def _rejection_draws(rng: np.random.Generator, sizes: np.ndarray, k: int, *, weight: Callable[[np.ndarray], np.ndarray],
                     top: float, budget: int) -> list[int]:
    """Up to ``k`` distinct devices by successive draws with probability proportional to ``weight(sizes)``.

    Each proposal is a uniformly random device ``i``, accepted with probability ``weight(sizes[i]) / top`` (``top``
    is the largest weight), so every accepted proposal is an independent draw from the weights, and skipping
    repeats makes them successive draws without replacement. Only the proposed devices' weights are computed.
    Stops once the rate of acceptance seen so far says that more than ``budget`` proposals would be needed, and
    returns the devices found so far (possibly fewer than ``k``): the caller draws the rest from the cumulative
    weights, which is exact because each draw depends only on the devices already chosen.
    """
    n = sizes.size
    chosen: list[int] = []
    seen: set[int] = set()
    proposed = accepted = 0
    while len(chosen) < k and proposed < budget:
        need = k - len(chosen)
        if accepted == 0:  # no estimate of the acceptance rate yet: start small, then grow fourfold
            size = 4 * proposed if proposed else 8 * need + 64
        else:  # enough proposals for the needed draws at the rate seen so far, with a margin for repeats
            size = int(1.5 * need * proposed / accepted) + 64
            if proposed + size > budget:  # rejection would cost more than a pass over the weights: hand over
                break
        size = max(1, min(size, budget - proposed))
        i = rng.integers(0, n, size=size)
        keep = i[rng.random(size) * top < weight(sizes[i])]  # accepted draws, in draw order
        proposed += size
        accepted += keep.size
        for j in keep.tolist():
            if j not in seen:
                seen.add(j)
                chosen.append(j)
                if len(chosen) == k:
                    break
    return chosen


def _successive_draws(rng: np.random.Generator, weights: np.ndarray, k: int, *,
                      work: np.ndarray | None = None, chosen: list[int] | None = None) -> np.ndarray:
    """``k`` distinct indices drawn one after another with probability proportional to ``weights``.

    Draws with replacement from the cumulative weights and skips repeats, which is exactly sampling
    without replacement by successive draws. If repeats dominate (a few devices hold most weight), the
    remaining draws switch to Gumbel-top-k over the weights with the chosen ones removed, which has the
    same (Plackett-Luce) distribution. ``work``, an int64 array of the weights' length, holds float weights
    turned into integers (reused between calls instead of a fresh array). ``chosen`` are devices already drawn
    (by :func:`_rejection_draws`): the draws continue after them.
    """
    weights = np.asarray(weights)
    if not np.issubdtype(weights.dtype, np.integer):
        # Fixed point: integer cumulative sums are exact and fast. Scaling the total to 2^62 changes a device's
        # probability by less than one part in (its weight * 2^62 / total); tempered weights of non-empty devices
        # are >= 1, so none of them rounds to 0 below 2^62 total weight.
        w = weights.astype(np.float64, copy=False)
        weights = work if work is not None else np.empty(weights.shape, dtype=np.int64)
        np.multiply(w, 2.0**62 / w.sum(), out=weights, casting="unsafe")  # truncates towards 0
    weights = weights.astype(np.int64, copy=False)
    if weights.size < _REJECTION_MIN_DEVICES:  # small: one full cumulative sum, then a binary search per draw
        cdf = np.cumsum(weights)
        total, locate = int(cdf[-1]), lambda u: np.searchsorted(cdf, u, side="right")
    else:  # the same devices (tested), without the full cumulative sum
        block_cdf = np.cumsum(np.add.reduceat(weights, np.arange(0, weights.size, _BLOCK)))
        total, locate = int(block_cdf[-1]), lambda u: _locate(weights, block_cdf, u)
    chosen = list(chosen or [])
    seen: set[int] = set(chosen)
    for _ in range(8):
        need = k - len(chosen)
        u = rng.integers(0, total, size=2 * need + 8)
        for i in locate(u).tolist():
            if i < len(weights) and i not in seen:
                seen.add(i)
                chosen.append(i)
                if len(chosen) == k:
                    return np.asarray(chosen, dtype=np.int64)
    rest = weights.astype(np.float64)  # the (integer) weights
    rest[list(seen)] = 0.0
    need = k - len(chosen)
    with np.errstate(divide="ignore"):
        keys = np.log(rest) + rng.gumbel(size=rest.size)
    top = np.argpartition(-keys, need - 1)[:need]
    top = top[np.argsort(-keys[top], kind="stable")]
    return np.concatenate([np.asarray(chosen, dtype=np.int64), top.astype(np.int64)])


class SelectionStrategy:
    """Base class: subclasses implement :meth:`select` and set ``name``."""

    name: ClassVar[str] = ""
    #: Whether the strategy needs ``loss_fn`` (and so extra communication with candidates).
    uses_losses: ClassVar[bool] = False

    def select(self, rng: np.random.Generator, *, sizes, k: int, round_idx: int = 0,
               loss_fn: LossFn | None = None) -> np.ndarray:
        raise NotImplementedError

    def params(self) -> dict:
        return {}

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params().items())
        return f"{type(self).__name__}({args})"


class UniformSelection(SelectionStrategy):
    """A uniformly random subset of ``k`` devices among those holding data."""

    name = "uniform"

    def select(self, rng, *, sizes, k, round_idx=0, loss_fn=None):
        sizes, _ = _check_inputs(rng, sizes, k, "UniformSelection.select")
        n = sizes.size
        # Draw device numbers uniformly and skip empty devices and repeats: a uniform random subset of the
        # devices holding data, at O(k) cost when most devices hold data.
        chosen: list[int] = []
        seen: set[int] = set()
        for _ in range(4):
            for i in rng.integers(0, n, size=2 * (k - len(chosen)) + 8).tolist():
                if i not in seen and sizes[i] > 0:
                    seen.add(i)
                    chosen.append(i)
                    if len(chosen) == k:
                        return np.asarray(chosen, dtype=np.int64)
        # Mostly empty devices: finish with a uniform subset of the remaining devices holding data.
        rest = np.setdiff1d(np.flatnonzero(sizes), np.asarray(chosen, dtype=np.int64), assume_unique=True)
        more = rest[rng.choice(rest.size, size=k - len(chosen), replace=False)]
        return np.concatenate([np.asarray(chosen, dtype=np.int64), more.astype(np.int64)])


class TemperedSelection(SelectionStrategy):
    """Successive draws with p_i proportional to ``n_i ** t`` (devices with n_i = 0 excluded).

    Examples
    --------
    >>> TemperedSelection(t=-1)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 't' parameter of TemperedSelection must be a float >= 0. Got -1 instead.
    """

    name = "tempered"

    def __init__(self, *, t: float = 0.5):
        self.t = check(t, Interval(float, 0, None), name="t", owner=type(self).__name__)

    def params(self):
        return {"t": self.t}

    def weights(self, sizes, *, out: np.ndarray | None = None) -> np.ndarray:
        """Each device's weight n_i ** t (``out``: a float64 array to write the square roots of t = 0.5 into)."""
        sizes = np.asarray(sizes)
        if self.t == 1.0:
            return sizes
        if self.t == 0.0:
            return (sizes > 0).astype(np.float64)
        if self.t == 0.5:
            return np.sqrt(sizes, dtype=np.float64, out=out)
        if np.issubdtype(sizes.dtype, np.integer):
            # Most devices hold few samples: look n ** t up in a table, compute it only for the large ones.
            if getattr(self, "_table", None) is None:
                self._table = np.power(np.arange(_TABLE_SIZE, dtype=np.float64), self.t)
            w = self._table[np.minimum(sizes, _TABLE_SIZE - 1)]
            big = np.flatnonzero(sizes >= _TABLE_SIZE)
            w[big] = np.power(sizes[big], self.t, dtype=np.float64)
            return w
        return np.power(sizes, self.t, dtype=np.float64)

    def select(self, rng, *, sizes, k, round_idx=0, loss_fn=None):
        sizes, _ = _check_inputs(rng, sizes, k, f"{type(self).__name__}.select")
        return self._draw(rng, sizes, k)

    def _draw(self, rng, sizes: np.ndarray, k: int) -> np.ndarray:
        """``k`` distinct devices by successive draws with p_i ~ n_i ** t (``sizes`` already validated)."""
        chosen: list[int] = []
        if sizes.size >= _REJECTION_MIN_DEVICES:
            top = float(self.weights(sizes.max(keepdims=True))[0])
            chosen = _rejection_draws(rng, sizes, k, weight=self.weights, top=top,
                                      budget=sizes.size // _REJECTION_BUDGET_DIVISOR)
            if len(chosen) == k:
                return np.asarray(chosen, dtype=np.int64)
        kept = _buffer(self, "_sqrt", sizes.size, np.float64) if self.t == 0.5 else None  # the default's square roots
        return _successive_draws(rng, self.weights(sizes, out=kept), k, work=_buffer(self, "_cdf", sizes.size, np.int64),
                                 chosen=chosen)


class ActivitySelection(TemperedSelection):
    """Activity-based selection: successive draws with p_i proportional to the device's samples n_i."""

    name = "activity"

    def __init__(self, *, t: float = 1.0):
        super().__init__(t=t)


class PowerOfChoiceSelection(SelectionStrategy):
    """Loss-based power-of-choice: ``d`` candidates drawn by activity, the ``k`` with highest loss kept.

    ``loss_fn(candidates)`` returns each candidate's current local loss (in a deployment, the candidates
    evaluate the global model on their data and send back one number each).
    """

    name = "power_of_choice"
    uses_losses = True

    def __init__(self, *, d: int | None = None, d_factor: float = 2.0):
        self.d = check(d, Interval(int, 1, None), None, name="d", owner="PowerOfChoiceSelection")
        self.d_factor = check(d_factor, Interval(float, 1, None), name="d_factor", owner="PowerOfChoiceSelection")
        self._activity = ActivitySelection()  # draws the candidates (and keeps its work buffers)

    def params(self):
        return {"d": self.d, "d_factor": self.d_factor}

    def n_candidates(self, k: int, available: int) -> int:
        d = self.d if self.d is not None else int(np.ceil(self.d_factor * k))
        return min(max(d, k), available)

    def select(self, rng, *, sizes, k, round_idx=0, loss_fn=None):
        sizes, available = _check_inputs(rng, sizes, k, "PowerOfChoiceSelection.select")
        if loss_fn is None:
            raise ValueError("PowerOfChoiceSelection.select needs 'loss_fn' (candidates -> their current local losses).")
        if self.d is not None and self.d < k:
            raise ValueError(f"The 'd' parameter of PowerOfChoiceSelection must be >= k={k}. Got d={self.d} instead.")
        d = self.n_candidates(k, available)
        candidates = self._activity._draw(rng, sizes, d)
        losses = np.asarray(loss_fn(candidates), dtype=np.float64)
        if losses.shape != candidates.shape:
            raise ValueError(f"'loss_fn' must return one loss per candidate ({candidates.size}). Got shape {losses.shape}.")
        return candidates[np.argsort(-losses, kind="stable")[:k]]


class RoundRobinSelection(SelectionStrategy):
    """Devices holding data in index order, ``k`` per round, starting where the previous round stopped."""

    name = "round_robin"

    def select(self, rng, *, sizes, k, round_idx=0, loss_fn=None):
        sizes, available = _check_inputs(rng, sizes, k, "RoundRobinSelection.select")
        n = sizes.size
        if available == n:
            return (int(round_idx) * k + np.arange(k, dtype=np.int64)) % n
        start = (int(round_idx) * k) % available
        # The start-th device holding data, from counts per block of devices, instead of listing all of them
        # (an 8 MB array at 10^6 devices, every round).
        has_data = np.greater(sizes, 0, out=_buffer(self, "_has_data", n, np.bool_))
        full = n // _BLOCK
        counts = has_data[:full * _BLOCK].view(np.uint8).reshape(full, _BLOCK).sum(axis=1, dtype=np.int64)
        cum = np.cumsum(np.append(counts, np.count_nonzero(has_data[full * _BLOCK:])))
        first = min(k, available - start)
        parts = [self._run(has_data, cum, start, first)]
        if first < k:  # wrap around to the first devices holding data
            parts.append(self._run(has_data, cum, 0, k - first))
        return np.concatenate(parts)

    @staticmethod
    def _run(has_data: np.ndarray, cum: np.ndarray, first: int, count: int) -> np.ndarray:
        """Devices holding data number ``first`` .. ``first + count - 1`` (0-based, in index order)."""
        b0, b1 = np.searchsorted(cum, [first, first + count - 1], side="right")
        before = int(cum[b0 - 1]) if b0 > 0 else 0
        devices = np.flatnonzero(has_data[b0 * _BLOCK:(b1 + 1) * _BLOCK]) + b0 * _BLOCK
        return devices[first - before:first - before + count].astype(np.int64)


#: Strategy name -> class. Build one with :func:`make_strategy`.
STRATEGIES: dict[str, type[SelectionStrategy]] = {
    "uniform": UniformSelection,
    "activity": ActivitySelection,
    "tempered": TemperedSelection,
    "power_of_choice": PowerOfChoiceSelection,
    "round_robin": RoundRobinSelection,
}


def make_strategy(name: str, **params) -> SelectionStrategy:
    """Build a registered strategy by name with its keyword parameters.

    Examples
    --------
    >>> make_strategy("tempered", t=0.25)
    TemperedSelection(t=0.25)
    >>> make_strategy("oldest")
    Traceback (most recent call last):
    ...
    ValueError: The 'name' parameter of make_strategy must be one of ['activity', 'power_of_choice', 'round_robin', 'tempered', 'uniform']. Got 'oldest' instead.
    """
    return make_registered(STRATEGIES, name, params, owner="make_strategy", kind="selection strategy", base=SelectionStrategy)


def select_clients(name: str, rng: np.random.Generator, *, sizes, k: int, round_idx: int = 0,
                   loss_fn: LossFn | None = None, **params) -> np.ndarray:
    """One-shot ``make_strategy(name, **params).select(rng, sizes=..., k=...)``."""
    return make_strategy(name, **params).select(rng, sizes=sizes, k=k, round_idx=round_idx, loss_fn=loss_fn)


def first_draw_probabilities(strategy: SelectionStrategy | str, sizes) -> np.ndarray | None:
    """Probability that each device is the first one drawn (the p_i of the definition); ``None`` if not random.

    Examples
    --------
    >>> first_draw_probabilities("activity", [1, 3, 0]).tolist()
    [0.25, 0.75, 0.0]
    """
    strategy = make_strategy(strategy)
    sizes = np.asarray(sizes, dtype=np.float64)
    if isinstance(strategy, TemperedSelection):
        w = np.asarray(strategy.weights(sizes), dtype=np.float64)
    elif isinstance(strategy, UniformSelection):
        w = (sizes > 0).astype(np.float64)
    else:
        return None
    return w / w.sum()
