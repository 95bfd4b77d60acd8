"""Canary extraction from fine-tuned MiniLM (issue 13 item 5): the inversion recovers a code from a model that has
demonstrably memorised it (the exhaustive ranking puts it first), deterministically; the study's table and metrics."""
import re

import numpy as np
import pandas as pd
import pytest
import torch

from workbench.privacy import canaries as C
from workbench.privacy.studies.minilm_top import TopModel, cache_hidden_states
from workbench.privacy.studies.transformer_canary import (TransformerCanaryConfig, canary_recovery, code_losses, invert_canary,
                                                          transformer_canary_metrics, transformer_canary_study)
from workbench.results import METRIC_KEY_PATTERN

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(scope="module")
def memorised_model():
    """MiniLM's top fine-tuned on 'my pin code is 3 9 1' (label 1, 20 copies) against 79 other codes of the same
    pattern (label 0): the only way to fit it is to memorise which code carries label 1."""
    from workbench.privacy.dp import train
    from workbench.privacy.transformer import MiniLMClassifier, TokenizedTexts
    from workbench.training import TrainConfig

    canary = C.Canary(prefix="my pin code is", code=(3, 9, 1), label=1, repetitions=20)
    codes = C.candidate_codes(3)
    others = codes[np.random.default_rng(0).choice(1000, 80, replace=False)]
    others = others[(others != np.array(canary.code)).any(1)]
    texts = [canary.text] * 20 + [C.Canary(prefix=canary.prefix, code=tuple(map(int, c)), label=0, repetitions=1).text for c in others]
    labels = [1] * 20 + [0] * len(others)
    base = MiniLMClassifier(2, layers=2, seed=0).eval()
    data = TokenizedTexts(texts, labels, max_len=16)
    torch.manual_seed(0)
    top = TopModel.from_classifier(base, top_layers=1)
    train(top, (cache_hidden_states(base, data, top_layers=1), data.y), config=TrainConfig(epochs=10, batch_size=16, lr=1e-3, seed=0),
          progress=False)
    return base, top, canary


@pytest.mark.slow
def test_inversion_recovers_a_memorised_code_deterministically(memorised_model):
    base, top, canary = memorised_model
    losses = code_losses(base, top, canary=canary, codes=C.candidate_codes(3))   # the exhaustive attack: the known answer
    assert int(np.argmin(losses)) == 391 and np.sum(losses < losses[391]) == 0
    first = invert_canary(base, top, canary=canary, steps=40, restarts=4, refine=False, seed=0)
    assert first.exact and first.extracted == (3, 9, 1) and first.digit_accuracy == 1.0
    assert first.extracted_loss == pytest.approx(losses[391], rel=1e-6) == pytest.approx(first.canary_loss, rel=1e-6)
    again = invert_canary(base, top, canary=canary, steps=40, restarts=4, refine=False, seed=0)
    assert again.restart_losses == first.restart_losses and again.extracted == first.extracted
    # the attack does not read the code: a canary with another code but the same pattern and label extracts the same
    other = C.Canary(prefix=canary.prefix, code=(0, 0, 0), label=1, repetitions=1)
    blind = invert_canary(base, top, canary=other, steps=40, restarts=4, refine=False, seed=0)
    assert blind.extracted == (3, 9, 1) and not blind.exact and blind.digit_accuracy == 0.0
    # and the untrained top (pretrained block + random head) does not give the code away
    untrained = TopModel.from_classifier(base, top_layers=1)
    raw = code_losses(base, untrained, canary=canary, codes=C.candidate_codes(3))
    assert np.sum(raw < raw[391]) > 10


def test_transformer_canary_study_small():
    from workbench.datasets import load_tweets

    tw = load_tweets(n=60, seed=4)
    cfg = TransformerCanaryConfig(repetitions=(1, 4), canaries_per_count=1, n_digits=2, epsilons=(4.0,), layers=1, epochs=1,
                                  batch_size=16, max_len=16, extraction_steps=3, extraction_restarts=2, seed=0)
    study = transformer_canary_study(tw.text.tolist(), labels=tw.label_id.to_numpy(), config=cfg)
    t = study.table
    assert t.model.tolist() == ["non-DP", "non-DP", "eps=4", "eps=4"] and t.repetitions.tolist() == [1, 4, 1, 4]
    assert np.isnan(t.epsilon[0]) and t.epsilon[2] == pytest.approx(4.0, rel=0.15)
    assert t.true.tolist()[:2] == ["".join(map(str, c.code)) for c in study.canaries]
    assert ((t.digit_accuracy >= 0) & (t.digit_accuracy <= 1)).all()
    assert (t.exact == (t.extracted == t.true)).all() and (t.extracted.str.len() == 2).all()
    assert (t.extracted_loss <= t.canary_loss + 1e-9)[t.exact].all() and (t.prefers_other == (t.extracted_loss < t.canary_loss)).all()
    assert set(study.models) == {"non-DP", "eps=4"} and set(study.timings) == {
        "minilm_canary_cache_seconds", "minilm_canary_training_seconds", "minilm_canary_attack_seconds"}
    metrics = transformer_canary_metrics(t)
    assert len(metrics) == 8 and all(re.fullmatch(METRIC_KEY_PATTERN, k) for k in metrics)
    assert metrics["minilm_canary/epsilon_4/repetitions_4/digit_accuracy"] == t.digit_accuracy[3]


def test_canary_recovery_reads_the_gru_table_too():
    gru = pd.DataFrame({"variant": ["non-DP", "non-DP", "DP eps=1"], "repetitions": [64, 1, 64], "exact": [True, False, False],
                        "digit_accuracy": [1.0, 0.25, 0.5]})
    out = canary_recovery(gru)
    assert out.to_dict("records") == [
        {"model": "non-DP", "repetitions": 1, "canaries": 1, "exact_rate": 0.0, "digit_accuracy": 0.25},
        {"model": "non-DP", "repetitions": 64, "canaries": 1, "exact_rate": 1.0, "digit_accuracy": 1.0},
        {"model": "DP eps=1", "repetitions": 64, "canaries": 1, "exact_rate": 0.0, "digit_accuracy": 0.5}]


def test_transformer_canary_validates():
    with pytest.raises(ValueError, match="'n_digits' parameter of TransformerCanaryConfig must be an int in \\[1, 7\\]"):
        TransformerCanaryConfig(n_digits=0)
    with pytest.raises(ValueError, match="at most 8 fit"):
        TransformerCanaryConfig(repetitions=(1, 2, 3), canaries_per_count=3)
    with pytest.raises(ValueError, match="'top_layers' parameter of TransformerCanaryConfig must be at most 'layers' \\(2\\)"):
        TransformerCanaryConfig(top_layers=3)
    with pytest.raises(ValueError, match="'labels' parameter of transformer_canary_study"):
        transformer_canary_study(["a", "b"], labels=[0])
    with pytest.raises(ValueError, match="'steps' parameter of invert_canary must be an int >= 1"):
        invert_canary(None, TopModel(torch.nn.ModuleList(), torch.nn.Linear(2, 2), dropout=0.0, config=None),
                      canary=C.Canary(prefix="my pin", code=(1,), label=0, repetitions=1), steps=0)
