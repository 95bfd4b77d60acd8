"""Gaussian noise for DP-SGD, drawn fast on a CPU.

DP-SGD adds ``N(0, (sigma C)^2)`` to **every** coordinate of the clipped gradient sum at every step, so a
model with a large embedding table needs half a million Gaussian draws per step whatever the batch. On the
CPUs we measured, ``torch.Tensor.normal_`` spends most of its time in its scalar Mersenne-Twister loop (about
3.5 ns per draw, more than the forward and backward passes of the bag-of-embeddings model together).
:class:`GaussianNoise` draws the same distribution about 1.6x faster (``benchmarks/dp_overhead.py`` times
both) with two vectorised pieces:

* the random bits are an AES-256-CTR key stream (the ``cryptography`` package, hardware AES): one 32-bit
  word per output value, written into a reused buffer, and a cryptographically secure generator;
* the Box-Muller transform ``z = sqrt(-2 ln u1) * (cos, sin)(2 pi u2)`` runs in NumPy's SIMD ``log``,
  ``sqrt``, ``cos`` and ``sin`` (a few ulp of error in float32).

The radius word ``u1 = (k + 1) / 2^32`` is converted without losing its small values, so the smallest
``u1`` is ``2^-32`` and the sampler reaches ``|z| = 6.66`` (``torch.normal_``, Opacus's default noise, stops
at ``|z| = 5.77``: ``u1 >= 2^-24``).

What this is not: floating-point samplers of a Gaussian leak through the gaps between representable values
(Mironov 2012; Holohan & Braghin 2021 show it for Box-Muller and Opacus), so a secure key stream alone does
not make the noise fit for a deployment that must resist such an attacker (Opacus's ``secure_mode`` sums two
draws to blur the gaps). Like Opacus's default mode, this is for research and teaching. A fixed ``seed``
makes runs reproducible and the noise predictable to whoever knows the seed; ``seed=None`` keys the stream
from the operating system's entropy.

Examples
--------
>>> import torch
>>> noise = GaussianNoise(seed=0)
>>> z = noise.fill_(torch.empty(100_001), std=2.0)
>>> round(float(z.std()), 1), abs(float(z.mean())) < 0.05
(2.0, True)
>>> a = GaussianNoise(seed=7).fill_(torch.empty(5), std=1.0)
>>> torch.equal(a, GaussianNoise(seed=7).fill_(torch.empty(5), std=1.0))
True
"""
from __future__ import annotations

import math
import os

import numpy as np
import torch

__all__ = ["GaussianNoise", "NoisyGradients", "box_muller"]

_TWO_PI_2_32 = 2.0 * math.pi / 2.0**32
_TAG = 0x6E6F697365  # "noise": the key differs from numpy.random.default_rng(seed)'s state
_BLOCK = 16  # AES block: CTR's update_into wants this much headroom in the output buffer


