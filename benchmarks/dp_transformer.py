"""DP fine-tuning of MiniLM: step time, CPU time and peak memory of non-DP vs the fast engine vs Opacus ghost vs hooks.

The model is :class:`workbench.privacy.transformer.MiniLMClassifier` (all-MiniLM-L6-v2's weights, 22.6M parameters,
a 3-class linear head on the masked mean; eager attention, per-sample position / token-type ids and no pooler: the
workarounds Opacus needs, used by every engine so that all run the same model). What is trained
(:func:`workbench.privacy.trainable.select_trainable`): ``all`` (full fine-tuning), ``last_layers`` (the last 2
blocks + head) and ``bias`` (BiTFiT). Inputs are real tweets tokenized by MiniLM's tokenizer, concatenated and cut to
exactly ``length`` tokens, so every step of a setting sees the same shape.

Each engine runs its real training hook (:class:`workbench.training.GradientStep` for non-DP,
:class:`workbench.privacy.dp.FastDPStep`, :class:`workbench.privacy.dp.OpacusStep`): ``gradients`` then the optimizer
step (SGD), noise multiplier 1, clipping norm 1, fixed batches. A trial times ``--steps`` steps after one warm-up step.
Rounds are interleaved (the engine order rotates each round) and the slowdown is the **median over rounds of the
ratio to the non-DP trial of the same round**. CPU time is the process's (all threads: the fast engine draws the
noise on a spare core when there is one); "thread" is the training thread's CPU time alone, the step's critical path
when that core is spare, and far steadier than wall time when other jobs share the machine. Peak memory is the peak resident-set growth during the trial
(sampled every millisecond after returning freed memory to the OS): a CPU-side proxy, comparable between engines of
one run. ``noise share`` is the time ``torch.normal_`` takes to draw one step's noise (one value per trainable
parameter) divided by the fast engine's step time. Every engine runs with the same torch thread count (``--threads``).

``fast`` is the engine as :func:`workbench.privacy.dp.train` runs it: ``max_physical_batch_size="auto"`` (a batch
whose kept output gradients reach ``workbench.privacy.fast_dp.AUTO_SLICE_MIN_BYTES`` is clipped in slices, exactly; MiniLM at batch 128 x 32 tokens: two slices
of 64, the row's ``physical_batch_size``) and the noise drawn into the one gradient buffer on the spare core while
the step's forward and backward run. ``fast-whole-batch`` (only when named in ``--engines``) never slices.

Opacus hooks materialises per-sample gradients (batch x trainable parameters floats); settings that would need more
than ``--max-hooks-gb`` are skipped and say so.

Usage (durations: estimates for a quiet 2-core machine, from the per-step times of the quiet batch-32 run)::

    # issue 10's batch-128 targets, full fine-tuning, 32 tokens (about 6 minutes)
    .venv/bin/python benchmarks/dp_transformer.py --batch-sizes 128 --lengths 32 --parts full \
        --engines non-DP fast fast-whole-batch opacus-ghost --rounds 7 --steps 2 \
        --output benchmarks/results/dp_transformer_batch128.json
    # 64 tokens, batch 32 and 128 (about 7-8 minutes: batch 128 x 64 tokens dominates)
    .venv/bin/python benchmarks/dp_transformer.py --batch-sizes 32 128 --lengths 64 --parts full \
        --engines non-DP fast opacus-ghost --rounds 4 --steps 2 --output benchmarks/results/dp_transformer_64_tokens.json
    # Opacus hooks on full fine-tuning, batch 32 (per-sample gradients 2.7 GiB; about 2-3 minutes)
    .venv/bin/python benchmarks/dp_transformer.py --batch-sizes 32 --lengths 32 --parts full \
        --engines non-DP fast opacus-hooks --rounds 5 --steps 2 --max-hooks-gb 6 \
        --output benchmarks/results/dp_transformer_hooks.json
    .venv/bin/python benchmarks/dp_transformer.py                  # the full grid: long (tens of minutes on 2 cores)
    .venv/bin/python benchmarks/dp_transformer.py --quick          # seconds: one block of MiniLM, tiny batch (smoke)

Results go to ``benchmarks/results/dp_transformer.json`` (``--output``); a markdown table is printed.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

#: engines timed unless --engines says otherwise
ENGINES = ("non-DP", "fast", "opacus-ghost", "opacus-hooks")
#: --engines may also name "fast-whole-batch": the fast engine with max_physical_batch_size=None (never sliced)
ENGINE_CHOICES = ENGINES + ("fast-whole-batch",)
PARTS = ("all", "last_layers", "bias")
#: other names accepted by --parts
PART_ALIASES = {"full": "all"}


def batch_of(tokenizer, texts, *, batch: int, length: int):
    """``(batch, length)`` token ids: tweets tokenized, concatenated and cut so that every row is exactly ``length``
    tokens ([CLS] ... [SEP]), no padding."""
    import torch

    stream = [t for text in texts for t in tokenizer(text, add_special_tokens=False)["input_ids"]]
    body = length - 2
    if len(stream) < batch * body:
        stream = stream * (batch * body // max(len(stream), 1) + 1)
    rows = [[tokenizer.cls_token_id, *stream[i * body:(i + 1) * body], tokenizer.sep_token_id] for i in range(batch)]
    return torch.tensor(rows, dtype=torch.long), torch.arange(batch) % 3


def make_step(engine: str, *, part: str, layers: int | None, batch: int, seed: int = 0):
    """A fresh model with ``part`` trainable, and the engine's training hook started on it."""
    import torch

    from workbench.privacy.dp import STEPS, DPConfig
    from workbench.privacy.trainable import select_trainable
    from workbench.privacy.transformer import MiniLMClassifier
    from workbench.training import GradientStep, TrainConfig

    model = MiniLMClassifier(n_classes=3, layers=layers, dropout=0.0, seed=seed)
    info = select_trainable(model, part=part, last_layers=2 if layers is None or layers >= 2 else 1)
    config = TrainConfig(epochs=1, batch_size=batch, lr=1e-4, optimizer="sgd", seed=seed)
    if engine == "non-DP":
        step = GradientStep()
    else:
        name, slicing = ("fast", None) if engine == "fast-whole-batch" else (engine, "auto")
        dp = DPConfig(noise_multiplier=1.0, max_grad_norm=1.0, poisson_sampling=False, engine=name,
                      max_physical_batch_size=slicing)
        schedule = {"sample_rate": 1.0, "steps_per_epoch": 1, "noise_multipliers": [1.0], "noise_multiplier": 1.0}
        step = STEPS[name](dp, schedule)
    step.start(model, n=batch, config=config, generator=torch.Generator().manual_seed(seed))
    model.train()
    return step, info["trainable"]


