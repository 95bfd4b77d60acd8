"""Gaussian noise for DP-SGD: a seeded sampler, gradient buffers that already hold the noise, noise schedules.

DP-SGD adds ``N(0, (sigma C)^2)`` to **every** coordinate of the clipped gradient sum at every step, so a
model with a large embedding table (or a pretrained transformer: 22.6M values for MiniLM) needs that many
Gaussian draws per step whatever the batch. :class:`GaussianNoise` draws them with ``torch.Tensor.normal_`` and
a seeded ``torch.Generator`` (what Opacus uses). Until this version the workbench shipped its own sampler
(AES-CTR bits + vectorised Box-Muller) on the strength of a 1.8x speed-up measured once; measured again, paired
and interleaved on one thread (``benchmarks/dp_noise.py``), it was 0.97x torch's speed on an AMD EPYC and
0.8-1.0x torch's time on the Intel Xeon we tried (equal at 22.6M values), so the simpler sampler stays.

:class:`NoisyGradients` keeps the gradient buffers of a DP step: each step they hold fresh noise (optionally
drawn a step ahead on a spare core) and the fast engine adds the clipped sum onto it. :func:`noise_schedule`
gives per-epoch noise factors for ``DPConfig(noise_schedule=...)`` (e.g. a decaying noise), accounted exactly
by :func:`workbench.privacy.accounting.compose_epsilon`.

What this is not: floating-point samplers of a Gaussian leak through the gaps between representable values
(Mironov 2012; Holohan & Braghin 2021), and a seeded generator is predictable to whoever knows the seed; like
Opacus's default mode, this is for research and teaching (Opacus's ``secure_mode`` is the deployment answer).

Examples
--------
>>> import torch
>>> z = GaussianNoise(seed=0).fill_(torch.empty(100_001), std=2.0)
>>> round(float(z.std()), 1), abs(float(z.mean())) < 0.05
(2.0, True)
>>> a = GaussianNoise(seed=7).fill_(torch.empty(5), std=1.0)
>>> torch.equal(a, GaussianNoise(seed=7).fill_(torch.empty(5), std=1.0))
True
"""
from __future__ import annotations

import math
import os
from typing import Callable

import numpy as np
import torch

from workbench.validation import Boolean, Interval, Options, check

__all__ = ["GaussianNoise", "NoisyGradients", "noise_schedule", "NOISE_SCHEDULES"]

_TAG = 0x6E6F697365  # "noise": the stream differs from a torch.Generator seeded with the run's seed itself


class GaussianNoise:
    """A seeded source of i.i.d. ``N(0, std^2)`` values written in place into CPU tensors (``torch.normal_``).

    Parameters
    ----------
    seed : int or None
        The generator's seed is derived from it (``numpy.random.SeedSequence([seed, tag])``, so the noise is a
        stream apart from a ``torch.Generator().manual_seed(seed)`` that draws the batches); ``None`` seeds from
        ``os.urandom``.
    """

    def __init__(self, *, seed: int | None):
        seed = check(seed, Interval(int, 0, None), None, name="seed", owner="GaussianNoise")
        if seed is None:
            state = int.from_bytes(os.urandom(8), "little") >> 1
        else:
            state = int(np.random.SeedSequence([seed, _TAG]).generate_state(1, dtype=np.uint64)[0] >> 1)
        self.generator = torch.Generator().manual_seed(state)

    def fill_(self, out: torch.Tensor, *, std: float) -> torch.Tensor:
        """Overwrite ``out`` (a float32 or float64 CPU tensor) with ``N(0, std^2)`` values; return it."""
        if not isinstance(out, torch.Tensor) or out.device.type != "cpu" or out.dtype not in (torch.float32, torch.float64):
            raise ValueError("The 'out' parameter of GaussianNoise.fill_ must be a float32 or float64 CPU tensor. "
                             f"Got {getattr(out, 'dtype', type(out).__name__)} on {getattr(out, 'device', 'n/a')} instead.")
        std = check(std, Interval(float, 0, None), name="std", owner="GaussianNoise.fill_")
        if std == 0:
            return out.zero_()
        return out.normal_(0.0, std, generator=self.generator)

    def __repr__(self) -> str:
        return "GaussianNoise(sampler='torch.normal_')"


