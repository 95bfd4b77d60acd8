"""Shadow-model loop: seconds to train 64 shadow heads on frozen MiniLM features, and where the time goes.

Times :func:`workbench.privacy.attacks.train_shadow_models` exactly as notebook 02's shadow-budget study calls it
(:func:`workbench.privacy.studies.shadow_count_study`'s recipe: each shadow trained with Adam on half of the pool, 30
epochs of 32, one torch thread) for each model in ``--heads`` (``linear``: 384 -> 3 on MiniLM features; ``mlp``:
384 -> 256 -> 3; ``bag``: the bag of embeddings on 32 token ids, 5,000-word vocabulary, dimension 64), optionally with DP-SGD (``--dp``, the fast engine). It reports the total, the split between
training and scoring (the loss and LiRA's phi of every candidate under every shadow), seconds per optimizer step,
and a profile of one shadow's training (the functions with the most own time).

Target (issue 13): 64 shadow head models in at most 2 minutes on 2 cores.

    python benchmarks/shadow_models.py                       # linear and MLP heads, 64 shadows, non-DP
    python benchmarks/shadow_models.py --dp --heads linear   # the same with DP-SGD
    python benchmarks/shadow_models.py --minilm              # MiniLM shadows: cached hidden states vs full fine-tuning

``--minilm`` times shadow models of fine-tuned MiniLM (notebook 02's ``transformer_shadow_study`` recipe: the first
``--layers`` blocks, the top block + head trained, ``--epochs`` of 32) two ways on the same halves: fine-tuning the
full classifier per shadow (``part="last_layers"``), and training the top on hidden states of the frozen blocks cached
once for the pool (the cache's cost counted once); results to ``benchmarks/results/shadow_models_minilm.json``.

Results go to ``benchmarks/results/shadow_models.json``; a markdown table for the README is printed.
"""
from __future__ import annotations

import argparse
import cProfile
import io
import json
import pstats
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

HEADS = {"linear": (), "mlp": (256,), "bag": None}  # bag: the bag of embeddings on token ids (notebook 01's cheap model)


def _pool(n: int, *, synthetic: bool, seed: int):
    import torch

    if synthetic:  # random features of MiniLM's shape: for smoke runs without the encoder
        g = torch.Generator().manual_seed(seed)
        return torch.randn(n, 384, generator=g), torch.randint(0, 3, (n,), generator=g)
    from workbench.privacy.studies import load_attack_pool

    pool = load_attack_pool(n=n, seed=seed)
    return pool.X, pool.y


def _tokens(n: int, *, seed: int):
    from workbench.privacy.data import load_tweet_task

    task = load_tweet_task(n=n, features="tokens", max_len=32, max_vocab=5000, val_fraction=0.01, seed=seed)
    return task


