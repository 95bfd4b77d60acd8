"""Notebook 05's extrinsic bias study: tweets and the templated evaluation corpus (:func:`prepare_extrinsic_data`),
their MiniLM features at several layers (:func:`encode_extrinsic_features`), a WEAT effect size per layer
(:func:`intrinsic_by_layer`), the layer x {baseline, CDA} train-and-audit loop (:func:`audit_layers`), the
intrinsic-vs-extrinsic correlations (:func:`intrinsic_vs_extrinsic`) and the run record
(:func:`extrinsic_study_record`)."""
from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from workbench.results import metric_key
from workbench.validation import Because, InstanceOf, Interval, Options, Seq, check, check_fields

from ._common import config_parameters
from .intrinsic import ENCODER_DEPTH

__all__ = [
    "ExtrinsicStudyConfig",
    "ExtrinsicData",
    "TextFeatures",
    "prepare_extrinsic_data",
    "encode_extrinsic_features",
    "intrinsic_by_layer",
    "audit_layers",
    "intrinsic_vs_extrinsic",
    "extrinsic_study_metrics",
    "extrinsic_study_record",
    "extrinsic_finding",
    "VARIANTS",
]

#: Training variants of the sentiment head: the original tweets, or with counterfactual (gender-swapped) copies.
VARIANTS = ("baseline", "cda")
_COUNT = Interval(int, 1, None)
#: Hidden layers of the encoder of this study (MiniLM): 0 is the embedding layer, 6 the last block.
_LAYER = Interval(int, 0, ENCODER_DEPTH["minilm"])


@dataclass(frozen=True)
class ExtrinsicStudyConfig:
    """Notebook 05's experiment.

    Parameters
    ----------
    n_tweets : int
        Stratified sample of the tweets (80% train, 20% test).
    layers : sequence of int
        MiniLM hidden layers compared, each in [0, 6] (0 is the embedding layer, 6 the last).
    main_layer : int
        The layer the detailed figures use; one of ``layers``.
    hidden : sequence of int
        Hidden sizes of the sentiment head (empty: multinomial logistic regression).
    epochs, lr
        Training of the head.
    words_per_emotion, noun_phrases, names_per_group : int
        Size of the evaluation corpus (:func:`~workbench.fairness.evaluation_corpus.subsample_corpus`).
    n_top : int
        Rows of the "most sensitive examples" tables.
    seed : int

    Examples
    --------
    >>> ExtrinsicStudyConfig(layers=[4, 6], hidden=[64]).hidden
    (64,)
    >>> ExtrinsicStudyConfig(layers=[2, 4], main_layer=6)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'main_layer' parameter of ExtrinsicStudyConfig must be one of (2, 4) (its 'layers'). Got 6 instead.
    >>> ExtrinsicStudyConfig(layers=[6, 9])
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'layers' parameter of ExtrinsicStudyConfig must be a non-empty list or tuple of an int in [0, 6]. Got [6, 9] instead.
    """

    n_tweets: int = 3000
    layers: tuple = (2, 4, 6)
    main_layer: int = 6
    hidden: tuple = ()
    epochs: int = 30
    lr: float = 0.003
    words_per_emotion: int = 3
    noun_phrases: int = 10
    names_per_group: int = 5
    n_top: int = 10
    seed: int = 0

    def __post_init__(self):
        check_fields(self, n_tweets=Interval(int, 10, None), layers=Seq(_LAYER, min_len=1), hidden=Seq(_COUNT),
                     epochs=_COUNT, lr=Interval(float, 0, None, closed="neither"), words_per_emotion=Interval(int, 1, 5),
                     noun_phrases=Interval(int, 1, 10), names_per_group=Interval(int, 1, 10), n_top=_COUNT,
                     seed=Interval(int, 0, None))
        check_fields(self, main_layer=Because(Options(tuple(self.layers)), "its 'layers'"))


@dataclass
class ExtrinsicData:
    """The texts of the study: ``tweets`` (with ``label_id``), ``train_idx`` / ``test_idx`` (rows of ``tweets``),
    ``train_aug`` (training tweets plus counterfactual copies, column ``source``), ``test_tweets``, ``test_cf``
    (held-out tweets that mention a gendered term, with their ``counterfactual``), the evaluation ``corpus`` and the
    word sets of the intrinsic test (``female_words``, ``male_words``, ``positive_words``, ``negative_words``)."""

    tweets: pd.DataFrame
    train_idx: np.ndarray
    test_idx: np.ndarray
    train_aug: pd.DataFrame
    test_tweets: pd.DataFrame
    test_cf: pd.DataFrame
    corpus: pd.DataFrame
    lexicon: object
    words: dict = field(default_factory=dict)

    def train_rows(self, variant: str) -> pd.DataFrame:
        """Training texts and labels of a variant: ``"baseline"`` (original tweets) or ``"cda"`` (with copies)."""
        check(variant, Options(VARIANTS), name="variant", owner="ExtrinsicData.train_rows")
        return self.train_aug if variant == "cda" else self.train_aug[self.train_aug["source"] == "original"]

    def summary(self) -> str:
        n_cf = int((self.train_aug["source"] == "counterfactual").sum())
        return (f"{len(self.train_idx)} training tweets (+{n_cf} counterfactual copies for CDA), {len(self.test_idx)} test tweets "
                f"of which {len(self.test_cf)} mention a gendered term; {len(self.corpus)} corpus sentences")


