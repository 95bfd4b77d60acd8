"""The fairness studies of notebooks 04 and 05 as functions: each runs one step of an experiment and returns plain
data (tidy tables), shaped like :mod:`workbench.privacy.studies`.

Notebook 04 (intrinsic bias: WEAT, SEAT, CEAT)
    :class:`IntrinsicStudyConfig` -> :func:`gather_contexts` (sentences per word) -> :func:`baseline_tests` (static
    WEAT, SEAT) -> :func:`ceat_by_layer` (every test x encoder x layer) -> :func:`samples_study` (precision vs N) ->
    :func:`literature_comparison` / :func:`sign_agreement` -> :func:`intrinsic_study_record`; :func:`intrinsic_study_config`
    builds the config from the notebook's parameters (grouped ones: :data:`INTRINSIC_GROUPS`).
Notebook 05 (extrinsic bias)
    :class:`ExtrinsicStudyConfig` -> :func:`prepare_extrinsic_data` (tweets, CDA copies, evaluation corpus) ->
    :func:`encode_extrinsic_features` (MiniLM, every layer, cached) -> :func:`intrinsic_by_layer` (WEAT d) ->
    :func:`audit_layers` (layer x {baseline, CDA}: train, audit) -> :func:`intrinsic_vs_extrinsic` ->
    :func:`extrinsic_study_record`.
Both notebooks
    :func:`word_sets_table` (the WEAT tests' word sets at a glance).

Every function is seeded through its config's ``seed``; the same config gives the same numbers.
"""
from __future__ import annotations

from ._common import config_parameters, word_sets_table
from .extrinsic import (VARIANTS, ExtrinsicData, ExtrinsicStudyConfig, TextFeatures, audit_layers, encode_extrinsic_features,
                        extrinsic_study_metrics, extrinsic_study_record, intrinsic_by_layer, intrinsic_vs_extrinsic,
                        prepare_extrinsic_data)
from .intrinsic import (CALISKAN_2017_GLOVE, ENCODER_DEPTH, INTRINSIC_GROUPS, CeatStudy, ContextSearch, IntrinsicStudyConfig,
                        baseline_tests, ceat_by_layer, gather_contexts, intrinsic_study_config, intrinsic_study_metrics,
                        intrinsic_study_record, literature_comparison, samples_study, sign_agreement, test_words)

__all__ = [
    "config_parameters",
    "word_sets_table",
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
    "ExtrinsicStudyConfig",
    "ExtrinsicData",
    "TextFeatures",
    "VARIANTS",
    "prepare_extrinsic_data",
    "encode_extrinsic_features",
    "intrinsic_by_layer",
    "audit_layers",
    "intrinsic_vs_extrinsic",
    "extrinsic_study_metrics",
    "extrinsic_study_record",
]
