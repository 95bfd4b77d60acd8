"""CEAT speed: the vectorised sampler vs a per-sample loop (the reference implementation's way), and encoder throughput.

Side by side in one run, on the word sets of WEAT tests C1-C10 with real contextual embeddings (MiniLM,
last layer, the contexts notebook 04 uses; read from the on-disk cache when notebook 04 ran before):

* ``vectorised``: :func:`workbench.fairness.association.ceat_from_pools` with N samples (effects, variances and
  the random-effects combination);
* ``loop``: :func:`workbench.fairness.association.ceat_loop` - a Python loop over samples and words with one
  cosine-similarity call per word, like Guo & Caliskan's ``ceat.py`` - on the first ``--loop-samples`` of the
  *same* draws (its per-sample time is extrapolated to N, and its effects are checked equal to the
  vectorised ones on those samples);
* encoder throughput: context sentences per second through MiniLM and SmolLM2 (all hidden states, no cache).

Usage::

    python benchmarks/ceat_speed.py                       # N=10,000, writes benchmarks/results/ceat_speed.json
    python benchmarks/ceat_speed.py --n-samples 1000 --loop-samples 50 --throughput-sentences 32 --no-smollm2
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from workbench.datasets import load_weat_tests  # noqa: E402
from workbench.fairness.association import ceat_effects, ceat_from_pools, ceat_loop, ceat_sample_indices  # noqa: E402
from workbench.fairness.contexts import find_contexts  # noqa: E402
from workbench.fairness.contextual import word_pools  # noqa: E402
from workbench.results import atomic_write_text, library_versions  # noqa: E402

#: Context options shared with notebook 04's defaults, so the embeddings come from the same cache.
CONTEXT_OPTIONS = dict(max_per_word=2, n_templates=3, min_per_word=3, max_chars=150, seed=0)


def main(argv=None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--n-samples", type=int, default=10_000)
    ap.add_argument("--loop-samples", type=int, default=200, help="samples timed with the per-sample loop")
    ap.add_argument("--repeats", type=int, default=3, help="repeats of the vectorised run (best is reported)")
    ap.add_argument("--throughput-sentences", type=int, default=96)
    ap.add_argument("--no-smollm2", action="store_true", help="skip SmolLM2 throughput")
    ap.add_argument("--output", default=str(ROOT / "benchmarks" / "results" / "ceat_speed.json"))
    args = ap.parse_args(argv)
    import torch

    load_before = os.getloadavg() if hasattr(os, "getloadavg") else None
    tests = load_weat_tests()
    words = list(dict.fromkeys(w for t in tests.values() for w in (*t.X, *t.Y, *t.A, *t.B)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        contexts = find_contexts(words, **CONTEXT_OPTIONS)
    t0 = time.perf_counter()
    # all 7 layers, as notebook 04 computes them (same cache file); CEAT uses the last one
    pools = {w: p[:, -1] for w, p in word_pools(contexts, encoder="minilm", layers=list(range(7)), pooling="mean",
                                               progress=False).items()}
    embed_seconds = time.perf_counter() - t0

    rows = []
    for name, t in tests.items():
        sets = [[pools[w] for w in ws] for ws in (t.X, t.Y, t.A, t.B)]
        sizes = [len(p) for s in sets for p in s]
        idx = ceat_sample_indices(sizes, n_samples=args.n_samples, seed=0)
        best = float("inf")
        for _ in range(args.repeats):
            start = time.perf_counter()
            result = ceat_from_pools(*sets, n_samples=args.n_samples, seed=0)
            best = min(best, time.perf_counter() - start)
        fast_e, fast_v = ceat_effects(*sets, indices=idx[:, :args.loop_samples])
        start = time.perf_counter()
        loop_e, loop_v = ceat_loop(*sets, indices=idx[:, :args.loop_samples])
        loop_seconds = time.perf_counter() - start
        per_sample = loop_seconds / args.loop_samples
        rows.append({
            "test": name, "n_words": len(sizes), "contexts": int(sum(sizes)),
            "vectorised_seconds": best, "loop_seconds_measured": loop_seconds, "loop_samples": args.loop_samples,
            "loop_seconds_extrapolated": per_sample * args.n_samples,
            "speedup": per_sample * args.n_samples / best,
            "max_abs_diff_effects": float(np.max(np.abs(fast_e - loop_e))),
            "effect_size": result.effect_size, "se": result.se, "tau2": result.tau2,
        })
        print(f"{name}: vectorised {best:.3f} s for N={args.n_samples}; loop {per_sample * 1e3:.2f} ms/sample "
              f"-> {per_sample * args.n_samples:.1f} s; speedup x{rows[-1]['speedup']:.0f}; "
              f"max |diff| {rows[-1]['max_abs_diff_effects']:.1e}", flush=True)

    throughput = {}
    sample_words = words[:: max(1, len(words) // args.throughput_sentences)][: args.throughput_sentences]
    sents, ws = contexts.pairs(sample_words)
    sents, ws = sents[: args.throughput_sentences], ws[: args.throughput_sentences]
    from workbench.fairness.contextual import contextual_word_embeddings
    from workbench.datasets import load_encoder

    for enc in ["minilm"] + ([] if args.no_smollm2 else ["smollm2"]):
        load_encoder(enc)
        contextual_word_embeddings(sents[:4], ws[:4], encoder=enc, layers="all", cache=False, progress=False)  # warm-up
        start = time.perf_counter()
        contextual_word_embeddings(sents, ws, encoder=enc, layers="all", cache=False, progress=False)
        sec = time.perf_counter() - start
        throughput[enc] = {"sentences": len(sents), "seconds": sec, "sentences_per_second": len(sents) / sec}
        print(f"{enc}: {len(sents) / sec:.1f} sentences/s ({len(sents)} context sentences, all layers)", flush=True)

    total_fast = sum(r["vectorised_seconds"] for r in rows)
    total_loop = sum(r["loop_seconds_extrapolated"] for r in rows)
    out = {
        "benchmark": "ceat_speed",
        "n_samples": args.n_samples,
        "encoder_for_ceat": "minilm (last layer, mean pooling)",
        "context_options": CONTEXT_OPTIONS,
        "embedding_seconds": embed_seconds,  # small when notebook 04 filled the cache
        "tests": rows,
        "total_vectorised_seconds": total_fast,
        "total_loop_seconds_extrapolated": total_loop,
        "max_vectorised_seconds_per_test": max(r["vectorised_seconds"] for r in rows),
        "target_seconds_per_test": 2.0,
        "encoder_throughput": throughput,
        "machine": {"platform": platform.platform(), "cpu_count": os.cpu_count(), "torch_threads": torch.get_num_threads(),
                    "load_average_before": load_before,
                    "load_average_after": os.getloadavg() if hasattr(os, "getloadavg") else None},
        "versions": library_versions(),
        "timestamp": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }
    atomic_write_text(args.output, json.dumps(out, indent=2) + "\n")
    print(f"all 10 tests: vectorised {total_fast:.2f} s vs loop {total_loop:.0f} s (extrapolated) -> {args.output}")
    return out


if __name__ == "__main__":
    main()