def prepare_extrinsic_data(config: ExtrinsicStudyConfig) -> ExtrinsicData:
    """Load and split the tweets, build the CDA training set and the held-out counterfactual tweets, subsample the
    evaluation corpus and pick the intrinsic test's word sets (female/male person words of the corpus; positive =
    joy words, negative = anger, fear and sadness words).

    Examples
    --------
    >>> data = prepare_extrinsic_data(ExtrinsicStudyConfig(n_tweets=50, words_per_emotion=1, noun_phrases=1, names_per_group=1))
    >>> len(data.train_idx), len(data.test_idx), sorted(data.words)
    (40, 10, ['female_words', 'male_words', 'negative_words', 'positive_words'])
    """
    from sklearn.model_selection import train_test_split

    from workbench.datasets import load_tweets

    from ..counterfactual import counterfactual_augment, counterfactual_texts, gender_lexicon
    from ..evaluation_corpus import EMOTION_SITUATION_WORDS, EMOTION_STATE_WORDS, load_evaluation_corpus, subsample_corpus

    check(config, InstanceOf(ExtrinsicStudyConfig), name="config", owner="prepare_extrinsic_data")
    tweets = load_tweets(n=config.n_tweets, seed=config.seed).reset_index(drop=True)
    train_idx, test_idx = train_test_split(np.arange(len(tweets)), test_size=0.2, random_state=config.seed, stratify=tweets["label_id"])
    lexicon = gender_lexicon()
    train_aug = counterfactual_augment(tweets["text"].iloc[train_idx].tolist(), tweets["label_id"].iloc[train_idx].to_numpy(),
                                       lexicon=lexicon)
    test_tweets = tweets.iloc[test_idx].reset_index(drop=True)
    test_cf = counterfactual_texts(test_tweets["text"].tolist(), lexicon=lexicon)
    test_cf = test_cf[test_cf["changed"]].reset_index(drop=True)
    corpus = subsample_corpus(load_evaluation_corpus(), words_per_emotion=config.words_per_emotion, noun_phrases=config.noun_phrases,
                              names_per_group=config.names_per_group)
    k = config.words_per_emotion
    emotion_words = {e: sorted(set(EMOTION_STATE_WORDS[e][:k] + EMOTION_SITUATION_WORDS[e][:k])) for e in EMOTION_STATE_WORDS}
    words = {"female_words": sorted(set(corpus.loc[corpus.gender == "female", "person"])),
             "male_words": sorted(set(corpus.loc[corpus.gender == "male", "person"])),
             "positive_words": emotion_words["joy"],
             "negative_words": emotion_words["anger"] + emotion_words["fear"] + emotion_words["sadness"]}
    return ExtrinsicData(tweets=tweets, train_idx=train_idx, test_idx=test_idx, train_aug=train_aug, test_tweets=test_tweets,
                         test_cf=test_cf, corpus=corpus, lexicon=lexicon, words=words)


class TextFeatures:
    """Encoder features of named parts of the study's texts, looked up by text.

    Each part is encoded (and cached on disk) on its own with
    :func:`~workbench.datasets.encoders.encode_layers`, so changing one part re-encodes only that part; a text found
    in several parts takes its features from the first. ``seconds``: the time encoding (or reading the cache) took.
    (Loading the encoder takes seconds, so this class is exercised in ``tests/fairness/test_studies.py``.)
    """

    def __init__(self, parts: dict, *, layers: Sequence[int], progress: bool | None = None):
        from workbench.datasets.encoders import encode_layers

        self.layers = check(layers, Seq(Interval(int, None, None), min_len=1), name="layers", owner="TextFeatures")
        self.parts = {name: list(texts) for name, texts in parts.items()}
        start = time.perf_counter()
        self._encoded = {name: encode_layers(texts, layers=list(self.layers), progress=progress)
                         for name, texts in self.parts.items() if texts}
        self.seconds = time.perf_counter() - start
        self._row_of: dict = {}
        for name, texts in self.parts.items():
            for i, text in enumerate(texts):
                self._row_of.setdefault(text, (name, i))

    @property
    def n_texts(self) -> int:
        return sum(map(len, self.parts.values()))

    def __call__(self, layer: int, texts) -> np.ndarray:
        """Features of ``texts`` (an iterable of strings, each in some part) at ``layer``: array (len(texts), dim)."""
        layer = check(layer, Options(self.layers), name="layer", owner="TextFeatures")
        missing = [t for t in texts if t not in self._row_of]
        if missing:
            raise ValueError(f"TextFeatures has no features of {len(missing)} text(s), e.g. {missing[0]!r}; encode them as a part first.")
        return np.stack([self._encoded[self._row_of[t][0]][layer][self._row_of[t][1]] for t in texts])