class GaussianNoise:
    """A seeded source of i.i.d. ``N(0, std^2)`` values written in place into CPU tensors.

    Parameters
    ----------
    seed : int or None
        The AES key is derived from it (``numpy.random.SeedSequence``), so the same seed gives the same
        values; ``None`` takes the key from ``os.urandom``.
    """

    def __init__(self, *, seed: int | None):
        from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

        if seed is None:
            key = os.urandom(32)
        elif isinstance(seed, bool) or not isinstance(seed, (int, np.integer)) or seed < 0:
            raise ValueError(f"The 'seed' parameter of GaussianNoise must be an int >= 0 or None. Got {seed!r} instead.")
        else:
            key = np.random.SeedSequence([int(seed), _TAG]).generate_state(8, dtype=np.uint32).tobytes()
        self._stream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
        self._zeros = self._bytes = None
        self._work, self._work_key = None, None

    def _words(self, count: int) -> np.ndarray:
        """The next ``count`` 32-bit words of the key stream (a view of a buffer reused by the next call)."""
        size = 4 * count
        if self._zeros is None or len(self._zeros) != size:
            self._zeros, self._bytes = bytes(size), bytearray(size + _BLOCK - 1)
        written = self._stream.update_into(self._zeros, self._bytes)
        return np.frombuffer(self._bytes, dtype=np.uint32, count=written // 4)

    def _scratch(self, half: int, dtype) -> tuple[np.ndarray, np.ndarray]:
        """Two work arrays of ``half`` values, kept between calls (a DP step fills the same buffer every time)."""
        key = (half, np.dtype(dtype))
        if self._work_key != key:
            self._work, self._work_key = np.empty((2, half), dtype=dtype), key
        return self._work[0], self._work[1]

    def fill_(self, out: torch.Tensor, *, std: float) -> torch.Tensor:
        """Overwrite ``out`` (a contiguous float32 or float64 CPU tensor) with ``N(0, std^2)`` values; return it."""
        if not isinstance(out, torch.Tensor) or out.device.type != "cpu" or out.dtype not in (torch.float32, torch.float64):
            raise ValueError("The 'out' parameter of GaussianNoise.fill_ must be a float32 or float64 CPU tensor. "
                             f"Got {getattr(out, 'dtype', type(out).__name__)} on {getattr(out, 'device', 'n/a')} instead.")
        if not out.is_contiguous():
            raise ValueError("The 'out' parameter of GaussianNoise.fill_ must be contiguous.")
        if not (isinstance(std, (int, float)) and not isinstance(std, bool) and math.isfinite(std) and std >= 0):
            raise ValueError(f"The 'std' parameter of GaussianNoise.fill_ must be a finite number >= 0. Got {std!r} instead.")
        n = out.numel()
        if n == 0:
            return out
        flat = out.detach().view(-1).numpy()
        half = (n + 1) // 2  # pairs: each gives a cos and a sin value
        box_muller(self._words(2 * half), std=float(std), out=flat, scratch=self._scratch(half, flat.dtype))
        return out

    def __repr__(self) -> str:
        return "GaussianNoise(bits='AES-256-CTR', transform='Box-Muller')"


def box_muller(words: np.ndarray, *, std: float, out: np.ndarray, scratch=None) -> np.ndarray:
    """Turn ``2 * ceil(len(out) / 2)`` uniform 32-bit ``words`` into ``N(0, std^2)`` values in ``out``.

    The first half of the words gives the radii ``std * sqrt(-2 ln u1)`` with ``u1 = (k + 1) / 2^32`` and the
    second half the angles ``2 pi k / 2^32``; ``out`` receives the cosines, then the sines. ``scratch``:
    optional work arrays ``(radius, angle)`` of ``ceil(len(out) / 2)`` values of ``out``'s dtype.

    Examples
    --------
    >>> import numpy as np
    >>> out = np.empty(2, dtype=np.float32)
    >>> words = np.array([0, 0], dtype=np.uint32)    # the smallest u1, angle 0: the largest value there is
    >>> box_muller(words, std=1.0, out=out).round(2)
    array([6.66, 0.  ], dtype=float32)
    """
    n = len(out)
    half = (n + 1) // 2
    if words.dtype != np.uint32 or len(words) != 2 * half:
        raise ValueError(f"The 'words' parameter of box_muller must hold {2 * half} uint32 values. Got {len(words)} {words.dtype}.")
    dtype = out.dtype
    radius, angle = scratch if scratch is not None else (np.empty(half, dtype), np.empty(half, dtype))
    np.copyto(radius, words[:half], casting="unsafe")
    radius += 1.0
    radius *= dtype.type(2.0**-32)  # a power of two: exact, small u1 keep their precision
    np.log(radius, out=radius)
    radius *= dtype.type(-2.0 * std**2)
    np.sqrt(radius, out=radius)
    np.copyto(angle, words[half:].view(np.int32), casting="unsafe")  # signed: angles in [-pi, pi)
    angle *= dtype.type(_TWO_PI_2_32)
    first, second = out[:half], out[half:]
    np.cos(angle, out=first)
    first *= radius
    if len(second):
        np.sin(angle[: len(second)], out=second)
        second *= radius[: len(second)]
    return out


class NoisyGradients:
    """Gradient storage for DP-SGD steps whose noise is already drawn, optionally a step ahead on another core.

    Each step, :meth:`next` returns one ``.grad``-shaped view per parameter into a flat buffer that already
    holds ``N(0, std^2)``; the engine then *adds* the clipped gradient sum onto it. The noise does not depend on
    the data, so with ``prefetch=True`` a background thread draws the next step's noise into a second buffer
    while this step computes (NumPy and the AES stream release the GIL), which takes the noise off the
    critical path when a spare core exists. The values are the same either way: one generator, drawn in order.
    Use it as a context manager so that the thread is stopped.

    Parameters
    ----------
    params : list of torch.Tensor
        The parameters to give gradients to (float32 or float64, CPU).
    std : float
        Noise standard deviation; ``0`` gives zeroed buffers and no thread.
    seed : int or None
        See :class:`GaussianNoise`.
    prefetch : bool

    Examples
    --------
    >>> import torch
    >>> w, b = torch.zeros(3, 2), torch.zeros(2)
    >>> with NoisyGradients([w, b], std=1.0, seed=0, prefetch=True) as grads:
    ...     first = [g.clone() for g in grads.next()]
    ...     second = grads.next()
    >>> [tuple(g.shape) for g in second], torch.equal(first[0], second[0])
    ([(3, 2), (2,)], False)
    """

    def __init__(self, params, *, std: float, seed: int | None, prefetch: bool = False):
        import queue

        params = list(params)
        if not params:
            raise ValueError("The 'params' parameter of NoisyGradients must hold at least one tensor.")
        dtypes = {p.dtype for p in params}
        if len(dtypes) != 1 or not dtypes <= {torch.float32, torch.float64} or any(p.device.type != "cpu" for p in params):
            raise ValueError("The 'params' parameter of NoisyGradients must hold CPU tensors of one dtype, float32 or "
                             f"float64. Got {sorted(str(d) for d in dtypes)}.")
        if not isinstance(prefetch, bool):
            raise ValueError(f"The 'prefetch' parameter of NoisyGradients must be True or False. Got {prefetch!r} instead.")
        self.std = float(std)
        self.prefetch = prefetch and self.std > 0
        self._noise = GaussianNoise(seed=seed)
        total = sum(p.numel() for p in params)
        self._slots = []
        for _ in range(2 if self.prefetch else 1):
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
            for slot in range(len(self._slots)):
                self._free.put(slot)
            self._thread = threading.Thread(target=self._work, name="dp-noise", daemon=True)
            self._thread.start()

    def _fill(self, flat):
        if self.std == 0:
            flat.zero_()
        else:
            self._noise.fill_(flat, std=self.std)

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
        """Views (one per parameter, shaped like it) holding this step's noise; the previous step's are recycled."""
        if not self.prefetch:
            self._fill(self._slots[0][0])
            return self._slots[0][1]
        if self._thread is None:
            raise RuntimeError("NoisyGradients was closed.")
        if self._current is not None:
            self._free.put(self._current)
        got = self._ready.get()
        if isinstance(got, BaseException):
            raise got
        self._current = got
        return self._slots[got][1]

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
