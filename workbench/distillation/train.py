"""The distillation loop: KL(teacher || student) at a temperature plus the language-model loss.

    loss = alpha * T^2 * KL(p_teacher^T || q_student^T)  +  (1 - alpha) * CE(next token)

``p_teacher^T`` is the cached teacher distribution over its support (:func:`.teacher.target_distribution`,
optionally perturbed), ``q_student^T`` the student's softmax at temperature ``T`` read on the same support (not
renormalised there, so mass the student puts outside the support is penalised too). The ``T^2`` factor keeps the
gradient scale independent of ``T`` (Hinton et al. 2015). Padding positions are masked out of both terms.
"""
from __future__ import annotations

import numpy as np
import torch

from .teacher import TeacherTargets, target_distribution

__all__ = ["distillation_loss", "distill"]


def distillation_loss(student_logits, *, support_ids, teacher_probs, input_ids, attention_mask, temperature: float = 2.0,
                      alpha: float = 0.5):
    """``(loss, kl, lm)`` for one batch (tensors; ``loss`` carries the gradient).

    Examples
    --------
    >>> logits = torch.log(torch.tensor([[[0.7, 0.2, 0.1], [0.7, 0.2, 0.1]]]))
    >>> ids = torch.tensor([[[0, 1, 2]] * 2]); p = torch.tensor([[[0.7, 0.2, 0.1]] * 2])
    >>> loss, kl, lm = distillation_loss(logits, support_ids=ids, teacher_probs=p, input_ids=torch.tensor([[0, 0]]),
    ...                                  attention_mask=torch.ones(1, 2), temperature=1.0, alpha=1.0)
    >>> round(float(kl), 6), round(float(lm), 4)  # the student equals the teacher: no KL left
    (0.0, 0.3567)
    """
    mask = attention_mask.float()
    log_q = torch.log_softmax(student_logits.float() / temperature, dim=-1).gather(-1, support_ids)
    p = teacher_probs
    kl_pos = (p * (torch.log(p.clamp_min(1e-12)) - log_q)).sum(-1)
    kl = (kl_pos * mask).sum() / mask.sum().clamp_min(1)
    lm_mask = mask[:, 1:] * mask[:, :-1]
    ce = torch.nn.functional.cross_entropy(student_logits[:, :-1].float().transpose(1, 2), input_ids[:, 1:], reduction="none")
    lm = (ce * lm_mask).sum() / lm_mask.sum().clamp_min(1)
    return alpha * temperature ** 2 * kl + (1 - alpha) * lm, kl.detach(), lm.detach()


def distill(student, targets: TeacherTargets, *, n_rows: int | None = None, epochs: int = 1, batch_size: int = 8,
            lr: float = 3e-4, temperature: float = 2.0, alpha: float = 0.5, perturbation: str | None = None,
            seed: int = 0, progress: bool = False) -> list[dict]:
    """Train ``student`` in place on the first ``n_rows`` rows of ``targets`` (all by default), shuffled with ``seed``.

    AdamW with a linear warm-up over the first 10% of the steps and a linear decay to zero. Returns one dict per step:
    ``step``, ``loss``, ``kl``, ``lm`` and ``tokens`` (real tokens seen so far).
    """
    from tqdm.auto import tqdm

    from workbench.validation import Interval, check

    owner = "distill"
    n_total = len(targets.input_ids)
    n_rows = n_total if n_rows is None else check(n_rows, Interval(int, 1, n_total), name="n_rows", owner=owner)
    check(epochs, Interval(int, 1, None), name="epochs", owner=owner)
    check(batch_size, Interval(int, 1, None), name="batch_size", owner=owner)
    check(lr, Interval(float, 0, None, closed="neither"), name="lr", owner=owner)
    check(alpha, Interval(float, 0, 1), name="alpha", owner=owner)
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    order = np.concatenate([rng.permutation(n_rows) for _ in range(epochs)])
    batches = [order[i:i + batch_size] for i in range(0, len(order), batch_size)]
    opt = torch.optim.AdamW([p for p in student.parameters() if p.requires_grad], lr=lr, weight_decay=0.0)
    warm = max(1, len(batches) // 10)
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min((s + 1) / warm, max(0.0, (len(batches) - s) / max(1, len(batches) - warm))))
    student.train()
    history, tokens = [], 0
    for step, rows in enumerate(tqdm(batches, desc="distill", disable=not progress, leave=False)):
        ids, mask = targets.input_ids[rows], targets.attention_mask[rows]
        support, probs = target_distribution(targets, rows, temperature=temperature, perturbation=perturbation)
        logits = student(input_ids=ids, attention_mask=mask).logits
        loss, kl, lm = distillation_loss(logits, support_ids=support, teacher_probs=probs, input_ids=ids,
                                         attention_mask=mask, temperature=temperature, alpha=alpha)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(student.parameters(), 1.0)
        opt.step()
        sched.step()
        tokens += int(mask.sum())
        history.append({"step": step + 1, "loss": float(loss.detach()), "kl": float(kl), "lm": float(lm), "tokens": tokens})
    student.eval()
    return history
