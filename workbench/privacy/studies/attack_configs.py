"""Notebook 02's five study configs built from its parameters in one call (:func:`attack_study_configs`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from workbench.validation import InvalidParameterError

from .auditing import AuditStudyConfig
from .canary import CanaryStudyConfig
from .membership import MembershipStudyConfig
from .shadows import ShadowStudyConfig
from .transformer_audit import TransformerAuditConfig

ATTACK_PARAMETERS = ("N_POOL", "K_SHADOWS", "MIA_EPOCHS", "MIA_BATCH", "EPSILONS", "DELTA", "N_AUDIT_CANARIES",
                     "SHADOW_COUNTS", "N_TRANSFORMER_TEXTS", "TRANSFORMER_EPOCHS", "N_CANARY_TWEETS", "REPETITIONS",
                     "N_DIGITS", "CANARY_EPOCHS", "CANARY_DP_EPSILON", "DROPOUT", "EXTRACTION_STEPS",
                     "EXTRACTION_RESTARTS", "EXTRAPOLATION_SAMPLES")
"""The parameter names of notebook 02 that :func:`attack_study_configs` reads."""


@dataclass(frozen=True)
class AttackStudyConfigs:
    """The configs of notebook 02's studies: ``membership``, ``audit``, ``transformer``, ``shadows``, ``canary``."""

    membership: MembershipStudyConfig
    audit: AuditStudyConfig
    transformer: TransformerAuditConfig
    shadows: ShadowStudyConfig
    canary: CanaryStudyConfig


def attack_study_configs(parameters: Mapping[str, Any], *, seed: int = 0) -> AttackStudyConfigs:
    """Build notebook 02's study configs from its upper-case parameters (the names in :data:`ATTACK_PARAMETERS`).

    Each config validates its own values; a missing or unknown name raises
    :class:`~workbench.validation.InvalidParameterError` listing the accepted names. The transformer audit
    uses half of ``N_TRANSFORMER_TEXTS`` as canaries; every config gets ``seed``.

    Parameters
    ----------
    parameters : mapping
        Every name in :data:`ATTACK_PARAMETERS` with its value.
    seed : int, default 0
        The seed of every study.

    Returns
    -------
    AttackStudyConfigs

    Examples
    --------
    >>> p = dict(N_POOL=200, K_SHADOWS=2, MIA_EPOCHS=3, MIA_BATCH=32, EPSILONS=[4.0], DELTA=1e-5, N_AUDIT_CANARIES=100,
    ...          SHADOW_COUNTS=[2, 4], N_TRANSFORMER_TEXTS=40, TRANSFORMER_EPOCHS=1, N_CANARY_TWEETS=200,
    ...          REPETITIONS=[1, 8], N_DIGITS=3, CANARY_EPOCHS=2, CANARY_DP_EPSILON=1.0, DROPOUT=0.5,
    ...          EXTRACTION_STEPS=20, EXTRACTION_RESTARTS=2, EXTRAPOLATION_SAMPLES=200)
    >>> configs = attack_study_configs(p, seed=0)
    >>> configs.membership.k_shadows, configs.transformer.n_canaries, configs.canary.n_digits
    (2, 20, 3)
    """
    if not isinstance(parameters, Mapping):
        raise InvalidParameterError(f"The 'parameters' parameter of attack_study_configs must be a mapping. "
                                    f"Got {type(parameters).__name__} instead.")
    missing = [k for k in ATTACK_PARAMETERS if k not in parameters]
    unknown = sorted(set(parameters) - set(ATTACK_PARAMETERS))
    if missing or unknown:
        raise InvalidParameterError(f"The 'parameters' parameter of attack_study_configs must have exactly the names "
                                    f"{list(ATTACK_PARAMETERS)}. Missing {missing}, unknown {unknown}.")
    p = parameters
    shared = dict(epochs=p["MIA_EPOCHS"], batch_size=p["MIA_BATCH"], seed=seed)
    return AttackStudyConfigs(
        membership=MembershipStudyConfig(epsilons=p["EPSILONS"], k_shadows=p["K_SHADOWS"], delta=p["DELTA"], **shared),
        audit=AuditStudyConfig(epsilons=p["EPSILONS"], n_canaries=p["N_AUDIT_CANARIES"], delta=p["DELTA"], **shared),
        transformer=TransformerAuditConfig(epsilons=p["EPSILONS"], n_canaries=p["N_TRANSFORMER_TEXTS"] // 2,
                                           epochs=p["TRANSFORMER_EPOCHS"], delta=p["DELTA"], seed=seed),
        shadows=ShadowStudyConfig(shadow_counts=p["SHADOW_COUNTS"], **shared),
        canary=CanaryStudyConfig(repetitions=p["REPETITIONS"], n_digits=p["N_DIGITS"], epochs=p["CANARY_EPOCHS"],
                                 dropout=p["DROPOUT"], dp_epsilon=p["CANARY_DP_EPSILON"],
                                 extraction_steps=p["EXTRACTION_STEPS"], extraction_restarts=p["EXTRACTION_RESTARTS"],
                                 extrapolation_samples=p["EXTRAPOLATION_SAMPLES"], seed=seed),
    )
