"""A tweets sentiment classifier on pretrained-encoder features, for the extrinsic bias audit.

The encoder (MiniLM) turns each text into a pooled feature vector of one hidden layer; a small head
(logistic regression or MLP, :class:`workbench.models.MLP`) is trained on the tweets' three sentiment
classes with :func:`workbench.training.fit`. Its *positivity score* ``(1 + P(positive) - P(negative)) / 2``
in [0, 1] is what the group metrics audit.

:func:`workbench.datasets.encoders.encode_layers` (re-exported here) encodes texts once and returns several
layers, each cached as :func:`workbench.datasets.encode_texts` would cache it, so comparing layers costs one
forward pass instead of one per layer.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch

from workbench.datasets import TWEET_LABELS
from workbench.datasets.encoders import encode_layers
from workbench.models import MLP
from workbench.training import History, TrainConfig, fit, predict
from workbench.validation import Interval, Seq, check

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["encode_layers", "SentimentModel", "train_sentiment_classifier", "positivity", "CorpusAudit", "audit_on_corpus"]

POSITIVE = TWEET_LABELS.index("positive")
NEGATIVE = TWEET_LABELS.index("negative")


@dataclass
class SentimentModel:
    """A trained head with the feature standardisation it was trained with."""

    model: MLP
    mean: np.ndarray
    scale: np.ndarray
    history: History

    def standardize(self, X) -> torch.Tensor:
        return torch.as_tensor((np.asarray(X, dtype=np.float32) - self.mean) / self.scale)

    def as_module(self) -> torch.nn.Module:
        """A module from *raw* features to logits (standardisation folded in), for gradients w.r.t. features."""
        return _Standardized(self.model, self.mean, self.scale)

    def probabilities(self, X) -> np.ndarray:
        return torch.softmax(predict(self.model, self.standardize(X)), dim=-1).numpy()

    def positivity(self, X) -> np.ndarray:
        return positivity(self.probabilities(X))


class _Standardized(torch.nn.Module):
    def __init__(self, model, mean, scale):
        super().__init__()
        self.model = model
        self.register_buffer("mean", torch.as_tensor(mean, dtype=torch.float32))
        self.register_buffer("scale", torch.as_tensor(scale, dtype=torch.float32))

    def forward(self, x):
        return self.model((x - self.mean) / self.scale)


def positivity(probabilities) -> np.ndarray:
    """``(1 + P(positive) - P(negative)) / 2`` from (N, 3) class probabilities in :data:`TWEET_LABELS` order.

    Examples
    --------
    >>> positivity(np.array([[0.0, 0.0, 1.0], [1.0, 0.0, 0.0], [0.2, 0.6, 0.2]])).tolist()
    [1.0, 0.0, 0.5]
    """
    p = np.asarray(probabilities, dtype=float)
    if p.ndim != 2 or p.shape[1] != len(TWEET_LABELS):
        raise ValueError(f"positivity needs (N, {len(TWEET_LABELS)}) probabilities. Got shape {p.shape}.")
    return (1.0 + p[:, POSITIVE] - p[:, NEGATIVE]) / 2.0


def train_sentiment_classifier(X, y, *, hidden: tuple[int, ...] = (), epochs: int = 30, lr: float = 3e-3,
                               weight_decay: float = 1e-4, batch_size: int = 128, seed: int = 0,
                               val: tuple | None = None, progress: bool = False) -> SentimentModel:
    """Train a sentiment head on standardised features (``hidden=()`` is multinomial logistic regression).

    Examples
    --------
    >>> rng = np.random.default_rng(0); X = rng.normal(size=(300, 4)).astype("float32")
    >>> y = np.digitize(X[:, 0], [-0.5, 0.5])
    >>> clf = train_sentiment_classifier(X, y, epochs=40, lr=0.05)
    >>> float((clf.probabilities(X).argmax(1) == y).mean()) > 0.9
    True
    """
    hidden = check(hidden, Seq(Interval(int, 1, None)), name="hidden", owner="train_sentiment_classifier")
    X = np.asarray(X, dtype=np.float32)
    y = np.asarray(y).astype(np.int64)
    if X.ndim != 2 or len(X) != len(y):
        raise ValueError(f"train_sentiment_classifier needs 2-D features and one label per row. Got X {X.shape} and y {y.shape}.")
    mean, scale = X.mean(0), X.std(0) + 1e-6
    torch.manual_seed(seed)
    model = MLP(in_features=X.shape[1], hidden=tuple(hidden), out_features=len(TWEET_LABELS))
    cfg = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, weight_decay=weight_decay, seed=seed)
    Xs = torch.as_tensor((X - mean) / scale)
    val_s = None if val is None else (torch.as_tensor((np.asarray(val[0], np.float32) - mean) / scale), torch.as_tensor(np.array(val[1], dtype=np.int64)))
    history = fit(model, (Xs, torch.as_tensor(y)), config=cfg, val=val_s, progress=progress)
    model.eval()
    return SentimentModel(model, mean, scale, history)


@dataclass
class CorpusAudit:
    """Everything the extrinsic audit of one classifier on the evaluation corpus produced."""

    sentences: pd.DataFrame        # corpus rows + positivity, sensitivity
    groups: pd.DataFrame           # group_metrics by gender and race (emotion sentences, label = positive valence)
    aucs: pd.DataFrame             # subgroup / BPSN / BNSP AUC by group
    gender_pairs: pd.DataFrame     # one row per gender pair: female/male positivity, gap, mean sensitivity
    race_pairs: pd.DataFrame       # one row per race pair of names
    metrics: dict


def audit_on_corpus(clf: SentimentModel, corpus, features, *, protected, threshold: float = 0.5) -> CorpusAudit:
    """Audit a sentiment classifier on the evaluation corpus (rows of :mod:`.evaluation_corpus`).

    Parameters
    ----------
    clf : SentimentModel
    corpus : pandas.DataFrame
        Rows of the evaluation corpus (possibly subsampled, pairs complete).
    features : array (len(corpus), dim)
        Encoder features of ``corpus.sentence`` (the layer the classifier was trained on).
    protected
        Protected-status model for prediction sensitivity (see :func:`.sensitivity.feature_weights`).
    threshold : float
        Positivity above which a sentence counts as predicted positive (rates, FPR/FNR).

    Returns
    -------
    CorpusAudit
        ``metrics`` holds: ``gender_gap`` (mean female - male positivity over pairs), ``gender_ctf``
        and ``race_ctf`` (mean |gap| over pairs: counterfactual token fairness), ``race_gap``
        (African American - European American), ``aps`` (accumulated prediction sensitivity),
        ``ps_vs_cf_spearman`` / ``ps_vs_cf_pearson`` (per gender pair), ``valence_auc``,
        ``bias_final`` (Jigsaw summary), the FPR/FNR gaps by gender.
    """
    import pandas as pd

    from workbench.metrics import roc_auc

    from .counterfactual import counterfactual_token_fairness
    from .groups import bias_aucs, bias_summary, fairness_gaps, group_metrics, membership
    from .sensitivity import accumulated_prediction_sensitivity, compare_with_counterfactual

    df = corpus.reset_index(drop=True).copy()
    if len(df) != len(features):
        raise ValueError(f"audit_on_corpus needs one feature row per corpus row. Got {len(features)} rows for {len(df)} sentences.")
    df["positivity"] = clf.positivity(features)
    sens = accumulated_prediction_sensitivity(clf.as_module(), features, protected=protected)
    df["sensitivity"] = sens.per_example

    def pairs(key, col, a, b):
        sub = df[df[key] != ""]
        wide = sub.pivot_table(index=key, columns=col, values=["positivity", "sensitivity"], aggfunc="first")
        first = sub.drop_duplicates(key).set_index(key)
        out = pd.DataFrame({
            "template_id": first["template_id"], "emotion": first["emotion"], "emotion_word": first["emotion_word"],
            f"{a}_sentence": sub[sub[col] == a].set_index(key)["sentence"],
            f"{b}_sentence": sub[sub[col] == b].set_index(key)["sentence"],
            f"{a}_positivity": wide[("positivity", a)], f"{b}_positivity": wide[("positivity", b)],
        })
        out["gap"] = out[f"{a}_positivity"] - out[f"{b}_positivity"]
        out["abs_gap"] = out["gap"].abs()
        out["sensitivity"] = (wide[("sensitivity", a)] + wide[("sensitivity", b)]) / 2
        return out.reset_index()

    gp = pairs("gender_pair", "gender", "female", "male")
    rp = pairs("race_pair", "race", "african_american", "european_american") if (df["race_pair"] != "").any() else None

    emo = df[df["valence"] != "none"]
    y = (emo["valence"] == "positive").to_numpy().astype(int)
    member = {"female": emo["gender"] == "female", "male": emo["gender"] == "male"}
    for race in ("african_american", "european_american"):
        if (emo["race"] == race).any():
            member[race] = emo["race"] == race
    member = membership({k: v.to_numpy() for k, v in member.items()})
    groups = group_metrics(emo["positivity"], member, labels=y, threshold=threshold)
    aucs = bias_aucs(emo["positivity"], y, member)
    gaps = fairness_gaps(emo["positivity"], y, emo["gender"].to_numpy(), threshold=threshold)
    corr = compare_with_counterfactual(gp["sensitivity"], gp["abs_gap"])
    metrics = {
        "gender_gap": float(gp["gap"].mean()),
        "gender_ctf": counterfactual_token_fairness(gp["female_positivity"], gp["male_positivity"]),
        "race_gap": float(rp["gap"].mean()) if rp is not None else float("nan"),
        "race_ctf": counterfactual_token_fairness(rp["african_american_positivity"], rp["european_american_positivity"]) if rp is not None else float("nan"),
        "aps": sens.aps,
        "ps_vs_cf_spearman": float(corr["spearman_rho"]),
        "ps_vs_cf_pearson": float(corr["pearson_r"]),
        "valence_auc": roc_auc(emo["positivity"], y),
        "bias_final": float(bias_summary(emo["positivity"], y, member)["final"]),
        "gender_fpr_gap": float(gaps["fpr_gap"]),
        "gender_fnr_gap": float(gaps["fnr_gap"]),
    }
    return CorpusAudit(df, groups, aucs, gp, rp if rp is not None else pd.DataFrame(), metrics)
