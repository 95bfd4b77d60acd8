"""Backward-compatible training (BCT) of embedding models, and cross-model retrieval evaluation.

A retrieval system indexes a *gallery* with an embedding model. When a better model arrives, its
embeddings normally live in a different space, so the whole gallery would have to be re-embedded
("backfilled"). BCT (Shen et al., "Towards backward-compatible representation learning", CVPR 2020)
trains the new embedding ``phi_new`` with an extra *influence loss*: the new embedding is passed
through the old model's **frozen** classifier ``w_old``::

    L = CE(w_new(phi_new(x)), y) + lambda * CE(w_old(phi_new(x)), y)

so new features must be classifiable by the old classifier, i.e. lie where old features of the same
class lie. New queries can then be matched against the old gallery directly.

A new model is *compatible* when ``M(new query, old gallery) > M(old query, old gallery)`` for a
retrieval metric ``M`` (top-1 accuracy, mAP); the *update gain*
``(M(new, old) - M(old, old)) / (M(new, new) - M(old, old))`` is the share of the full (backfilled)
improvement obtained without backfilling.

Baselines: an independently trained new model (no compatibility: cross-model retrieval near chance)
and a learned linear map from new to old features (least squares on training images).

Examples
--------
>>> import numpy as np
>>> q = np.array([[1.0, 0.0], [0.0, 1.0]]); g = np.array([[1.0, 0.1], [0.1, 1.0], [0.9, 0.0]])
>>> retrieval_metrics(q, [0, 1], g, [0, 1, 0])
{'top1': 1.0, 'map': 1.0, 'n_queries': 2, 'n_gallery': 3}
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Mapping, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from ..training import TrainConfig, as_tensors, fit
from ..validation import Interval, Options, Seq, check, check_fields

__all__ = [
    "EmbeddingNet",
    "CosineClassifier",
    "HEADS",
    "BCTConfig",
    "extend_classifier",
    "influence_loss",
    "train_embedding_model",
    "embed",
    "LinearMap",
    "fit_linear_map",
    "retrieval_metrics",
    "retrieval_matrix",
    "compatibility_summary",
    "similarity_matrix",
    "rank_gallery",
    "SIMILARITIES",
]

SIMILARITIES = ("cosine", "euclidean")


class CosineClassifier(nn.Module):
    """``logits = scale * cos(embedding, w_c)``: a softmax classifier on L2-normalized features and weights
    ("norm-softmax"), which trains the same geometry that cosine retrieval uses.

    Examples
    --------
    >>> head = CosineClassifier(2, 3, scale=10.0)
    >>> bool(head(torch.ones(1, 2)).abs().max() <= 10.0 + 1e-5)
    True
    """

    def __init__(self, in_features: int, out_features: int, *, scale: float = 16.0):
        super().__init__()
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.randn(out_features, in_features) / in_features**0.5)
        self.register_buffer("scale", torch.tensor(float(scale)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.scale * F.normalize(x, dim=1) @ F.normalize(self.weight, dim=1).T


HEADS = ("linear", "cosine")


class EmbeddingNet(nn.Module):
    """MLP trunk -> linear embedding of size ``embedding_dim`` -> classifier ``head`` (linear or cosine).

    ``embed(x)`` gives the features used for retrieval; ``forward(x) = head(embed(x))``.

    Examples
    --------
    >>> net = EmbeddingNet(in_features=4, embedding_dim=3, n_classes=2, hidden=(5,))
    >>> net.embed(torch.zeros(2, 4)).shape, net(torch.zeros(2, 4)).shape
    (torch.Size([2, 3]), torch.Size([2, 2]))
    """

    def __init__(self, *, in_features: int, embedding_dim: int = 32, n_classes: int = 10, hidden: tuple[int, ...] = (128,),
                 head: str = "linear"):
        super().__init__()
        if head not in HEADS:
            raise ValueError(f"The 'head' parameter of EmbeddingNet must be one of {HEADS}. Got {head!r} instead.")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            width = h
        layers.append(nn.Linear(width, embedding_dim))
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(embedding_dim, n_classes) if head == "linear" else CosineClassifier(embedding_dim, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))


@dataclass(frozen=True)
class BCTConfig:
    """Training of one embedding model (old, new, or BCT-new).

    Parameters
    ----------
    hidden : tuple of int
        Widths of the MLP trunk.
    embedding_dim : int
        Size of the embedding (a BCT model must match the old model's).
    influence_weight : float
        ``lambda`` of the influence loss (used only when an old model is given).
    head : {"linear", "cosine"}
        Classifier on top of the embedding: plain linear softmax, or cosine ("norm-softmax").
    epochs, lr, batch_size : training hyper-parameters.

    Examples
    --------
    >>> BCTConfig(hidden=[256, 128]).hidden
    (256, 128)
    >>> BCTConfig(influence_weight=-1)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'influence_weight' parameter of BCTConfig must be a float >= 0. Got -1 instead.
    >>> BCTConfig(hidden=(-4,))
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'hidden' parameter of BCTConfig must be a list or tuple of an int >= 1. Got (-4,) instead.
    """

    hidden: tuple[int, ...] = (128,)
    embedding_dim: int = 32
    influence_weight: float = 1.0
    head: str = "linear"
    epochs: int = 5
    lr: float = 1e-3
    batch_size: int = 64

    def __post_init__(self):
        check_fields(self, hidden=Seq(Interval(int, 1, None)), embedding_dim=Interval(int, 1, None),
                     influence_weight=Interval(float, 0, None), head=Options(HEADS), epochs=Interval(int, 1, None),
                     lr=Interval(float, 0, None, closed="neither"), batch_size=Interval(int, 1, None))

    def train_config(self, seed: int) -> TrainConfig:
        return TrainConfig(epochs=self.epochs, lr=self.lr, batch_size=self.batch_size, seed=seed)


@torch.no_grad()
def embed(model: nn.Module, x, *, batch_size: int = 2048) -> torch.Tensor:
    """``model.embed`` of ``x`` in eval mode, in batches (``x`` flattened to rows)."""
    X, _ = as_tensors(x)
    X = X.reshape(len(X), -1).float()
    was = model.training
    model.eval()
    try:
        return torch.cat([model.embed(X[i : i + batch_size]) for i in range(0, len(X), batch_size)])
    finally:
        model.train(was)


def extend_classifier(old_model: nn.Module, train: tuple, *, n_classes: int) -> nn.Module:
    """A frozen copy of the old classifier with rows for classes it never saw.

    As in Shen et al., a new class's weight vector is the mean old-model embedding of its training
    samples (bias: the mean of the old biases). Classes the old head knows keep their weights.
    """
    head = old_model.head
    X, y = as_tensors(*train)
    cosine = isinstance(head, CosineClassifier)
    out = CosineClassifier(head.in_features, n_classes, scale=float(head.scale)) if cosine else nn.Linear(head.in_features, n_classes)
    with torch.no_grad():
        out.weight.zero_()
        out.weight[: head.out_features] = head.weight
        if not cosine:
            out.bias.fill_(float(head.bias.mean()))
            out.bias[: head.out_features] = head.bias
        missing = [c for c in range(head.out_features, n_classes) if bool((y == c).any())]
        if missing:
            feats = embed(old_model, X)
            for c in missing:
                out.weight[c] = feats[y == c].mean(0)
    out.requires_grad_(False)
    return out


def influence_loss(embeddings: torch.Tensor, targets: torch.Tensor, old_head: nn.Module) -> torch.Tensor:
    """Cross-entropy of the old (frozen) classifier applied to the *new* embeddings.

    Samples whose class the old head cannot predict (id >= its number of outputs) are left out; the
    loss is 0 if none remain. Gradients flow into ``embeddings`` only.

    Examples
    --------
    >>> head = torch.nn.Linear(2, 2); _ = head.requires_grad_(False)
    >>> e = torch.zeros(3, 2)
    >>> float(influence_loss(e, torch.tensor([0, 1, 5]), head)) == float(torch.nn.functional.cross_entropy(head(e[:2]), torch.tensor([0, 1])))
    True
    """
    logits = old_head(embeddings)
    known = targets < logits.shape[1]
    if not bool(known.any()):
        return embeddings.sum() * 0.0
    return F.cross_entropy(logits[known], targets[known])


class _BCTWrapper(nn.Module):
    """Forward returns ``[new logits | old-head logits of the new embedding]`` so fit's loss_fn sees both."""

    def __init__(self, model: nn.Module, old_head: nn.Module):
        super().__init__()
        self.model, self.old_head = model, old_head

    def forward(self, x):
        e = self.model.embed(x)
        return torch.cat([self.model.head(e), self.old_head(e)], dim=1)


def train_embedding_model(
    train: tuple,
    *,
    config: BCTConfig = BCTConfig(),
    n_classes: int | None = None,
    old_model: nn.Module | None = None,
    seed: int = 0,
    progress: bool = False,
) -> EmbeddingNet:
    """Train an :class:`EmbeddingNet` with cross-entropy, plus BCT's influence loss when ``old_model`` is given.

    Parameters
    ----------
    train : (X, y)
        Images or feature rows and integer labels.
    config : BCTConfig
    n_classes : int, optional
        Classes of the new model (default: ``max(y) + 1``).
    old_model : module with ``embed`` and ``head``, optional
        The old model; its classifier is frozen (and extended to new classes with
        :func:`extend_classifier`). Its embedding size must equal ``config.embedding_dim``.
    seed : int
    """
    X, y = as_tensors(*train)
    X = X.reshape(len(X), -1).float()
    n_classes = int(n_classes or int(y.max()) + 1)
    torch.manual_seed(seed)
    model = EmbeddingNet(in_features=X.shape[1], embedding_dim=config.embedding_dim, n_classes=n_classes, hidden=config.hidden,
                         head=config.head)
    if old_model is None or config.influence_weight == 0:
        fit(model, (X, y), config=config.train_config(seed), progress=progress)
        return model.eval()
    if old_model.head.in_features != config.embedding_dim:
        raise ValueError(
            f"The 'embedding_dim' parameter of BCTConfig must equal the old model's embedding size "
            f"({old_model.head.in_features}) for BCT. Got {config.embedding_dim} instead."
        )
    old_head = extend_classifier(old_model, (X, y), n_classes=max(n_classes, old_model.head.out_features))
    wrapper = _BCTWrapper(model, old_head)
    lam = float(config.influence_weight)

    def loss_fn(logits, target, idx):
        new_logits, old_logits = logits[:, :n_classes], logits[:, n_classes:]
        return F.cross_entropy(new_logits, target) + lam * F.cross_entropy(old_logits, target)

    fit(wrapper, (X, y), config=config.train_config(seed), loss_fn=loss_fn, progress=progress)
    return model.eval()


class LinearMap(nn.Module):
    """``embed(x) = base.embed(x) @ weight + bias``: new features mapped into the old feature space."""

    def __init__(self, base: nn.Module, weight: torch.Tensor, bias: torch.Tensor):
        super().__init__()
        self.base = base
        self.register_buffer("weight", weight)
        self.register_buffer("bias", bias)

    def embed(self, x):
        return self.base.embed(x) @ self.weight + self.bias


def fit_linear_map(new_model: nn.Module, old_model: nn.Module, x, *, ridge: float = 1e-3) -> LinearMap:
    """Least-squares (ridge) linear map from the new model's features to the old model's on ``x``.

    The baseline that makes an already-trained, incompatible new model talk to the old gallery.

    Examples
    --------
    An exactly linear relation is recovered:

    >>> base = EmbeddingNet(in_features=3, embedding_dim=2, n_classes=2, hidden=())
    >>> class Old(torch.nn.Module):
    ...     def embed(self, x): return base.embed(x) @ torch.tensor([[0.0, 2.0], [1.0, 0.0]]) + 1.0
    >>> m = fit_linear_map(base, Old(), torch.randn(50, 3), ridge=1e-9)
    >>> torch.allclose(m.weight, torch.tensor([[0.0, 2.0], [1.0, 0.0]]), atol=1e-3)
    True
    """
    ridge = check(ridge, Interval(float, 0, None), name="ridge", owner="fit_linear_map")
    src, dst = embed(new_model, x).double(), embed(old_model, x).double()
    mu_s, mu_d = src.mean(0), dst.mean(0)
    a, b = src - mu_s, dst - mu_d
    gram = a.T @ a + ridge * len(a) * torch.eye(a.shape[1], dtype=a.dtype)
    weight = torch.linalg.solve(gram, a.T @ b)
    bias = mu_d - mu_s @ weight
    return LinearMap(new_model, weight.float(), bias.float()).eval()


def similarity_matrix(query, gallery, *, similarity: str = "cosine") -> torch.Tensor:
    """Similarity of every query row to every gallery row (higher = closer): cosine similarity, or the negative
    Euclidean distance.

    Examples
    --------
    >>> similarity_matrix([[1.0, 0.0]], [[2.0, 0.0], [0.0, 1.0]]).tolist()
    [[1.0, 0.0]]
    >>> similarity_matrix([[1.0, 0.0]], [[2.0, 0.0], [0.0, 1.0]], similarity="euclidean").tolist()
    [[-1.0, -1.4142135381698608]]
    """
    check(similarity, Options(SIMILARITIES), name="similarity", owner="similarity_matrix")
    q = torch.as_tensor(np.asarray(query), dtype=torch.float32)
    g = torch.as_tensor(np.asarray(gallery), dtype=torch.float32)
    if similarity == "cosine":
        return F.normalize(q, dim=1) @ F.normalize(g, dim=1).T
    return -torch.cdist(q, g)


def rank_gallery(query, gallery, *, similarity: str = "cosine", k: int | None = None) -> np.ndarray:
    """Gallery rows ordered from the most to the least similar, per query row (ties keep gallery order).

    Parameters
    ----------
    query : array-like (Q, D) or (D,)
        Query embeddings (one row: a single query).
    gallery : array-like (G, D)
    similarity : {"cosine", "euclidean"}
    k : int, optional
        Keep the first ``k`` of each ranking (default: the whole gallery).

    Returns
    -------
    numpy.ndarray of int, shape (Q, k)

    Examples
    --------
    >>> rank_gallery([[1.0, 0.0]], [[0.0, 1.0], [1.0, 0.1], [1.0, 0.0]], k=2).tolist()
    [[2, 1]]
    """
    q = np.asarray(query, dtype=np.float32)
    q = q.reshape(1, -1) if q.ndim == 1 else q
    if k is not None:
        k = check(k, Interval(int, 1, None), name="k", owner="rank_gallery")
    order = torch.argsort(similarity_matrix(q, gallery, similarity=similarity), dim=1, descending=True, stable=True)
    return order[:, :k].numpy() if k is not None else order.numpy()


def retrieval_metrics(
    query,
    query_labels,
    gallery,
    gallery_labels,
    *,
    similarity: str = "cosine",
    chunk: int = 512,
) -> dict:
    """Top-1 accuracy and mean average precision of retrieving same-class gallery items.

    Parameters
    ----------
    query : array-like (Q, D)
        Query embeddings (from the query model).
    query_labels : array-like (Q,)
    gallery : array-like (G, D)
        Gallery embeddings (from the gallery model; same D).
    gallery_labels : array-like (G,)
    similarity : {"cosine", "euclidean"}
        Ranking by cosine similarity or by negative Euclidean distance.

    Returns
    -------
    dict
        ``top1`` (nearest gallery item has the query's class), ``map`` (mean over queries of the average
        precision of the full ranking; queries without any relevant gallery item are skipped),
        ``n_queries``, ``n_gallery``.

    Examples
    --------
    >>> q = [[1.0, 0.0]]; g = [[0.9, 0.1], [1.0, 0.0], [0.0, 1.0]]
    >>> retrieval_metrics(q, [1], g, [0, 1, 1])["map"]  # relevant at ranks 1 and 3: (1/1 + 2/3) / 2
    0.8333333333333333
    """
    check(similarity, Options(SIMILARITIES), name="similarity", owner="retrieval_metrics")
    chunk = check(chunk, Interval(int, 1, None), name="chunk", owner="retrieval_metrics")
    q = torch.as_tensor(np.asarray(query), dtype=torch.float32)
    g = torch.as_tensor(np.asarray(gallery), dtype=torch.float32)
    ql = torch.as_tensor(np.asarray(query_labels)).long().reshape(-1)
    gl = torch.as_tensor(np.asarray(gallery_labels)).long().reshape(-1)
    if q.ndim != 2 or g.ndim != 2 or q.shape[1] != g.shape[1]:
        raise ValueError(f"The 'query' and 'gallery' parameters must be 2-D with the same width. Got {tuple(q.shape)} and {tuple(g.shape)} instead.")
    if len(q) != len(ql) or len(g) != len(gl):
        raise ValueError("The 'query_labels' and 'gallery_labels' parameters must have one label per row of 'query' and 'gallery'.")
    top1, aps = [], []
    ranks = torch.arange(1, len(g) + 1, dtype=torch.float64)
    for start in range(0, len(q), chunk):
        sim = similarity_matrix(q[start : start + chunk], g, similarity=similarity)
        order = torch.argsort(sim, dim=1, descending=True, stable=True)
        rel = (gl[order] == ql[start : start + chunk, None]).double()
        top1.append(rel[:, 0])
        n_rel = rel.sum(1)
        ap = (rel * rel.cumsum(1) / ranks).sum(1) / n_rel.clamp_min(1)
        aps.append(ap[n_rel > 0])
    return {
        "top1": float(torch.cat(top1).mean()),
        "map": float(torch.cat(aps).mean()) if sum(len(a) for a in aps) else float("nan"),
        "n_queries": int(len(q)),
        "n_gallery": int(len(g)),
    }


def retrieval_matrix(
    models: Mapping[str, nn.Module],
    query: tuple,
    gallery: tuple,
    *,
    pairs: Sequence[tuple[str, str]] | None = None,
    similarity: str = "cosine",
) -> pd.DataFrame:
    """Retrieval metrics for every (query model, gallery model) pair.

    Parameters
    ----------
    models : mapping name -> model with ``embed``
    query, gallery : (X, y)
        Query images and the gallery images (disjoint sets).
    pairs : sequence of (query model, gallery model), optional
        Default: all pairs whose embeddings have the same width.

    Returns
    -------
    pandas.DataFrame
        Columns ``query_model``, ``gallery_model``, ``top1``, ``map``, ``n_queries``, ``n_gallery``.
    """
    feats_q = {name: embed(m, query[0]) for name, m in models.items()}
    feats_g = {name: embed(m, gallery[0]) for name, m in models.items()}
    if pairs is None:
        pairs = [(a, b) for a in models for b in models if feats_q[a].shape[1] == feats_g[b].shape[1]]
    rows = []
    for a, b in pairs:
        if a not in models or b not in models:
            raise ValueError(f"The 'pairs' parameter of retrieval_matrix names unknown models; accepted names are {list(models)}. Got {(a, b)!r}.")
        rows.append({"query_model": a, "gallery_model": b,
                     **retrieval_metrics(feats_q[a], query[1], feats_g[b], gallery[1], similarity=similarity)})
    return pd.DataFrame(rows)


def compatibility_summary(matrix: pd.DataFrame, *, new: str, old: str = "old", metric: str = "top1", new_gallery: str | None = None) -> dict:
    """The compatibility criterion and update gain of model ``new`` against model ``old``.

    Parameters
    ----------
    matrix : DataFrame
        Output of :func:`retrieval_matrix` (needs the rows (old, old), (new, old) and (new_gallery, new_gallery)).
    new : str
        Query model being evaluated against the old gallery.
    new_gallery : str, optional
        Model whose own-space retrieval is the "backfilled" upper reference (default: ``new``; give the
        underlying model for a linear-map baseline, whose gallery would be re-embedded by that model).

    Returns
    -------
    dict
        ``old_old``, ``new_old`` (cross-model), ``new_new``, ``compatible`` (``new_old > old_old``),
        ``update_gain`` ``(new_old - old_old) / (new_new - old_old)`` (NaN when the new model is no
        better than the old one in its own space, ``new_new <= old_old``: there is no gain to share).

    Examples
    --------
    >>> m = pd.DataFrame({"query_model": ["old", "bct", "bct"], "gallery_model": ["old", "old", "bct"], "top1": [0.6, 0.7, 0.8]})
    >>> s = compatibility_summary(m, new="bct")
    >>> s["compatible"], round(s["update_gain"], 3)
    (True, 0.5)
    """
    check(metric, Options(("top1", "map")), name="metric", owner="compatibility_summary")
    new_gallery = new_gallery or new

    def get(a, b):
        sel = matrix[(matrix["query_model"] == a) & (matrix["gallery_model"] == b)]
        if sel.empty:
            raise ValueError(f"The 'matrix' parameter of compatibility_summary has no row for query model {a!r} and gallery model {b!r}.")
        return float(sel[metric].iloc[0])

    oo, no, nn_ = get(old, old), get(new, old), get(new_gallery, new_gallery)
    gain = (no - oo) / (nn_ - oo) if nn_ > oo else float("nan")
    return {"metric": metric, "old_old": oo, "new_old": no, "new_new": nn_, "compatible": bool(no > oo), "update_gain": gain}
