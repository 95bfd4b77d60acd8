"""DP-SGD overhead: epoch time, CPU time and peak memory of non-DP vs the fast engine vs Opacus ghost vs Opacus hooks.

Every engine trains the same default models of study 01 (notebook 01's defaults: 3,000 tweets, 80% for
training, at most 32 tokens, a 5,000-token vocabulary) on the same tweets, side by side in one process:

* ``bag``    BagOfEmbeddings (embedding 64-d over the training vocabulary, masked mean, linear head)
* ``gru``    RecurrentClassifier (embedding 64-d, GRU with 64 hidden units unrolled into nn.Linear layers)
* ``linear`` a linear head on frozen MiniLM sentence features (384-d; features cached, not timed)
* ``mlp``    one hidden layer of 64 units on the same features

Engines: ``non-DP`` (plain training), ``fast`` (the workbench's engine with its defaults: the next step's
noise is drawn on a spare core when the model has at least 65,536 parameters), ``fast-1-core`` (the same
engine with ``noise_prefetch=False``: everything on one core), ``opacus-ghost`` and ``opacus-hooks``.

One "epoch" is a pass over ``--samples`` training tweets (all of them by default) with fixed-size shuffled
batches; each timed trial trains enough epochs for the non-DP trial to last ``--min-trial-seconds`` (0.3 s,
calibrated in the warm-up round) and reports their mean (``poisson_sampling=False``, so every engine sees identical batches), noise multiplier 1, clipping
norm 1, one torch thread (``--threads``). Rounds are interleaved (engine order rotates each round). This
machine's speed drifts by tens of percent within seconds, so the slowdown reported is the **median over
rounds of the ratio to the non-DP epoch of the same round** (the two ran seconds apart); epoch times are
medians too. CPU time is the process's (all threads), so it shows what a noise thread costs. Peak memory is
the peak resident-set growth during the epoch, sampled from /proc/self/statm every millisecond after
returning freed memory to the OS (glibc ``malloc_trim``): a CPU-side proxy, comparable between engines of one
run.

Usage::

    .venv/bin/python benchmarks/dp_overhead.py               # defaults: a few minutes on 2 cores
    .venv/bin/python benchmarks/dp_overhead.py --batch-sizes 128 --rounds 1 --models bag --engines non-DP fast

Results go to ``benchmarks/results/dp_overhead.json``; a markdown table for the README is printed.
"""
from __future__ import annotations

import argparse
import ctypes
import math
import gc
import json
import os
import platform
import statistics
import sys
import threading
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

ENGINES = ("non-DP", "fast", "fast-1-core", "opacus-ghost", "opacus-hooks")