def encode_extrinsic_features(data: ExtrinsicData, *, layers: Sequence[int], progress: bool | None = None) -> TextFeatures:
    """MiniLM features of every text of the study, by part: ``tweets``, ``counterfactual tweets`` (the CDA copies and
    the held-out swaps), ``corpus`` and ``words`` (the intrinsic test's words, each on its own)."""
    w = data.words
    parts = {
        "tweets": data.tweets["text"].tolist(),
        "counterfactual tweets": sorted(set(data.train_aug.loc[data.train_aug.source == "counterfactual", "text"]) | set(data.test_cf["counterfactual"])),
        "corpus": data.corpus["sentence"].tolist(),
        "words": w["female_words"] + w["male_words"] + w["positive_words"] + w["negative_words"],
    }
    return TextFeatures(parts, layers=layers, progress=progress)


def intrinsic_by_layer(features: TextFeatures, data: ExtrinsicData) -> pd.Series:
    """WEAT effect size per layer with X = female person words, Y = male person words, A = positive (joy) words,
    B = negative words (:func:`~workbench.fairness.association.weat_effect_size`); d > 0: female words sit closer to
    positive words than male words do."""
    from ..association import weat_effect_size

    w = data.words
    return pd.Series({layer: weat_effect_size(features(layer, w["female_words"]), features(layer, w["male_words"]),
                                              features(layer, w["positive_words"]), features(layer, w["negative_words"]))
                      for layer in features.layers}, name="WEAT d (female~positive)").rename_axis("layer")


def audit_layers(data: ExtrinsicData, features: TextFeatures, *, config: ExtrinsicStudyConfig, intrinsic: pd.Series,
                 progress: bool = False) -> tuple[dict, pd.DataFrame]:
    """For every layer: a protected-status (gender) probe on the corpus features, then for each variant of
    :data:`VARIANTS` a sentiment head trained on the tweets and audited on the corpus
    (:func:`~workbench.fairness.classifier.audit_on_corpus`), plus the counterfactual gap on held-out tweets.

    Returns
    -------
    (audits, table)
        ``audits``: ``{(layer, variant): CorpusAudit}``; ``table``: one row per (layer, variant) with ``accuracy``
        (held-out tweets), ``intrinsic_weat``, ``gender_probe_accuracy``, the audit's metrics and, when some held-out
        tweet mentions a gendered term, ``tweets_ctf`` and ``tweets_gap_mean``.
    """
    from ..classifier import audit_on_corpus, train_sentiment_classifier
    from ..counterfactual import counterfactual_token_fairness
    from ..sensitivity import fit_protected_model

    audits, rows = {}, []
    test = data.test_tweets
    for layer in config.layers:
        X_corpus = features(layer, data.corpus["sentence"])
        protected = fit_protected_model(X_corpus, data.corpus["gender"], seed=config.seed)
        probe_acc = protected.score(X_corpus, data.corpus["gender"])
        for variant in VARIANTS:
            train = data.train_rows(variant)
            clf = train_sentiment_classifier(features(layer, train["text"]), train["label"].to_numpy(), hidden=config.hidden,
                                             epochs=config.epochs, lr=config.lr, seed=config.seed, progress=progress,
                                             val=(features(layer, test["text"]), test["label_id"].to_numpy()))
            audit = audit_on_corpus(clf, data.corpus, X_corpus, protected=protected)
            audits[(layer, variant)] = audit
            row = {"layer": layer, "variant": variant, "accuracy": clf.history.final["val_accuracy"],
                   "intrinsic_weat": intrinsic[layer], "gender_probe_accuracy": probe_acc, **audit.metrics}
            if len(data.test_cf):
                s = clf.positivity(features(layer, data.test_cf["text"]))
                c = clf.positivity(features(layer, data.test_cf["counterfactual"]))
                row["tweets_ctf"] = counterfactual_token_fairness(s, c)
                row["tweets_gap_mean"] = float(np.mean(s - c))
            rows.append(row)
    return audits, pd.DataFrame(rows)


