"""Notebook 09's study: scorecards of every update of the chain, their verdicts, flips along paths, the run record.

Flow: :func:`scorecard_chain_config` (the notebook's parameters, grouped ones filled) -> :class:`~workbench.scorecard.chain.ChainConfig`
-> :func:`~workbench.scorecard.chain.run_chain` (cached outputs)
-> :func:`update_scorecards` (one tidy table, an ``update`` column per old -> new pair) -> :func:`update_verdicts`
(rules -> pass / fail / inconclusive) and :func:`chain_flips` (cumulative flips along paths) ->
:func:`scorecard_record` (the run record's metrics, in the one naming scheme, and its tables).
"""
from __future__ import annotations

from dataclasses import asdict
from typing import Sequence

import numpy as np
import pandas as pd

from ..validation import InvalidParameterError, field_defaults, fill_group
from .chain import ChainConfig
from .card import ScorecardConfig, scorecard
from .measures import cumulative_flips
from .verdict import Rule, judge, overall_verdict

__all__ = ["DEFAULT_UPDATES", "DEFAULT_PATHS", "update_label", "update_scorecards", "update_verdicts", "chain_flips",
           "scorecard_metrics", "scorecard_record", "TWEET_SCORECARD", "SCORECARD_GROUPS", "scorecard_chain_config"]

#: The updates notebook 09 scores: each step of the chain, the update without PC, the two steps at once, DP.
DEFAULT_UPDATES = (("v1", "v2"), ("v2", "v3_no_pc"), ("v2", "v3"), ("v1", "v3"), ("v2", "v2_dp"), ("v2_dp", "v3_dp"))
#: Release paths whose cumulative flips are tracked.
DEFAULT_PATHS = (("v1", "v2", "v3"), ("v1", "v2", "v3_no_pc"), ("v1", "v2_dp", "v3_dp"))
#: Scorecard settings for the tweet classes (negative 0, neutral 1, positive 2).
TWEET_SCORECARD = ScorecardConfig(positive_class=2, negative_class=0)


#: Notebook 09's grouped parameter ``CORPUS`` (a dict literal): the evaluation-corpus subsample, its keys
#: :class:`~workbench.scorecard.chain.ChainConfig` fields with their defaults; see :func:`scorecard_chain_config`.
SCORECARD_GROUPS = {"CORPUS": field_defaults(ChainConfig, ("words_per_emotion", "names_per_group", "noun_phrases"))}


def scorecard_chain_config(*, corpus: dict | None = None, **fields):
    """A :class:`~workbench.scorecard.chain.ChainConfig` from notebook 09's parameters: plain ``fields`` plus the
    grouped dict ``CORPUS`` (:data:`SCORECARD_GROUPS`: emotion words per emotion, first names per (race, gender)
    group, gendered noun-phrase pairs), which may hold only *some* of its keys (the rest keep their defaults), so
    ``CORPUS = {"names_per_group": 10}`` changes one value. Unknown keys are an error naming the parameter and the
    accepted keys; the values are checked by the config.

    Examples
    --------
    >>> cfg = scorecard_chain_config(n_tweets=200, corpus={"noun_phrases": 1})
    >>> cfg.n_tweets, cfg.noun_phrases, cfg.names_per_group
    (200, 1, 5)
    >>> scorecard_chain_config(corpus={"names": 1})
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'CORPUS' parameter of notebook 09_update_scorecard must be a dict with keys among ['names_per_group', 'noun_phrases', 'words_per_emotion']. Got {'names': 1} instead.
    """
    return ChainConfig(**fields, **fill_group(corpus, SCORECARD_GROUPS["CORPUS"], name="CORPUS", owner="notebook 09_update_scorecard"))


def update_label(old: str, new: str) -> str:
    """``"v1 -> v2"``.

    Examples
    --------
    >>> update_label("v1", "v2")
    'v1 -> v2'
    """
    return f"{old} -> {new}"


def _check_versions(chain, names, *, param: str) -> None:
    unknown = [v for v in names if v not in chain.outputs]
    if unknown:
        raise InvalidParameterError(f"Unknown version(s) {unknown} in the {param!r} parameter; accepted values are {chain.versions}.")


def update_scorecards(chain, *, updates: Sequence[tuple[str, str]] = DEFAULT_UPDATES, config: ScorecardConfig = TWEET_SCORECARD,
                      fairness_groups: Sequence[str] = ("gender", "race"), progress: bool = False) -> pd.DataFrame:
    """The scorecard of every ``(old, new)`` update of ``chain`` stacked in one table (columns ``update``,
    ``old_version``, ``new_version``, then :data:`workbench.scorecard.COLUMNS`)."""
    from tqdm.auto import tqdm

    from workbench.datasets import TWEET_LABELS

    updates = [tuple(u) for u in updates]
    _check_versions(chain, [v for u in updates for v in u], param="updates")
    frames = []
    for old, new in tqdm(updates, desc="scorecards", disable=not progress):
        card = scorecard(chain.outputs[old], chain.outputs[new], labels=chain.labels, groups=chain.groups, classes=TWEET_LABELS,
                         fairness_groups=fairness_groups, config=config)
        card.insert(0, "new_version", new)
        card.insert(0, "old_version", old)
        card.insert(0, "update", update_label(old, new))
        frames.append(card)
    return pd.concat(frames, ignore_index=True)


