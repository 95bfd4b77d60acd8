"""Notebook 04's intrinsic bias study: contexts for every word of the WEAT tests (:func:`gather_contexts`), static
WEAT and SEAT baselines (:func:`baseline_tests`), CEAT for every (test, encoder, layer) (:func:`ceat_by_layer`),
CEAT's precision against its number of samples (:func:`samples_study`), the comparison with Caliskan et al.'s
GloVe effects (:func:`literature_comparison`) and the run record (:func:`intrinsic_study_record`)."""
from __future__ import annotations

import time
import warnings
from dataclasses import dataclass, field
from typing import Sequence

import numpy as np
import pandas as pd

from workbench.results import metric_key
from workbench.validation import Boolean, InstanceOf, Interval, Options, Seq, check, check_fields, field_defaults, fill_group

from ._common import config_parameters

__all__ = [
    "IntrinsicStudyConfig",
    "INTRINSIC_GROUPS",
    "intrinsic_study_config",
    "ContextSearch",
    "CeatStudy",
    "CALISKAN_2017_GLOVE",
    "ENCODER_DEPTH",
    "test_words",
    "gather_contexts",
    "baseline_tests",
    "ceat_by_layer",
    "samples_study",
    "literature_comparison",
    "sign_agreement",
    "intrinsic_study_metrics",
    "intrinsic_study_record",
    "intrinsic_finding",
]

#: Caliskan et al. (2017), Table 1: WEAT effect sizes on GloVe (Common Crawl); all had p < 1e-2 or smaller.
CALISKAN_2017_GLOVE = {"C1": 1.50, "C2": 1.53, "C3": 1.41, "C4": 1.50, "C5": 1.28,
                       "C6": 1.81, "C7": 1.06, "C8": 1.24, "C9": 1.38, "C10": 1.21}
#: Number of transformer layers of each encoder (layer 0 is the input embeddings).
ENCODER_DEPTH = {"minilm": 6, "smollm2": 30}
_POOLINGS = ("mean", "first", "last")
_COUNT = Interval(int, 1, None)


@dataclass(frozen=True)
class IntrinsicStudyConfig:
    """Notebook 04's experiment.

    Parameters
    ----------
    tests : sequence of str
        WEAT tests ("C1" .. "C10").
    encoders : sequence of {"minilm", "smollm2"}
    minilm_layers, smollm2_layers : sequence of int
        Layers of each encoder (0 = input embeddings; MiniLM has 6 layers, SmolLM2 30).
    minilm_pooling, smollm2_pooling : {"mean", "first", "last"}
        How a word's sub-token vectors are pooled.
    sources : sequence of {"tweets", "shakespeare", "templates"}
        Where contexts come from.
    max_corpus_contexts, max_chars, n_templates, min_contexts : int
        :func:`~workbench.fairness.contexts.find_contexts`'s ``max_per_word``, ``max_chars``, ``n_templates`` and
        ``min_per_word``.
    n_samples : int
        CEAT samples N.
    variance : {"association", "cohen"}
    run_seat : bool
        Also run static WEAT and SEAT.
    n_seat_templates : int
        SEAT templates used (at most 6).
    n_permutations : int
        Permutations of the WEAT/SEAT p-values.
    seed : int

    Examples
    --------
    >>> cfg = IntrinsicStudyConfig(encoders=["minilm"], minilm_layers=[0, 6])
    >>> cfg.layers("minilm"), cfg.pooling("smollm2")
    ((0, 6), 'last')
    >>> IntrinsicStudyConfig(encoders=["bert"])
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'encoders' parameter of IntrinsicStudyConfig must be a non-empty list or tuple of one of ('minilm', 'smollm2'). Got ['bert'] instead.
    """

    tests: tuple = ("C1", "C2", "C3", "C4", "C5", "C6", "C7", "C8", "C9", "C10")
    encoders: tuple = ("minilm", "smollm2")
    minilm_layers: tuple = (0, 1, 2, 3, 4, 5, 6)
    smollm2_layers: tuple = (0, 5, 10, 15, 20, 25, 30)
    minilm_pooling: str = "mean"
    smollm2_pooling: str = "last"
    sources: tuple = ("tweets", "shakespeare", "templates")
    max_corpus_contexts: int = 2
    max_chars: int = 150
    n_templates: int = 3
    min_contexts: int = 3
    n_samples: int = 1000
    variance: str = "association"
    run_seat: bool = True
    n_seat_templates: int = 2
    n_permutations: int = 10000
    seed: int = 0

    def __post_init__(self):
        from ..contexts import CONTEXT_SOURCES

        check_fields(self, tests=Seq(Options(tuple(CALISKAN_2017_GLOVE)), min_len=1), encoders=Seq(Options(tuple(ENCODER_DEPTH)), min_len=1),
                     minilm_layers=Seq(Interval(int, 0, ENCODER_DEPTH["minilm"]), min_len=1),
                     smollm2_layers=Seq(Interval(int, 0, ENCODER_DEPTH["smollm2"]), min_len=1),
                     minilm_pooling=Options(_POOLINGS), smollm2_pooling=Options(_POOLINGS),
                     sources=Seq(Options(tuple(CONTEXT_SOURCES)), min_len=1), max_corpus_contexts=Interval(int, 0, None),
                     max_chars=_COUNT, n_templates=Interval(int, 0, None), min_contexts=Interval(int, 0, None), n_samples=_COUNT,
                     variance=Options(("association", "cohen")), run_seat=Boolean(), n_seat_templates=Interval(int, 1, 6),
                     n_permutations=_COUNT, seed=Interval(int, 0, None))

    def layers(self, encoder: str) -> tuple:
        """The layers studied on ``encoder``."""
        check(encoder, Options(tuple(ENCODER_DEPTH)), name="encoder", owner="IntrinsicStudyConfig.layers")
        return getattr(self, f"{encoder}_layers")

    def pooling(self, encoder: str) -> str:
        """How ``encoder``'s sub-token vectors are pooled into a word vector."""
        check(encoder, Options(tuple(ENCODER_DEPTH)), name="encoder", owner="IntrinsicStudyConfig.pooling")
        return getattr(self, f"{encoder}_pooling")


