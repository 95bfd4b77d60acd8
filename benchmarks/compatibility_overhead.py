"""Training-time overhead of the model-update methods against plain cross-entropy training, side by side.

Same data (Fashion-MNIST, first N images), same architecture, same seed; methods are interleaved in each
repeat so machine noise hits all of them alike. Reports seconds per epoch and the ratio to plain training for
focal distillation (KL and L2), plain distillation, BCT (influence loss) and an ensemble of 3.
Results go to benchmarks/results/compatibility_overhead.json.

    .venv/bin/python benchmarks/compatibility_overhead.py [--n 10000] [--epochs 2] [--repeats 3] [--threads 1]
"""
from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

import torch

from workbench.compatibility import bct
from workbench.compatibility.data import load_image_split
from workbench.compatibility.pc_training import PCConfig, UpdateScenario, train_new_model, train_old_model
from workbench.results import atomic_write_text, library_versions
from workbench.training import predict

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=10000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "compatibility_overhead.json"))
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    data = load_image_split("fashion_mnist", n_train=args.n, n_test=1000)
    sc = UpdateScenario(old_hidden=(64,), new_hidden=(256, 128), old_fraction=0.3, old_epochs=1, new_epochs=args.epochs)
    old = train_old_model(data.train, scenario=sc, n_classes=10)
    old_logits = predict(old, torch.as_tensor(data.X_train))
    cfg = bct.BCTConfig(hidden=(256, 128), embedding_dim=32, epochs=args.epochs)
    old_emb = bct.train_embedding_model((data.X_train[:3000], data.y_train[:3000]), config=bct.BCTConfig(hidden=(64,), epochs=1))
    methods = {
        "cross_entropy": lambda: train_new_model(data.train, scenario=sc, pc=PCConfig(method="none")),
        "distillation": lambda: train_new_model(data.train, scenario=sc, pc=PCConfig(method="distillation"), old_logits=old_logits),
        "focal_distillation_kl": lambda: train_new_model(data.train, scenario=sc, pc=PCConfig(), old_logits=old_logits),
        "focal_distillation_l2": lambda: train_new_model(data.train, scenario=sc, pc=PCConfig(distance="l2"), old_logits=old_logits),
        "ensemble_3": lambda: train_new_model(data.train, scenario=sc, pc=PCConfig(method="ensemble", n_ensemble=3)),
        "embedding_cross_entropy": lambda: bct.train_embedding_model(data.train, config=cfg),
        "bct_influence_loss": lambda: bct.train_embedding_model(data.train, config=cfg, old_model=old_emb),
    }
    times: dict[str, list[float]] = {k: [] for k in methods}
    for _ in range(args.repeats):
        for name, run in methods.items():
            t = time.perf_counter()
            run()
            times[name].append((time.perf_counter() - t) / args.epochs)
    base = statistics.median(times["cross_entropy"])
    ebase = statistics.median(times["embedding_cross_entropy"])
    results = {
        name: {"seconds_per_epoch_median": statistics.median(v), "seconds_per_epoch": v,
               "ratio_to_cross_entropy": statistics.median(v) / (ebase if name.startswith(("embedding", "bct")) else base)}
        for name, v in times.items()
    }
    report = {"benchmark": "compatibility_overhead", "n_train": args.n, "epochs": args.epochs, "repeats": args.repeats,
              "threads": args.threads, "results": results, "versions": library_versions()}
    atomic_write_text(args.output, json.dumps(report, indent=2) + "\n")
    for name, r in results.items():
        print(f"{name:26s} {r['seconds_per_epoch_median']:.3f} s/epoch  x{r['ratio_to_cross_entropy']:.2f}")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
