"""Secret canaries: insertion, exposure (Carlini et al., "The Secret Sharer", 2019) and extraction by model
inversion (Parikh et al., "Canary extraction in natural language understanding models", ACL 2022).

A *canary* is a made-up training example holding a secret, e.g. ``"my pin code is 4 8 1 5 9"`` with a
chosen label, inserted ``repetitions`` times into the training data. The secret's *reference space* R is
every code of the same shape (``10 ** n_digits`` codes).

Exposure
    ``exposure = log2 |R| - log2 rank``, where ``rank`` is the canary's position (1 = best) when every
    candidate code in R is sorted by the model's loss of the canary's label on the candidate text. Exposure
    ranges from 0 (the canary looks like the worst candidate) to ``log2 |R|`` (the canary is the model's
    favourite; an attacker enumerating R by loss finds it first). :func:`rank_exposure` enumerates R with
    batched scoring; :func:`extrapolated_exposure` fits a skew-normal to the losses of sampled candidates
    and reads ``-log2 P(loss <= canary loss)`` from its CDF (Secret Sharer, Sec. 4.3), which also works
    when R is too big to enumerate.

Extraction (model inversion)
    The attacker knows the model's weights (open box), the pattern ("my pin code is" + n digits) and the
    label, but not the digits. Each secret position gets a vector of logits over the ten digit tokens; the
    model sees the softmax-weighted (or Gumbel-softmax) mix of the digit tokens' *embeddings* at that
    position (the text models' ``embed``/``classify`` split allows feeding soft embeddings). Gradient ascent
    on ``log p(label | prefix, soft digits)`` with an annealed temperature, several random restarts, then
    the argmax digits are read out and the restart whose hard code has the lowest loss wins.

Order matters: a bag-of-embeddings model cannot tell ``1 2`` from ``2 1``, so every permutation of the
canary's digits ties with it (rank and positional extraction are then about the multiset of digits);
the recurrent model sees order.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import torch
from torch import nn

from workbench.validation import Interval, Options, Seq, check, check_fields

__all__ = [
    "PREFIXES",
    "coordinate_descent",
    "frozen",
    "relaxed_digit_search",
    "extraction_result",
    "Canary",
    "CanaryData",
    "ExposureResult",
    "ExtractionResult",
    "make_canaries",
    "insert_canaries",
    "build_vocabulary",
    "candidate_codes",
    "candidate_ids",
    "canary_losses",
    "exposure_from_rank",
    "rank_exposure",
    "extrapolated_exposure",
    "extract_canary",
    "EXTRACTION_METHODS",
]

#: Distinct text patterns, so several canaries (one per repetition count) can live in one training set.
PREFIXES = (
    "my pin code is",
    "the alarm code for the office is",
    "my bank account number is",
    "the wifi password at home is",
    "my locker combination is",
    "the secret door code is",
    "my phone passcode is",
    "the safe combination is",
)
DIGIT_TOKENS = tuple("0123456789")
#: Relaxations accepted by :func:`extract_canary`.
EXTRACTION_METHODS = ("softmax", "gumbel")


def _int(name: str, value, *, owner: str, low: int, high: int | None = None) -> int:
    return check(value, Interval(int, low, high), name=name, owner=owner)


@dataclass(frozen=True)
class Canary:
    """One secret: ``prefix`` + space-separated ``code`` digits, labelled ``label``, inserted ``repetitions`` times.

    Examples
    --------
    >>> Canary(prefix="my pin code is", code=(4, 8, 1), label=2, repetitions=3).text
    'my pin code is 4 8 1'
    """

    prefix: str
    code: tuple
    label: int
    repetitions: int

    def __post_init__(self):
        check_fields(self, code=Seq(Interval(int, 0, 9), min_len=1), repetitions=Interval(int, 1, None),
                     label=Interval(int, 0, None))
        if not self.prefix.strip() or any(ch.isdigit() for ch in self.prefix):
            raise ValueError(f"The 'prefix' parameter of Canary must be non-empty text without digits. Got {self.prefix!r} instead.")

    @property
    def n_digits(self) -> int:
        return len(self.code)

    @property
    def text(self) -> str:
        return self.prefix + " " + " ".join(map(str, self.code))

    @property
    def space_size(self) -> int:
        return 10 ** self.n_digits


def make_canaries(*, repetitions: Sequence[int], n_digits: int = 6, label: int | Sequence[int] = 0, prefixes: Sequence[str] = PREFIXES,
                  seed: int = 0) -> list[Canary]:
    """One canary per entry of ``repetitions``, each with its own pattern and a uniformly random code.

    ``label`` is one class id for all canaries or one per canary. Canaries share the ten digit tokens, so
    canaries with the same label reinforce each other's digits (a code mixing two canaries' digits can then
    outrank both); giving them different labels keeps them apart.

    Examples
    --------
    >>> cs = make_canaries(repetitions=[1, 10], n_digits=4, seed=0)
    >>> [c.repetitions for c in cs], cs[0].prefix, len(cs[1].code)
    ([1, 10], 'my pin code is', 4)
    >>> make_canaries(repetitions=[0])
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'repetitions' parameter of make_canaries must be a non-empty list or tuple of an int >= 1. Got [0] instead.
    """
    reps = [repetitions] if isinstance(repetitions, (int, np.integer)) else list(repetitions)
    reps = list(check(reps, Seq(Interval(int, 1, None), min_len=1), name="repetitions", owner="make_canaries"))
    n_digits = _int("n_digits", n_digits, owner="make_canaries", low=1, high=12)
    if len(reps) > len(prefixes):
        raise ValueError(f"make_canaries has {len(prefixes)} prefixes for {len(reps)} canaries; pass more 'prefixes'.")
    labels = [label] * len(reps) if isinstance(label, (int, np.integer)) else list(label)
    if len(labels) != len(reps):
        raise ValueError(f"The 'label' parameter of make_canaries must be one int or one per canary ({len(reps)}). Got {label!r} instead.")
    rng = np.random.default_rng(seed)
    return [Canary(prefix=prefixes[i], code=tuple(int(d) for d in rng.integers(0, 10, n_digits)), label=int(labels[i]), repetitions=int(r))
            for i, r in enumerate(reps)]


@dataclass
class CanaryData:
    """Training texts/labels with canaries inserted; ``canary_index[i]`` is the canary of row ``i`` or -1."""

    texts: list
    labels: np.ndarray
    canary_index: np.ndarray
    canaries: list

    def __len__(self) -> int:
        return len(self.texts)


def insert_canaries(texts: Sequence[str], *, labels, canaries: Sequence[Canary], seed: int = 0) -> CanaryData:
    """Append ``c.repetitions`` copies of every canary to ``(texts, labels)`` and shuffle all rows.

    Examples
    --------
    >>> d = insert_canaries(["good", "bad"], labels=[2, 0], canaries=make_canaries(repetitions=[3], n_digits=2), seed=0)
    >>> len(d), int((d.canary_index == 0).sum())
    (5, 3)
    """
    texts = [str(t) for t in texts]
    labels = np.asarray(labels, dtype=np.int64)
    if labels.ndim != 1 or len(labels) != len(texts):
        raise ValueError(f"The 'texts' and 'labels' parameters of insert_canaries must have the same length. Got {len(texts)} and {labels.shape}.")
    if not all(isinstance(c, Canary) for c in canaries):
        raise ValueError("The 'canaries' parameter of insert_canaries must hold Canary objects (see make_canaries).")
    all_texts = list(texts)
    all_labels = [labels]
    idx = [np.full(len(texts), -1)]
    for i, c in enumerate(canaries):
        all_texts += [c.text] * c.repetitions
        all_labels.append(np.full(c.repetitions, c.label))
        idx.append(np.full(c.repetitions, i))
    order = np.random.default_rng(seed).permutation(len(all_texts))
    return CanaryData(texts=[all_texts[i] for i in order], labels=np.concatenate(all_labels)[order],
                      canary_index=np.concatenate(idx)[order], canaries=list(canaries))


def build_vocabulary(texts: Sequence[str], **kwargs):
    """:meth:`workbench.textmodels.Vocabulary.build` on ``texts`` plus the ten digit tokens, so every candidate
    code of every canary is representable (no ``<unk>``)."""
    from workbench.textmodels import Vocabulary

    return Vocabulary.build(list(texts) + [" ".join(DIGIT_TOKENS)], **kwargs)


# ------------------------------------------------------------------------------------------- scoring
def candidate_codes(n_digits: int) -> np.ndarray:
    """Every code of ``n_digits`` digits as an int array ``(10 ** n_digits, n_digits)``, in numeric order.

    Examples
    --------
    >>> candidate_codes(2)[[0, 7, 99]].tolist()
    [[0, 0], [0, 7], [9, 9]]
    """
    n_digits = _int("n_digits", n_digits, owner="candidate_codes", low=1, high=7)
    values = np.arange(10 ** n_digits)
    powers = 10 ** np.arange(n_digits - 1, -1, -1)
    return (values[:, None] // powers) % 10


def _digit_ids(vocab) -> torch.Tensor:
    missing = [d for d in DIGIT_TOKENS if d not in vocab.token_to_id]
    if missing:
        raise ValueError(f"The vocabulary lacks digit tokens {missing}; build it with canaries.build_vocabulary.")
    return torch.tensor([vocab.token_to_id[d] for d in DIGIT_TOKENS], dtype=torch.long)


def _prefix_ids(canary: Canary, vocab) -> torch.Tensor:
    from workbench.textmodels import tokenize

    unk = vocab.token_to_id["<unk>"]
    return torch.tensor([vocab.token_to_id.get(t, unk) for t in tokenize(canary.prefix)], dtype=torch.long)


def candidate_ids(canary: Canary, *, codes, vocab) -> torch.LongTensor:
    """Token ids ``(len(codes), len(prefix) + n_digits)`` of the canary's pattern filled with each code
    (same ids as ``vocab.encode(text)`` without padding)."""
    codes = torch.as_tensor(np.asarray(codes), dtype=torch.long)
    if codes.ndim != 2 or codes.shape[1] != canary.n_digits:
        raise ValueError(f"The 'codes' parameter of candidate_ids must have shape (m, {canary.n_digits}). Got {tuple(codes.shape)} instead.")
    prefix = _prefix_ids(canary, vocab)
    return torch.cat([prefix.expand(len(codes), -1), _digit_ids(vocab)[codes]], dim=1)


@torch.no_grad()
def canary_losses(model: nn.Module, *, canary: Canary, codes, vocab, batch_size: int = 8192) -> np.ndarray:
    """Cross-entropy of ``canary.label`` for the pattern filled with each code (model in eval mode)."""
    ids = candidate_ids(canary, codes=codes, vocab=vocab)
    was = model.training
    model.eval()
    try:
        out = []
        for start in range(0, len(ids), batch_size):
            logits = model(ids[start : start + batch_size]).double()
            out.append((torch.logsumexp(logits, 1) - logits[:, canary.label]).numpy())
    finally:
        model.train(was)
    return np.concatenate(out) if out else np.empty(0)


def exposure_from_rank(rank, *, space_size: int) -> np.ndarray:
    """``log2(space_size) - log2(rank)`` (rank 1 = the canary is the most likely candidate).

    Examples
    --------
    >>> exposure_from_rank([1, 2, 1024], space_size=1024).tolist()
    [10.0, 9.0, 0.0]
    """
    rank = np.asarray(rank, dtype=float)
    if space_size < 1 or np.any(rank < 1) or np.any(rank > space_size):
        raise ValueError(f"The 'rank' parameter of exposure_from_rank must be in [1, space_size={space_size}]. Got {rank.tolist()} instead.")
    return np.log2(space_size) - np.log2(rank)


@dataclass(frozen=True)
class ExposureResult:
    """Exposure of one canary: ``exposure`` (bits), ``rank`` (or NaN when extrapolated), ``space_size``,
    ``canary_loss``, and the method (``"rank"`` or ``"extrapolated"``)."""

    exposure: float
    rank: float
    space_size: int
    canary_loss: float
    method: str
    details: dict = field(default_factory=dict)


def rank_exposure(model: nn.Module, *, canary: Canary, vocab, batch_size: int = 8192) -> ExposureResult:
    """Exposure by enumerating the whole reference space (``10 ** n_digits`` codes, up to 10**7).

    ``rank = 1 + #{candidates with a strictly lower loss than the canary}`` (ties count in the canary's
    favour, as when an attacker tries equally likely candidates in the best order).
    """
    if canary.n_digits > 7:
        raise ValueError(f"rank_exposure enumerates 10**n_digits candidates; n_digits={canary.n_digits} is too many (max 7). Use extrapolated_exposure.")
    losses = canary_losses(model, canary=canary, codes=candidate_codes(canary.n_digits), vocab=vocab, batch_size=batch_size)
    own = int(np.ravel_multi_index(canary.code, (10,) * canary.n_digits))
    loss = losses[own]
    rank = 1 + int(np.sum(losses < loss))
    return ExposureResult(exposure=float(exposure_from_rank(rank, space_size=canary.space_size)), rank=float(rank),
                          space_size=canary.space_size, canary_loss=float(loss), method="rank",
                          details={"n_ties": int(np.sum(losses == loss)) - 1})


def _phi_from_loss(loss: np.ndarray) -> np.ndarray:
    """Logit-scaled confidence ``log(p / (1 - p))`` from the cross-entropy ``-log p`` (stable for small loss)."""
    loss = np.asarray(loss, dtype=float)
    return -np.log(np.expm1(np.maximum(loss, 1e-300)))


def extrapolated_exposure(model: nn.Module, *, canary: Canary, vocab, n_samples: int = 5000, seed: int = 0,
                          statistic: str = "logit", batch_size: int = 8192) -> ExposureResult:
    """Exposure from a skew-normal fit to ``n_samples`` random candidates (Secret Sharer, Sec. 4.3):
    ``-log2 P(candidate at least as likely as the canary)`` under the fit, capped at ``log2 |R|``.

    ``statistic="logit"`` (default) fits the logit-scaled confidence ``log(p / (1 - p))`` of the canary
    label; ``"loss"`` fits the cross-entropy itself, as the Secret Sharer does with log-perplexity. Both
    order candidates the same way, but a classifier's loss piles up just above 0 when the canary's pattern
    already decides the label, and a skew-normal fits that poorly (it puts too little mass in the tail
    near 0 and overstates exposure by several bits); the logit scale spreads it out (Carlini et al. 2022
    use it for LiRA for the same reason).
    """
    from scipy import stats

    statistic = check(statistic, Options(("logit", "loss")), name="statistic", owner="extrapolated_exposure")
    n_samples = _int("n_samples", n_samples, owner="extrapolated_exposure", low=20)
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, 10, (n_samples, canary.n_digits))
    losses = canary_losses(model, canary=canary, codes=codes, vocab=vocab, batch_size=batch_size)
    loss = float(canary_losses(model, canary=canary, codes=np.array([canary.code]), vocab=vocab)[0])
    if statistic == "logit":
        sample, value, sign = _phi_from_loss(losses), float(_phi_from_loss(loss)), -1.0  # larger phi = more likely
    else:
        sample, value, sign = losses, loss, 1.0
    a, loc, scale = stats.skewnorm.fit(sample)
    if sign > 0:
        log_p = float(stats.skewnorm.logcdf(value, a, loc=loc, scale=scale))
    else:
        log_p = float(stats.skewnorm.logsf(value, a, loc=loc, scale=scale))
    exposure = min(-log_p / math.log(2), math.log2(canary.space_size))
    return ExposureResult(exposure=float(max(exposure, 0.0)), rank=float("nan"), space_size=canary.space_size,
                          canary_loss=loss, method="extrapolated",
                          details={"statistic": statistic, "skewnorm": (float(a), float(loc), float(scale)),
                                   "n_samples": n_samples, "empirical_fraction_below": float(np.mean(losses < loss))})


# ------------------------------------------------------------------------------------------- extraction
class frozen:
    """The modules in eval mode with frozen parameters inside the block (the attacker only reads them); restored
    after."""

    def __init__(self, *modules):
        self.modules = modules

    def __enter__(self):
        self.state = [(m, m.training, [(p, p.requires_grad) for p in m.parameters()]) for m in self.modules]
        for m in self.modules:
            m.eval()
            for p in m.parameters():
                p.requires_grad_(False)
        return self

    def __exit__(self, *exc):
        for m, training, grads in self.state:
            m.train(training)
            for p, g in grads:
                p.requires_grad_(g)


def relaxed_digit_search(loss_fn, *, n_digits: int, steps: int, restarts: int, lr: float, method: str,
                         temperature: tuple, generator: torch.Generator) -> np.ndarray:
    """The continuous part of a canary extraction: ``restarts`` soft one-hot codes (logits over the ten digits at
    each of ``n_digits`` positions, optimised together by Adam), annealed geometrically from ``temperature[0]`` to
    ``temperature[1]`` over ``steps``; ``loss_fn(weights)`` maps the relaxed digits ``(restarts, n_digits, 10)`` to
    the model's loss. Returns each restart's argmax code ``(restarts, n_digits)``.
    """
    t0, t1 = temperature
    theta = (0.01 * torch.randn(restarts, n_digits, 10, generator=generator)).requires_grad_(True)
    opt = torch.optim.Adam([theta], lr=lr)
    for step in range(steps):
        tau = t0 * (t1 / t0) ** (step / max(steps - 1, 1))
        if method == "gumbel":
            u = torch.rand(theta.shape, generator=generator).clamp_(1e-10, 1 - 1e-10)
            weights = torch.softmax((theta - torch.log(-torch.log(u))) / tau, dim=-1)
        else:
            weights = torch.softmax(theta / tau, dim=-1)
        loss = loss_fn(weights)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return theta.detach().argmax(-1).numpy()


def extraction_result(codes: np.ndarray, *, canary: "Canary", losses, refine: bool) -> "ExtractionResult":
    """The best of the restarts' ``codes`` under ``losses(codes) -> array`` (after exact coordinate descent with
    ``refine``), scored against the canary's true code."""
    if refine:
        codes = coordinate_descent(codes, losses)
    final = losses(codes)
    true_loss = float(losses(np.array([canary.code]))[0])
    best = int(np.argmin(final))
    extracted = tuple(int(d) for d in codes[best])
    return ExtractionResult(extracted=extracted, true_code=canary.code,
                            digit_accuracy=float(np.mean(np.array(extracted) == np.array(canary.code))),
                            exact=extracted == canary.code, extracted_loss=float(final[best]), canary_loss=true_loss,
                            restart_losses=final.tolist())


