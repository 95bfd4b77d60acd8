"""The privacy studies of notebooks 01 and 02 as functions: each runs one experiment and returns plain data.

A notebook cell calls one of these, displays the table it returns and hands its curves to a figure builder
of :mod:`workbench.plots`; the computation lives here, where it is documented and tested.

Notebook 02 (practical privacy)
    :func:`load_attack_pool` (MiniLM features of tweets) -> :func:`membership_attack_study` (a non-DP and one
    DP target per epsilon, shadow models, six attacks) -> :func:`theory_vs_practice` (the measured ROCs
    against the (epsilon, delta)-DP region) ; :func:`one_run_audit_study` (an epsilon lower bound from one training
    run per model) -> :func:`audit_vs_promise` (promised vs audited epsilon next to the TPR at low FPR) ;
    :func:`shadow_count_study` (LiRA and RMIA against 2 to 64 shadow models) ; :func:`transformer_audit_study` (the
    one-run audit of MiniLM fine-tuned with and without DP) ; :func:`transformer_shadow_study` (LiRA and RMIA with shadow
    models of fine-tuned MiniLM, on hidden states cached once) ; :func:`canary_study` (secrets inserted into tweets, four
    training variants, exposure and extraction) ; :func:`transformer_canary_study` (canary extraction from fine-tuned
    MiniLM, against repetitions and epsilon) ; :func:`attack_study_configs` (the five configs from the notebook's
    parameters, grouped ones filled by :func:`attack_study_parameters`) ; :func:`attack_study_record` (the run record's config, metrics, timings
    and tables, with :func:`membership_metrics` and :func:`canary_metrics`).
Notebook 01 (DP vs non-DP)
    :func:`dp_study_parameters` (the parameters, grouped ones filled) ; :func:`load_dp_tasks` (the tweet tasks the models need) -> :func:`schedule_table` (noise per target epsilon) ;
    :func:`accounting_curves` (epsilon vs noise, RDP and PRV) ; :func:`utility_sweep` (every model without DP and
    at each target epsilon) ; :func:`gradient_norms` (per-example norms before and after training) ;
    :func:`clip_noise_grid` (accuracy over clipping norm x noise) ; :func:`dp_study_record` (the run record) ;
    :func:`engine_timings` (epoch time per model and DP engine, relative to non-DP) ; :func:`dp_study_metrics`
    (flat metrics of the epsilon sweep and the timings for the run record).

Every function is seeded through its arguments (a config's ``seed``, a ``TrainConfig``'s ``seed``) and draws
its random numbers in a fixed order, so the same arguments give the same numbers.
"""
from __future__ import annotations

from ._labels import NON_DP, metric_label
from .attack_configs import (ATTACK_GROUP_CHECKS, ATTACK_GROUPS, ATTACK_PARAMETERS, MINILM_ATTACK_PARAMETERS, AttackStudyConfigs,
                             attack_study_configs, attack_study_parameters)
from .auditing import AuditStudy, AuditStudyConfig, audit_metrics, audit_vs_promise, one_run_audit_study
from .dp_study import (DP_GROUPS, DP_PARAMETERS, SWEEP_COLUMNS, accounting_curves, clip_noise_grid, dp_study_parameters,
                       dp_study_record, gradient_norms, load_dp_tasks, norm_summary, schedule_table, utility_sweep)
from .canary import CanaryStudy, CanaryStudyConfig, canary_metrics, canary_study
from .membership import (AttackPool, MembershipStudy, MembershipStudyConfig, load_attack_pool, membership_attack_study,
                         membership_metrics)
from .records import attack_study_record
from .shadows import SHADOW_ATTACKS, ShadowStudy, ShadowStudyConfig, shadow_count_study, shadow_metrics
from .theory import TheoryVsPractice, theory_vs_practice
from .transformer_audit import TransformerAudit, TransformerAuditConfig, transformer_audit_metrics, transformer_audit_study
from .transformer_canary import (TransformerCanaryConfig, TransformerCanaryStudy, canary_recovery, transformer_canary_metrics,
                                 transformer_canary_study)
from .transformer_shadows import (TransformerShadowConfig, TransformerShadowStudy, transformer_shadow_metrics,
                                  transformer_shadow_study)
from .training import dp_study_metrics, engine_timings

__all__ = [
    "DP_PARAMETERS",
    "DP_GROUPS",
    "dp_study_parameters",
    "SWEEP_COLUMNS",
    "accounting_curves",
    "clip_noise_grid",
    "dp_study_record",
    "gradient_norms",
    "load_dp_tasks",
    "norm_summary",
    "schedule_table",
    "utility_sweep",
    "ATTACK_PARAMETERS",
    "ATTACK_GROUPS",
    "ATTACK_GROUP_CHECKS",
    "attack_study_parameters",
    "AttackStudyConfigs",
    "attack_study_configs",
    "NON_DP",
    "AttackPool",
    "load_attack_pool",
    "MembershipStudyConfig",
    "MembershipStudy",
    "membership_attack_study",
    "TheoryVsPractice",
    "theory_vs_practice",
    "CanaryStudyConfig",
    "CanaryStudy",
    "canary_study",
    "membership_metrics",
    "canary_metrics",
    "attack_study_record",
    "metric_label",
    "AuditStudyConfig",
    "AuditStudy",
    "one_run_audit_study",
    "audit_vs_promise",
    "audit_metrics",
    "SHADOW_ATTACKS",
    "ShadowStudyConfig",
    "ShadowStudy",
    "shadow_count_study",
    "shadow_metrics",
    "TransformerAuditConfig",
    "TransformerAudit",
    "transformer_audit_study",
    "transformer_audit_metrics",
    "MINILM_ATTACK_PARAMETERS",
    "TransformerShadowConfig",
    "TransformerShadowStudy",
    "transformer_shadow_study",
    "transformer_shadow_metrics",
    "TransformerCanaryConfig",
    "TransformerCanaryStudy",
    "transformer_canary_study",
    "canary_recovery",
    "transformer_canary_metrics",
    "engine_timings",
    "dp_study_metrics",
]
