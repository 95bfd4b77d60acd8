"""Notebook 03's federated study as functions: one validated config, study functions returning tidy tables, one
record builder.

:class:`FedStudyConfig` holds every knob of the notebook and builds the :class:`FedConfig` of each run.
:func:`load_study_data` -> :func:`centralized_baseline` ; :func:`selection_study` (every strategy in the static
and continual settings, and the natural-vs-shuffled control) ; :func:`fairness_table` (light vs heavy users) ;
:func:`seed_study` + :func:`seed_intervals` (the comparisons over several seeds with 95% intervals; or one batch
run per seed, combined by :func:`seeds_from_runs`) ;
:func:`partition_study` (FedNLP's partitions side by side) ; :func:`partition_seed_study` (does the ranking
hold on those partitions, over seeds) ; :func:`client_privacy_study` (DP-FedAvg's
per-client epsilon under each selection strategy, and the utility it buys) ; :func:`study_record` (the run
record's metrics and tables).

Examples
--------
>>> cfg = FedStudyConfig(task="shakespeare", data_size="tiny", rounds=2, strategies=["uniform", "activity"])
>>> cfg.metric, cfg.fed_config("activity", clients_per_round=3).strategy
('test_perplexity', 'activity')
"""
from __future__ import annotations

from .client_privacy import client_privacy_study
from .config import ENGINES, GROUPS, SETTINGS, FedStudyConfig, study_config
from .partitions import SEED_PARTITIONS, fednlp_partitions, partition_seed_study, partition_study, with_partition
from .records import metric_key_of, study_record
from .runs import (FedStudy, centralized_baseline, data_summary, fairness_table, first_draw_table, load_study_data,
                   selection_study)
from .seeds import seed_intervals, seed_study, seeds_from_runs, study_finding

__all__ = ["FedStudyConfig", "FedStudy", "study_config", "GROUPS", "ENGINES", "SETTINGS", "load_study_data",
           "data_summary", "first_draw_table", "centralized_baseline", "selection_study", "fairness_table", "seed_study",
           "seeds_from_runs", "seed_intervals", "study_finding", "metric_key_of", "fednlp_partitions", "partition_study",
           "with_partition", "SEED_PARTITIONS", "partition_seed_study", "client_privacy_study", "study_record"]
