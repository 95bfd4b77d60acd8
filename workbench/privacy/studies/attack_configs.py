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
from .transformer_canary import TransformerCanaryConfig
from .transformer_shadows import TransformerShadowConfig

_CORE_PARAMETERS = ("N_POOL", "K_SHADOWS", "MIA_EPOCHS", "MIA_BATCH", "EPSILONS", "DELTA", "N_AUDIT_CANARIES",
                     "SHADOW_COUNTS", "N_TRANSFORMER_TEXTS", "TRANSFORMER_EPOCHS", "N_CANARY_TWEETS", "REPETITIONS",
                     "N_DIGITS", "CANARY_EPOCHS", "CANARY_DP_EPSILON", "DROPOUT", "EXTRACTION_STEPS",
                     "EXTRACTION_RESTARTS", "EXTRAPOLATION_SAMPLES")
MINILM_ATTACK_PARAMETERS = ("MINILM_SHADOW_COUNTS", "MINILM_EPOCHS", "MINILM_CANARY_EPSILONS")
"""The parameters of notebook 02's fine-tuned-MiniLM shadow and canary studies (all or none of them)."""
ATTACK_PARAMETERS = _CORE_PARAMETERS + MINILM_ATTACK_PARAMETERS
"""The parameter names of notebook 02 that :func:`attack_study_configs` reads."""


@dataclass(frozen=True)
class AttackStudyConfigs:
    """The configs of notebook 02's studies: ``membership``, ``audit``, ``transformer``, ``shadows``, ``canary``, and
    (``None`` without their parameters) ``minilm_shadows`` and ``minilm_canary``."""

    membership: MembershipStudyConfig
    audit: AuditStudyConfig
    transformer: TransformerAuditConfig
    shadows: ShadowStudyConfig
    canary: CanaryStudyConfig
    minilm_shadows: TransformerShadowConfig | None = None
    minilm_canary: TransformerCanaryConfig | None = None


def attack_study_configs(parameters: Mapping[str, Any], *, seed: int = 0) -> AttackStudyConfigs:
    """Build notebook 02's study configs from its upper-case parameters (the names in :data:`ATTACK_PARAMETERS`).

    Each config validates its own values; a missing or unknown name raises
    :class:`~workbench.validation.InvalidParameterError` listing the accepted names. The transformer audit
    uses half of ``N_TRANSFORMER_TEXTS`` as canaries; every config gets ``seed``. The MiniLM shadow and canary studies'
    parameters (:data:`MINILM_ATTACK_PARAMETERS`) may all be left out (their configs are then ``None``). Their canary
    study shares ``REPETITIONS``, ``N_DIGITS`` and ``DELTA`` with the GRU's, plants 2 canaries per repetition count (1
    when more than 4 counts leave too few of the 8 text patterns), and its inversion runs half the GRU attack's
    ``EXTRACTION_STEPS`` and ``EXTRACTION_RESTARTS`` (one MiniLM step costs as much as about a hundred GRU steps).

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
    >>> configs.minilm_canary is None                     # no MINILM_* parameters: no MiniLM shadow and canary studies
    True
    """
    if not isinstance(parameters, Mapping):
        raise InvalidParameterError(f"The 'parameters' parameter of attack_study_configs must be a mapping. "
                                    f"Got {type(parameters).__name__} instead.")
    with_minilm = any(k in parameters for k in MINILM_ATTACK_PARAMETERS)
    missing = [k for k in (ATTACK_PARAMETERS if with_minilm else _CORE_PARAMETERS) if k not in parameters]
    unknown = sorted(set(parameters) - set(ATTACK_PARAMETERS))
    if missing or unknown:
        raise InvalidParameterError(f"The 'parameters' parameter of attack_study_configs must have exactly the names "
                                    f"{list(ATTACK_PARAMETERS)}. Missing {missing}, unknown {unknown}.")
    p = parameters
    shared = dict(epochs=p["MIA_EPOCHS"], batch_size=p["MIA_BATCH"], seed=seed)
    core = dict(
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
    minilm = {}
    if with_minilm:
        reps = p["REPETITIONS"] if isinstance(p["REPETITIONS"], (list, tuple)) else [p["REPETITIONS"]]
        half = {name: max(1, int(p[name]) // 2) for name in ("EXTRACTION_STEPS", "EXTRACTION_RESTARTS")}  # checked by the GRU's config
        minilm = dict(
            minilm_shadows=TransformerShadowConfig(shadow_counts=p["MINILM_SHADOW_COUNTS"], epochs=p["MINILM_EPOCHS"],
                                                   delta=p["DELTA"], seed=seed),
            minilm_canary=TransformerCanaryConfig(repetitions=p["REPETITIONS"], canaries_per_count=2 if len(reps) <= 4 else 1,
                                                  n_digits=p["N_DIGITS"], epsilons=p["MINILM_CANARY_EPSILONS"], epochs=p["MINILM_EPOCHS"],
                                                  delta=p["DELTA"], extraction_steps=half["EXTRACTION_STEPS"],
                                                  extraction_restarts=half["EXTRACTION_RESTARTS"], seed=seed))
    return AttackStudyConfigs(**core, **minilm)