class NoisyGradients:
    """Gradient storage for DP-SGD steps whose noise is already drawn, optionally a step ahead on another core.

    Each step, :meth:`next` returns one ``.grad``-shaped view per parameter into a flat buffer that already
    holds ``N(0, std^2)``; the engine then *adds* the clipped gradient sum onto it. The noise does not depend on
    the data, so with ``prefetch=True`` a background thread draws the next step's noise into a second buffer
    while this step computes (``normal_`` releases the GIL), which takes the noise off the
    critical path when a spare core exists. The values are the same either way: one generator, drawn in order.
    Use it as a context manager so that the thread is stopped.

    With ``in_place=True`` (and ``prefetch``) there is one buffer instead of two, which halves the memory (a
    model-sized copy: 86 MB for MiniLM): :meth:`next` hands the buffer to the thread and returns its views at once,
    and :meth:`wait` blocks until this step's noise is in them. Whoever reads or writes the views first calls
    :meth:`wait` (the fast engine does so just before adding the clipped sum, so the noise is drawn while the step's
    forward and backward passes run).

    Parameters
    ----------
    params : list of torch.Tensor
        The parameters to give gradients to (float32 or float64, CPU).
    std : float or callable
        Noise standard deviation; ``0`` gives zeroed buffers and no thread. A callable ``std(k)`` gives the
        standard deviation of step ``k`` (0-based), e.g. a noise that changes by epoch.
    seed : int or None
        See :class:`GaussianNoise`.
    prefetch : bool
    in_place : bool
        With ``prefetch``: one buffer, drawn into while the step computes (see above); call :meth:`wait` before
        using the views.

    Examples
    --------
    >>> import torch
    >>> w, b = torch.zeros(3, 2), torch.zeros(2)
    >>> with NoisyGradients([w, b], std=1.0, seed=0, prefetch=True) as grads:
    ...     first = [g.clone() for g in grads.next()]
    ...     second = grads.next()
    >>> [tuple(g.shape) for g in second], torch.equal(first[0], second[0])
    ([(3, 2), (2,)], False)
    >>> with NoisyGradients([w, b], std=1.0, seed=0, prefetch=True, in_place=True) as grads:
    ...     views = grads.next()                     # the thread is drawing into these
    ...     grads.wait()                             # now they hold this step's noise
    ...     same = torch.equal(views[0], first[0])   # the same values as with two buffers
    >>> same
    True
    """

    def __init__(self, params, *, std: float, seed: int | None, prefetch: bool = False, in_place: bool = False):
        import queue

        params = list(params)
        if not params:
            raise ValueError("The 'params' parameter of NoisyGradients must hold at least one tensor.")
        dtypes = {p.dtype for p in params}
        if len(dtypes) != 1 or not dtypes <= {torch.float32, torch.float64} or any(p.device.type != "cpu" for p in params):
            raise ValueError("The 'params' parameter of NoisyGradients must hold CPU tensors of one dtype, float32 or "
                             f"float64. Got {sorted(str(d) for d in dtypes)}.")
        prefetch = check(prefetch, Boolean(), name="prefetch", owner="NoisyGradients")
        in_place = check(in_place, Boolean(), name="in_place", owner="NoisyGradients")
        if callable(std):
            self._std_at = std
        else:
            std = check(std, Interval(float, 0, None), name="std", owner="NoisyGradients")
            self._std_at = lambda k: std
        self._drawn = 0
        self.std = std
        self.prefetch = prefetch and (callable(std) or std > 0)
        #: one buffer, drawn into while the step computes (:meth:`wait` before use)
        self.in_place = self.prefetch and in_place
        self._pending = False
        self._noise = GaussianNoise(seed=seed)
        total = sum(p.numel() for p in params)
        self._slots = []
        for _ in range(2 if self.prefetch and not self.in_place else 1):
            flat = torch.empty(total, dtype=params[0].dtype)
            views, offset = [], 0
            for p in params:
                views.append(flat[offset: offset + p.numel()].view_as(p))
                offset += p.numel()
            self._slots.append((flat, views))
        self._current = None
        self._thread = None
        if self.prefetch:
            import threading

            self._free, self._ready = queue.Queue(), queue.Queue()
            for slot in range(0 if self.in_place else len(self._slots)):  # in place: drawn when next() hands it over
                self._free.put(slot)
            self._thread = threading.Thread(target=self._work, name="dp-noise", daemon=True)
            self._thread.start()

    def _fill(self, flat):
        self._noise.fill_(flat, std=self._std_at(self._drawn))
        self._drawn += 1

    def _work(self):
        while True:
            slot = self._free.get()
            if slot is None:
                return
            try:
                self._fill(self._slots[slot][0])
            except BaseException as err:  # handed to the training thread, which raises it
                self._ready.put(err)
                return
            self._ready.put(slot)

    def next(self) -> list[torch.Tensor]:
        """Views (one per parameter, shaped like it) holding this step's noise; the previous step's are recycled.

        With ``in_place``, the noise is still being drawn into them when this returns: call :meth:`wait` first.
        """
        if not self.prefetch:
            self._fill(self._slots[0][0])
            return self._slots[0][1]
        if self._thread is None:
            raise RuntimeError("NoisyGradients was closed.")
        if self.in_place:
            self.wait()  # the previous step's draw, if nobody waited for it
            self._free.put(0)
            self._pending = True
            return self._slots[0][1]
        if self._current is not None:
            self._free.put(self._current)
        got = self._ready.get()
        if isinstance(got, BaseException):
            raise got
        self._current = got
        return self._slots[got][1]

    def wait(self) -> None:
        """Block until the views :meth:`next` returned hold this step's noise (at once unless ``in_place``)."""
        if not self._pending:
            return
        self._pending = False
        got = self._ready.get()
        if isinstance(got, BaseException):
            raise got

    def close(self) -> None:
        """Stop the background thread (if any); the last views returned stay valid."""
        if self._thread is not None:
            self._free.put(None)
            self._thread.join()
            self._thread = None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _linear(epochs: int, final: float) -> tuple[float, ...]:
    return tuple(1.0 + (final - 1.0) * e / max(epochs - 1, 1) for e in range(epochs))


