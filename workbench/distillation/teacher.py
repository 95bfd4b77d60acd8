"""The teacher's next-token distributions, computed once and cached on disk.

For every position of every training row the cache keeps the teacher's ``k`` most likely next tokens (ids and
log-probabilities) and the log-probabilities of the gendered tokens (:func:`.role_reversal.gender_token_pairs`),
which the perturbation needs even when they are not among the top ``k``. A distillation target is then a
distribution over that *support* (top-k tokens that are not gendered, then the gendered tokens), renormalised at
the distillation temperature (:func:`target_distribution`): the usual top-k approximation of the teacher.

The cache file lives under ``<cache_dir>/distillation/`` and is named by a hash of the teacher's fingerprint,
the token ids of the rows (so the corpus, its slice and the tokenizer), ``k`` and the gendered token ids: a rerun
with the same inputs starts at once, any change is a miss. Files are written atomically.
"""
from __future__ import annotations

import hashlib
import os
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

__all__ = ["TeacherTargets", "teacher_targets", "target_distribution", "targets_cache_path", "model_fingerprint"]


@dataclass
class TeacherTargets:
    """Cached teacher outputs for rows ``input_ids`` (N, L).

    ``topk_ids`` / ``topk_logp``: (N, L, k) int32 / float16; ``gender_logp``: (N, L, G) float16 for the token ids
    ``gender_ids`` (G,) = the (female, male) pairs flattened; ``seconds``: time to compute (0 when read from the
    cache); ``cached``: whether it came from the cache.
    """

    input_ids: torch.Tensor
    attention_mask: torch.Tensor
    topk_ids: np.ndarray
    topk_logp: np.ndarray
    gender_ids: np.ndarray
    gender_logp: np.ndarray
    seconds: float = 0.0
    cached: bool = False
    path: Path | None = field(default=None, repr=False)

    @property
    def k(self) -> int:
        return int(self.topk_ids.shape[-1])


