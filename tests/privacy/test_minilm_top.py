"""Fine-tuning MiniLM's top on cached hidden states (issue 13, transformer shadows and canaries): the cached top gives
the full classifier's logits, before AND after training (dropout 0), under DP too, and from word embeddings."""
import numpy as np
import pytest
import torch

from workbench.privacy.studies.minilm_top import TopModel, cache_hidden_states, forward_embeddings

pytestmark = [pytest.mark.usefixtures("one_torch_thread"), pytest.mark.filterwarnings("ignore::UserWarning")]


@pytest.fixture(scope="module")
def tweets():
    from workbench.datasets import load_tweets
    from workbench.privacy.transformer import TokenizedTexts

    tw = load_tweets(n=48, seed=3)
    return TokenizedTexts(tw.text.tolist(), tw.label_id.to_numpy(), max_len=24)


def _classifier(**kw):
    from workbench.privacy.transformer import MiniLMClassifier

    return MiniLMClassifier(3, layers=2, seed=0, **kw)


def test_training_on_cached_states_gives_the_full_models_logits(tweets):
    """The full classifier fine-tuned with part='last_layers' (padded per batch) and the top trained on states cached
    once (padded to the longest text) see the same batches and end with the same logits."""
    from workbench.privacy.dp import train
    from workbench.privacy.trainable import select_trainable
    from workbench.training import TrainConfig, predict

    cfg = TrainConfig(epochs=2, batch_size=16, lr=1e-3, seed=0)
    full, base = _classifier(dropout=0.0), _classifier(dropout=0.0)
    select_trainable(full, part="last_layers", last_layers=1)
    packed = cache_hidden_states(base, tweets, top_layers=1)
    top = TopModel.from_classifier(base, top_layers=1)
    assert sum(p.numel() for p in top.parameters()) == sum(p.numel() for p in full.parameters() if p.requires_grad)
    before = predict(full, tweets)
    train(full, tweets, config=cfg, progress=False)
    train(top, (packed, tweets.y), config=cfg, progress=False)
    after_full, after_top = predict(full, tweets), predict(top, packed)
    assert (after_full - before).abs().max() > 0.05           # training moved the logits ...
    torch.testing.assert_close(after_top, after_full, atol=2e-5, rtol=1e-4)   # ... identically on both paths
    # the pretrained bottom was not touched: the cache of the trained full model is the cache of the untouched one
    torch.testing.assert_close(cache_hidden_states(full, tweets, top_layers=1), packed)


def test_dp_training_on_cached_states_runs_through_the_fast_engine(tweets):
    from workbench.privacy.dp import DPConfig, train
    from workbench.training import TrainConfig

    base = _classifier()
    packed = cache_hidden_states(base, tweets, top_layers=1)
    torch.manual_seed(1)
    top = TopModel.from_classifier(base, top_layers=1, new_head=True)
    assert not torch.equal(top.head.weight, base.head.weight)
    before = [p.detach().clone() for p in top.parameters()]
    res = train(top, (packed, tweets.y), config=TrainConfig(epochs=1, batch_size=16, lr=1e-3, seed=0),
                dp=DPConfig(noise_multiplier=1.0, delta=1e-5), progress=False)
    assert 0 < res.epsilon < float("inf")
    assert all(not torch.equal(a, b) for a, b in zip(before, top.parameters()))   # every trainable tensor moved


def test_forward_from_word_embeddings_matches_token_ids(tweets):
    base = _classifier().eval()
    top = TopModel.from_classifier(base, top_layers=1).eval()
    ids = tweets.ids[0][None]
    with torch.no_grad():
        out = forward_embeddings(base, top, base.bert.embeddings.word_embeddings(ids))
        torch.testing.assert_close(out, base(ids), atol=1e-5, rtol=1e-5)


def test_cache_validates(tweets):
    base = _classifier()
    with pytest.raises(ValueError, match="'top_layers' parameter of cache_hidden_states must be an int in \\[1, 2\\]"):
        cache_hidden_states(base, tweets, top_layers=3)
    with pytest.raises(ValueError, match="'model' parameter of TopModel.from_classifier"):
        TopModel.from_classifier(torch.nn.Linear(2, 2))
    with pytest.raises(ValueError, match="must be a TokenizedTexts"):
        cache_hidden_states(base, ["a text"])
