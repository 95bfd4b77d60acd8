"""Study 08 as functions: validated config -> :func:`distillation_study` -> tidy tables -> run record.

Five models, the same seed and token budget for the four students:

=================  =============================================================================================
variant            what the student is trained on
=================  =============================================================================================
``teacher``        (not trained) SmolLM2-135M itself
``distilled``      plain distillation: the corpus passages, the teacher's distributions as they are
``cda``            counterfactual data augmentation: passages and gender-swapped copies (``cda_mode``)    
``perturbed``      the corpus passages, the teacher's probabilities swapped/equalised on gendered token pairs
``cda_perturbed``  both
=================  =============================================================================================

Every student starts from the same initialisation (``ceil(30 / keep_every)`` teacher layers chosen by
``layer_selection``, :func:`.student.student_layers`) and sees ``n_train``
rows of ``seq_len`` tokens per epoch, drawn from its own training set with the same seed.
"""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import numpy as np
import pandas as pd

from workbench.validation import Boolean, Interval, Options, Seq, check_fields, field_defaults, fill_group

__all__ = ["VARIANTS", "DistillationStudyConfig", "DistillationStudy", "distill_group", "distillation_study",
           "distillation_metrics", "distillation_record"]

#: Variant -> (uses CDA, uses teacher-probability perturbation); "teacher" is the undistilled reference.
VARIANTS = {"teacher": None, "distilled": (False, False), "cda": (True, False), "perturbed": (False, True),
            "cda_perturbed": (True, True)}


@dataclass(frozen=True)
class DistillationStudyConfig:
    """Everything :func:`distillation_study` needs.

    Corpus: ``sources`` of :func:`workbench.datasets.load_corpus`, at most ``max_documents`` per source, cut into
    passages of ``seq_len`` tokens; ``n_train`` training rows (the token budget is ``n_train * seq_len * epochs``),
    ``n_heldout`` held-out rows for perplexity. Distillation: student from ``ceil(n_layers / keep_every)`` teacher
    layers chosen by ``layer_selection`` ("ends" | "spread", :data:`.student.LAYER_SELECTIONS`), teacher
    top-``top_k`` cache, ``temperature``, ``alpha`` (weight of the KL term), AdamW ``lr``, ``batch_size``,
    ``epochs``; ``perturbation`` ("swap" | "equalize") and ``cda_mode`` ("one_sided" | "substitute" | "two_sided",
    :data:`.role_reversal.CDA_MODES`). Evaluation:
    ``n_professions`` prompt pairs, ``max_new_tokens`` sampled tokens, ``n_bootstrap`` resamples, ``n_tweets``
    tweets for the downstream head (0 skips the downstream audit), ``corpus_words`` emotion words per emotion of the
    evaluation corpus.

    Examples
    --------
    >>> DistillationStudyConfig(n_train=8).token_budget
    512
    >>> DistillationStudyConfig(perturbation="max")
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'perturbation' parameter of DistillationStudyConfig must be one of ('equalize', 'swap'). Got 'max' instead.
    """

    sources: tuple = ("xsum", "wiki", "imdb")
    max_documents: int | None = 300
    seq_len: int = 64
    n_train: int = 64
    n_heldout: int = 16
    epochs: int = 1
    keep_every: int = 2
    layer_selection: str = "ends"
    top_k: int = 32
    temperature: float = 2.0
    alpha: float = 0.5
    lr: float = 1e-3
    batch_size: int = 8
    perturbation: str = "swap"
    cda_mode: str = "one_sided"
    variants: tuple = tuple(VARIANTS)
    n_professions: int = 20
    max_new_tokens: int = 12
    n_bootstrap: int = 1000
    n_tweets: int = 100
    corpus_words: int = 1
    seed: int = 0
    progress: bool = False

    def __post_init__(self):
        from workbench.datasets.corpus import CORPUS_SOURCES

        from .role_reversal import CDA_MODES
        from .student import LAYER_SELECTIONS

        sources = [self.sources] if isinstance(self.sources, str) else list(self.sources)
        variants = [self.variants] if isinstance(self.variants, str) else list(self.variants)
        object.__setattr__(self, "sources", sources)
        object.__setattr__(self, "variants", variants)
        check_fields(self, sources=Seq(Options(set(CORPUS_SOURCES)), min_len=1),
                     max_documents=(Interval(int, 1, None), None), seq_len=Interval(int, 16, 512),
                     n_train=Interval(int, 1, None), n_heldout=Interval(int, 1, None), epochs=Interval(int, 1, None),
                     keep_every=Interval(int, 1, None), layer_selection=Options(set(LAYER_SELECTIONS)),
                     top_k=Interval(int, 1, None),
                     temperature=Interval(float, 0, None, closed="neither"), alpha=Interval(float, 0, 1),
                     lr=Interval(float, 0, None, closed="neither"), batch_size=Interval(int, 1, None),
                     perturbation=Options({"swap", "equalize"}), cda_mode=Options(set(CDA_MODES)),
                     variants=Seq(Options(set(VARIANTS)), min_len=1), n_professions=Interval(int, 1, None),
                     max_new_tokens=Interval(int, 1, None), n_bootstrap=Interval(int, 1, None),
                     n_tweets=Interval(int, 0, None), corpus_words=Interval(int, 0, 5), seed=Interval(int, 0, None),
                     progress=Boolean())
        if 0 < self.n_tweets < 30:
            raise ValueError(f"The 'n_tweets' parameter of DistillationStudyConfig must be 0 or >= 30. Got {self.n_tweets} instead.")

    @property
    def token_budget(self) -> int:
        """Token positions each student trains on (rows x length x epochs, padding included)."""
        return self.n_train * self.seq_len * self.epochs