def _profile_one(train_fn, X, y, *, top: int = 8) -> list:
    prof = cProfile.Profile()
    prof.enable()
    train_fn(X, y, seed=12345)
    prof.disable()
    stats = pstats.Stats(prof, stream=io.StringIO()).sort_stats("tottime")
    total = sum(v[2] for v in stats.stats.values())
    rows = []
    for (file, line, name), (_, ncalls, tottime, cumtime, _) in sorted(stats.stats.items(), key=lambda kv: -kv[1][2])[:top]:
        rows.append({"function": f"{Path(file).name}:{line}({name})", "calls": ncalls, "own_seconds": tottime,
                     "share": tottime / total if total else float("nan")})
    return rows


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=int, default=None, help="candidate tweets (each shadow trains on half; default 1000, "
                                                                "--minilm 400)")
    parser.add_argument("--shadows", type=int, default=None, help="default 64 (--minilm: 8)")
    parser.add_argument("--heads", nargs="+", default=list(HEADS), choices=list(HEADS))
    parser.add_argument("--epochs", type=int, default=None, help="default 30 (--minilm: 4)")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--dp", action="store_true", help="train with DP-SGD (fast engine, epsilon 8)")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--synthetic", action="store_true", help="random 384-d features instead of MiniLM's")
    parser.add_argument("--no-profile", action="store_true")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--output", default=None, help="default: benchmarks/results/shadow_models[_minilm].json")
    parser.add_argument("--minilm", action="store_true", help="MiniLM shadows: cached hidden states vs full fine-tuning")
    parser.add_argument("--layers", type=int, default=2, help="--minilm: MiniLM blocks kept (the top one is trained)")
    args = parser.parse_args(argv)
    name = "shadow_models_minilm.json" if args.minilm else "shadow_models.json"
    args.output = args.output or str(ROOT / "benchmarks" / "results" / name)
    for key, plain, minilm in (("pool", 1000, 400), ("shadows", 64, 8), ("epochs", 30, 4)):
        if getattr(args, key) is None:
            setattr(args, key, minilm if args.minilm else plain)
    if args.minilm:
        return minilm_main(args)

    from workbench.privacy import attacks as A
    from workbench.privacy.accounting import noise_for_epsilon
    from workbench.privacy.studies.membership import _mlp_train_fn
    from workbench.results import atomic_write_text, library_versions
    from workbench.training import TrainConfig, torch_threads

    from workbench.privacy.data import make_task_model
    from workbench.privacy.studies.shadows import _model_train_fn

    features = _pool(args.pool, synthetic=args.synthetic, seed=args.seed) if set(args.heads) - {"bag"} else None
    task = _tokens(args.pool, seed=args.seed) if "bag" in args.heads else None
    rows = []
    with torch_threads(args.threads):
        for head in args.heads:
            X, y = task.train if head == "bag" else features
            n_train = len(X) // 2
            steps_per_epoch = -(-n_train // args.batch_size)
            sigma = None
            if args.dp:  # epsilon 8 at delta 1e-5 over the whole training of one shadow
                sigma = noise_for_epsilon(target_epsilon=8.0, sample_rate=1 / steps_per_epoch, steps=steps_per_epoch * args.epochs,
                                          delta=1e-5)
            config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=3e-3 if args.dp else 1e-3, seed=args.seed)
            if head == "bag":
                train_fn = _model_train_fn(lambda: make_task_model("bag", task), config=config, noise_multiplier=sigma, delta=1e-5)
            else:
                train_fn = _mlp_train_fn(in_features=X.shape[1], n_classes=int(y.max()) + 1, config=config, hidden=HEADS[head],
                                         noise_multiplier=sigma, delta=1e-5)
            train_fn(X[:n_train], y[:n_train], seed=0)  # warm-up: first-call imports and allocations
            start = time.perf_counter()
            cpu = time.process_time()
            shadows = A.train_shadow_models(train_fn, X=X, y=y, k=args.shadows, seed=args.seed,
                                            keep=A.paired_halves(len(X), k=args.shadows, seed=args.seed))
            total = time.perf_counter() - start
            cpu = time.process_time() - cpu
            steps = args.shadows * args.epochs * steps_per_epoch
            row = {"head": head, "dp": args.dp, "shadows": args.shadows, "pool": len(X), "epochs": args.epochs,
                   "batch_size": args.batch_size, "parameters": sum(p.numel() for p in train_fn(X[:8], y[:8], seed=0)[0].parameters()),
                   "total_seconds": total, "cpu_seconds": cpu, "train_seconds": shadows.timings["train_seconds"],
                   "score_seconds": shadows.timings["score_seconds"], "seconds_per_shadow": total / args.shadows,
                   "ms_per_step": 1000 * shadows.timings["train_seconds"] / steps,
                   "within_target": total <= 120.0 * args.shadows / 64}
            if not args.no_profile:
                row["profile"] = _profile_one(train_fn, X[:n_train], y[:n_train])
            rows.append(row)
            print(f"{head}: {args.shadows} shadows in {total:.1f} s (train {row['train_seconds']:.1f} s, "
                  f"score {row['score_seconds']:.1f} s, {row['ms_per_step']:.2f} ms per step)", flush=True)
    result = {"benchmark": "shadow_models", "threads": args.threads, "synthetic": args.synthetic, "rows": rows,
              "versions": library_versions(), "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output, json.dumps(result, indent=2) + "\n")
    print(markdown_table(rows))
    return result


def minilm_main(args) -> dict:
    """``--minilm``: seconds per MiniLM shadow model, full fine-tuning vs the top on cached hidden states."""
    import dataclasses

    import torch

    from workbench.datasets import load_tweets
    from workbench.privacy import attacks as A
    from workbench.privacy.dp import train
    from workbench.privacy.studies.minilm_top import TopModel, cache_hidden_states
    from workbench.privacy.trainable import select_trainable
    from workbench.privacy.transformer import MiniLMClassifier, TokenizedTexts
    from workbench.results import atomic_write_text, library_versions
    from workbench.training import TrainConfig, predict, torch_threads

    tweets = load_tweets(n=args.pool, seed=args.seed + 2)
    texts, y = tweets.text.tolist(), tweets.label_id.to_numpy()
    keep = A.paired_halves(len(texts), k=args.shadows, seed=args.seed)
    config = TrainConfig(epochs=args.epochs, batch_size=args.batch_size, lr=1e-3, seed=args.seed)
    timings = {}
    with torch_threads(args.threads):
        base = MiniLMClassifier(n_classes=3, layers=args.layers, seed=args.seed).eval()
        pool = TokenizedTexts(texts, y, max_len=32)
        start, cpu = time.perf_counter(), time.process_time()
        packed = cache_hidden_states(base, pool, top_layers=1)
        timings["cache"] = (time.perf_counter() - start, time.process_time() - cpu)
        for way in ("full", "cached"):
            start, cpu = time.perf_counter(), time.process_time()
            for j in range(args.shadows):
                idx = torch.as_tensor(keep[j].nonzero()[0])
                torch.manual_seed(j)
                cfg = dataclasses.replace(config, seed=j)
                if way == "full":
                    model = MiniLMClassifier(n_classes=3, layers=args.layers, seed=j)
                    select_trainable(model, part="last_layers", last_layers=1)
                    subset = TokenizedTexts([texts[i] for i in idx.tolist()], y[idx.numpy()], max_len=32)
                    train(model, subset, config=cfg, progress=False)
                    predict(model, pool)
                else:
                    top = TopModel.from_classifier(base, top_layers=1, new_head=True)
                    train(top, (packed[idx], pool.y[idx]), config=cfg, progress=False)
                    predict(top, packed)
            timings[way] = (time.perf_counter() - start, time.process_time() - cpu)
    per = {way: timings[way][0] / args.shadows for way in ("full", "cached")}
    row = {"layers": args.layers, "pool": len(texts), "shadows": args.shadows, "epochs": args.epochs, "batch_size": args.batch_size,
           "cache_seconds": timings["cache"][0], "cache_cpu_seconds": timings["cache"][1],
           "full_seconds_per_shadow": per["full"], "cached_seconds_per_shadow": per["cached"],
           "full_cpu_seconds": timings["full"][1], "cached_cpu_seconds": timings["cached"][1],
           "speedup_per_shadow": per["full"] / per["cached"],
           "speedup_with_cache": timings["full"][0] / (timings["cached"][0] + timings["cache"][0])}
    result = {"benchmark": "shadow_models_minilm", "threads": args.threads, "rows": [row], "versions": library_versions(),
              "created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    atomic_write_text(args.output, json.dumps(result, indent=2) + "\n")
    print(f"MiniLM ({args.layers} blocks, top 1 trained), {args.shadows} shadows on {len(texts)} tweets: full fine-tuning "
          f"{per['full']:.2f} s per shadow, cached {per['cached']:.2f} s per shadow (+ {row['cache_seconds']:.2f} s once for the "
          f"cache): {row['speedup_per_shadow']:.1f}x per shadow, {row['speedup_with_cache']:.1f}x with the cache", flush=True)
    return result


def markdown_table(rows) -> str:
    """The README's table: one line per head."""
    lines = ["| head | DP | shadows | total | training | scoring | per step |", "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['head']} | {'yes' if r['dp'] else 'no'} | {r['shadows']} | {r['total_seconds']:.1f} s | "
                     f"{r['train_seconds']:.1f} s | {r['score_seconds']:.1f} s | {r['ms_per_step']:.2f} ms |")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