def _exponential(epochs: int, final: float) -> tuple[float, ...]:
    return tuple(final ** (e / max(epochs - 1, 1)) for e in range(epochs))


#: Named per-epoch noise schedules: ``NOISE_SCHEDULES[name](epochs, final) -> factors``.
NOISE_SCHEDULES: dict[str, Callable[[int, float], tuple]] = {
    "constant": lambda epochs, final: (1.0,) * epochs,
    "linear": _linear,
    "exponential": _exponential,
}


def noise_schedule(name: str, *, epochs: int, final: float = 0.5) -> tuple[float, ...]:
    """Per-epoch noise factors for ``DPConfig(noise_schedule=...)``: 1 in the first epoch, ``final`` in the last.

    ``"constant"`` (always 1), ``"linear"`` or ``"exponential"`` (geometric) interpolation. A decaying noise
    (``final < 1``) spends more of the budget late in training, when the gradients are small and noisy steps hurt
    most (the eDP-SGD paper's and Yu et al. 2019's motivation); the accountant composes the epochs exactly.

    Examples
    --------
    >>> noise_schedule("linear", epochs=3, final=0.5)
    (1.0, 0.75, 0.5)
    >>> noise_schedule("cosine", epochs=3)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'name' parameter of noise_schedule must be one of ('constant', 'exponential', 'linear'). Got 'cosine' instead.
    """
    owner = "noise_schedule"
    name = check(name, Options(tuple(sorted(NOISE_SCHEDULES))), name="name", owner=owner)
    epochs = check(epochs, Interval(int, 1, None), name="epochs", owner=owner)
    final = check(final, Interval(float, 0, None, closed="neither"), name="final", owner=owner)
    return NOISE_SCHEDULES[name](epochs, final)