def model_fingerprint(model) -> str:
    """A short hash of a model's configuration and a sample of its weights (what makes its outputs)."""
    h = hashlib.sha256(model.config.to_json_string(use_diff=False).encode())
    for name, p in list(model.state_dict().items())[:: max(1, len(model.state_dict()) // 8)]:
        h.update(name.encode())
        h.update(p.detach().reshape(-1)[:64].float().numpy().tobytes())
    return h.hexdigest()[:16]


def targets_cache_path(fingerprint: str, input_ids, *, k: int, gender_ids) -> Path:
    from workbench.datasets._sources import cache_dir

    h = hashlib.sha256(fingerprint.encode())
    h.update(np.ascontiguousarray(np.asarray(input_ids, dtype=np.int64)).tobytes())
    h.update(f"k={k}".encode())
    h.update(np.asarray(gender_ids, dtype=np.int64).tobytes())
    return cache_dir() / "distillation" / f"teacher-top{k}-{h.hexdigest()[:24]}.npz"


def teacher_targets(teacher, input_ids, *, attention_mask, k: int = 32, gender_ids=(), batch_size: int = 16,
                    cache: bool = True, progress: bool = False) -> TeacherTargets:
    """Run the teacher over ``input_ids`` once (or read the cache) and keep its top-``k`` and gendered log-probs.

    Parameters
    ----------
    teacher : causal LM
    input_ids, attention_mask : int tensors (N, L)
    k : int
        How many of the most likely next tokens to keep per position.
    gender_ids : sequence of int
        Token ids whose log-probabilities are always kept (the flattened gender token pairs).
    batch_size : int
    cache : bool
        Read and write ``<cache_dir>/distillation/*.npz``.
    progress : bool
        Show a tqdm bar.
    """
    from workbench.validation import Boolean, Interval, check

    check(k, Interval(int, 1, None), name="k", owner="teacher_targets")
    check(batch_size, Interval(int, 1, None), name="batch_size", owner="teacher_targets")
    check(cache, Boolean(), name="cache", owner="teacher_targets")
    input_ids = torch.as_tensor(input_ids)
    attention_mask = torch.as_tensor(attention_mask)
    gender_ids = np.asarray(gender_ids, dtype=np.int64).reshape(-1)
    path = targets_cache_path(model_fingerprint(teacher), input_ids.numpy(), k=k, gender_ids=gender_ids)
    n, length = input_ids.shape
    if cache and path.exists():
        try:
            with np.load(path) as z:
                arrays = {name: z[name] for name in ("topk_ids", "topk_logp", "gender_logp")}
            if arrays["topk_ids"].shape == (n, length, k) and arrays["gender_logp"].shape == (n, length, len(gender_ids)):
                return TeacherTargets(input_ids, attention_mask, gender_ids=gender_ids, cached=True, path=path, **arrays)
        except (OSError, ValueError, KeyError):
            pass  # unreadable: recompute and overwrite
    start = time.perf_counter()
    topk_ids = np.zeros((n, length, k), dtype=np.int32)
    topk_logp = np.zeros((n, length, k), dtype=np.float16)
    gender_logp = np.zeros((n, length, len(gender_ids)), dtype=np.float16)
    g = torch.as_tensor(gender_ids)
    from tqdm.auto import tqdm

    teacher.eval()
    with torch.inference_mode():
        for lo in tqdm(range(0, n, batch_size), desc="teacher top-k", disable=not progress, leave=False):
            hi = min(n, lo + batch_size)
            logits = teacher(input_ids=input_ids[lo:hi], attention_mask=attention_mask[lo:hi]).logits.float()
            logp = torch.log_softmax(logits, dim=-1)
            values, ids = logp.topk(k, dim=-1)
            topk_ids[lo:hi] = ids.numpy()
            topk_logp[lo:hi] = values.numpy()
            if len(gender_ids):
                gender_logp[lo:hi] = logp[..., g].numpy()
    seconds = time.perf_counter() - start
    if cache:
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_name(f".{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(tmp, topk_ids=topk_ids, topk_logp=topk_logp, gender_logp=gender_logp)
        os.replace(tmp, path)
    return TeacherTargets(input_ids, attention_mask, topk_ids, topk_logp, gender_ids, gender_logp, seconds=seconds,
                          cached=False, path=path if cache else None)


def target_distribution(targets: TeacherTargets, rows, *, temperature: float = 1.0, perturbation: str | None = None):
    """The distillation targets of ``rows``: ``(support_ids, probs)``, each (B, L, S) with S = k + G.

    ``probs`` is the teacher's distribution at ``temperature`` restricted to the support (top-k tokens that are not
    gendered, then the gendered tokens) and renormalised, so each row sums to 1. With ``perturbation`` ("swap" or
    "equalize") the gendered pairs are perturbed by :func:`.role_reversal.perturb_probabilities` after tempering.

    Examples
    --------
    >>> t = TeacherTargets(torch.zeros(1, 1, dtype=torch.long), torch.ones(1, 1, dtype=torch.long),
    ...     topk_ids=np.array([[[5, 7]]]), topk_logp=np.log(np.array([[[0.6, 0.3]]])),
    ...     gender_ids=np.array([7, 9]), gender_logp=np.log(np.array([[[0.3, 0.1]]])))
    >>> ids, p = target_distribution(t, [0])
    >>> ids.tolist(), [round(x, 3) for x in p[0, 0].tolist()]
    ([[[5, 7, 7, 9]]], [0.6, 0.0, 0.3, 0.1])
    >>> [round(x, 3) for x in target_distribution(t, [0], perturbation="swap")[1][0, 0].tolist()]
    [0.6, 0.0, 0.1, 0.3]
    """
    from .role_reversal import perturb_probabilities

    from workbench.validation import Interval, Options, check

    check(temperature, Interval(float, 0, None, closed="neither"), name="temperature", owner="target_distribution")
    check(perturbation, Options({"swap", "equalize"}), None, name="perturbation", owner="target_distribution")
    rows = np.asarray(rows, dtype=np.int64)
    top_ids = torch.as_tensor(targets.topk_ids[rows].astype(np.int64))
    top_lp = torch.as_tensor(targets.topk_logp[rows].astype(np.float32))
    g = torch.as_tensor(targets.gender_ids)
    if len(g):
        g_lp = torch.as_tensor(targets.gender_logp[rows].astype(np.float32))
        top_lp = top_lp.masked_fill(torch.isin(top_ids, g), float("-inf"))  # counted once, in the gendered columns
        ids = torch.cat([top_ids, g.expand(*top_ids.shape[:-1], len(g))], dim=-1)
        lp = torch.cat([top_lp, g_lp], dim=-1)
    else:
        ids, lp = top_ids, top_lp
    probs = torch.softmax(lp / temperature, dim=-1)
    if perturbation is not None and len(g):
        k = top_ids.shape[-1]
        pairs = k + np.arange(len(g)).reshape(-1, 2)
        probs = perturb_probabilities(probs, pairs=pairs, mode=perturbation)
    return ids, probs