def distill_group(value: dict | None) -> dict:
    """Notebook 08's ``DISTILL`` dict filled to all of ``temperature``, ``alpha`` and ``lr`` (a partial dict keeps
    the :class:`DistillationStudyConfig` defaults of the keys it leaves out; an unknown key is named), ready for
    ``DistillationStudyConfig(..., **distill_group(DISTILL))``.

    Examples
    --------
    >>> distill_group({"lr": 3e-4})
    {'temperature': 2.0, 'alpha': 0.5, 'lr': 0.0003}
    >>> distill_group({"temp": 1.0})
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'DISTILL' parameter of notebook 08_counterfactual_distillation must be a dict with keys among ['alpha', 'lr', 'temperature']. Got {'temp': 1.0} instead.
    """
    defaults = field_defaults(DistillationStudyConfig, ("temperature", "alpha", "lr"))
    return fill_group(value, defaults, name="DISTILL", owner="notebook 08_counterfactual_distillation")


@dataclass
class DistillationStudy:
    """What :func:`distillation_study` measured.

    Attributes
    ----------
    summary : pandas.DataFrame
        One row per model: ``model``, ``layers``, ``parameters``, ``perplexity``, the three generation gaps with
        ``*_low`` / ``*_high`` bounds, the neutral-prompt ``polarity_gap`` (male - female share of polar
        continuations, Gupta et al.'s measure, :func:`.polarity.polarity_gap`) with its bounds, ``male_polar_share``,
        ``female_polar_share``, ``train_tokens`` and, with a downstream audit, ``downstream_gender_gap``,
        ``downstream_gender_ctf``, ``downstream_valence_auc``.
    gaps : pandas.DataFrame
        :func:`.evaluate.generation_gaps` rows with a ``model`` column, plus one ``polarity_gap`` row per model
        (its ``n_pairs`` is the number of professions, the bootstrap's clusters).
    generations : pandas.DataFrame
        Every prompt's continuation and scores, with a ``model`` column.
    history : pandas.DataFrame
        Per-step ``loss``, ``kl``, ``lm``, ``tokens`` of every student (``model`` column).
    polarity : pandas.DataFrame
        Every neutral prompt's continuation (:func:`.polarity.neutral_prompts`) with its ``female_terms``,
        ``male_terms`` and ``polarity`` (:func:`.polarity.gender_polarity`), with a ``model`` column.
    timings : dict
        Seconds: ``teacher_cache_seconds`` (0 with a warm cache), ``train_seconds/<model>``, ``evaluate_seconds``.
    """

    config: DistillationStudyConfig
    summary: pd.DataFrame
    gaps: pd.DataFrame
    generations: pd.DataFrame
    history: pd.DataFrame
    timings: dict = field(default_factory=dict)
    polarity: pd.DataFrame | None = None
    cache_hits: dict = field(default_factory=dict)
    models: dict = field(default_factory=dict, repr=False)
    tokenizer: object = field(default=None, repr=False)


