"""Federated-learning scale: device-selection cost at 10^3..10^6 devices, and simulator vs Flower rounds/s.

Part 1 times ``strategy.select`` for k=100 devices among n devices with heavy-tailed activity (Zipf sizes,
10% of devices empty), per strategy, and the peak extra memory of one selection (tracemalloc, which sees
numpy's buffers). Power-of-choice is timed with precomputed candidate losses (its real cost is the
candidates' model evaluation and communication, counted by the simulator's bytes).

Part 2 runs the same FedAvg workload (Shakespeare next-character task, notebook-sized model) with
(a) the in-process simulator (per-device loop), (b) the batched simulator (the round's devices trained
together, :class:`workbench.federated.batched.BatchedSimulator`), (c) Flower's server loop with in-process
clients (no Ray) and (d) Flower's simulation runtime (ServerApp/ClientApp through ``run_simulation``, Ray),
interleaved over ``--trials`` trials (this machine's speed drifts); it checks that all select the same
devices and reports the median rounds per second (Ray start-up excluded and reported separately).

    .venv/bin/python benchmarks/fl_scale.py [--repeats 30] [--rounds 5] [--trials 3] [--skip-flower] [--skip-ray]

Results: benchmarks/results/fl_scale.json.
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


def bench_engines(*, rounds: int, clients_per_round: int, strategy: str, skip_flower: bool, max_local_steps: int = 20,
                  trials: int = 3, skip_ray: bool = False) -> dict:
    import torch
    from torch.nn.utils import parameters_to_vector

    from workbench.federated.simulation import FedConfig, run_fedavg
    from workbench.federated.tasks import make_model_fn, shakespeare_task

    data = shakespeare_task(size="tiny", context=16, stride=8)
    model_fn = make_model_fn(data)
    cfg = FedConfig(rounds=rounds, clients_per_round=clients_per_round, strategy=strategy, max_local_steps=max_local_steps,
                    batch_size=32, client_lr=0.5, eval_every=rounds, seed=0)
    out = {"workload": {"task": data.name, "devices": data.n_clients, "train_samples": data.train.n_samples,
                        "rounds": rounds, "clients_per_round": clients_per_round, "strategy": strategy,
                        "max_local_steps": max_local_steps, "batch_size": 32,
                        "parameters": sum(p.numel() for p in model_fn().parameters())}}
    from workbench.federated.batched import BatchedSimulator

    run_fedavg(data, model_fn=model_fn, config=FedConfig(**{**cfg.__dict__, "rounds": 1}), progress=False)  # warm-up
    run_fedavg(data, model_fn=model_fn, config=FedConfig(**{**cfg.__dict__, "rounds": 1}), progress=False,
               simulator=BatchedSimulator)
    times: dict[str, list[float]] = {"simulator": [], "batched_simulator": [], "flower_server_loop": []}
    checks: dict = {}
    for _ in range(trials):
        t = time.perf_counter()
        sim = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False)
        times["simulator"].append(time.perf_counter() - t)
        selected = [r["selected"] for r in sim.history]
        with torch.no_grad():
            sim_vec = parameters_to_vector(sim.model.parameters())
        t = time.perf_counter()
        bat = run_fedavg(data, model_fn=model_fn, config=cfg, progress=False, simulator=BatchedSimulator)
        times["batched_simulator"].append(time.perf_counter() - t)
        with torch.no_grad():
            checks["batched_max_weight_difference"] = float((parameters_to_vector(bat.model.parameters()) - sim_vec).abs().max())
        if not skip_flower:
            from workbench.federated.flower import run_flower_inprocess

            fl = run_flower_inprocess(data, model_fn=model_fn, config=cfg)
            times["flower_server_loop"].append(fl["seconds"])
            checks["flower_same_selection"] = fl["selected"] == selected
            checks["flower_max_weight_difference"] = float((fl["parameters"] - sim_vec).abs().max())
    for name, ts in times.items():
        if ts:
            out[name] = {"seconds": statistics.median(ts), "rounds_per_second": rounds / statistics.median(ts),
                         "trials": [rounds / x for x in ts]}
            print(f"{name}: {out[name]['rounds_per_second']:.2f} rounds/s (median of {len(ts)})", flush=True)
    out["checks"] = checks
    if skip_flower:
        return out
    out["speedup_batched_vs_flower_server_loop"] = (out["batched_simulator"]["rounds_per_second"]
                                                    / out["flower_server_loop"]["rounds_per_second"])
    out["speedup_simulator_vs_flower_server_loop"] = (out["simulator"]["rounds_per_second"]
                                                      / out["flower_server_loop"]["rounds_per_second"])
    if skip_ray:
        return out
    from workbench.federated.flower import run_flower_simulation

    ray = run_flower_simulation(data, model_fn=model_fn, config=cfg, num_cpus=2, start_attempts=3)
    out["flower_simulation_engine"] = {"seconds": ray["seconds"], "rounds_per_second": ray["rounds_per_second"],
                                       "startup_seconds": ray["startup_seconds"],
                                       "same_selection": ray["selected"] == selected,
                                       "max_weight_difference": float((ray["parameters"] - sim_vec).abs().max())}
    out["speedup_vs_flower_simulation"] = out["batched_simulator"]["rounds_per_second"] / ray["rounds_per_second"]
    print(f"Flower simulation engine (Ray): {ray['rounds_per_second']:.2f} rounds/s "
          f"(+{ray['startup_seconds']:.1f} s start-up); the batched simulator is {out['speedup_vs_flower_simulation']:.1f}x faster", flush=True)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--k", type=int, default=100)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--clients-per-round", type=int, default=10)
    parser.add_argument("--strategy", default="activity")
    parser.add_argument("--max-local-steps", type=int, default=20, help="local SGD steps per device and round (notebook: 20)")
    parser.add_argument("--trials", type=int, default=3, help="interleaved trials of the in-process engines (median reported)")
    parser.add_argument("--skip-flower", action="store_true")
    parser.add_argument("--skip-ray", action="store_true", help="skip Flower's Ray runtime (its start-up can time out on a busy machine)")
    args = parser.parse_args()
    selection = bench_selection([10**3, 10**4, 10**5, 10**6], k=args.k, repeats=args.repeats)
    engines = bench_engines(rounds=args.rounds, clients_per_round=args.clients_per_round, strategy=args.strategy,
                            skip_flower=args.skip_flower, max_local_steps=args.max_local_steps, trials=args.trials,
                            skip_ray=args.skip_ray)
    at_million = {r["strategy"]: r["ms"] for r in selection if r["n_devices"] == 10**6}
    result = {
        "selection": selection,
        "selection_ms_at_1e6": at_million,
        "selection_target_ms_at_1e6": 5.0,
        "engines": engines,
        "speedup_target": 3.0,
        "note": "measured on a loaded machine unless re-run on a quiet one",
        "machine": {"processor": platform.processor() or platform.machine(), "cpus": __import__("os").cpu_count()},
        "versions": {**library_versions(), "flwr": _version("flwr"), "ray": _version("ray")},
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(OUT, json.dumps(result, indent=2) + "\n")
    print(f"wrote {OUT}")


def _version(name: str):
    from importlib import metadata

    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return None


if __name__ == "__main__":
    main()