def test_words(tests) -> list:
    """The distinct words of the tests' four word sets, in order of first appearance.

    Examples
    --------
    >>> from workbench.datasets import load_weat_tests
    >>> len(test_words(load_weat_tests(["C1"])))
    100
    """
    return list(dict.fromkeys(w for t in tests.values() for w in (*t.X, *t.Y, *t.A, *t.B)))


test_words.__test__ = False  # not a pytest test despite its name


#: Notebook 04's grouped parameters (dict literals), each key an :class:`IntrinsicStudyConfig` field with its default;
#: see :func:`intrinsic_study_config`.
INTRINSIC_GROUPS = {
    "CONTEXTS": field_defaults(IntrinsicStudyConfig, ("max_corpus_contexts", "max_chars", "n_templates", "min_contexts")),
    "STATISTICS": field_defaults(IntrinsicStudyConfig, ("variance", "n_permutations")),
}


def intrinsic_study_config(*, contexts: dict | None = None, statistics: dict | None = None, **fields) -> IntrinsicStudyConfig:
    """An :class:`IntrinsicStudyConfig` from notebook 04's parameters: plain ``fields`` plus the grouped dicts
    ``CONTEXTS`` and ``STATISTICS`` (:data:`INTRINSIC_GROUPS`), each of which may hold only *some* of its keys (the
    rest keep their defaults), so ``CONTEXTS = {"max_corpus_contexts": 5}`` changes one value. Unknown keys are an
    error naming the parameter and the accepted keys; the values are checked by the config.

    Examples
    --------
    >>> cfg = intrinsic_study_config(encoders=["minilm"], contexts={"max_chars": 80}, statistics={"variance": "cohen"})
    >>> cfg.max_chars, cfg.max_corpus_contexts, cfg.variance, cfg.n_permutations
    (80, 2, 'cohen', 10000)
    >>> intrinsic_study_config(contexts={"max_per_word": 3})
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'CONTEXTS' parameter of notebook 04_intrinsic_bias_ceat must be a dict with keys among ['max_chars', 'max_corpus_contexts', 'min_contexts', 'n_templates']. Got {'max_per_word': 3} instead.
    """
    for name, given in {"CONTEXTS": contexts, "STATISTICS": statistics}.items():
        fields.update(fill_group(given, INTRINSIC_GROUPS[name], name=name, owner="notebook 04_intrinsic_bias_ceat"))
    return IntrinsicStudyConfig(**fields)