def intrinsic_vs_extrinsic(table: pd.DataFrame, *, columns: Sequence[str] = ("gender_gap", "gender_ctf", "aps")) -> pd.Series:
    """Spearman correlation of the intrinsic WEAT d with each extrinsic column over the (layer, variant) rows of
    :func:`audit_layers`'s table (NaN with fewer than three rows).

    Examples
    --------
    >>> t = pd.DataFrame({"intrinsic_weat": [0.1, 0.2, 0.3], "gender_gap": [1.0, 3.0, 2.0], "gender_ctf": [3, 2, 1], "aps": [1, 2, 3]})
    >>> intrinsic_vs_extrinsic(t).round(2).tolist()
    [0.5, -1.0, 1.0]
    """
    return pd.Series({col: table[["intrinsic_weat", col]].corr(method="spearman").iloc[0, 1] if len(table) > 2 else float("nan")
                      for col in columns}, name="Spearman with intrinsic WEAT d")


_LAYER_ONLY = ("intrinsic_weat", "gender_probe_accuracy")


def extrinsic_study_metrics(table: pd.DataFrame, *, main_layer: int, correlations: pd.Series) -> dict:
    """Flat metrics of notebook 05 for a run record, at ``main_layer``: ``intrinsic_weat`` and
    ``gender_probe_accuracy`` (they depend on the layer only), ``baseline/<metric>`` and ``cda/<metric>`` for every
    other column of the table, and ``intrinsic_vs_extrinsic/<column>_spearman``.

    Examples
    --------
    >>> t = pd.DataFrame({"layer": [6, 6], "variant": ["baseline", "cda"], "intrinsic_weat": [-0.2, -0.2],
    ...                   "gender_probe_accuracy": [1.0, 1.0], "gender_gap": [-0.1, -0.07]})
    >>> extrinsic_study_metrics(t, main_layer=6, correlations=pd.Series({"gender_gap": 0.5}))
    {'intrinsic_weat': -0.2, 'gender_probe_accuracy': 1.0, 'baseline/gender_gap': -0.1, 'cda/gender_gap': -0.07, 'intrinsic_vs_extrinsic/gender_gap_spearman': 0.5}
    """
    main_layer = check(main_layer, Options(tuple(sorted(int(v) for v in set(table["layer"])))), name="main_layer",
                       owner="extrinsic_study_metrics")
    at = table[table["layer"] == main_layer].set_index("variant")
    first = at.iloc[0]
    metrics = {k: float(first[k]) for k in _LAYER_ONLY}
    for variant, row in at.iterrows():
        for k, v in row.items():
            if k not in ("layer", *_LAYER_ONLY):
                metrics[metric_key(variant, k)] = float(v)
    metrics.update({metric_key("intrinsic_vs_extrinsic", f"{k}_spearman"): float(v) for k, v in correlations.items()})
    return metrics


def extrinsic_study_record(config: ExtrinsicStudyConfig, *, table: pd.DataFrame, correlations: pd.Series,
                           timings: dict | None = None) -> dict:
    """Keyword arguments of :func:`workbench.results.save_record` for notebook 05: ``seed``, ``parameters``,
    ``config``, ``metrics`` (:func:`extrinsic_study_metrics`), ``timings`` and ``tables`` (``layers``: the whole
    (layer, variant) table)."""
    metrics = extrinsic_study_metrics(table, main_layer=config.main_layer, correlations=correlations)
    return {"seed": config.seed, "parameters": config_parameters(config), "config": config, "metrics": metrics,
            "timings": dict(timings or {}), "tables": {"layers": table},
            "extra": {"finding": extrinsic_finding(metrics, main_layer=config.main_layer), "headline_figure": "gender_gap",
                      "headline_metric": "baseline/gender_gap"}}


def extrinsic_finding(metrics: dict, *, main_layer: int) -> str:
    """One sentence for the report: the baseline classifier's gender (and race) gap at the main layer.

    Examples
    --------
    >>> extrinsic_finding({"baseline/gender_gap": -0.098, "baseline/gender_ctf": 0.161, "baseline/race_gap": -0.087}, main_layer=6)
    'At layer 6 the classifier scores sentences about women 0.098 lower than the same sentences about men (CTF 0.161); African American names score 0.087 lower than European American ones.'
    """
    gap, race = metrics["baseline/gender_gap"], metrics.get("baseline/race_gap", float("nan"))
    text = (f"At layer {main_layer} the classifier scores sentences about women {abs(gap):.3f} {'lower' if gap < 0 else 'higher'} "
            f"than the same sentences about men (CTF {metrics['baseline/gender_ctf']:.3f})")
    if race == race:  # not NaN: the corpus sample has names
        text += f"; African American names score {abs(race):.3f} {'lower' if race < 0 else 'higher'} than European American ones"
    return text + "."
