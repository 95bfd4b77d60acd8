"""Notebook 02's run record: the config, metrics, timings and tables of its studies in one call
(:func:`attack_study_record`)."""
from __future__ import annotations

from .auditing import AuditStudy, audit_metrics, audit_vs_promise
from .canary import CanaryStudy, canary_metrics
from .membership import AttackPool, MembershipStudy, membership_metrics
from .shadows import ShadowStudy, shadow_metrics
from .theory import TheoryVsPractice
from .transformer_audit import TransformerAudit, transformer_audit_metrics
from .transformer_canary import TransformerCanaryStudy, canary_recovery, transformer_canary_metrics
from .transformer_shadows import TransformerShadowStudy, transformer_shadow_metrics


def attack_study_record(mia: MembershipStudy, *, theory: TheoryVsPractice, canary: CanaryStudy, pool: AttackPool | None = None,
                        audit: AuditStudy | None = None, shadows: ShadowStudy | None = None,
                        transformer: TransformerAudit | None = None, minilm_shadows: TransformerShadowStudy | None = None,
                        minilm_canary: TransformerCanaryStudy | None = None) -> dict:
    """The ``config``, ``metrics``, ``timings`` and ``tables`` sections of notebook 02's run record, as keyword
    arguments of :func:`workbench.results.save_record`.

    ``config``: the membership models' ``mia`` / ``mia_dp`` TrainConfigs, their ``noise_multipliers``, the
    ``canaries`` config and, when given, the ``audit`` and ``shadows`` configs; ``metrics``:
    :func:`membership_metrics`, :func:`canary_metrics`, :func:`audit_metrics` and :func:`shadow_metrics` (all in the
    records' one naming scheme); ``timings``: the studies' (and the pool's) seconds; ``tables``: the full
    ``membership_inference``, ``bound_checks`` and ``canaries`` tables and, when given, ``theory_vs_practice``
    (:func:`audit_vs_promise`), ``audit``, ``shadow_budget`` and ``transformer_audit``; the fine-tuned transformer's
    metrics are :func:`~.transformer_audit.transformer_audit_metrics`. With ``minilm_shadows`` (MiniLM shadow models):
    its config, :func:`~.transformer_shadows.transformer_shadow_metrics`, timings and the ``minilm_shadows`` table; with
    ``minilm_canary`` (canary extraction from MiniLM): its config, :func:`~.transformer_canary.transformer_canary_metrics`,
    timings, and the ``minilm_canaries`` table (one row per model and canary) with its ``minilm_canary_recovery`` summary.
    """
    config = {"mia": mia.train_config, "mia_dp": mia.dp_train_config, "noise_multipliers": mia.noise_multipliers,
              "canaries": canary.config}
    metrics = {**membership_metrics(mia.table), **canary_metrics(canary.table)}
    timings = {**(pool.timings if pool is not None else {}), **mia.timings, **canary.timings}
    tables = {"membership_inference": mia.table, "bound_checks": theory.checks, "canaries": canary.table}
    if audit is not None:
        config["audit"] = audit.config
        metrics.update(audit_metrics(audit.table))
        timings.update(audit.timings)
        tables["theory_vs_practice"] = audit_vs_promise(audit.table, membership=mia.table)
        tables["audit"] = audit.table
    if shadows is not None:
        config["shadows"] = shadows.config
        metrics.update(shadow_metrics(shadows.table))
        timings.update({f"shadow_study_{k}": v for k, v in shadows.timings.items()})
        tables["shadow_budget"] = shadows.table
    optional = (("transformer_audit", transformer, transformer_audit_metrics, "transformer_audit"),
                ("minilm_shadows", minilm_shadows, transformer_shadow_metrics, "minilm_shadows"),
                ("minilm_canary", minilm_canary, transformer_canary_metrics, "minilm_canaries"))
    for key, study, to_metrics, table in optional:  # the MiniLM studies: config, metrics, timings, table
        if study is not None:
            config[key] = study.config
            metrics.update(to_metrics(study.table))
            timings.update(study.timings)
            tables[table] = study.table
    if minilm_canary is not None:
        tables["minilm_canary_recovery"] = canary_recovery(minilm_canary.table)
    return {"config": config, "metrics": metrics, "timings": timings, "tables": tables}