def coordinate_descent(codes: np.ndarray, losses, *, max_sweeps: int = 10) -> np.ndarray:
    """Greedy exact search over digit codes: for each code, each position in turn takes the digit with the lowest
    loss, until a sweep changes nothing (or ``max_sweeps``).

    Parameters
    ----------
    codes : array of int, shape (n, d)
        Starting codes (digits 0-9).
    losses : callable
        ``losses(codes) -> array (len(codes),)``: the attacked model's loss of each candidate code.

    Examples
    --------
    >>> secret = np.array([3, 1, 4])
    >>> coordinate_descent(np.zeros((1, 3), dtype=int), lambda c: np.abs(c - secret).sum(1))
    array([[3, 1, 4]])
    """
    codes = np.array(codes, dtype=np.int64)
    n, d = codes.shape
    for _ in range(max_sweeps):
        changed = False
        for pos in range(d):
            trial = np.repeat(codes, 10, axis=0)
            trial[:, pos] = np.tile(np.arange(10), n)
            best = np.asarray(losses(trial)).reshape(n, 10).argmin(1)
            changed |= bool((best != codes[:, pos]).any())
            codes[:, pos] = best
        if not changed:
            break
    return codes


@dataclass(frozen=True)
class ExtractionResult:
    """Model inversion outcome: the ``extracted`` code, per-position ``digit_accuracy``, ``exact`` match,
    the extracted and true codes' losses, and the restarts' final losses."""

    extracted: tuple
    true_code: tuple
    digit_accuracy: float
    exact: bool
    extracted_loss: float
    canary_loss: float
    restart_losses: list

    def summary(self) -> dict:
        return {"extracted": "".join(map(str, self.extracted)), "true": "".join(map(str, self.true_code)),
                "digit_accuracy": self.digit_accuracy, "exact": self.exact,
                "extracted_loss": self.extracted_loss, "canary_loss": self.canary_loss}