@dataclass
class ContextSearch:
    """Result of :func:`gather_contexts`: the ``contexts``, their ``counts`` per word and source, the ``warnings``
    raised while searching (as text) and the ``seconds`` it took."""

    contexts: object
    counts: pd.DataFrame
    warnings: list = field(default_factory=list)
    seconds: float = 0.0

    @property
    def n_without_corpus_context(self) -> int:
        """Words whose every context comes from the templates."""
        return int(((self.counts.n_contexts - self.counts.templates) == 0).sum())

    def richest_word(self, *, max_chars: int = 120) -> tuple[str, pd.DataFrame]:
        """The word with the most corpus (tweets + Shakespeare) contexts, and a table of its contexts (``source``,
        ``sentence`` cut at ``max_chars``)."""
        word = max(self.counts.index, key=lambda w: self.counts.loc[w, "tweets"] + self.counts.loc[w, "shakespeare"])
        return word, pd.DataFrame({"source": self.contexts.sources[word], "sentence": [s[:max_chars] for s in self.contexts.sentences[word]]})


def gather_contexts(words: Sequence[str], *, config: IntrinsicStudyConfig) -> ContextSearch:
    """Sentences that contain each word (:func:`~workbench.fairness.contexts.find_contexts` with the config's sources
    and limits); the warnings about words with too few contexts are collected, not printed."""
    from ..contexts import find_contexts

    check(config, InstanceOf(IntrinsicStudyConfig), name="config", owner="gather_contexts")
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        contexts = find_contexts(list(words), sources=config.sources, max_per_word=config.max_corpus_contexts,
                                 min_per_word=config.min_contexts, n_templates=config.n_templates, max_chars=config.max_chars,
                                 seed=config.seed)
    return ContextSearch(contexts=contexts, counts=contexts.counts(), warnings=[str(w.message) for w in caught],
                         seconds=time.perf_counter() - start)


def baseline_tests(tests, *, config: IntrinsicStudyConfig) -> pd.DataFrame:
    """Static WEAT (layer 0, each word alone) and SEAT (last layer, bleached templates) of every test and encoder,
    with Caliskan et al.'s GloVe effect size; an empty table when ``config.run_seat`` is false.

    Returns
    -------
    pandas.DataFrame
        Columns ``test``, ``encoder``, ``static_d``, ``static_p``, ``seat_d``, ``seat_p``, ``glove_d_caliskan2017``.
    """
    from ..association import seat, static_weat
    from ..contexts import SEAT_TEMPLATES

    check(config, InstanceOf(IntrinsicStudyConfig), name="config", owner="baseline_tests")
    rows = []
    if config.run_seat:
        for enc in config.encoders:
            for name, t in tests.items():
                st = static_weat(t, encoder=enc, layer=0, n_permutations=config.n_permutations, seed=config.seed)
                se = seat(t, encoder=enc, layer=-1, templates=SEAT_TEMPLATES[:config.n_seat_templates],
                          n_permutations=config.n_permutations, seed=config.seed)
                rows.append({"test": name, "encoder": enc, "static_d": st.effect_size, "static_p": st.p_value,
                             "seat_d": se.effect_size, "seat_p": se.p_value, "glove_d_caliskan2017": CALISKAN_2017_GLOVE[name]})
    return pd.DataFrame(rows)


@dataclass
class CeatStudy:
    """Result of :func:`ceat_by_layer`: ``results`` by ``(test, encoder, layer)``
    (:class:`~workbench.fairness.association.CeatResult`), the tidy ``table`` (one row per result: its
    ``summary()`` and ``n_layers``, the encoder's depth) and the ``seconds`` of each encoder's embeddings."""

    results: dict
    table: pd.DataFrame
    seconds: dict = field(default_factory=dict)

    def last_layer(self, config: IntrinsicStudyConfig) -> list:
        """The results at each encoder's last studied layer, encoder by encoder."""
        return [self.results[(name, enc, config.layers(enc)[-1])] for enc in config.encoders for name in config.tests]


def _pools(contexts, words, *, encoder: str, config: IntrinsicStudyConfig, progress=None) -> dict:
    from ..contextual import word_pools

    return word_pools(contexts, words=words, encoder=encoder, layers=list(config.layers(encoder)), pooling=config.pooling(encoder),
                      progress=progress)


