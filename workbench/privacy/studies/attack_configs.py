"""Notebook 02's five study configs built from its parameters in one call (:func:`attack_study_configs`)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Mapping

from workbench.validation import Interval, InvalidParameterError, fill_groups

from ..canaries import PREFIXES

from .auditing import AuditStudyConfig
from .canary import CanaryStudyConfig
from .membership import MembershipStudyConfig
from .shadows import ShadowStudyConfig
from .transformer_audit import TransformerAuditConfig
from .transformer_canary import TransformerCanaryConfig
from .transformer_shadows import TransformerShadowConfig

_CORE_PARAMETERS = ("N_POOL", "K_SHADOWS", "EPSILONS", "DELTA", "N_AUDIT_CANARIES", "SHADOW_COUNTS", "TRAINING",
                     "REPETITIONS", "N_DIGITS", "CANARY")
MINILM_ATTACK_PARAMETERS = ("MINILM_SHADOW_COUNTS", "MINILM_EPOCHS", "MINILM_CANARY_EPSILONS")
"""The parameters of notebook 02's fine-tuned-MiniLM shadow and canary studies (all or none of them)."""
ATTACK_PARAMETERS = _CORE_PARAMETERS + MINILM_ATTACK_PARAMETERS
"""The parameter names of notebook 02 that :func:`attack_study_configs` reads."""

ATTACK_GROUPS = {
    "TRAINING": {"mia_epochs": 30, "mia_batch": 32, "n_transformer_texts": 400, "transformer_epochs": 2},
    "CANARY": {"n_tweets": 1000, "epochs": 15, "dp_epsilon": 1.0, "dropout": 0.5, "extraction_steps": 150,
               "extraction_restarts": 8, "extrapolation_samples": 2000},
}
"""Notebook 02's grouped parameters (dict literals) and their defaults. ``TRAINING``: epochs and batch size of the
MLP heads of membership inference, the one-run audit and the shadow budget (``mia_epochs``, ``mia_batch``), and the
tweets and epochs of the fine-tuned MiniLM audit (``n_transformer_texts``, ``transformer_epochs``). ``CANARY``: the GRU
canary study's tweets, training (``epochs``, ``dp_epsilon`` of its DP variant, ``dropout`` of its dropout variant)
and attack (``extraction_steps``, ``extraction_restarts``, ``extrapolation_samples``). A partial dict keeps the
defaults of the keys it leaves out (:func:`attack_study_parameters`)."""

_COUNT = Interval(int, 1, None)
ATTACK_GROUP_CHECKS = {
    "TRAINING": {"mia_epochs": _COUNT, "mia_batch": _COUNT, "n_transformer_texts": Interval(int, 6, None),
                 "transformer_epochs": _COUNT},
    "CANARY": {"n_tweets": Interval(int, 10, None), "epochs": _COUNT, "dp_epsilon": Interval(float, 0, None, closed="neither"),
               "dropout": Interval(float, 0, 1, closed="left"), "extraction_steps": _COUNT, "extraction_restarts": _COUNT,
               "extrapolation_samples": Interval(int, 20, None)},
}
"""What each grouped value accepts (checked by :func:`attack_study_parameters` before anything trains)."""