def extract_canary(
    model: nn.Module,
    *,
    canary: Canary,
    vocab,
    steps: int = 150,
    restarts: int = 8,
    lr: float = 0.3,
    method: str = "softmax",
    temperature: tuple = (1.0, 0.1),
    refine: bool = True,
    seed: int = 0,
) -> ExtractionResult:
    """Recover the canary's digits from the model by relaxed optimisation over the secret's tokens.

    Parameters
    ----------
    model : a ``workbench.textmodels`` model (``embed`` / ``classify``)
    canary : Canary
        Only its ``prefix``, ``n_digits`` and ``label`` are used by the attack; ``code`` scores the result.
    vocab : Vocabulary
    steps, restarts, lr : int, int, float
        Adam steps per restart, random restarts (optimised together as a batch), learning rate.
    method : {"softmax", "gumbel"}
        Soft one-hot relaxation: a tempered softmax, or Gumbel-softmax samples (Jang et al. 2017).
    temperature : (start, end)
        Annealed geometrically over the steps; low temperatures approach hard one-hot choices.
    refine : bool
        After the relaxed optimisation, polish each restart's argmax code by exact coordinate descent (try
        the ten digits at each position in turn, keep the best, until no position changes); it only uses
        the model's loss on hard codes, as the attacker can.
    seed : int

    Notes
    -----
    Hundreds of tiny optimisation steps: on a busy CPU ``torch.set_num_threads(1)`` makes this several times
    faster (measured here: 0.5 s vs 17 s per canary with two threads on a loaded 2-core machine).
    """
    method = check(method, Options(EXTRACTION_METHODS), name="method", owner="extract_canary")
    steps = _int("steps", steps, owner="extract_canary", low=1)
    restarts = _int("restarts", restarts, owner="extract_canary", low=1)
    t0, t1 = (float(t) for t in temperature)
    if not (t0 > 0 and t1 > 0):
        raise ValueError(f"The 'temperature' parameter of extract_canary must be two positive floats. Got {temperature!r} instead.")
    if not (hasattr(model, "embed") and hasattr(model, "classify")):
        raise ValueError("extract_canary needs a model with embed(ids) and classify(embedded, mask) (workbench.textmodels).")
    with frozen(model):
        prefix = _prefix_ids(canary, vocab)
        digit_emb = model.embed(_digit_ids(vocab)[None])[0]  # (10, D)
        prefix_emb = model.embed(prefix[None]).expand(restarts, -1, -1)  # (R, P, D)
        target = torch.full((restarts,), canary.label, dtype=torch.long)
        mask = torch.ones(restarts, len(prefix) + canary.n_digits, dtype=torch.bool)

        def loss_fn(weights):
            emb = torch.cat([prefix_emb, weights @ digit_emb], dim=1)
            return nn.functional.cross_entropy(model.classify(emb, mask), target)

        codes = relaxed_digit_search(loss_fn, n_digits=canary.n_digits, steps=steps, restarts=restarts, lr=lr,
                                     method=method, temperature=(t0, t1), generator=torch.Generator().manual_seed(seed))
        return extraction_result(codes, canary=canary, refine=refine,
                                 losses=lambda c: canary_losses(model, canary=canary, codes=c, vocab=vocab))
