"""Federated-learning scale: device-selection cost at 10^3..10^6 devices, and simulator vs Flower rounds/s.

Part 1 times ``strategy.select`` for k=100 devices among n devices with heavy-tailed activity (Zipf sizes,
10% of devices empty), per strategy, and the peak extra memory of one selection (tracemalloc, which sees
numpy's buffers). Power-of-choice is timed with precomputed candidate losses (its real cost is the
candidates' model evaluation and communication, counted by the simulator's bytes). Target: under 5 ms at 10^6.

Part 2 runs notebook 03's rounds (Shakespeare next-character task on 8 plays, its CharMLP, activity selection,
10 devices per round, 20 local steps of batch 32) with (a) the in-process simulator (per-device loop), (b) the
batched simulator (the round's devices trained together, :class:`workbench.federated.batched.BatchedSimulator`)
and (c) Flower's server loop with in-process clients (no Ray), in ``--trials`` interleaved paired trials of
``--rounds`` rounds each, all on one torch thread; it checks that all select the same devices and end with the
same weights, and reports each speed-up as the median of the paired per-trial ratios (target: batched >= 3x
Flower's loop). With ``--ray``, (d) Flower's simulation runtime (ServerApp/ClientApp through ``run_simulation``,
Ray) once, its start-up reported separately (off by default: Ray's start-up alone can take minutes when busy).

    .venv/bin/python benchmarks/fl_scale.py --note "quiet 2-core machine"   # about 2-3 minutes on 2 quiet cores

Options: ``--trials 7 --rounds 7 --data-size small --skip-flower --ray --output PATH``.
Results: benchmarks/results/fl_scale.json (``engines.speedup_batched_vs_flower_server_loop.median``).
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
import tracemalloc
from pathlib import Path

import numpy as np

from workbench.federated.partition import Partition
from workbench.federated.selection import make_strategy
from workbench.results import atomic_write_text, library_versions

ROOT = Path(__file__).resolve().parents[1]
OUT = ROOT / "benchmarks" / "results" / "fl_scale.json"
STRATEGIES = {"uniform": {}, "activity": {}, "tempered": {"t": 0.5}, "power_of_choice": {"d": 200}, "round_robin": {}}


def device_sizes(n: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    sizes = np.minimum(rng.zipf(1.6, size=n), 100_000).astype(np.int64)
    sizes[rng.random(n) < 0.1] = 0
    return sizes


def bench_selection(ns, *, k: int, repeats: int) -> list[dict]:
    rows = []
    for n in ns:
        sizes = device_sizes(n)
        losses = np.random.default_rng(1).random(n)
        part_bytes = Partition.from_sizes(sizes).nbytes()
        for name, params in STRATEGIES.items():
            strategy = make_strategy(name, **params)
            rng = np.random.default_rng(0)
            loss_fn = (lambda c: losses[c]) if strategy.uses_losses else None
            strategy.select(rng, sizes=sizes, k=k, loss_fn=loss_fn)  # warm-up
            times = []
            for r in range(repeats):
                t = time.perf_counter()
                sel = strategy.select(rng, sizes=sizes, k=k, round_idx=r, loss_fn=loss_fn)
                times.append(time.perf_counter() - t)
            assert len(np.unique(sel)) == k and np.all(sizes[sel] > 0)
            tracemalloc.start()
            strategy.select(rng, sizes=sizes, k=k, loss_fn=loss_fn)
            _, peak = tracemalloc.get_traced_memory()
            tracemalloc.stop()
            rows.append({"strategy": name, "n_devices": n, "k": k, "ms": 1e3 * statistics.median(times),
                         "ms_p90": 1e3 * float(np.quantile(times, 0.9)), "peak_mb": peak / 2**20,
                         "partition_mb": part_bytes / 2**20})
            print(f"select {name:16s} n={n:>9,d}: {rows[-1]['ms']:8.3f} ms (p90 {rows[-1]['ms_p90']:.3f}), "
                  f"peak {rows[-1]['peak_mb']:.1f} MB", flush=True)
    return rows


def _median_ratio(num: list[float], den: list[float]) -> dict:
    """Median, min and max of the paired ratios num[i] / den[i] (the same trial's two measurements)."""
    ratios = [a / b for a, b in zip(num, den)]
    return {"median": statistics.median(ratios), "min": min(ratios), "max": max(ratios), "trials": ratios}


def bench_engines(*, rounds: int, clients_per_round: int, strategy: str, skip_flower: bool, max_local_steps: int = 20,
                  trials: int = 7, skip_ray: bool = False, data_size: str = "small") -> dict:
    """Seconds per run of ``rounds`` rounds for each in-process engine, over ``trials`` interleaved trials.

    Every trial runs the three engines back to back (in a rotated order, so none always runs first) on the same
    workload and seed; the speed-ups are medians of the *paired* ratios (same trial), which cancels most of the
    drift of a shared machine. All engines run on one torch thread. Every engine is timed as one whole call:
    set-up, the rounds, and the final model's test metrics (``run_fedavg``; ``run_flower_inprocess``'s
    ``total_seconds``, which also builds Flower's client proxies). An earlier version timed Flower's
    ``server.fit`` alone against whole ``run_fedavg`` calls, which flattered Flower by about 11%.
    """
    import torch
    from torch.nn.utils import parameters_to_vector

    from workbench.federated.batched import BatchedSimulator
    from workbench.federated.simulation import FedConfig, run_fedavg
    from workbench.federated.tasks import make_model_fn, shakespeare_task

    data = shakespeare_task(size=data_size, context=16, stride=8)  # notebook 03's task and model
    model_fn = make_model_fn(data)
    cfg = FedConfig(rounds=rounds, clients_per_round=clients_per_round, strategy=strategy, max_local_steps=max_local_steps,
                    batch_size=32, client_lr=0.5, eval_every=rounds, seed=0)
    out = {"workload": {"task": data.name, "devices": data.n_clients, "train_samples": data.train.n_samples,
                        "rounds": rounds, "clients_per_round": clients_per_round, "strategy": strategy,
                        "max_local_steps": max_local_steps, "batch_size": 32, "trials": trials, "torch_threads": 1,
                        "parameters": sum(p.numel() for p in model_fn().parameters())}}

    def vec(model):
        with torch.no_grad():
            return parameters_to_vector(model.parameters()).detach().clone()

    def fedavg(simulator=None):
        t = time.perf_counter()
        res = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False, simulator=simulator)
        return time.perf_counter() - t, [r["selected"] for r in res.history], vec(res.model)

    def flower():
        from workbench.federated.flower import run_flower_inprocess

        res = run_flower_inprocess(data, model_fn=model_fn, config=cfg)
        return res["total_seconds"], res["selected"], res["parameters"]

    engines = {"simulator": fedavg, "batched_simulator": lambda: fedavg(BatchedSimulator)}
    if not skip_flower:
        engines["flower_server_loop"] = flower
    for fn in engines.values():  # warm-up (imports, allocator, first-call overheads)
        fn()
    times: dict[str, list[float]] = {name: [] for name in engines}
    runs: dict = {}
    names = list(engines)
    for trial in range(trials):
        order = names[trial % len(names):] + names[: trial % len(names)]
        for name in order:
            seconds, selected, params = engines[name]()
            times[name].append(seconds)
            runs[name] = (selected, params)
        print(f"trial {trial + 1}/{trials}: " + ", ".join(f"{n} {times[n][-1]:.2f} s" for n in names), flush=True)
    ref_sel, ref_vec = runs["simulator"]
    out["checks"] = {f"{n}_same_selection": runs[n][0] == ref_sel for n in names if n != "simulator"}
    out["checks"].update({f"{n}_max_weight_difference": float((runs[n][1] - ref_vec).abs().max())
                          for n in names if n != "simulator"})
    for name, ts in times.items():
        out[name] = {"seconds": statistics.median(ts), "rounds_per_second": rounds / statistics.median(ts),
                     "trials_seconds": ts}
        print(f"{name}: {out[name]['rounds_per_second']:.2f} rounds/s (median of {len(ts)} trials)", flush=True)
    out["speedup_batched_vs_simulator"] = _median_ratio(times["simulator"], times["batched_simulator"])
    if skip_flower:
        return out
    out["speedup_batched_vs_flower_server_loop"] = _median_ratio(times["flower_server_loop"], times["batched_simulator"])
    out["speedup_simulator_vs_flower_server_loop"] = _median_ratio(times["flower_server_loop"], times["simulator"])
    sp = out["speedup_batched_vs_flower_server_loop"]
    print(f"batched simulator vs Flower's in-process server loop: {sp['median']:.2f}x (median of {trials} paired ratios, "
          f"range {sp['min']:.2f}-{sp['max']:.2f}); per-device simulator vs Flower: "
          f"{out['speedup_simulator_vs_flower_server_loop']['median']:.2f}x", flush=True)
    if skip_ray:
        return out
    from workbench.federated.flower import run_flower_simulation

    try:
        ray = run_flower_simulation(data, model_fn=model_fn, config=cfg, num_cpus=2, start_attempts=3)
    except RuntimeError as exc:  # Ray's start-up can time out on a busy machine; the rest still stands
        out["flower_simulation_engine"] = {"error": str(exc)}
        print(f"Flower simulation engine (Ray) did not run: {exc}", flush=True)
        return out
    out["flower_simulation_engine"] = {"seconds": ray["seconds"], "rounds_per_second": ray["rounds_per_second"],
                                       "startup_seconds": ray["startup_seconds"],
                                       "same_selection": ray["selected"] == ref_sel,
                                       "max_weight_difference": float((ray["parameters"] - ref_vec).abs().max())}
    out["speedup_vs_flower_simulation"] = out["batched_simulator"]["rounds_per_second"] / ray["rounds_per_second"]
    print(f"Flower simulation engine (Ray): {ray['rounds_per_second']:.2f} rounds/s "
          f"(+{ray['startup_seconds']:.1f} s start-up); the batched simulator is {out['speedup_vs_flower_simulation']:.1f}x faster", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=7, help="rounds per engine run (notebook 03 runs 40)")
    parser.add_argument("--clients-per-round", type=int, default=10)
    parser.add_argument("--strategy", default="activity")
    parser.add_argument("--max-local-steps", type=int, default=20, help="local SGD steps per device and round (notebook: 20)")
    parser.add_argument("--trials", type=int, default=7, help="interleaved paired trials of the in-process engines")
    parser.add_argument("--data-size", default="small", choices=["tiny", "small"], help="Shakespeare plays (notebook 03: small)")
    parser.add_argument("--output", type=Path, default=OUT, help="results file")
    parser.add_argument("--skip-flower", action="store_true")
    parser.add_argument("--note", default="measured on a loaded machine (other jobs sharing the cores)",
                        help="how the machine was when this ran (stored in the results)")
    parser.add_argument("--ray", action="store_true", help="also time Flower's Ray runtime (its start-up can take minutes "
                        "and time out on a busy machine)")
    args = parser.parse_args()
    selection = bench_selection([10**3, 10**4, 10**5, 10**6], k=args.k, repeats=args.repeats)
    engines = bench_engines(rounds=args.rounds, clients_per_round=args.clients_per_round, strategy=args.strategy,
                            skip_flower=args.skip_flower, max_local_steps=args.max_local_steps, trials=args.trials,
                            skip_ray=not args.ray, data_size=args.data_size)
    at_million = {r["strategy"]: r["ms"] for r in selection if r["n_devices"] == 10**6}
    result = {
        "selection": selection,
        "selection_ms_at_1e6": at_million,
        "selection_target_ms_at_1e6": 5.0,
        "engines": engines,
        "speedup_target": 3.0,
        "note": args.note,
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": __import__("os").cpu_count()},
        "versions": {**library_versions(), "flwr": _version("flwr"), "ray": _version("ray")},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(args.output, json.dumps(result, indent=2) + "\n")
    print(f"wrote {args.output}")


def _version(name: str):
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
