"""How long notebook 08's teacher cache takes cold and warm, and how fast a student trains, side by side in one run.

    python benchmarks/distillation_cache.py                       # notebook 08's defaults: 64 rows x 64 tokens
    python benchmarks/distillation_cache.py --rows 8 --seq-len 16 --threads 1

Measures, on the same rows: (1) the teacher's top-k pass that fills the cache (cold; the cache folder is a fresh
temporary one, so nothing on disk is touched), (2) reading it back (warm), (3) distillation steps of the default
student (15 of 30 layers, "ends" selection) with the frozen tied embedding and with it trainable. Writes
``benchmarks/results/distillation_cache.json`` (or ``--output``). Numbers depend on the machine's load: rerun on a
quiet machine before quoting them.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path


def main(argv=None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=64)
    parser.add_argument("--seq-len", type=int, default=64)
    parser.add_argument("--top-k", type=int, default=32)
    parser.add_argument("--keep-every", type=int, default=2)
    parser.add_argument("--steps", type=int, default=3, help="distillation steps timed per student setting")
    parser.add_argument("--batch-size", type=int, default=8)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--output", default=str(Path(__file__).parent / "results" / "distillation_cache.json"))
    args = parser.parse_args(argv)

    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    import torch

    from workbench.datasets import load_corpus
    from workbench.datasets.smollm import load_smollm2
    from workbench.distillation.corpus import make_passages, tokenize_passages
    from workbench.distillation.role_reversal import gender_token_pairs
    from workbench.distillation.student import count_parameters, make_student
    from workbench.distillation.teacher import teacher_targets
    from workbench.distillation.train import distill

    if args.threads:
        torch.set_num_threads(args.threads)
    tokenizer, teacher = load_smollm2()
    passages = make_passages(load_corpus(["xsum", "wiki", "imdb"], max_documents=300, seed=0), tokenizer, seq_len=args.seq_len)
    ids, mask = tokenize_passages(passages.train[: args.rows], tokenizer, seq_len=args.seq_len)
    gender = gender_token_pairs(tokenizer).reshape(-1)
    tokens = int(mask.sum())
    result = {"rows": args.rows, "seq_len": args.seq_len, "tokens": tokens, "top_k": args.top_k,
              "threads": torch.get_num_threads(), "cpu_count": os.cpu_count(), "machine": platform.processor() or platform.machine()}
    old = os.environ.get("WORKBENCH_CACHE")
    with tempfile.TemporaryDirectory() as tmp:
        os.environ["WORKBENCH_CACHE"] = tmp
        try:
            start = time.perf_counter()
            cold = teacher_targets(teacher, ids, attention_mask=mask, k=args.top_k, gender_ids=gender)
            result["cold_seconds"] = time.perf_counter() - start
            start = time.perf_counter()
            warm = teacher_targets(teacher, ids, attention_mask=mask, k=args.top_k, gender_ids=gender)
            result["warm_seconds"] = time.perf_counter() - start
            result["cache_bytes"] = cold.path.stat().st_size
        finally:
            if old is None:
                os.environ.pop("WORKBENCH_CACHE", None)
            else:
                os.environ["WORKBENCH_CACHE"] = old
    assert warm.cached and not cold.cached
    result["teacher_tokens_per_second"] = tokens / result["cold_seconds"]
    result["students"] = []
    n_rows = min(args.rows, args.steps * args.batch_size)
    for frozen in (True, False):
        student = make_student(teacher, keep_every=args.keep_every, freeze_embeddings=frozen)
        start = time.perf_counter()
        history = distill(student, warm, n_rows=n_rows, batch_size=args.batch_size, seed=0)
        seconds = time.perf_counter() - start
        result["students"].append({"freeze_embeddings": frozen, "layers": student.config.num_hidden_layers,
                                   "parameters": count_parameters(student), "trained_parameters": count_parameters(student, trainable=True),
                                   "steps": len(history), "seconds": seconds, "tokens_per_second": history[-1]["tokens"] / seconds})
    out = Path(args.output)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(json.dumps(result, indent=2))
    return result


if __name__ == "__main__":
    main()
