"""Where the fast DP engine's time goes on MiniLM: paired step times of ``engine.clipped_grad`` vs ``loss.backward()``.

Full fine-tuning of MiniLM (all-MiniLM-L6-v2, the workbench's ``load_encoder("minilm")``, 22.7M parameters) plus a
3-class linear head on the mean of the token states, real tweets tokenized and padded to exactly ``--tokens``
tokens, in float32, one torch thread (``--threads``). Each round times, back to back and in alternating order:

* ``non-DP``: forward, ``loss.backward()`` (weight gradients included), ``.grad`` zeroed to ``None`` after;
* ``fast``: ``GhostClippingEngine.clipped_grad`` (forward, one backward for the activation gradients only, per-sample
  norms, clipped sum), broken into its phases: forward, backward, norms (``prepare`` + ``sq_norms`` of every layer's
  rule) and book-keeping (the clipped sum's contractions);
* ``fast_slices_of_K`` (batches larger than ``--slice``): the same engine with ``max_physical_batch_size=K``, which
  bounds the memory that book-keeping holds (every layer's output gradient) to that of a batch of K;
* ``fast_auto``: ``max_physical_batch_size="auto"`` (what :func:`workbench.privacy.dp.train` uses): slices only where
  the kept output gradients reach ``AUTO_SLICE_MIN_BYTES`` (MiniLM: batch 128 in two slices of 64, batch 32 whole).

No optimizer step and no noise in either (the noise's cost is the training loop's, :mod:`workbench.privacy.noise`).
The slowdown is the **median over rounds of the ratio** to the non-DP time of the same round (the order rotates). Peak memory is the
peak resident-set growth during one step (sampled every millisecond after ``malloc_trim``), a CPU-side proxy.

Usage::

    .venv/bin/python benchmarks/fast_engine_profile.py                       # batch 32 and 128, 32 tokens
    .venv/bin/python benchmarks/fast_engine_profile.py --batch-sizes 32 --rounds 5 --tokens 64

Results go to ``benchmarks/results/fast_engine_profile.json``. On a machine shared with other jobs the ratios move by
tens of percent: say so when quoting them.
"""
from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
import warnings
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))


from dp_overhead import PeakRSS  # noqa: E402  (one peak-RSS sampler for every benchmark)