class PeakRSS:
    """Peak growth of the resident set size while the block runs (sampled by a background thread)."""

    def __init__(self, interval: float = 0.001):
        self.interval = interval
        self.page = os.sysconf("SC_PAGE_SIZE")

    def _rss(self) -> int:
        with open("/proc/self/statm") as fh:
            return int(fh.read().split()[1]) * self.page

    def __enter__(self):
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)
        except OSError:
            pass
        self.base = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, daemon=True)
        self._thread.start()
        return self

    def _watch(self):
        while not self._stop.is_set():
            self.peak = max(self.peak, self._rss())
            time.sleep(self.interval)

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())
        self.megabytes = (self.peak - self.base) / 2**20


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tweets", type=int, default=3000, help="tweets loaded (80%% train); the vocabulary comes from them")
    parser.add_argument("--max-vocab", type=int, default=5000, help="vocabulary size of the token models (notebook 01's default)")
    parser.add_argument("--samples", type=int, default=None, help="training tweets per timed epoch (default: all)")
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--max-len", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7, help="timed epochs per (model, batch size, engine)")
    parser.add_argument("--warmup", type=int, default=1, help="untimed rounds first (lazy initialisation, caches)")
    parser.add_argument("--min-trial-seconds", type=float, default=0.3,
                        help="each timed trial trains as many epochs as make the non-DP trial last this long (set in warm-up)")
    parser.add_argument("--models", nargs="+", default=["bag", "gru", "linear", "mlp"])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINES)
    parser.add_argument("--threads", type=int, default=1,
                        help="torch.set_num_threads; 1 by default: on a shared 2-core machine more threads make ratios erratic")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "dp_overhead.json"))
    args = parser.parse_args(argv)

    import torch

    from workbench.privacy.data import MODEL_FAMILIES, load_tweet_task, make_task_model
    from workbench.privacy.dp import DPConfig, train
    from workbench.results import atomic_write_text, library_versions
    from workbench.training import TrainConfig

    warnings.filterwarnings("ignore")
    if args.threads:
        torch.set_num_threads(args.threads)
    tasks = {f: load_tweet_task(n=args.tweets, features=f, max_len=args.max_len, max_vocab=args.max_vocab, seed=0)
             for f in sorted({MODEL_FAMILIES[m] for m in args.models})}
    times: dict[tuple, list[float]] = {}
    cpu: dict[tuple, list[float]] = {}
    memory: dict[tuple, list[float]] = {}
    errors: dict[tuple, str] = {}
    params: dict[str, int] = {}
    samples: dict[str, int] = {}
    epochs: dict[tuple, int] = {}
    started = time.perf_counter()
    for r in range(-args.warmup, args.rounds):
        for batch in args.batch_sizes:
            for name in args.models:
                config = TrainConfig(epochs=epochs.get((name, batch), 1), batch_size=batch, lr=1e-3, seed=max(r, 0))
                task = tasks[MODEL_FAMILIES[name]]
                subset = (task.train[0][: args.samples], task.train[1][: args.samples])
                samples[name] = len(subset[1])
                order = args.engines[r % len(args.engines):] + args.engines[: r % len(args.engines)]  # r < 0: any order
                for engine in order:
                    key = (name, batch, engine)
                    if key in errors:
                        continue
                    if r < 0 and engine == "opacus-hooks":
                        continue  # slow, and warms up like opacus-ghost
                    model = make_task_model(name, task, seed=0)
                    params[name] = sum(p.numel() for p in model.parameters())
                    dp = None
                    if engine != "non-DP":
                        dp = DPConfig(noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=False,
                                      engine="fast" if engine.startswith("fast") else engine,
                                      noise_prefetch=False if engine == "fast-1-core" else None)
                    try:
                        with PeakRSS() as peak:
                            res = train(model, subset, config=config, dp=dp, progress=False)
                    except (NotImplementedError, ValueError) as err:
                        errors[key] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
                        continue
                    if r < 0:
                        if engine == "non-DP":
                            epochs[(name, batch)] = max(1, min(100, math.ceil(args.min_trial_seconds / res.seconds_per_epoch)))
                        continue
                    times.setdefault(key, []).append(res.seconds_per_epoch)
                    cpu.setdefault(key, []).append(res.cpu_seconds_per_epoch)
                    memory.setdefault(key, []).append(peak.megabytes)
                    print(f"round {r + 1}/{args.rounds} batch {batch:4d} {name:7s} {engine:13s} {res.seconds_per_epoch:8.3f} s/epoch "
                          f"(cpu {res.cpu_seconds_per_epoch:7.3f} s)  {peak.megabytes:8.1f} MB", flush=True)

    noise = noise_generators(n=max(params.values()), rounds=max(args.rounds, 3) * 10)
    print(f"Gaussian noise for {noise['values']:,} values: torch.normal_ {noise['torch_normal_ms']:.2f} ms, "
          f"workbench GaussianNoise {noise['workbench_ms']:.2f} ms ({noise['speedup']:.2f}x; the same torch.normal_ since the "
          "AES sampler was dropped, see benchmarks/dp_noise.py)")

    rows = []
    for batch in args.batch_sizes:
        for name in args.models:
            base, base_cpu = times.get((name, batch, "non-DP")), cpu.get((name, batch, "non-DP"))
            for engine in args.engines:
                key = (name, batch, engine)
                sec = times.get(key)
                paired = [t / b for t, b in zip(sec, base)] if sec and base else None
                paired_cpu = [t / b for t, b in zip(cpu[key], base_cpu)] if sec and base_cpu else None
                rows.append({
                    "model": name, "batch_size": batch, "engine": engine, "parameters": params.get(name),
                    "samples_per_epoch": samples.get(name), "epochs_per_trial": epochs.get((name, batch), 1),
                    "seconds_per_epoch": statistics.median(sec) if sec else None,
                    "cpu_seconds_per_epoch": statistics.median(cpu[key]) if sec else None,
                    "slowdown_vs_non_dp": statistics.median(paired) if paired else None,
                    "cpu_slowdown_vs_non_dp": statistics.median(paired_cpu) if paired_cpu else None,
                    "peak_rss_mb": max(memory[key]) if key in memory else None,
                    "all_seconds": sec or [], "all_cpu_seconds": cpu.get(key, []), "error": errors.get(key),
                })
    result = {
        "benchmark": "dp_overhead",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {**vars(args), "noise_multiplier": 1.0, "max_grad_norm": 1.0, "poisson_sampling": False,
                     "torch_threads": torch.get_num_threads()},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "load_average_at_end": os.getloadavg()},
        "versions": library_versions(),
        "wall_seconds": time.perf_counter() - started,
        "noise": noise,
        "rows": rows,
    }
    atomic_write_text(args.output, json.dumps(result, indent=2) + "\n")
    print()
    print(markdown_table(rows))
    print(f"\nwritten to {args.output} ({result['wall_seconds']:.0f} s)")
    return result