def update_verdicts(cards: pd.DataFrame, rules: Sequence[Rule]) -> pd.DataFrame:
    """:func:`~workbench.scorecard.verdict.judge` per update, plus one ``overall`` row per update."""
    frames = []
    for update, card in cards.groupby("update", sort=False):
        v = judge(card, rules)
        v = pd.concat([v, pd.DataFrame([{"rule": "overall", "outcome": overall_verdict(v), "rows": int(v["rows"].sum())}])],
                      ignore_index=True)
        v.insert(0, "update", update)
        frames.append(v)
    return pd.concat(frames, ignore_index=True)


def chain_flips(chain, *, paths: Sequence[Sequence[str]] = DEFAULT_PATHS) -> pd.DataFrame:
    """:func:`~workbench.scorecard.measures.cumulative_flips` along each release path, stacked (column ``path``)."""
    frames = []
    for path in paths:
        _check_versions(chain, path, param="paths")
        t = cumulative_flips(chain.labels, {v: chain.outputs[v].pred for v in path}).reset_index()
        t.insert(0, "path", " -> ".join(path))
        frames.append(t)
    return pd.concat(frames, ignore_index=True)


def _key(update: str) -> str:
    return update.replace(" -> ", "_to_")


def scorecard_metrics(cards: pd.DataFrame, *, verdicts: pd.DataFrame | None = None, flips: pd.DataFrame | None = None,
                      info: pd.DataFrame | None = None) -> dict:
    """Flat metrics for the run record (names in :func:`workbench.results.metric_key`'s scheme).

    Per update ``u`` (``v1_to_v2``, ...): ``u/accuracy/{old,new,change,change_low,change_high}``;
    ``u/{nfr,pfr,nfi}`` with ``_low``/``_high``; ``u/nfr_by_<group>/<slice>`` for every class and group;
    ``u/<group>/<gap>/{old,new,change}`` for every fairness gap; ``u/<mia measure>/{old,new,change}``;
    ``u/verdict/<outcome>`` = 1 for the overall verdict. Per version ``v``: ``v/accuracy``, ``v/epsilon``.
    Per path: ``path/<v1_v2_v3>/<version>/{cumulative_nfr,ever_regressed,sum_step_nfr}``.

    Examples
    --------
    >>> card = pd.DataFrame([{"update": "v1 -> v2", "dimension": "flips", "measure": "nfr", "group": "gender",
    ...                       "slice": "female", "new": 0.01, "new_low": 0.0, "new_high": 0.02}])
    >>> scorecard_metrics(card)
    {'v1_to_v2/nfr_by_gender/female': 0.01}
    """
    m: dict = {}
    for _, r in cards.iterrows():
        u = _key(r["update"])
        if r["dimension"] == "accuracy" and r["group"] == "all":
            for q in ("old", "new", "change", "change_low", "change_high"):
                m[f"{u}/accuracy/{q}"] = r[q]
        elif r["dimension"] == "flips":
            if r["group"] == "all":
                for q, suffix in (("new", ""), ("new_low", "_low"), ("new_high", "_high")):
                    m[f"{u}/{r['measure']}{suffix}"] = r[q]
            elif r["measure"] == "nfr":
                m[f"{u}/nfr_by_{r['group']}/{r['slice']}"] = r["new"]
        elif r["dimension"] == "fairness":
            for q in ("old", "new", "change"):
                m[f"{u}/{r['group']}/{r['measure']}/{q}"] = r[q]
        elif r["dimension"] == "privacy":
            for q in ("old", "new", "change"):
                m[f"{u}/{r['measure']}/{q}"] = r[q]
    if verdicts is not None:
        for _, r in verdicts[verdicts["rule"] == "overall"].iterrows():
            m[f"{_key(r['update'])}/verdict/{r['outcome']}"] = 1
    if info is not None:
        for v, r in info.iterrows():
            m[f"{v}/accuracy"] = r["accuracy"]
            if not np.isnan(r["epsilon"]):
                m[f"{v}/epsilon"] = r["epsilon"]
    if flips is not None:
        for _, r in flips.iterrows():
            p = r["path"].replace(" -> ", "_")
            for q in ("cumulative_nfr", "ever_regressed", "sum_step_nfr"):
                m[f"path/{p}/{r['version']}/{q}"] = r[q]
    from workbench.results import metric_key

    return {metric_key(k): (None if isinstance(v, float) and np.isnan(v) else float(v)) for k, v in m.items()}


def scorecard_record(chain, cards: pd.DataFrame, *, verdicts: pd.DataFrame, flips: pd.DataFrame,
                     config: ScorecardConfig = TWEET_SCORECARD, rules: Sequence[Rule] = ()) -> dict:
    """Keyword arguments for :func:`workbench.results.save_record`: ``config``, ``metrics``, ``tables``
    (``scorecard``, ``verdict``, ``chain_flips``, ``versions``), ``timings`` and ``extra`` (the overall verdicts)."""
    overall = verdicts[verdicts["rule"] == "overall"].set_index("update")["outcome"].to_dict()
    return {
        "config": {"chain": asdict(chain.config), "scorecard": asdict(config), "rules": [asdict(r) for r in rules]},
        "metrics": scorecard_metrics(cards, verdicts=verdicts, flips=flips, info=chain.info),
        "tables": {"scorecard": cards, "verdict": verdicts, "chain_flips": flips, "versions": chain.info.reset_index()},
        "timings": {**chain.timings, "from_cache": float(chain.from_cache)},
        "extra": {"overall_verdict": overall},
    }
