"""LiRA and RMIA with shadow models of fine-tuned MiniLM (issue 13, left item (b)): the shadow loop on cached hidden
states is deterministic, reads every budget, and its loss row is the loss attack on the same target."""
import re

import numpy as np
import pytest

from workbench.privacy import attacks as A
from workbench.privacy.studies.transformer_shadows import (TransformerShadowConfig, transformer_shadow_metrics,
                                                           transformer_shadow_study)
from workbench.results import METRIC_KEY_PATTERN

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.mark.slow
def test_transformer_shadow_study_is_deterministic_and_complete():
    from workbench.datasets import load_tweets

    tw = load_tweets(n=32, seed=5)
    cfg = TransformerShadowConfig(shadow_counts=(2, 4), layers=1, epochs=1, batch_size=8, max_len=16, seed=0)
    study = transformer_shadow_study(tw.text.tolist(), labels=tw.label_id.to_numpy(), config=cfg)
    t = study.table
    assert study.n_shadows == 4 and study.shadows.shadows.k == 4
    assert t[["shadows", "attack"]].values.tolist() == [[0, "loss"]] + [[k, a] for k in (2, 4) for a in
                                                                           ("lira-offline", "lira-online", "rmia-offline", "rmia-online")]
    loss = A.loss_threshold_attack(study.shadows.target_outputs["loss"], is_member=study.shadows.is_member)
    assert t.auc[0] == loss.auc and study.shadows.is_member.sum() == 16
    assert ((t.auc >= 0) & (t.auc <= 1)).all()
    # every shadow trained on its own half and scored the whole pool; shadows differ from each other
    s = study.shadows.shadows
    assert s.keep.sum(1).tolist() == [16] * 4 and (s.keep[0] == ~s.keep[1]).all()
    assert not np.allclose(s.phi[0], s.phi[2])
    again = transformer_shadow_study(tw.text.tolist(), labels=tw.label_id.to_numpy(), config=cfg)
    np.testing.assert_array_equal(again.shadows.shadows.phi, s.phi)
    assert again.table.equals(t)
    metrics = transformer_shadow_metrics(t)
    assert all(re.fullmatch(METRIC_KEY_PATTERN, k) for k in metrics) and len(metrics) == 3 * 9
    assert metrics["minilm_shadows/rmia_online/k_4/auc"] == t.auc[8]


def test_transformer_shadow_config_validates():
    assert TransformerShadowConfig(shadow_counts=[8, 4]).shadow_counts == (4, 8)
    with pytest.raises(ValueError, match="must hold even counts"):
        TransformerShadowConfig(shadow_counts=(3,))
    with pytest.raises(ValueError, match="'epsilon' parameter of TransformerShadowConfig must be a float > 0 or None"):
        TransformerShadowConfig(epsilon=0)
    with pytest.raises(ValueError, match="'labels' parameter of transformer_shadow_study"):
        transformer_shadow_study(["a", "b"], labels=[0])


@pytest.mark.slow
def test_transformer_shadows_train_with_dp_like_the_target():
    from workbench.datasets import load_tweets

    tw = load_tweets(n=24, seed=6)
    cfg = TransformerShadowConfig(shadow_counts=(2,), epsilon=4.0, layers=1, epochs=1, batch_size=8, max_len=12, seed=1)
    study = transformer_shadow_study(tw.text.tolist(), labels=tw.label_id.to_numpy(), config=cfg)
    assert [round(i["epsilon"], 1) for i in study.shadows.shadows.info] == [pytest.approx(4.0, abs=0.6)] * 2
    assert len(study.table) == 5 and study.config.shadow_config().epsilon == 4.0