def ceat_by_layer(tests, contexts, *, words: Sequence[str], config: IntrinsicStudyConfig, progress: bool | None = None) -> CeatStudy:
    """CEAT of every test on every encoder and layer of the config. Each encoder embeds every (sentence, word) pair
    once for all its layers (cached on disk); each (test, layer) then draws ``config.n_samples`` samples."""
    from ..association import ceat

    check(config, InstanceOf(IntrinsicStudyConfig), name="config", owner="ceat_by_layer")
    results, rows, seconds = {}, [], {}
    for enc in config.encoders:
        start = time.perf_counter()
        pools = _pools(contexts, words, encoder=enc, config=config, progress=progress)
        seconds[enc] = time.perf_counter() - start
        for j, layer in enumerate(config.layers(enc)):
            layer_pools = {w: p[:, j] for w, p in pools.items()}
            for name, t in tests.items():
                r = ceat(t, encoder=enc, layer=layer, n_samples=config.n_samples, seed=config.seed, pooling=config.pooling(enc),
                         variance=config.variance, pools=layer_pools)
                results[(name, enc, layer)] = r
                rows.append({**r.summary(), "n_layers": ENCODER_DEPTH[enc]})
    return CeatStudy(results=results, table=pd.DataFrame(rows), seconds=seconds)


