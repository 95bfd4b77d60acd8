"""The model-update studies of notebooks 06 and 07 as functions: a validated config, study functions that return
tidy tables, and one run-record builder per study.

Notebook 06 (negative flips, positive-congruent training)
    :class:`FlipStudyConfig` -> :func:`flip_study` (old model, one new model per method, the flip summary)
    -> :func:`scenario_comparison` (every registered kind of update, unconstrained) -> :func:`flip_breakdown`
    (where the flips are: per class, confusion matrix, examples, per ink tercile) -> :func:`tradeoff_study`
    (NFR vs error over focal-distillation weights, plain distillation at more weights) ->
    :func:`flip_study_record`.
Notebook 07 (backward-compatible embeddings)
    :class:`BCTStudyConfig` -> :func:`bct_study` (old, independent, BCT and linear-map models, the retrieval
    matrix, the compatibility criterion and update gains) -> :func:`lambda_sweep` -> :func:`bct_study_record`.

Every function is seeded through its config (``seed``), so the same config gives the same numbers. The config
fields are the notebooks' parameters in lower case; :func:`flip_study_record` / :func:`bct_study_record` write
them back under the notebook's names. Rarely changed parameters are grouped in dict literals in the notebooks
(:data:`FLIP_GROUPS`, :data:`BCT_GROUPS`); :func:`flip_study_config` / :func:`bct_study_config` build the configs from
them, filling the keys a partial dict leaves out with the defaults.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pandas as pd

from ..results import metric_key
from ..validation import (Because, Boolean, InstanceOf, Interval, Options, Seq, check, check_fields, field_defaults,
                          fill_group)
from .data import DATASETS, ImageSplit, load_image_split

__all__ = [
    "FlipStudyConfig",
    "FLIP_GROUPS",
    "flip_study_config",
    "FlipStudy",
    "FlipBreakdown",
    "flip_study",
    "scenario_comparison",
    "flip_breakdown",
    "tradeoff_study",
    "flip_study_metrics",
    "flip_study_record",
    "flip_finding",
    "BCTStudyConfig",
    "BCT_GROUPS",
    "bct_study_config",
    "RetrievalSplit",
    "BCTStudy",
    "retrieval_split",
    "bct_study",
    "lambda_sweep",
    "bct_study_metrics",
    "bct_study_record",
    "bct_finding",
]

_POSITIVE = Interval(float, 0, None, closed="neither")
_NONNEGATIVE = Interval(float, 0, None)
_COUNT = Interval(int, 1, None)
_SEED = Interval(int, 0, None)

#: Names of the metric families of a flip summary kept in the run record.
FLIP_METRICS = ("error_new", "nfr", "pfr", "nfi")

#: What each dataset of :data:`~workbench.compatibility.data.DATASETS` holds, as
#: :func:`~workbench.compatibility.data.load_image_split` splits it: Fashion-MNIST's official training and test
#: sets; the 1,797 digits shuffled, at most half of them held out (``tests/compatibility/test_config_limits.py``
#: checks these numbers against the loaders).
DATASET_SIZES = {"fashion_mnist": {"train": 60000, "test": 10000, "classes": 10},
                 "digits": {"images": 1797, "test": 898, "classes": 10}}


def _check_sizes(config, *, n_test_low: int) -> None:
    """``n_test`` and ``n_train`` within what ``config.dataset`` holds (:data:`DATASET_SIZES`), so a config never
    silently trains or tests on fewer images than it says."""
    size, name = DATASET_SIZES[config.dataset], config.dataset
    check_fields(config, n_test=Because(Interval(int, n_test_low, size["test"]), f"the test images {name!r} holds"))
    if "images" in size:
        left = size["images"] - config.n_test
        why = f"the images {name!r} holds, {size['images']}, less n_test={config.n_test}"
    else:
        left, why = size["train"], f"the training images {name!r} holds"
    check_fields(config, n_train=Because(Interval(int, 1, left), why))


def _check_loaded(config, data: ImageSplit, *, owner: str) -> None:
    """Before any training: the loaded ``data`` holds at least the images and classes ``config`` asks for (a loader
    may hold fewer than :data:`DATASET_SIZES` says, e.g. a partial Fashion-MNIST folder)."""
    check(data, InstanceOf(ImageSplit), name="data", owner=owner)
    cls = type(config).__name__
    check(config.n_train, Because(Interval(int, 1, len(data.y_train)), "the training images of the data given"),
          name="n_train", owner=cls)
    check(config.n_test, Because(Interval(int, 1, len(data.y_test)), "the test images of the data given"),
          name="n_test", owner=cls)


def _parameters(config) -> dict:
    """A config's fields under the notebook's parameter names (upper case), lists for tuples."""
    return {f.name.upper(): (list(v) if isinstance(v, tuple) else v)
            for f in dataclasses.fields(config) for v in [getattr(config, f.name)]}


# ============================================================================================ notebook 06
@dataclass(frozen=True)
class FlipStudyConfig:
    """Notebook 06's experiment: the data, the update scenario, the focal-distillation weights and the sweeps.

    Parameters
    ----------
    dataset : {"fashion_mnist", "digits"}
    n_train, n_test : int
        Training and test images (:func:`~workbench.compatibility.data.load_image_split`), at most what the dataset
        holds (:data:`DATASET_SIZES`: Fashion-MNIST 60,000 and 10,000; digits at most 898 test images and
        ``n_train + n_test <= 1797``).
    scenario : str
        A registered update (:data:`~workbench.compatibility.pc_training.UPDATE_SCENARIOS`).
    epoch_scale : float
        Multiplies both models' epochs (rounded, at least 1).
    alpha, beta, temperature, distance
        Focal distillation of the main comparison (:class:`~workbench.compatibility.pc_training.PCConfig`);
        plain distillation uses weight 1 and the same temperature and distance.
    n_ensemble : int
        Members of the ensemble baseline.
    compare_scenarios : bool
        Whether :func:`scenario_comparison` trains every registered scenario.
    tradeoff_alpha, tradeoff_betas, tradeoff_temperatures
        The grid of :func:`tradeoff_study` (focal distillation at ``alpha`` and each beta x temperature).
    tradeoff_kd_alphas : sequence of float
        Plain distillation at these weights too (may be empty).
    seed : int

    Examples
    --------
    >>> cfg = FlipStudyConfig(scenario="more_data", epoch_scale=0.5, tradeoff_betas=[0, 5])
    >>> cfg.tradeoff_betas, cfg.update_scenario().new_epochs
    ((0.0, 5.0), 2)
    >>> list(cfg.methods())
    ['no constraint', 'distillation', 'focal distillation', 'ensemble of 3']
    >>> FlipStudyConfig(scenario="newer")
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'scenario' parameter of FlipStudyConfig must be one of ('all', 'bigger_model', 'more_data', 'more_epochs'). Got 'newer' instead.
    """

    dataset: str = "fashion_mnist"
    n_train: int = 10000
    n_test: int = 5000
    scenario: str = "bigger_model"
    epoch_scale: float = 1.0
    alpha: float = 1.0
    beta: float = 5.0
    temperature: float = 1.0
    distance: str = "kl"
    n_ensemble: int = 3
    compare_scenarios: bool = True
    tradeoff_alpha: float = 0.0
    tradeoff_betas: tuple = (0.0, 1.0, 5.0, 20.0)
    tradeoff_temperatures: tuple = (1.0, 4.0)
    tradeoff_kd_alphas: tuple = (6.0,)
    seed: int = 0

    def __post_init__(self):
        from .pc_training import DISTANCES, UPDATE_SCENARIOS

        check_fields(self, dataset=Options(DATASETS), n_train=_COUNT, n_test=_COUNT, scenario=Options(tuple(sorted(UPDATE_SCENARIOS))),
                     epoch_scale=_POSITIVE, alpha=_NONNEGATIVE, beta=_NONNEGATIVE, temperature=_POSITIVE,
                     distance=Options(DISTANCES), n_ensemble=_COUNT, compare_scenarios=Boolean(), tradeoff_alpha=_NONNEGATIVE,
                     tradeoff_betas=Seq(_NONNEGATIVE), tradeoff_temperatures=Seq(_POSITIVE, min_len=1),
                     tradeoff_kd_alphas=Seq(_NONNEGATIVE), seed=_SEED)
        _check_sizes(self, n_test_low=1)

    def update_scenario(self, name: str | None = None):
        """The registered scenario ``name`` (default: :attr:`scenario`) with its epochs times :attr:`epoch_scale`."""
        from .pc_training import update_scenario

        base = update_scenario(name or self.scenario)
        return update_scenario(name or self.scenario, old_epochs=max(1, round(base.old_epochs * self.epoch_scale)),
                               new_epochs=max(1, round(base.new_epochs * self.epoch_scale)))

    def methods(self) -> dict:
        """The new-model recipes compared by :func:`flip_study`, by display name."""
        from .pc_training import PCConfig

        return {
            "no constraint": PCConfig(method="none"),
            "distillation": PCConfig(method="distillation", alpha=1.0, temperature=self.temperature, distance=self.distance),
            "focal distillation": PCConfig(method="focal_distillation", alpha=self.alpha, beta=self.beta, temperature=self.temperature,
                                           distance=self.distance),
            f"ensemble of {self.n_ensemble}": PCConfig(method="ensemble", n_ensemble=self.n_ensemble),
        }

    def load_data(self) -> ImageSplit:
        """The train/test split of :attr:`dataset` (:func:`~workbench.compatibility.data.load_image_split`)."""
        return load_image_split(self.dataset, n_train=self.n_train, n_test=self.n_test, seed=self.seed)


#: Notebook 06's grouped parameter ``TRADEOFF`` (a dict literal): its keys are the :class:`FlipStudyConfig` fields
#: ``tradeoff_<key>``, with their defaults; see :func:`flip_study_config`.
FLIP_GROUPS = {"TRADEOFF": field_defaults(FlipStudyConfig, {key: f"tradeoff_{key}"
                                                             for key in ("alpha", "betas", "temperatures", "kd_alphas")})}


def flip_study_config(*, tradeoff: dict | None = None, **fields) -> FlipStudyConfig:
    """A :class:`FlipStudyConfig` from notebook 06's parameters: plain ``fields`` plus the grouped dict ``TRADEOFF``
    (:data:`FLIP_GROUPS`: ``alpha``, ``betas``, ``temperatures``, ``kd_alphas`` of :func:`tradeoff_study`), which may
    hold only *some* of its keys (the rest keep their defaults), so ``TRADEOFF = {"betas": [0, 5]}`` changes one
    value. Unknown keys are an error naming the parameter and the accepted keys; the values are checked by the config.

    Examples
    --------
    >>> cfg = flip_study_config(beta=2.0, tradeoff={"kd_alphas": []})
    >>> cfg.tradeoff_kd_alphas, cfg.tradeoff_betas
    ((), (0.0, 1.0, 5.0, 20.0))
    >>> flip_study_config(tradeoff={"beta": [1.0]})
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'TRADEOFF' parameter of notebook 06_model_update_flips must be a dict with keys among ['alpha', 'betas', 'kd_alphas', 'temperatures']. Got {'beta': [1.0]} instead.
    """
    given = fill_group(tradeoff, FLIP_GROUPS["TRADEOFF"], name="TRADEOFF", owner="notebook 06_model_update_flips")
    return FlipStudyConfig(**fields, **{f"tradeoff_{key}": value for key, value in given.items()})


@dataclass
class FlipStudy:
    """Result of :func:`flip_study`: the config, the scaled scenario, the new-model recipes and the
    :class:`~workbench.compatibility.pc_training.UpdateResult` (``result.summary``: one row per method)."""

    config: FlipStudyConfig
    scenario: object
    methods: dict
    result: object

    @property
    def summary(self) -> pd.DataFrame:
        return self.result.summary

    def pred(self, method: str) -> np.ndarray:
        """Test predictions of the new model of one method (a display name of ``methods``)."""
        if method not in self.result.new_preds:
            raise ValueError(f"The 'method' parameter of FlipStudy.pred must be one of {list(self.result.new_preds)}. Got {method!r} instead.")
        return self.result.new_preds[method]


def flip_study(data: ImageSplit, *, config: FlipStudyConfig, progress: bool = False) -> FlipStudy:
    """Train the old model and one new model per method of ``config`` on ``data``, and tabulate their flips.

    Returns
    -------
    FlipStudy
        ``summary`` has one row per method (index ``method``): ``kind``, ``alpha``, ``beta``, ``temperature`` and
        the :func:`~workbench.compatibility.flips.flip_summary` columns (``error_old``, ``error_new``, ``nfr``,
        ``pfr``, ``nfi``, ``relative_nfr``, ``n_negative``, ...).

    Examples
    --------
    >>> cfg = FlipStudyConfig(dataset="digits", n_train=40, n_test=20, epoch_scale=0.2, n_ensemble=1)
    >>> study = flip_study(cfg.load_data(), config=cfg)
    >>> study.summary.index.tolist()
    ['no constraint', 'distillation', 'focal distillation', 'ensemble of 1']
    """
    from .pc_training import run_update

    check(config, InstanceOf(FlipStudyConfig), name="config", owner="flip_study")
    _check_loaded(config, data, owner="flip_study")
    scenario, methods = config.update_scenario(), config.methods()
    result = run_update(data.train, data.test, scenario=scenario, methods=methods, n_classes=data.n_classes, seed=config.seed,
                        progress=progress)
    return FlipStudy(config=config, scenario=scenario, methods=methods, result=result)


def scenario_comparison(data: ImageSplit, *, config: FlipStudyConfig, progress: bool = False) -> pd.DataFrame:
    """Every registered update scenario trained without constraint (epochs scaled by ``config.epoch_scale``).

    Returns
    -------
    pandas.DataFrame
        One row per scenario (index), columns ``error_old``, ``error_new``, ``nfr``, ``pfr``, ``nfi``.
    """
    from .pc_training import UPDATE_SCENARIOS, PCConfig, run_update

    check(config, InstanceOf(FlipStudyConfig), name="config", owner="scenario_comparison")
    _check_loaded(config, data, owner="scenario_comparison")
    rows = {}
    for name in UPDATE_SCENARIOS:
        r = run_update(data.train, data.test, scenario=config.update_scenario(name), methods={"no constraint": PCConfig(method="none")},
                       n_classes=data.n_classes, seed=config.seed, progress=progress)
        rows[name] = r.summary.iloc[0]
    columns = ["error_old", "error_new", "nfr", "pfr", "nfi"]
    return pd.DataFrame(rows).T[columns].astype(float) if rows else pd.DataFrame(columns=columns)


@dataclass
class FlipBreakdown:
    """Where the flips of one new model are (:func:`flip_breakdown`).

    ``per_class``: :func:`~workbench.compatibility.flips.per_class_flips`; ``matrix``: the negative-flip confusion
    matrix; ``negative_by_method``: negative flips per class of this model and of the comparison model side by side;
    ``worst_class`` and ``examples`` (its negative flips, ``index``/``label``/``old``/``new``); ``per_group``: the
    flips per tercile of ink (mean pixel intensity) of the test images.
    """

    per_class: pd.DataFrame
    matrix: np.ndarray
    negative_by_method: pd.DataFrame
    worst_class: int
    examples: pd.DataFrame
    per_group: pd.DataFrame


def ink_terciles(X) -> np.ndarray:
    """Group 0/1/2 (light / medium / dark) of each image row by its mean pixel intensity.

    Examples
    --------
    >>> ink_terciles(np.array([[0.0], [0.5], [1.0]])).tolist()
    [0, 1, 2]
    """
    ink = np.asarray(X, dtype=float).reshape(len(X), -1).mean(axis=1)
    return np.digitize(ink, np.quantile(ink, [1 / 3, 2 / 3]))


def flip_breakdown(study: FlipStudy, data: ImageSplit, *, method: str = "no constraint", compare: str = "focal distillation",
                   n_examples: int = 12) -> FlipBreakdown:
    """Per-class, per-confusion and per-group flips of ``method``'s new model (and per-class negative flips of
    ``compare``'s next to them).

    The three views count the same negative flips (``tests/compatibility/test_studies.py`` checks it).
    """
    from . import flips

    n_examples = check(n_examples, _COUNT, name="n_examples", owner="flip_breakdown")
    y, old, new = study.result.labels, study.result.old_pred, study.pred(method)
    per_class = flips.per_class_flips(y, old, new, classes=data.classes, n_classes=data.n_classes)
    other = flips.per_class_flips(y, old, study.pred(compare), classes=data.classes, n_classes=data.n_classes)
    by_method = pd.DataFrame({method: per_class["n_negative"].to_numpy(), compare: other["n_negative"].to_numpy()},
                             index=pd.Index(per_class["name"], name="class"))
    worst = int(per_class["n_negative"].idxmax())
    examples = flips.flipped_examples(y, old, new, kind="negative", cls=worst).head(n_examples)
    per_group = flips.per_group_flips(y, old, new, ink_terciles(data.X_test), names={0: "light", 1: "medium", 2: "dark"})
    return FlipBreakdown(per_class=per_class, matrix=flips.negative_flip_matrix(y, old, new, n_classes=data.n_classes),
                         negative_by_method=by_method, worst_class=worst, examples=examples, per_group=per_group)


def tradeoff_study(data: ImageSplit, study: FlipStudy, *, progress: bool = False) -> tuple[pd.DataFrame, pd.DataFrame]:
    """NFR and error of focal-distilled new models over ``config.tradeoff_betas`` x ``tradeoff_temperatures`` (at
    ``tradeoff_alpha``), and the baselines: the study's methods plus plain distillation at each
    ``tradeoff_kd_alphas`` weight (named ``"distillation α=<a>"``). Every model reuses the study's old model.

    Returns
    -------
    (tradeoff, baselines) : pandas.DataFrame
        ``tradeoff``: one row per grid point (:func:`~workbench.compatibility.pc_training.pc_tradeoff`);
        ``baselines``: :attr:`FlipStudy.summary` with the extra distillation rows appended.
    """
    from .pc_training import PCConfig, pc_tradeoff, run_update

    cfg = study.config
    tradeoff = pc_tradeoff(data.train, data.test, scenario=study.scenario, old_model=study.result.old_model, betas=cfg.tradeoff_betas,
                           temperatures=cfg.tradeoff_temperatures, alpha=cfg.tradeoff_alpha, distance=cfg.distance,
                           n_classes=data.n_classes, seed=cfg.seed, progress=progress)
    kd_methods = {f"distillation α={a:g}": PCConfig(method="distillation", alpha=float(a), temperature=cfg.temperature, distance=cfg.distance)
                  for a in cfg.tradeoff_kd_alphas}
    kd = run_update(data.train, data.test, scenario=study.scenario, methods=kd_methods, old_model=study.result.old_model,
                    n_classes=data.n_classes, seed=cfg.seed, progress=progress).summary if kd_methods else study.summary.iloc[:0]
    return tradeoff, pd.concat([study.summary, kd])


#: Record names of the methods, by :class:`~workbench.compatibility.pc_training.PCConfig` method.
_METHOD_KEYS = {"none": "no_constraint", "distillation": "distillation", "focal_distillation": "focal_distillation",
                "ensemble": "ensemble"}


def flip_study_metrics(summary: pd.DataFrame) -> dict:
    """Flat metrics of notebook 06 for a run record, from :attr:`FlipStudy.summary` (one row per method kind).

    ``error_old``; ``<method>/<metric>`` for ``<method>`` in ``no_constraint``, ``distillation``,
    ``focal_distillation``, ``ensemble`` and ``<metric>`` in ``error_new``, ``nfr``, ``pfr``, ``nfi``; and
    ``focal_distillation/nfr_reduction`` (1 - its NFR / the unconstrained NFR; NaN if that is 0).

    Examples
    --------
    >>> s = pd.DataFrame({"kind": ["none", "focal_distillation"], "error_old": [0.2, 0.2], "error_new": [0.15, 0.16],
    ...                   "nfr": [0.04, 0.01], "pfr": [0.09, 0.05], "nfi": [0.27, 0.06]})
    >>> m = flip_study_metrics(s)
    >>> m["focal_distillation/nfr"], round(m["focal_distillation/nfr_reduction"], 2)
    (0.01, 0.75)
    """
    metrics = {"error_old": float(summary["error_old"].iloc[0])}
    for _, row in summary.iterrows():
        for col in FLIP_METRICS:
            metrics[metric_key(_METHOD_KEYS[row["kind"]], col)] = float(row[col])
    none, fd = metrics.get("no_constraint/nfr"), metrics.get("focal_distillation/nfr")
    if none is not None and fd is not None:
        metrics["focal_distillation/nfr_reduction"] = 1 - fd / none if none else float("nan")
    return metrics


def flip_study_record(study: FlipStudy, *, baselines: pd.DataFrame, tradeoff: pd.DataFrame, breakdown: FlipBreakdown,
                      scenarios: pd.DataFrame | None = None) -> dict:
    """Keyword arguments of :func:`workbench.results.save_record` for notebook 06: ``seed``, ``parameters`` (the
    config under the notebook's names), ``config`` (scenario and methods), ``metrics``
    (:func:`flip_study_metrics`) and ``tables`` (``summary``, ``tradeoff``, ``per_class``, ``per_group`` and, when
    given, ``scenarios``)."""
    tables = {"summary": baselines.reset_index(), "tradeoff": tradeoff, "per_class": breakdown.per_class.reset_index(),
              "per_group": breakdown.per_group.reset_index()}
    if scenarios is not None and len(scenarios):
        tables["scenarios"] = scenarios.rename_axis("scenario").reset_index()
    metrics = flip_study_metrics(study.summary)
    return {"seed": study.config.seed, "parameters": _parameters(study.config),
            "config": {"study": study.config, "scenario": study.scenario, "methods": study.methods},
            "metrics": metrics, "tables": tables, "extra": {"finding": flip_finding(metrics, config=study.config),
                                                            "headline_figure": "tradeoff", "headline_metric": "focal_distillation/nfr"}}


def flip_finding(metrics: dict, *, config: FlipStudyConfig) -> str:
    """One sentence for the report: what focal distillation did to the negative flip rate and the error.

    Examples
    --------
    >>> flip_finding({"no_constraint/nfr": 0.043, "no_constraint/error_new": 0.159, "focal_distillation/nfr": 0.0076,
    ...               "focal_distillation/error_new": 0.167}, config=FlipStudyConfig())
    'Focal distillation (alpha 1, beta 5) changes the negative flip rate from 4.3% to 0.76% and the error from 15.9% to 16.7%.'
    """
    pct = {k: f"{100 * metrics[k]:.2g}%" for k in ("no_constraint/nfr", "focal_distillation/nfr")}
    return (f"Focal distillation (alpha {config.alpha:g}, beta {config.beta:g}) changes the negative flip rate from "
            f"{pct['no_constraint/nfr']} to {pct['focal_distillation/nfr']} and the error from "
            f"{100 * metrics['no_constraint/error_new']:.3g}% to {100 * metrics['focal_distillation/error_new']:.3g}%.")


# ============================================================================================ notebook 07
@dataclass(frozen=True)
class BCTStudyConfig:
    """Notebook 07's experiment: data, the old and new embedding models, BCT's influence weight and its sweep.

    Parameters
    ----------
    dataset : {"fashion_mnist", "digits"}
    n_train, n_test : int
        Training images, and test images (the gallery plus the queries), at most what the dataset holds (as in
        :class:`FlipStudyConfig`).
    n_queries : int
        Test images used as queries (at most half the test images); the rest is the gallery.
    old_fraction : float in (0, 1]
        The old model trains on the first ``old_fraction`` of the training images...
    old_n_classes : int
        ...of the classes ``0 .. old_n_classes - 1`` only (at most the dataset's classes).
    old_hidden, new_hidden : sequence of int
        MLP widths of the old and the new models.
    embedding_dim : int
    head : {"linear", "cosine"}
    old_epochs, new_epochs : int
    influence_weight : float
        BCT's lambda.
    lambda_sweep : sequence of float
        Extra lambdas of :func:`lambda_sweep` (may be empty).
    similarity : {"cosine", "euclidean"}
    seed : int

    Examples
    --------
    >>> BCTStudyConfig(new_hidden=[64]).new_config().hidden
    (64,)
    >>> BCTStudyConfig(old_fraction=0)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'old_fraction' parameter of BCTStudyConfig must be a float in (0, 1]. Got 0 instead.
    >>> BCTStudyConfig(dataset="digits", n_train=5000, n_test=700, n_queries=200)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'n_train' parameter of BCTStudyConfig must be an int in [1, 1097] (the images 'digits' holds, 1797, less n_test=700). Got 5000 instead.
    """

    dataset: str = "fashion_mnist"
    n_train: int = 10000
    n_test: int = 6000
    n_queries: int = 1000
    old_fraction: float = 0.3
    old_n_classes: int = 10
    old_hidden: tuple = (64,)
    new_hidden: tuple = (256, 128)
    embedding_dim: int = 32
    head: str = "linear"
    old_epochs: int = 3
    new_epochs: int = 6
    influence_weight: float = 1.0
    lambda_sweep: tuple = (0.3, 3.0)
    similarity: str = "cosine"
    seed: int = 0

    def __post_init__(self):
        from .bct import HEADS, SIMILARITIES

        check_fields(self, dataset=Options(DATASETS), n_train=_COUNT, n_test=Interval(int, 2, None), n_queries=_COUNT,
                     old_fraction=Interval(float, 0, 1, closed="right"), old_n_classes=Interval(int, 2, None),
                     old_hidden=Seq(_COUNT), new_hidden=Seq(_COUNT), embedding_dim=_COUNT, head=Options(HEADS),
                     old_epochs=_COUNT, new_epochs=_COUNT, influence_weight=_NONNEGATIVE, lambda_sweep=Seq(_NONNEGATIVE),
                     similarity=Options(SIMILARITIES), seed=_SEED)
        _check_sizes(self, n_test_low=2)
        classes = DATASET_SIZES[self.dataset]["classes"]
        check_fields(self, old_n_classes=Because(Interval(int, 2, classes), f"the classes of {self.dataset!r}"),
                     n_queries=Because(Interval(int, 1, self.n_test // 2), f"at most half of n_test={self.n_test}"))

    def old_config(self):
        """The old model's :class:`~workbench.compatibility.bct.BCTConfig`."""
        from .bct import BCTConfig

        return BCTConfig(hidden=self.old_hidden, embedding_dim=self.embedding_dim, epochs=self.old_epochs, head=self.head)

    def new_config(self, influence_weight: float | None = None):
        """The new models' :class:`~workbench.compatibility.bct.BCTConfig` (BCT's lambda: ``influence_weight``,
        default :attr:`influence_weight`)."""
        from .bct import BCTConfig

        lam = self.influence_weight if influence_weight is None else influence_weight
        return BCTConfig(hidden=self.new_hidden, embedding_dim=self.embedding_dim, epochs=self.new_epochs, influence_weight=lam,
                         head=self.head)

    def load_data(self) -> ImageSplit:
        """The train/test split of :attr:`dataset`."""
        return load_image_split(self.dataset, n_train=self.n_train, n_test=self.n_test, seed=self.seed)


#: Notebook 07's grouped parameter ``MODELS`` (a dict literal): its keys are :class:`BCTStudyConfig` fields, with their
#: defaults; see :func:`bct_study_config`.
BCT_GROUPS = {"MODELS": field_defaults(BCTStudyConfig, ("old_hidden", "new_hidden", "embedding_dim", "old_epochs",
                                                         "new_epochs"))}


def bct_study_config(*, models: dict | None = None, **fields) -> BCTStudyConfig:
    """A :class:`BCTStudyConfig` from notebook 07's parameters: plain ``fields`` plus the grouped dict ``MODELS``
    (:data:`BCT_GROUPS`: the old and new models' hidden layers and epochs, and the embedding size), which may hold
    only *some* of its keys (the rest keep their defaults), so ``MODELS = {"new_epochs": 12}`` changes one value.
    Unknown keys are an error naming the parameter and the accepted keys; the values are checked by the config.

    Examples
    --------
    >>> cfg = bct_study_config(old_fraction=0.5, models={"new_epochs": 12})
    >>> cfg.new_epochs, cfg.old_epochs, cfg.new_hidden
    (12, 3, (256, 128))
    >>> bct_study_config(models={"hidden": [64]})
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'MODELS' parameter of notebook 07_backward_compatible_embeddings must be a dict with keys among ['embedding_dim', 'new_epochs', 'new_hidden', 'old_epochs', 'old_hidden']. Got {'hidden': [64]} instead.
    """
    given = fill_group(models, BCT_GROUPS["MODELS"], name="MODELS", owner="notebook 07_backward_compatible_embeddings")
    return BCTStudyConfig(**fields, **given)


@dataclass
class RetrievalSplit:
    """Test images split into a gallery (the first ``n_gallery``) and queries (the rest): ``(X, y)`` pairs."""

    gallery: tuple
    query: tuple
    n_gallery: int


def retrieval_split(data: ImageSplit, *, n_queries: int) -> RetrievalSplit:
    """The last ``n_queries`` test images (at most half of them) are queries; the others the gallery.

    Examples
    --------
    >>> s = retrieval_split(load_image_split("digits", n_train=50, n_test=40), n_queries=30)
    >>> s.n_gallery, len(s.query[1])
    (20, 20)
    """
    n_queries = check(n_queries, _COUNT, name="n_queries", owner="retrieval_split")
    n_gallery = len(data.y_test) - min(n_queries, len(data.y_test) // 2)
    return RetrievalSplit(gallery=(data.X_test[:n_gallery], data.y_test[:n_gallery]),
                          query=(data.X_test[n_gallery:], data.y_test[n_gallery:]), n_gallery=n_gallery)


#: The (query model, gallery model) pairs of notebook 07's retrieval matrix.
RETRIEVAL_PAIRS = (("old", "old"), ("independent", "independent"), ("BCT", "BCT"), ("independent", "old"), ("BCT", "old"),
                   ("linear map", "old"), ("old", "BCT"))
#: Models judged by the compatibility criterion, with their "backfilled" reference model (None: itself).
_JUDGED = (("BCT", None), ("independent", None), ("linear map", "independent"))


@dataclass
class BCTStudy:
    """Result of :func:`bct_study`.

    ``models``: ``old``, ``independent``, ``BCT``, ``linear map``; ``matrix``: the retrieval matrix
    (:func:`~workbench.compatibility.bct.retrieval_matrix`); ``compatibility``: one row per (model, metric) with
    :func:`~workbench.compatibility.bct.compatibility_summary`'s ``old_old``, ``new_old``, ``new_new``,
    ``compatible`` and ``update_gain``; ``split``: gallery and queries; ``n_old_train``: the old model's
    training images.
    """

    config: BCTStudyConfig
    models: dict
    matrix: pd.DataFrame
    compatibility: pd.DataFrame
    split: RetrievalSplit
    n_old_train: int = 0

    def gains(self, metric: str = "map") -> dict:
        """``{model: compatibility summary}`` of one metric (what :func:`~workbench.plots.compatibility.update_gain_figure` draws)."""
        check(metric, Options(("top1", "map")), name="metric", owner="BCTStudy.gains")
        rows = self.compatibility[self.compatibility["metric"] == metric]
        return {r["model"]: r.drop(labels=["model"]).to_dict() for _, r in rows.iterrows()}


def bct_study(data: ImageSplit, *, config: BCTStudyConfig, progress: bool = False) -> BCTStudy:
    """Train the old model (a subset of the data and classes), an independent new model, a BCT new model (same seed,
    plus the influence loss) and a linear map from the independent model to the old features; evaluate every
    pair of :data:`RETRIEVAL_PAIRS` and the compatibility of the three new models.

    Examples
    --------
    >>> cfg = BCTStudyConfig(dataset="digits", n_train=60, n_test=40, n_queries=10, old_epochs=1, new_epochs=1,
    ...                      old_hidden=[8], new_hidden=[8], embedding_dim=4)
    >>> study = bct_study(cfg.load_data(), config=cfg)
    >>> sorted(study.gains("map"))
    ['BCT', 'independent', 'linear map']
    """
    from .bct import compatibility_summary, fit_linear_map, retrieval_matrix, train_embedding_model

    check(config, InstanceOf(BCTStudyConfig), name="config", owner="bct_study")
    _check_loaded(config, data, owner="bct_study")
    check(config.old_n_classes, Because(Interval(int, 2, data.n_classes), "the classes of the data given"), name="old_n_classes",
          owner="BCTStudyConfig")
    split = retrieval_split(data, n_queries=config.n_queries)
    X, y = data.train
    n_old = max(1, round(config.old_fraction * len(y)))
    old_rows = np.flatnonzero(y[:n_old] < config.old_n_classes)
    new_cfg = config.new_config()
    old = train_embedding_model((X[old_rows], y[old_rows]), config=config.old_config(), n_classes=config.old_n_classes,
                                seed=config.seed, progress=progress)
    independent = train_embedding_model(data.train, config=new_cfg, n_classes=data.n_classes, seed=config.seed + 1, progress=progress)
    bct = train_embedding_model(data.train, config=new_cfg, n_classes=data.n_classes, old_model=old, seed=config.seed + 1,
                                progress=progress)
    models = {"old": old, "independent": independent, "BCT": bct, "linear map": fit_linear_map(independent, old, X)}
    matrix = retrieval_matrix(models, split.query, split.gallery, pairs=list(RETRIEVAL_PAIRS), similarity=config.similarity)
    rows = [{"model": name, **compatibility_summary(matrix, new=name, new_gallery=ref, metric=metric)}
            for metric in ("top1", "map") for name, ref in _JUDGED]
    return BCTStudy(config=config, models=models, matrix=matrix, compatibility=pd.DataFrame(rows), split=split,
                    n_old_train=len(old_rows))


def lambda_sweep(data: ImageSplit, study: BCTStudy, *, progress: bool = False) -> pd.DataFrame:
    """BCT models at ``config.influence_weight`` (the study's model, reused) and at each ``config.lambda_sweep``,
    judged by mAP against the study's old gallery.

    Returns
    -------
    pandas.DataFrame
        One row per lambda (sorted): ``lambda``, ``map_old_old``, ``map_new_old``, ``map_new_new``,
        ``update_gain``, ``compatible``.
    """
    from .bct import compatibility_summary, retrieval_matrix, train_embedding_model

    cfg = study.config
    old, rows = study.models["old"], []
    for lam in dict.fromkeys([cfg.influence_weight, *cfg.lambda_sweep]):
        model = study.models["BCT"] if lam == cfg.influence_weight else train_embedding_model(
            data.train, config=cfg.new_config(lam), n_classes=data.n_classes, old_model=old, seed=cfg.seed + 1, progress=progress)
        m = retrieval_matrix({"old": old, "new": model}, study.split.query, study.split.gallery,
                             pairs=[("old", "old"), ("new", "old"), ("new", "new")], similarity=cfg.similarity)
        s = compatibility_summary(m, new="new", metric="map")
        rows.append({"lambda": lam, "map_old_old": s["old_old"], "map_new_old": s["new_old"], "map_new_new": s["new_new"],
                     "update_gain": s["update_gain"], "compatible": s["compatible"]})
    return pd.DataFrame(rows).sort_values("lambda").reset_index(drop=True)


def bct_study_metrics(matrix: pd.DataFrame, compatibility: pd.DataFrame) -> dict:
    """Flat metrics of notebook 07 for a run record: ``top1/<query model>/<gallery model>`` and
    ``map/<query model>/<gallery model>`` for every row of the retrieval matrix; ``update_gain/<metric>/<model>``
    and ``compatible/<metric>/<model>`` for every row of the compatibility table (model names lower-cased, spaces
    as "_").

    Examples
    --------
    >>> matrix = pd.DataFrame({"query_model": ["BCT"], "gallery_model": ["old"], "top1": [0.7], "map": [0.6]})
    >>> comp = pd.DataFrame({"model": ["linear map"], "metric": ["map"], "update_gain": [0.4], "compatible": [True]})
    >>> bct_study_metrics(matrix, comp)
    {'top1/bct/old': 0.7, 'map/bct/old': 0.6, 'update_gain/map/linear_map': 0.4, 'compatible/map/linear_map': True}
    """
    metrics = {}
    for r in matrix.itertuples():
        metrics[metric_key("top1", r.query_model, r.gallery_model)] = float(r.top1)
        metrics[metric_key("map", r.query_model, r.gallery_model)] = float(r.map)
    for r in compatibility.itertuples():
        metrics[metric_key("update_gain", r.metric, r.model)] = float(r.update_gain)
        metrics[metric_key("compatible", r.metric, r.model)] = bool(r.compatible)
    return metrics


def bct_study_record(study: BCTStudy, *, sweep: pd.DataFrame | None = None) -> dict:
    """Keyword arguments of :func:`workbench.results.save_record` for notebook 07: ``seed``, ``parameters``,
    ``config`` (the study and the old/new model configs), ``metrics`` (:func:`bct_study_metrics`) and ``tables``
    (``matrix``, ``compatibility`` and, when given, ``lambda_sweep``)."""
    tables = {"matrix": study.matrix, "compatibility": study.compatibility}
    if sweep is not None:
        tables["lambda_sweep"] = sweep
    return {"seed": study.config.seed, "parameters": _parameters(study.config),
            "config": {"study": study.config, "old": study.config.old_config(), "new": study.config.new_config()},
            "metrics": bct_study_metrics(study.matrix, study.compatibility), "tables": tables,
            "extra": {"finding": bct_finding(study.compatibility), "headline_figure": "update_gain", "headline_metric": "map/bct/old"}}


def bct_finding(compatibility: pd.DataFrame) -> str:
    """One sentence for the report: BCT's mAP against the old gallery next to old/old and backfilled, and the
    independent model's.

    Examples
    --------
    >>> c = pd.DataFrame({"model": ["BCT", "independent"], "metric": ["map", "map"], "old_old": [0.594, 0.594],
    ...                   "new_old": [0.647, 0.05], "new_new": [0.721, 0.73], "update_gain": [0.42, -4.3]})
    >>> bct_finding(c)
    'BCT queries on the old gallery reach mAP 0.647 (old model 0.594, backfilled 0.721: update gain 0.42); an independent model reaches 0.050.'
    """
    m = compatibility[compatibility["metric"] == "map"].set_index("model")
    b = m.loc["BCT"]
    return (f"BCT queries on the old gallery reach mAP {b['new_old']:.3f} (old model {b['old_old']:.3f}, backfilled "
            f"{b['new_new']:.3f}: update gain {b['update_gain']:.2f}); an independent model reaches {m.loc['independent', 'new_old']:.3f}.")