def build(torch, nn):
    from workbench.datasets import load_encoder

    encoder = load_encoder("minilm")

    class Classifier(nn.Module):
        def __init__(self, bert):
            super().__init__()
            self.bert, self.head = bert, nn.Linear(bert.config.hidden_size, 3)

        def forward(self, input_ids, attention_mask):
            h = self.bert(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
            m = attention_mask.unsqueeze(-1).to(h.dtype)
            return self.head((h * m).sum(1) / m.sum(1))

    import copy

    torch.manual_seed(0)
    model = Classifier(copy.deepcopy(encoder.model)).train()
    return encoder, model


def phases(engine, x, y, nn):
    """One ``clipped_grad`` step taken apart (the same calls as ``GhostClippingEngine.clipped_grad``), timed per phase."""
    import torch

    t0 = time.perf_counter()
    n = len(y)
    engine._calls, engine._n, engine._active = [], n, True
    logits = engine.model(**x)
    loss = nn.functional.cross_entropy(logits, y)
    calls = engine._calls
    engine._active, engine._calls = False, []
    t1 = time.perf_counter()
    grads = torch.autograd.grad(loss * n, [c[3] for c in calls], allow_unused=True)
    records = {}
    for (module, a, *_), b in zip(calls, grads):
        if b is not None:
            records.setdefault(module, []).append((a, b))
    del grads, calls
    t2 = time.perf_counter()
    ctx, layers = engine._prepared(records, n)
    t3 = time.perf_counter()
    dtype = engine.parameters[0].dtype
    group_sq = engine._group_sq(layers, n, dtype)
    factors = (torch.tensor(engine.group_max_norms, dtype=dtype) / (group_sq.sqrt() + 1e-6)).clamp_(max=1.0)
    for p in engine.parameters:
        p.grad = torch.zeros_like(p)
    w = factors.T.contiguous()
    while layers:
        module, rule, data, norms = layers.pop(0)
        rule.accumulate(module, data, {p: w[engine._group_of[p]] for p in norms}, ctx)
    t4 = time.perf_counter()
    return {"forward": t1 - t0, "backward": t2 - t1, "norms": t3 - t2, "book-keeping": t4 - t3}


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[32, 128])
    parser.add_argument("--tokens", type=int, default=32)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--slice", type=int, default=32,
                        help="also time the engine with max_physical_batch_size=SLICE on batches larger than it (0: off)")
    parser.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "fast_engine_profile.json"))
    args = parser.parse_args(argv)

    import torch
    from torch import nn

    from workbench.datasets import load_tweets
    from workbench.privacy.fast_dp import GhostClippingEngine

    warnings.filterwarnings("ignore")
    torch.set_num_threads(args.threads)
    encoder, model = build(torch, nn)
    tweets = load_tweets(n=max(args.batch_sizes), seed=0)
    results = {"threads": args.threads, "tokens": args.tokens, "rounds": args.rounds, "runs": []}
    for batch in args.batch_sizes:
        tok = encoder.tokenizer(list(tweets.text[:batch]), padding="max_length", truncation=True, max_length=args.tokens,
                                return_tensors="pt")
        x = {"input_ids": tok["input_ids"], "attention_mask": tok["attention_mask"]}
        y = torch.as_tensor(tweets.label_id.to_numpy()[:batch])

        def plain():
            t = time.perf_counter()
            nn.functional.cross_entropy(model(**x), y).backward()
            elapsed = time.perf_counter() - t
            model.zero_grad(set_to_none=True)
            return elapsed

        engine = GhostClippingEngine(model, max_grad_norm=1.0)
        sliced = GhostClippingEngine(model, max_grad_norm=1.0, max_physical_batch_size=args.slice) \
            if 0 < args.slice < batch else None

        def timed(step):
            def run():
                t = time.perf_counter()
                step()
                elapsed = time.perf_counter() - t
                model.zero_grad(set_to_none=True)
                return elapsed
            return run

        auto = GhostClippingEngine(model, max_grad_norm=1.0, max_physical_batch_size="auto")
        variants = {"non_dp": plain, "fast": timed(lambda: engine.clipped_grad(x, y)),
                    "fast_auto": timed(lambda: auto.clipped_grad(x, y))}
        if sliced is not None:
            variants[f"fast_slices_of_{args.slice}"] = timed(lambda: sliced.clipped_grad(x, y))
        for f in variants.values():  # warm-up (lazy initialisation, Numba's compiled kernels)
            f()
        names = list(variants)
        rows, split = [], []
        for r in range(args.rounds):
            order = names[r % len(names):] + names[:r % len(names)]  # rotate the order every round
            rows.append({name: variants[name]() for name in order})
            split.append(phases(engine, x, y, nn))
            model.zero_grad(set_to_none=True)
        memory = {}
        for name in names:
            with PeakRSS() as mem:
                variants[name]()
            memory[name] = mem.megabytes
        engine.remove()
        auto.remove()
        if sliced is not None:
            sliced.remove()
        run = {
            "batch": batch,
            "seconds": {name: statistics.median(r[name] for r in rows) for name in names},
            "slowdown_median": {name: statistics.median(r[name] / r["non_dp"] for r in rows) for name in names[1:]},
            "slowdown_all": {name: [r[name] / r["non_dp"] for r in rows] for name in names[1:]},
            "fast_phases_seconds": {k: statistics.median(s[k] for s in split) for k in split[0]},
            "peak_rss_growth_mb": memory,
            "auto_slice_size": auto.last_slice_size,
        }
        results["runs"].append(run)
        print(f"batch {batch} x {args.tokens} tokens: " + "; ".join(
            f"{name} {run['seconds'][name]:.3f} s" + (f" ({run['slowdown_median'][name]:.2f}x, all "
                                                       f"{', '.join(f'{v:.2f}' for v in run['slowdown_all'][name])})"
                                                       if name != "non_dp" else "")
            + f", peak RSS +{memory[name]:.0f} MB ({memory[name] / memory['non_dp']:.2f}x)" for name in names)
            + "; fast phases " + ", ".join(f"{k} {v:.3f} s" for k, v in run["fast_phases_seconds"].items()), flush=True)
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(results, indent=2))
    return results


if __name__ == "__main__":
    main()
