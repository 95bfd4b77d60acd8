"""The one-run audit of fine-tuned MiniLM (issue 13 item 4): real weights through the training front door, DP models
audited below their promise, the table's rows and columns, bad input."""
import numpy as np
import pytest

from workbench.privacy import studies as S
from workbench.privacy.studies.transformer_audit import TransformerAuditConfig, transformer_audit_study

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.mark.slow
def test_transformer_audit_fine_tunes_minilm_and_keeps_dp_promises():
    from workbench.datasets import load_tweets

    tweets = load_tweets(n=80, seed=3)
    cfg = TransformerAuditConfig(epsilons=(2.0,), n_canaries=30, layers=1, epochs=1, batch_size=16, max_len=16, seed=0)
    study = transformer_audit_study(tweets.text.tolist()[:70], labels=tweets.label_id.to_numpy()[:70],
                                    val=(tweets.text.tolist()[70:], tweets.label_id.to_numpy()[70:]), config=cfg)
    t = study.table.set_index("model")
    assert list(t.index) == ["non-DP", "eps=2"] and len(study.included) == 30
    assert np.isnan(t.loc["non-DP", "promised_epsilon"]) and t.loc["eps=2", "promised_epsilon"] == pytest.approx(2.0, rel=0.15)
    assert t.bound_holds.all() and (t.audited_epsilon_lb >= 0).all() and (t.audited_epsilon_lb <= t.max_epsilon_lb).all()
    assert ((t.val_accuracy >= 0) & (t.val_accuracy <= 1)).all() and (t.trainable > 0).all()
    assert {"tpr_at_fpr_0.001", "tpr_at_fpr_0.01"} <= set(t.columns)
    assert t.loc["eps=2", "audited_epsilon_lb"] == study.audits["eps=2"].epsilon_lb


def test_transformer_audit_validates():
    with pytest.raises(ValueError, match="'layers' parameter of TransformerAuditConfig must be an int in \\[1, 6\\] or None"):
        TransformerAuditConfig(layers=7)
    with pytest.raises(ValueError, match="needs more texts than the 200 canaries"):
        transformer_audit_study(["a"] * 10, labels=[0] * 10)
    with pytest.raises(ValueError, match="'labels' parameter of transformer_audit_study"):
        transformer_audit_study(["a", "b"], labels=[0])
    assert S.TransformerAuditConfig is TransformerAuditConfig