def samples_study(tests, contexts, *, words: Sequence[str], config: IntrinsicStudyConfig) -> pd.DataFrame:
    """The first test on the first encoder's last layer with N/10 (at least 10) and N samples: the combined effect,
    its standard error, p-value and tau² (the SE shrinks like 1/√N although the contexts are re-used)."""
    from ..association import ceat

    enc = config.encoders[0]
    layer = config.layers(enc)[-1]
    pools = {w: p[:, -1] for w, p in _pools(contexts, words, encoder=enc, config=config, progress=False).items()}
    rows = []
    for n in sorted({max(10, config.n_samples // 10), config.n_samples}):
        r = ceat(tests[config.tests[0]], encoder=enc, layer=layer, n_samples=n, seed=config.seed, pooling=config.pooling(enc),
                 variance=config.variance, pools=pools)
        rows.append({"N": n, "effect_size": r.effect_size, "se": r.se, "p_value": r.p_value, "tau2": r.tau2})
    return pd.DataFrame(rows)


def literature_comparison(table: pd.DataFrame, baseline: pd.DataFrame, *, config: IntrinsicStudyConfig) -> pd.DataFrame:
    """One row per test: CEAT's effect at each encoder's last layer (``ceat_d_<encoder>``), SEAT and static WEAT when
    they were run, and Caliskan et al.'s GloVe effect (``glove_d_caliskan2017``)."""
    last = table[table.apply(lambda r: r["layer"] == config.layers(r["encoder"])[-1], axis=1)]
    compare = last.pivot_table(index="test", columns="encoder", values="effect_size", sort=False).add_prefix("ceat_d_")
    if len(baseline):
        compare = compare.join(baseline.pivot_table(index="test", columns="encoder", values="seat_d", sort=False).add_prefix("seat_d_"))
        compare = compare.join(baseline.pivot_table(index="test", columns="encoder", values="static_d", sort=False).add_prefix("static_d_"))
    compare["glove_d_caliskan2017"] = [CALISKAN_2017_GLOVE[t] for t in compare.index]
    return compare


def sign_agreement(compare: pd.DataFrame, *, encoders: Sequence[str]) -> pd.DataFrame:
    """Per encoder: how many tests have the stereotype-congruent (positive) CEAT sign at the last layer, as all ten do
    for GloVe, and the mean |d| against GloVe's.

    Examples
    --------
    >>> c = pd.DataFrame({"ceat_d_minilm": [0.5, -0.1], "glove_d_caliskan2017": [1.5, 1.2]}, index=["C1", "C2"])
    >>> sign_agreement(c, encoders=["minilm"]).round(2).to_dict("records")
    [{'encoder': 'minilm', 'n_positive': 1, 'n_tests': 2, 'mean_abs_d': 0.3, 'glove_mean_d': 1.35}]
    """
    return pd.DataFrame([{"encoder": enc, "n_positive": int((np.sign(compare[f"ceat_d_{enc}"]) == 1).sum()), "n_tests": len(compare),
                          "mean_abs_d": float(compare[f"ceat_d_{enc}"].abs().mean()),
                          "glove_mean_d": float(compare["glove_d_caliskan2017"].mean())} for enc in encoders])


def intrinsic_study_metrics(results: dict, baseline: pd.DataFrame) -> dict:
    """Flat metrics of notebook 04 for a run record: ``ceat_d/<test>/<encoder>/layer_<n>`` and
    ``ceat_se/<test>/<encoder>/layer_<n>`` for every CEAT result; ``seat_d/<test>/<encoder>`` and
    ``static_d/<test>/<encoder>`` for every baseline row (test names lower-cased).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> r = SimpleNamespace(effect_size=0.7, se=0.01)
    >>> intrinsic_study_metrics({("C1", "minilm", 6): r}, pd.DataFrame())
    {'ceat_d/c1/minilm/layer_6': 0.7, 'ceat_se/c1/minilm/layer_6': 0.01}
    """
    metrics = {metric_key("ceat_d", t, enc, f"layer_{layer}"): float(r.effect_size) for (t, enc, layer), r in results.items()}
    metrics.update({metric_key("ceat_se", t, enc, f"layer_{layer}"): float(r.se) for (t, enc, layer), r in results.items()})
    for row in baseline.to_dict("records"):
        metrics[metric_key("seat_d", row["test"], row["encoder"])] = float(row["seat_d"])
        metrics[metric_key("static_d", row["test"], row["encoder"])] = float(row["static_d"])
    return metrics


def intrinsic_study_record(config: IntrinsicStudyConfig, *, ceat: CeatStudy, baseline: pd.DataFrame, search: ContextSearch) -> dict:
    """Keyword arguments of :func:`workbench.results.save_record` for notebook 04: ``seed``, ``parameters``,
    ``config``, ``metrics`` (:func:`intrinsic_study_metrics`), ``history`` (the CEAT table's rows), ``timings``,
    ``extra`` (contexts per word, the words with too few) and ``tables`` (``baseline`` when run)."""
    counts = search.counts
    return {"seed": config.seed, "parameters": config_parameters(config), "config": config,
            "metrics": intrinsic_study_metrics(ceat.results, baseline), "history": ceat.table.to_dict(orient="records"),
            "timings": {"contexts": search.seconds, **{f"embeddings_{k}": v for k, v in ceat.seconds.items()}},
            "extra": {"contexts_per_word": counts.n_contexts.to_dict(), "words_too_few": counts.index[counts.too_few].tolist(),
                      "finding": intrinsic_finding(ceat.results, config=config), "headline_figure": "ceat_by_layer"},
            "tables": {"baseline": baseline} if len(baseline) else {}}


def intrinsic_finding(results: dict, *, config: IntrinsicStudyConfig) -> str:
    """One sentence for the report: per encoder, how many tests have a positive CEAT effect at the last layer and
    the mean |d| (against 1.39 for GloVe WEAT in Caliskan et al. 2017).

    Examples
    --------
    >>> from types import SimpleNamespace
    >>> cfg = IntrinsicStudyConfig(tests=["C1", "C2"], encoders=["minilm"], minilm_layers=[6])
    >>> res = {("C1", "minilm", 6): SimpleNamespace(effect_size=1.2), ("C2", "minilm", 6): SimpleNamespace(effect_size=-0.4)}
    >>> intrinsic_finding(res, config=cfg)
    'CEAT at the last layer: minilm 1 of 2 tests stereotype-congruent (mean |d| 0.80); GloVe WEAT: mean d 1.52 on these tests.'
    """
    parts = []
    for enc in config.encoders:
        d = np.array([results[(t, enc, config.layers(enc)[-1])].effect_size for t in config.tests])
        parts.append(f"{enc} {int((d > 0).sum())} of {len(d)} tests stereotype-congruent (mean |d| {np.abs(d).mean():.2f})")
    glove = np.mean([CALISKAN_2017_GLOVE[t] for t in config.tests])
    return f"CEAT at the last layer: {'; '.join(parts)}; GloVe WEAT: mean d {glove:.2f} on these tests."