def time_steps(step, ids, y, *, steps: int) -> tuple[float, float, float]:
    """Median wall seconds per step over ``steps`` steps (after one warm-up step), mean CPU seconds per step of the
    process (all threads) and of the training thread alone (the step's critical path when the noise thread has a
    spare core; steadier than wall time on a machine shared with other jobs)."""
    import torch

    from workbench.training import cross_entropy

    idx = torch.arange(len(y))
    step.gradients(ids, y, idx, cross_entropy)
    step.optimizer.step()
    walls, cpu0, thread0 = [], time.process_time(), time.thread_time()
    for _ in range(steps):
        start = time.perf_counter()
        step.gradients(ids, y, idx, cross_entropy)
        step.optimizer.step()
        walls.append(time.perf_counter() - start)
    return statistics.median(walls), (time.process_time() - cpu0) / steps, (time.thread_time() - thread0) / steps


def noise_seconds(n: int, *, repeats: int = 3) -> float:
    import torch

    buf, g = torch.empty(n), torch.Generator().manual_seed(0)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        buf.normal_(0.0, 1.0, generator=g)
        times.append(time.perf_counter() - start)
    return min(times)


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--lengths", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--parts", nargs="+", default=list(PARTS), choices=PARTS + tuple(PART_ALIASES),
                        help="what is trained; 'full' is another name for 'all'")
    parser.add_argument("--engines", nargs="+", default=list(ENGINES), choices=ENGINE_CHOICES)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--steps", type=int, default=3, help="timed steps per trial (after one warm-up step)")
    parser.add_argument("--layers", type=int, default=None, help="keep the first k MiniLM blocks (default: all 6)")
    parser.add_argument("--threads", type=int, default=1, help="torch threads, the same for every engine")
    parser.add_argument("--max-hooks-gb", type=float, default=6.0, help="skip Opacus hooks where per-sample gradients need more")
    parser.add_argument("--quick", action="store_true", help="smoke mode: 1 block, batch 4, 16 tokens, 1 round, 1 step")
    parser.add_argument("--output", type=Path, default=ROOT / "benchmarks" / "results" / "dp_transformer.json")
    args = parser.parse_args(argv)
    args.parts = list(dict.fromkeys(PART_ALIASES.get(p, p) for p in args.parts))
    if args.quick:
        args.batch_sizes, args.lengths, args.rounds, args.steps, args.layers = [4], [16], 1, 1, 1
        args.parts = [p for p in args.parts if p != "last_layers"] or ["all"]
    import torch

    from dp_overhead import PeakRSS
    from workbench.privacy.data import load_tweet_task
    from workbench.privacy.transformer import _encoder
    from workbench.results import atomic_write_text, library_versions

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    tokenizer = _encoder().tokenizer
    texts = load_tweet_task(n=400, features="tokens", max_len=8, max_vocab=3, seed=0).train_texts
    started = time.perf_counter()
    rows = []
    for part in args.parts:
        for batch in args.batch_sizes:
            for length in args.lengths:
                ids, y = batch_of(tokenizer, texts, batch=batch, length=length)
                walls = {e: [] for e in args.engines}
                cpus, peaks, errors, params = {e: [] for e in args.engines}, {e: [] for e in args.engines}, {}, None
                slice_sizes, threads = {}, {e: [] for e in args.engines}
                for r in range(args.rounds):
                    order = args.engines[r % len(args.engines):] + args.engines[: r % len(args.engines)]
                    for engine in order:
                        if engine in errors:
                            continue
                        try:
                            with PeakRSS() as peak:
                                step, params = make_step(engine, part=part, layers=args.layers, batch=batch)
                                need_gb = batch * params * 4 / 2**30
                                if engine == "opacus-hooks" and need_gb > args.max_hooks_gb:
                                    step.close()
                                    errors[engine] = f"skipped: per-sample gradients need {need_gb:.1f} GB (> --max-hooks-gb)"
                                    continue
                                try:
                                    wall, cpu, thread = time_steps(step, ids, y, steps=args.steps)
                                    slice_sizes[engine] = getattr(getattr(step, "engine", None), "last_slice_size", None)
                                finally:
                                    step.close()
                        except (ValueError, RuntimeError, NotImplementedError) as err:
                            errors[engine] = f"{type(err).__name__}: {str(err).splitlines()[0][:200]}"
                            continue
                        walls[engine].append(wall)
                        cpus[engine].append(cpu)
                        threads[engine].append(thread)
                        peaks[engine].append(peak.megabytes)
                        print(f"round {r + 1}/{args.rounds} {part:11s} batch {batch:4d} len {length:3d} {engine:13s} "
                              f"{wall:7.3f} s/step (cpu {cpu:7.3f}, thread {thread:7.3f})  {peak.megabytes:8.1f} MB", flush=True)
                noise = noise_seconds(params) if params else float("nan")
                base = walls.get("non-DP") or []
                for engine in args.engines:
                    w = walls[engine]
                    paired = [a / b for a, b in zip(w, base)] if base and len(w) == len(base) else []
                    paired_cpu = [a / b for a, b in zip(cpus[engine], cpus.get("non-DP", []))] if paired else []
                    paired_thread = [a / b for a, b in zip(threads[engine], threads.get("non-DP", []))] if paired else []
                    rows.append({
                        "part": part, "batch_size": batch, "length": length, "engine": engine, "trainable_parameters": params,
                        "seconds_per_step": statistics.median(w) if w else None,
                        "cpu_seconds_per_step": statistics.median(cpus[engine]) if w else None,
                        "slowdown_vs_non_dp": statistics.median(paired) if paired else None,
                        "cpu_slowdown_vs_non_dp": statistics.median(paired_cpu) if paired_cpu else None,
                        "thread_cpu_seconds_per_step": statistics.median(threads[engine]) if w else None,
                        "thread_cpu_slowdown_vs_non_dp": statistics.median(paired_thread) if paired_thread else None,
                        "peak_rss_mb": max(peaks[engine]) if peaks[engine] else None,
                        "memory_vs_non_dp": (max(peaks[engine]) / max(peaks["non-DP"])
                                             if peaks[engine] and peaks.get("non-DP") and max(peaks["non-DP"]) > 0 else None),
                        "physical_batch_size": slice_sizes.get(engine),
                        "noise_seconds": noise,
                        "noise_share_of_step": (noise / statistics.median(w)) if w and engine == "fast" else None,
                        "all_seconds": w, "error": errors.get(engine),
                    })
    result = {
        "benchmark": "dp_transformer",
        "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "settings": {**{k: (str(v) if isinstance(v, Path) else v) for k, v in vars(args).items()}, "noise_multiplier": 1.0,
                     "max_grad_norm": 1.0, "optimizer": "sgd", "torch_threads": torch.get_num_threads()},
        "machine": {"platform": platform.platform(), "processor": platform.processor(), "cpu_count": os.cpu_count(),
                    "load_average_at_end": os.getloadavg()},
        "versions": library_versions(),
        "wall_seconds": time.perf_counter() - started,
        "rows": rows,
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output, json.dumps(result, indent=2) + "\n")
    print()
    print(markdown_table(rows))
    print(f"\nwritten to {args.output} ({result['wall_seconds']:.0f} s)")
    return result


