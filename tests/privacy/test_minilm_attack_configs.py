"""Notebook 02's MiniLM shadow and canary parameters (issue 13): built into validated configs with the GRU canary
study's shared values, all or none of them."""
import pytest

from workbench.privacy import studies as S
from workbench.validation import InvalidParameterError

CORE = dict(N_POOL=200, K_SHADOWS=2, EPSILONS=[4.0], DELTA=1e-5, N_AUDIT_CANARIES=100, SHADOW_COUNTS=[2, 4],
            TRAINING=dict(mia_epochs=3, mia_batch=32, n_transformer_texts=40, transformer_epochs=1), REPETITIONS=[1, 8],
            N_DIGITS=3, CANARY=dict(n_tweets=200, epochs=2, dp_epsilon=1.0, dropout=0.5, extraction_steps=21,
                                    extraction_restarts=3, extrapolation_samples=200))
MINILM = dict(MINILM_SHADOW_COUNTS=[2, 4], MINILM_EPOCHS=2, MINILM_CANARY_EPSILONS=[1.0, 8.0])


def test_minilm_configs_share_the_gru_canary_values():
    c = S.attack_study_configs({**CORE, **MINILM}, seed=5)
    assert c.minilm_shadows == S.TransformerShadowConfig(shadow_counts=(2, 4), epochs=2, delta=1e-5, seed=5)
    assert c.minilm_canary == S.TransformerCanaryConfig(repetitions=(1, 8), canaries_per_count=2, n_digits=3, epsilons=(1.0, 8.0),
                                                        epochs=2, delta=1e-5, extraction_steps=10, extraction_restarts=1, seed=5)
    many = S.attack_study_configs({**CORE, **MINILM, "REPETITIONS": [1, 2, 4, 8, 16, 32, 64]})
    assert many.minilm_canary.canaries_per_count == 1 and len(many.minilm_canary.repetitions) == 7
    assert S.attack_study_configs(CORE).minilm_shadows is None
    assert set(S.MINILM_ATTACK_PARAMETERS) <= set(S.ATTACK_PARAMETERS)


def test_minilm_parameters_come_all_or_none_and_are_validated():
    with pytest.raises(InvalidParameterError, match=r"Missing \['MINILM_CANARY_EPSILONS'\]"):
        S.attack_study_configs({**CORE, "MINILM_SHADOW_COUNTS": [2], "MINILM_EPOCHS": 1})
    with pytest.raises(InvalidParameterError, match="'shadow_counts' parameter of TransformerShadowConfig"):
        S.attack_study_configs({**CORE, **MINILM, "MINILM_SHADOW_COUNTS": [0]})
    with pytest.raises(InvalidParameterError, match="'epsilons' parameter of TransformerCanaryConfig"):
        S.attack_study_configs({**CORE, **MINILM, "MINILM_CANARY_EPSILONS": [-1.0]})