def noise_generators(*, n: int, rounds: int) -> dict:
    """Median milliseconds to draw ``n`` Gaussian values in place: ``torch.Tensor.normal_`` vs the fast engine's sampler
    (which is ``torch.normal_`` with its own generator since ``benchmarks/dp_noise.py`` found the former AES sampler no
    faster; the ratio is kept so older results files stay comparable)."""
    import torch

    from workbench.privacy.noise import GaussianNoise

    buf, generator, sampler = torch.empty(n), torch.Generator().manual_seed(0), GaussianNoise(seed=0)
    draws = {"torch": lambda: buf.normal_(0.0, 1.0, generator=generator), "workbench": lambda: sampler.fill_(buf, std=1.0)}
    times = {k: [] for k in draws}
    for r in range(rounds + 3):
        for name, draw in (draws.items() if r % 2 else reversed(draws.items())):
            start = time.perf_counter()
            draw()
            if r >= 3:  # warm-up draws first
                times[name].append((time.perf_counter() - start) * 1e3)
    torch_ms, ours_ms = statistics.median(times["torch"]), statistics.median(times["workbench"])
    return {"values": n, "torch_normal_ms": torch_ms, "workbench_ms": ours_ms, "speedup": torch_ms / ours_ms}


def markdown_table(rows) -> str:
    """README table: one line per (batch size, model), one column per engine: slowdown (CPU slowdown), epoch time, memory."""
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    lines = ["| batch | model | params | " + " | ".join(engines) + " |", "|---:|---|---:|" + "---:|" * len(engines)]
    for batch, model in dict.fromkeys((r["batch_size"], r["model"]) for r in rows):
        cells = []
        for engine in engines:
            r = next(x for x in rows if x["model"] == model and x["batch_size"] == batch and x["engine"] == engine)
            if r["seconds_per_epoch"] is None:
                cells.append("unsupported" if r["error"] else "n/a")
            else:
                cpu = f" (cpu {r['cpu_slowdown_vs_non_dp']:.2f}x)" if engine != "non-DP" else ""
                cells.append(f"{r['slowdown_vs_non_dp']:.2f}x{cpu}, {r['seconds_per_epoch']:.3f} s, {r['peak_rss_mb']:.0f} MB")
        params = next(x["parameters"] for x in rows if x["model"] == model)
        lines.append(f"| {batch} | {model} | {params:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
