"""Notebook 02's run record: the config, metrics, timings and tables of its studies in one call
(:func:`attack_study_record`)."""
from __future__ import annotations

from .canary import CanaryStudy, canary_metrics
from .membership import AttackPool, MembershipStudy, membership_metrics
from .theory import TheoryVsPractice


def attack_study_record(mia: MembershipStudy, *, theory: TheoryVsPractice, canary: CanaryStudy, pool: AttackPool | None = None) -> dict:
    """The ``config``, ``metrics``, ``timings`` and ``extra`` sections of notebook 02's run record, as keyword
    arguments of :func:`workbench.results.save_record`.

    ``config``: the membership models' ``mia`` / ``mia_dp`` TrainConfigs, their ``noise_multipliers`` and the
    ``canaries`` config; ``metrics``: :func:`membership_metrics` then :func:`canary_metrics`; ``timings``: the
    studies' (and the pool's) seconds; ``extra``: the full ``membership_inference``, ``bound_checks`` and
    ``canaries`` tables as lists of rows.
    """
    return {
        "config": {"mia": mia.train_config, "mia_dp": mia.dp_train_config, "noise_multipliers": mia.noise_multipliers,
                   "canaries": canary.config},
        "metrics": {**membership_metrics(mia.table), **canary_metrics(canary.table)},
        "timings": {**(pool.timings if pool is not None else {}), **mia.timings, **canary.timings},
        "extra": {"membership_inference": mia.table.to_dict("records"), "bound_checks": theory.checks.to_dict("records"),
                  "canaries": canary.table.to_dict("records")},
    }
