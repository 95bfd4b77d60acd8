"""Gaussian noise for DP-SGD: which sampler is fastest on this CPU, paired and interleaved.

DP-SGD draws one Gaussian value per trainable parameter per step (345,155 for notebook 01's GRU, 22.6M for
full fine-tuning of MiniLM), so the sampler's speed sets a floor under every DP step. Candidates, each
writing ``N(0, 1)`` float32 values in place into a reused buffer on ONE torch thread:

* ``torch``: ``Tensor.normal_(generator=g)`` (what Opacus uses);
* ``numpy``: ``numpy.random.Generator(PCG64).standard_normal(dtype=float32, out=...)`` (ziggurat);
* ``aes``: the AES-CTR + Box-Muller sampler ``workbench.privacy.noise`` shipped until this benchmark
  (kept here, verbatim in spirit, only to be measured: ``--no-aes`` skips it when ``cryptography`` is missing).

Each round draws once with every sampler in a rotating order (so drift of the machine's speed hits all of them
alike); the ratio reported is the median over rounds of ``time(sampler) / time(torch)`` within the round.

Usage::

    .venv/bin/python benchmarks/dp_noise.py                 # 345,155 and 22.6M values, 40 rounds
    .venv/bin/python benchmarks/dp_noise.py --rounds 5 --sizes 100000   # quick

Results go to ``benchmarks/results/dp_noise.json``.
"""
from __future__ import annotations

import argparse
import json
import math
import os
import platform
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


def aes_box_muller(seed: int = 0):
    """The former workbench sampler: AES-256-CTR key stream words -> vectorised Box-Muller (float32)."""
    from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes

    key = np.random.SeedSequence([seed, 0x6E6F697365]).generate_state(8, dtype=np.uint32).tobytes()
    stream = Cipher(algorithms.AES(key), modes.CTR(bytes(16))).encryptor()
    cache = {}

    def fill(out: np.ndarray) -> None:
        n = len(out)
        half = (n + 1) // 2
        if n not in cache:
            cache[n] = (bytes(8 * half), bytearray(8 * half + 15), np.empty(half, np.float32), np.empty(half, np.float32))
        zeros, raw, radius, angle = cache[n]
        stream.update_into(zeros, raw)
        words = np.frombuffer(raw, dtype=np.uint32, count=2 * half)
        np.copyto(radius, words[:half], casting="unsafe")
        radius += 1.0
        radius *= np.float32(2.0**-32)
        np.log(radius, out=radius)
        radius *= np.float32(-2.0)
        np.sqrt(radius, out=radius)
        np.copyto(angle, words[half:].view(np.int32), casting="unsafe")
        angle *= np.float32(2.0 * math.pi / 2.0**32)
        np.cos(angle, out=out[:half])
        out[:half] *= radius
        np.sin(angle[: n - half], out=out[half:])
        out[half:] *= radius[: n - half]

    return fill


def measure(n: int, *, rounds: int, aes: bool) -> dict:
    import torch

    buf = torch.empty(n)
    arr = buf.numpy()
    g = torch.Generator().manual_seed(0)
    rng = np.random.default_rng(0)
    samplers = {"torch": lambda: buf.normal_(0.0, 1.0, generator=g),
                "numpy": lambda: rng.standard_normal(dtype=np.float32, out=arr)}
    if aes:
        fill = aes_box_muller()
        samplers["aes"] = lambda: fill(arr)
    names = list(samplers)
    times = {k: [] for k in names}
    for r in range(rounds + 2):
        order = names[r % len(names):] + names[: r % len(names)]
        for name in order:
            start = time.perf_counter()
            samplers[name]()
            elapsed = time.perf_counter() - start
            if r >= 2:  # two warm-up rounds
                times[name].append(elapsed)
    out = {"values": n, "rounds": rounds}
    for name in names:
        ratios = [t / b for t, b in zip(times[name], times["torch"])]
        out[name] = {"median_ms": statistics.median(times[name]) * 1e3,
                     "ns_per_value": statistics.median(times[name]) / n * 1e9,
                     "time_ratio_vs_torch": statistics.median(ratios)}
    return out


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[345_155, 22_713_216])
    parser.add_argument("--rounds", type=int, default=40)
    parser.add_argument("--no-aes", action="store_true", help="skip the former AES-CTR sampler")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "dp_noise.json")
    args = parser.parse_args(argv)
    import torch

    torch.set_num_threads(1)
    aes = not args.no_aes
    if aes:
        try:
            import cryptography  # noqa: F401  (only this comparison needs it)
        except ImportError:
            print("cryptography is not installed: the former AES sampler is skipped")
            aes = False
    rows = [measure(n, rounds=args.rounds, aes=aes) for n in args.sizes]
    for row in rows:
        cells = ", ".join(f"{k} {v['median_ms']:.2f} ms ({v['ns_per_value']:.2f} ns/value, {v['time_ratio_vs_torch']:.2f}x torch's time)"
                          for k, v in row.items() if isinstance(v, dict))
        print(f"{row['values']:>11,} values: {cells}")
    result = {"benchmark": "dp_noise", "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
              "settings": {k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()},
              "torch_threads": 1, "torch": torch.__version__, "numpy": np.__version__,
              "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "load_average_at_end": os.getloadavg()},
              "rows": rows}
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(result, indent=2) + "\n")
    return result


if __name__ == "__main__":
    main()