def distillation_study(config: DistillationStudyConfig, *, keep_models: bool = True) -> DistillationStudy:
    """Distil the teacher into one student per variant of ``config.variants`` and evaluate all five models.

    ``keep_models=True`` keeps the models in :attr:`DistillationStudy.models` (for the notebook's side-by-side
    panel); ``False`` frees each student after its evaluation.
    """
    import torch

    from workbench.datasets import load_corpus
    from workbench.datasets.smollm import load_smollm2

    from .corpus import make_passages, tokenize_passages
    from .evaluate import (downstream_audit, generate_continuations, generation_gaps, generation_prompts, perplexity,
                           score_continuations, sentiment_scorer)
    from .polarity import gender_polarity, neutral_prompts, polarity_gap
    from .role_reversal import gender_token_pairs, gendered_word_counts, training_rows
    from .student import count_parameters, make_student
    from .teacher import teacher_targets
    from .train import distill

    cfg = config
    timings, cache_hits = {}, {}
    tokenizer, teacher = load_smollm2()
    corpus = load_corpus(cfg.sources, max_documents=cfg.max_documents, seed=cfg.seed)
    passages = make_passages(corpus, tokenizer, seq_len=cfg.seq_len, seed=cfg.seed)
    if len(passages.train) < cfg.n_train or len(passages.heldout) < cfg.n_heldout:
        raise ValueError(f"The corpus gives {len(passages.train)} training and {len(passages.heldout)} held-out passages; "
                         f"DistillationStudyConfig asks for n_train={cfg.n_train} and n_heldout={cfg.n_heldout}. "
                         "Raise max_documents or lower them.")
    heldout = tokenize_passages(passages.heldout[: cfg.n_heldout], tokenizer, seq_len=cfg.seq_len)
    pairs = gender_token_pairs(tokenizer)
    train_sets = {False: training_rows(passages.train, n=cfg.n_train, seed=cfg.seed),
                  True: training_rows(passages.train, n=cfg.n_train, mode=cfg.cda_mode, seed=cfg.seed)}
    students = [v for v in cfg.variants if v != "teacher"]
    targets = {}
    timings["teacher_cache_seconds"] = 0.0
    for use_cda in sorted({VARIANTS[v][0] for v in students}):
        ids, mask = tokenize_passages(train_sets[use_cda], tokenizer, seq_len=cfg.seq_len)
        targets[use_cda] = teacher_targets(teacher, ids, attention_mask=mask, k=cfg.top_k, gender_ids=pairs.reshape(-1),
                                           progress=cfg.progress)
        timings["teacher_cache_seconds"] += targets[use_cda].seconds
        cache_hits["cda" if use_cda else "plain"] = targets[use_cda].cached

    prompts = generation_prompts(n_professions=cfg.n_professions, seed=cfg.seed)
    neutral = neutral_prompts(n_professions=cfg.n_professions, seed=cfg.seed)
    start = time.perf_counter()
    sentiment = sentiment_scorer(seed=cfg.seed)
    downstream_data = None
    if cfg.n_tweets:
        from workbench.datasets import load_tweets
        from workbench.fairness.evaluation_corpus import load_evaluation_corpus, subsample_corpus

        downstream_data = (load_tweets(n=cfg.n_tweets, seed=cfg.seed),
                           subsample_corpus(load_evaluation_corpus(), words_per_emotion=cfg.corpus_words, noun_phrases=2,
                                            names_per_group=2))
    timings["evaluate_seconds"] = time.perf_counter() - start

    rows, gap_tables, generations, history, polar_tables, models = [], [], [], [], [], {}
    for variant in cfg.variants:
        start = time.perf_counter()
        if variant == "teacher":
            model, tokens = teacher, 0
        else:
            use_cda, use_perturb = VARIANTS[variant]
            torch.manual_seed(cfg.seed)
            model = make_student(teacher, keep_every=cfg.keep_every, selection=cfg.layer_selection)
            steps = distill(model, targets[use_cda], epochs=cfg.epochs, batch_size=cfg.batch_size, lr=cfg.lr,
                            temperature=cfg.temperature, alpha=cfg.alpha,
                            perturbation=cfg.perturbation if use_perturb else None, seed=cfg.seed, progress=cfg.progress)
            history += [{"model": variant, **s} for s in steps]
            tokens = steps[-1]["tokens"]
            timings[f"train_seconds/{variant}"] = time.perf_counter() - start
        start = time.perf_counter()
        texts = generate_continuations(model, tokenizer, prompts["prompt"], max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
        scored = score_continuations(prompts, texts, sentiment=sentiment).assign(model=variant)
        gaps = generation_gaps(scored, n_bootstrap=cfg.n_bootstrap, seed=cfg.seed).assign(model=variant)
        row = {"model": variant, "layers": int(model.config.num_hidden_layers), "parameters": count_parameters(model),
               "trained_parameters": count_parameters(model, trainable=True) if variant != "teacher" else 0,
               "train_tokens": tokens, "perplexity": perplexity(model, heldout[0], attention_mask=heldout[1])}
        polar = _neutral_polarity(model, tokenizer, neutral, cfg=cfg, gender_polarity=gender_polarity,
                                  counts=gendered_word_counts).assign(model=variant)
        pg = polarity_gap(polar["polarity"], groups=polar["profession"], n_bootstrap=cfg.n_bootstrap, seed=cfg.seed)
        gaps = pd.concat([gaps, pd.DataFrame([{"measure": "polarity_gap", "gap": pg["gap"], "low": pg["low"],
                                               "high": pg["high"], "n_pairs": pg["n_groups"], "model": variant}])],
                         ignore_index=True)
        for g in gaps.itertuples():
            row[g.measure], row[f"{g.measure}_low"], row[f"{g.measure}_high"] = g.gap, g.low, g.high
        row["male_polar_share"], row["female_polar_share"] = pg["male_share"], pg["female_share"]
        if downstream_data is not None:
            audit = downstream_audit(model, tokenizer, tweets=downstream_data[0], corpus=downstream_data[1], seed=cfg.seed)
            row.update({f"downstream_{k}": audit[k] for k in ("gender_gap", "gender_ctf", "valence_auc", "train_accuracy")})
        timings["evaluate_seconds"] += time.perf_counter() - start
        rows.append(row)
        gap_tables.append(gaps)
        generations.append(scored)
        polar_tables.append(polar)
        if keep_models or variant == "teacher":
            models[variant] = model
    return DistillationStudy(config=cfg, summary=pd.DataFrame(rows),
                             gaps=pd.concat(gap_tables, ignore_index=True)[["model", "measure", "gap", "low", "high", "n_pairs"]],
                             generations=pd.concat(generations, ignore_index=True), history=pd.DataFrame(history),
                             timings=timings, polarity=pd.concat(polar_tables, ignore_index=True), cache_hits=cache_hits,
                             models=models, tokenizer=tokenizer)


def _neutral_polarity(model, tokenizer, neutral: pd.DataFrame, *, cfg, gender_polarity, counts) -> pd.DataFrame:
    """``neutral`` prompts with the model's sampled ``continuation``, its term counts and ``polarity``."""
    from .evaluate import generate_continuations

    texts = generate_continuations(model, tokenizer, neutral["prompt"], max_new_tokens=cfg.max_new_tokens, seed=cfg.seed)
    c = np.array([counts(t) for t in texts], dtype=float).reshape(-1, 2)
    return neutral.assign(continuation=texts, female_terms=c[:, 0], male_terms=c[:, 1], polarity=gender_polarity(texts))


def distillation_metrics(summary: pd.DataFrame, *, headline: str = "sentiment_gap") -> dict:
    """Flat metrics in the records' naming scheme: ``<model>/<column>`` for every numeric summary column, plus the
    issue's criterion for each debiased student against ``distilled``: ``<model>/gap_reduction_vs_distilled``
    (1 - |gap| / |gap of distilled| for the ``headline`` measure) and ``<model>/perplexity_cost_vs_distilled``
    (relative perplexity increase), and the same reduction for Gupta et al.'s neutral-prompt polarity gap,
    ``<model>/polarity_gap_reduction_vs_distilled``, when the summary has a ``polarity_gap`` column.

    Examples
    --------
    >>> s = pd.DataFrame({"model": ["distilled", "cda_perturbed"], "perplexity": [20.0, 20.5],
    ...                   "sentiment_gap": [0.10, -0.04]})
    >>> m = distillation_metrics(s)
    >>> round(m["cda_perturbed/gap_reduction_vs_distilled"], 3), round(m["cda_perturbed/perplexity_cost_vs_distilled"], 3)
    (0.6, 0.025)
    """
    from workbench.results import metric_key

    metrics = {}
    for row in summary.to_dict("records"):
        for key, value in row.items():
            if key != "model" and isinstance(value, (int, float, np.integer, np.floating)):
                metrics[metric_key(row["model"], key)] = float(value)
    base = summary.set_index("model")
    if "distilled" in base.index:
        for model in base.index:
            if model in ("teacher", "distilled"):
                continue
            for measure, name in ((headline, "gap_reduction_vs_distilled"),
                                  ("polarity_gap", "polarity_gap_reduction_vs_distilled")):
                if measure not in base.columns:
                    continue
                ref = abs(base.at["distilled", measure])
                metrics[metric_key(model, name)] = float(1 - abs(base.at[model, measure]) / ref) if ref > 0 else float("nan")
            metrics[metric_key(model, "perplexity_cost_vs_distilled")] = float(
                base.at[model, "perplexity"] / base.at["distilled", "perplexity"] - 1)
    return metrics


def distillation_record(study: DistillationStudy) -> dict:
    """``config``, ``metrics``, ``timings`` and ``tables`` of notebook 08's run record (keyword arguments of
    :func:`workbench.results.save_record`)."""
    return {"config": asdict(study.config), "metrics": distillation_metrics(study.summary), "timings": study.timings,
            "tables": {"summary": study.summary, "gaps": study.gaps,
                       "generations": study.generations.drop(columns=["stereotype"], errors="ignore"),
                       **({} if study.polarity is None else
                          {"polarity": study.polarity.drop(columns=["stereotype"], errors="ignore")})}}