def attack_study_parameters(parameters: Mapping[str, Any]) -> dict:
    """Notebook 02's parameters by name with the grouped ones (:data:`ATTACK_GROUPS`) filled: a partial ``TRAINING`` or
    ``CANARY`` keeps the defaults of the keys it leaves out, so ``CANARY = {"epochs": 5}`` changes one value. Unknown
    keys, and grouped values outside :data:`ATTACK_GROUP_CHECKS`, raise
    :class:`~workbench.validation.InvalidParameterError` naming the parameter and what it accepts. The result is what
    the run record keeps.

    Examples
    --------
    >>> p = attack_study_parameters({"N_POOL": 200, "CANARY": {"epochs": 5}})
    >>> p["N_POOL"], p["CANARY"]["epochs"], p["CANARY"]["dropout"], p["TRAINING"]["mia_epochs"]
    (200, 5, 0.5, 30)
    >>> attack_study_parameters({"CANARY": {"dropout": 1.0}})
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The "CANARY['dropout']" parameter of notebook 02_privacy_attacks must be a float in [0, 1). Got 1.0 instead.
    """
    return fill_groups(parameters, ATTACK_GROUPS, owner="notebook 02_privacy_attacks", constraints=ATTACK_GROUP_CHECKS)


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

    The grouped parameters ``TRAINING`` and ``CANARY`` may be partial or left out (their keys then keep the defaults of
    :data:`ATTACK_GROUPS`, :func:`attack_study_parameters`). Each config validates its own values; a missing or unknown
    name raises :class:`~workbench.validation.InvalidParameterError` listing the accepted names. The transformer audit
    uses half of ``TRAINING["n_transformer_texts"]`` as canaries; every config gets ``seed``. The MiniLM shadow and canary studies'
    parameters (:data:`MINILM_ATTACK_PARAMETERS`) may all be left out (their configs are then ``None``). Their canary
    study shares ``REPETITIONS``, ``N_DIGITS`` and ``DELTA`` with the GRU's, plants 2 canaries per repetition count (1
    when more than 4 counts leave too few of the 8 text patterns), and its inversion runs half the GRU attack's
    ``CANARY["extraction_steps"]`` and ``CANARY["extraction_restarts"]`` (one MiniLM step costs as much as about a hundred GRU steps).

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
    >>> p = dict(N_POOL=200, K_SHADOWS=2, EPSILONS=[4.0], DELTA=1e-5, N_AUDIT_CANARIES=100, SHADOW_COUNTS=[2, 4],
    ...          TRAINING={"mia_epochs": 3, "n_transformer_texts": 40, "transformer_epochs": 1}, REPETITIONS=[1, 8],
    ...          N_DIGITS=3, CANARY={"n_tweets": 200, "epochs": 2, "extraction_steps": 20, "extraction_restarts": 2,
    ...                              "extrapolation_samples": 200})
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
    missing = [k for k in (ATTACK_PARAMETERS if with_minilm else _CORE_PARAMETERS)
               if k not in parameters and k not in ATTACK_GROUPS]
    unknown = sorted(set(parameters) - set(ATTACK_PARAMETERS))
    if missing or unknown:
        raise InvalidParameterError(f"The 'parameters' parameter of attack_study_configs must have exactly the names "
                                    f"{list(ATTACK_PARAMETERS)}. Missing {missing}, unknown {unknown}.")
    p = attack_study_parameters(parameters)
    t, c = p["TRAINING"], p["CANARY"]
    shared = dict(epochs=t["mia_epochs"], batch_size=t["mia_batch"], seed=seed)
    core = dict(
        membership=MembershipStudyConfig(epsilons=p["EPSILONS"], k_shadows=p["K_SHADOWS"], delta=p["DELTA"], **shared),
        audit=AuditStudyConfig(epsilons=p["EPSILONS"], n_canaries=p["N_AUDIT_CANARIES"], delta=p["DELTA"], **shared),
        transformer=TransformerAuditConfig(epsilons=p["EPSILONS"], n_canaries=t["n_transformer_texts"] // 2,
                                           epochs=t["transformer_epochs"], delta=p["DELTA"], seed=seed),
        shadows=ShadowStudyConfig(shadow_counts=p["SHADOW_COUNTS"], **shared),
        canary=CanaryStudyConfig(repetitions=p["REPETITIONS"], n_digits=p["N_DIGITS"], epochs=c["epochs"],
                                 dropout=c["dropout"], dp_epsilon=c["dp_epsilon"],
                                 extraction_steps=c["extraction_steps"], extraction_restarts=c["extraction_restarts"],
                                 extrapolation_samples=c["extrapolation_samples"], seed=seed),
    )
    minilm = {}
    if with_minilm:
        n_counts = len(core["canary"].repetitions)  # normalised to a tuple by the config
        half = {name: max(1, int(c[name]) // 2) for name in ("extraction_steps", "extraction_restarts")}  # checked above
        minilm = dict(
            minilm_shadows=TransformerShadowConfig(shadow_counts=p["MINILM_SHADOW_COUNTS"], epochs=p["MINILM_EPOCHS"],
                                                   delta=p["DELTA"], seed=seed),
            minilm_canary=TransformerCanaryConfig(repetitions=p["REPETITIONS"], canaries_per_count=2 if 2 * n_counts <= len(PREFIXES) else 1,
                                                  n_digits=p["N_DIGITS"], epsilons=p["MINILM_CANARY_EPSILONS"], epochs=p["MINILM_EPOCHS"],
                                                  delta=p["DELTA"], extraction_steps=half["extraction_steps"],
                                                  extraction_restarts=half["extraction_restarts"], seed=seed))
    return AttackStudyConfigs(**core, **minilm)
