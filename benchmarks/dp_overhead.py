"""DP-SGD overhead: epoch time and peak memory of non-DP vs Opacus hooks vs Opacus ghost vs the fast engine.

Every engine trains the same default models of study 01 on the same tweets, side by side in one process:

* ``bag``    BagOfEmbeddings (embedding 64-d over the training vocabulary, masked mean, linear head)
* ``gru``    RecurrentClassifier (embedding 64-d, GRU with 64 hidden units unrolled into nn.Linear layers)
* ``linear`` a linear head on frozen MiniLM sentence features (384-d; features cached, not timed)
* ``mlp``    one hidden layer of 64 units on the same features

One "epoch" is a pass over ``--samples`` training tweets (a subset, to keep the default run short) with
fixed-size shuffled batches (``poisson_sampling=False``, so every engine sees identical batches), noise
multiplier 1, clipping norm 1, one torch thread (``--threads``). Rounds are interleaved (engine order rotates each round) and the median
epoch time is reported. Peak memory is the peak resident-set growth during the epoch, sampled from
/proc/self/statm every millisecond after returning freed memory to the OS (glibc ``malloc_trim``): a
CPU-side proxy, comparable between engines of one run.

Usage::

    .venv/bin/python benchmarks/dp_overhead.py               # defaults, a few minutes on 2 cores
    .venv/bin/python benchmarks/dp_overhead.py --samples 256 --rounds 1 --models bag   # quick look

Results go to ``benchmarks/results/dp_overhead.json``; a markdown table for the README is printed.
"""
from __future__ import annotations

import argparse
import ctypes
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

ENGINES = ("non-DP", "fast", "opacus-ghost", "opacus-hooks")


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
    parser.add_argument("--samples", type=int, default=1024, help="training tweets per timed epoch")
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--max-len", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=3, help="timed epochs per (model, engine); the median is reported")
    parser.add_argument("--models", nargs="+", default=["bag", "gru", "linear", "mlp"])
    parser.add_argument("--engines", nargs="+", default=list(ENGINES))
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
    tasks = {f: load_tweet_task(n=args.tweets, features=f, max_len=args.max_len, seed=0)
             for f in sorted({MODEL_FAMILIES[m] for m in args.models})}
    config = TrainConfig(epochs=1, batch_size=args.batch_size, lr=1e-3, seed=0)
    times: dict[tuple[str, str], list[float]] = {}
    memory: dict[tuple[str, str], list[float]] = {}
    errors: dict[tuple[str, str], str] = {}
    params: dict[str, int] = {}
    started = time.perf_counter()
    for r in range(args.rounds):
        for name in args.models:
            task = tasks[MODEL_FAMILIES[name]]
            subset = (task.train[0][: args.samples], task.train[1][: args.samples])
            order = args.engines[r % len(args.engines):] + args.engines[: r % len(args.engines)]
            for engine in order:
                if (name, engine) in errors:
                    continue
                model = make_task_model(name, task, seed=0)
                params[name] = sum(p.numel() for p in model.parameters())
                dp = None if engine == "non-DP" else DPConfig(noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=False,
                                                              engine=engine)
                try:
                    with PeakRSS() as peak:
                        res = train(model, subset, config=config, dp=dp, progress=False)
                except (NotImplementedError, ValueError) as err:
                    errors[(name, engine)] = f"{type(err).__name__}: {str(err).splitlines()[0]}"
                    continue
                times.setdefault((name, engine), []).append(res.seconds_per_epoch)
                memory.setdefault((name, engine), []).append(peak.megabytes)
                print(f"round {r + 1} {name:7s} {engine:13s} {res.seconds_per_epoch:8.3f} s/epoch  {peak.megabytes:8.1f} MB",
                      flush=True)

    rows = []
    for name in args.models:
        base = statistics.median(times[(name, "non-DP")]) if (name, "non-DP") in times else float("nan")
        for engine in args.engines:
            key = (name, engine)
            sec = statistics.median(times[key]) if key in times else None
            rows.append({
                "model": name, "engine": engine, "parameters": params.get(name),
                "seconds_per_epoch": sec, "slowdown_vs_non_dp": (sec / base) if sec is not None else None,
                "peak_rss_mb": max(memory[key]) if key in memory else None,
                "all_seconds": times.get(key, []), "error": errors.get(key),
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
        "rows": rows,
    }
    atomic_write_text(args.output, json.dumps(result, indent=2) + "\n")
    print()
    print(markdown_table(rows))
    print(f"\nwritten to {args.output} ({result['wall_seconds']:.0f} s)")
    return result


def markdown_table(rows) -> str:
    """README table: one line per model, one column per engine (slowdown and epoch time)."""
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    lines = ["| model | params | " + " | ".join(engines) + " |", "|---|---:|" + "---:|" * len(engines)]
    for model in dict.fromkeys(r["model"] for r in rows):
        cells = []
        for engine in engines:
            r = next(x for x in rows if x["model"] == model and x["engine"] == engine)
            if r["seconds_per_epoch"] is None:
                cells.append("unsupported" if r["error"] else "n/a")
            else:
                cells.append(f"{r['slowdown_vs_non_dp']:.2f}x ({r['seconds_per_epoch']:.2f} s, {r['peak_rss_mb']:.0f} MB)")
        params = next(x["parameters"] for x in rows if x["model"] == model)
        lines.append(f"| {model} | {params:,} | " + " | ".join(cells) + " |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