def markdown_table(rows) -> str:
    """One line per (part, batch, length), one column per engine: slowdown (CPU slowdown), memory ratio; noise share."""
    engines = list(dict.fromkeys(r["engine"] for r in rows))
    lines = ["| trained | params | batch | tokens | " + " | ".join(engines) + " | noise share (fast) |",
             "|---|---:|---:|---:|" + "---:|" * (len(engines) + 1)]
    for part, batch, length in dict.fromkeys((r["part"], r["batch_size"], r["length"]) for r in rows):
        group = [r for r in rows if (r["part"], r["batch_size"], r["length"]) == (part, batch, length)]
        cells, share = [], ""
        for engine in engines:
            r = next(x for x in group if x["engine"] == engine)
            if r["seconds_per_step"] is None:
                cells.append("skipped" if (r["error"] or "").startswith("skipped") else "failed" if r["error"] else "n/a")
            elif engine == "non-DP":
                cells.append(f"{r['seconds_per_step']:.3f} s/step")
            else:
                ratio = f"{r['slowdown_vs_non_dp']:.2f}x" if r["slowdown_vs_non_dp"] is not None else f"{r['seconds_per_step']:.3f} s"
                cpu = f" (cpu {r['cpu_slowdown_vs_non_dp']:.2f}x" if r["cpu_slowdown_vs_non_dp"] is not None else ""
                if cpu and r.get("thread_cpu_slowdown_vs_non_dp") is not None:
                    cpu += f", thread {r['thread_cpu_slowdown_vs_non_dp']:.2f}x"
                cpu += ")" if cpu else ""
                mem = f", mem {r['memory_vs_non_dp']:.2f}x" if r["memory_vs_non_dp"] is not None else ""
                cells.append(ratio + cpu + mem)
            if engine == "fast" and r["noise_share_of_step"] is not None:
                share = f"{r['noise_share_of_step']:.0%}"
        params = group[0]["trainable_parameters"] or 0
        lines.append(f"| {part} | {params:,} | {batch} | {length} | " + " | ".join(cells) + f" | {share} |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
