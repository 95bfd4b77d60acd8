"""The training front door fine-tunes MiniLM on tweets: non-DP, the fast engine, and both Opacus modes (with the
classifier's workarounds), with dynamic padding, Poisson batches, accounting and a run record."""
import json
import math

import pytest
import torch

from workbench.privacy.accounting import compute_epsilon
from workbench.privacy.dp import DPConfig, train
from workbench.privacy.trainable import select_trainable
from workbench.privacy.transformer import MiniLMClassifier, TokenizedTexts, tweet_text_task
from workbench.training import TrainConfig, evaluate, predict

pytestmark = pytest.mark.filterwarnings("ignore::UserWarning")


@pytest.fixture(scope="module")
def tweets():
    return tweet_text_task(n=20, max_len=24, seed=0)


def test_tokenized_texts_pad_each_batch_to_its_longest_text(tweets):
    train_set, _ = tweets
    lengths = train_set.lengths
    assert int(lengths.max()) <= 24 and int(lengths.min()) >= 3  # [CLS] ... [SEP], truncated
    idx = torch.argsort(lengths)[:4]  # the four shortest texts: a short batch
    ids, y = train_set.batch(idx)
    assert ids.shape == (4, int(lengths[idx].max())) and torch.equal(y, train_set.y[idx])
    for row, i in zip(ids, idx.tolist()):  # each row: its ids, then padding
        n = len(train_set.ids[i])
        assert torch.equal(row[:n], train_set.ids[i]) and (row[n:] == train_set.pad_id).all()
    empty, _ = train_set.batch(torch.tensor([], dtype=torch.long))
    assert empty.shape[0] == 0
    with pytest.raises(ValueError, match="'labels'"):
        TokenizedTexts(["a", "b"], [0])
    with pytest.raises(ValueError, match="'max_len'"):
        TokenizedTexts(["a"], [0], max_len=1)


def test_classifier_ignores_padding_and_copies_the_encoder():
    from workbench.datasets import load_encoder

    model = MiniLMClassifier(n_classes=3, layers=2, dropout=0.0, seed=1).eval()
    data = TokenizedTexts(["what a lovely morning", "awful"], [2, 0], max_len=16)
    both, _ = data.batch(torch.tensor([0, 1]))
    alone, _ = data.batch(torch.tensor([1]))
    assert torch.allclose(model(both)[1], model(alone)[0], atol=1e-5)  # padding changes nothing
    with torch.no_grad():
        model.bert.embeddings.word_embeddings.weight.add_(1.0)
    shared = load_encoder("minilm").model.embeddings.word_embeddings.weight
    assert not torch.equal(shared, model.bert.embeddings.word_embeddings.weight)  # the cached encoder is untouched
    assert model.bert.pooler is None and model.bert.config._attn_implementation == "eager"
    with pytest.raises(ValueError, match="'attention'"):
        MiniLMClassifier(attention="flash")
    with pytest.raises(ValueError, match="'layers'"):
        MiniLMClassifier(layers=7)


@pytest.mark.slow
@pytest.mark.parametrize("engine", [None, "fast"])
def test_one_step_of_full_fine_tuning_through_train(tweets, engine, tmp_path):
    """All 22.6M MiniLM parameters + the head, one Poisson step (expected batch = the 32 training tweets), then the
    run record: DP changes every trainable parameter (noise), the accountant's epsilon for one step at q = 1."""
    from workbench.results import load_record, save_record

    train_set, val_set = tweets
    torch.manual_seed(0)
    model = MiniLMClassifier(n_classes=3, seed=0)
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    cfg = TrainConfig(epochs=1, batch_size=len(train_set), lr=1e-3, optimizer="sgd", seed=0)
    dp = None if engine is None else DPConfig(noise_multiplier=1.0, delta=1e-3, engine=engine)
    res = train(model, train_set, config=cfg, dp=dp, val=val_set, progress=False)
    assert res.steps == 1 and set(res.metrics) == {"accuracy", "loss"} and 0 <= res.metrics["accuracy"] <= 1
    moved = {n: not torch.equal(p.detach(), before[n]) for n, p in model.named_parameters()}
    if engine is None:
        assert res.epsilon is None and moved["head.weight"] and moved["bert.encoder.layer.5.output.dense.weight"]
    else:
        assert all(moved.values())  # noise reaches every trainable parameter, word-embedding rows never used included
        assert res.sample_rate == 1.0 and res.epsilon == compute_epsilon(noise_multiplier=1.0, sample_rate=1.0, steps=1,
                                                                         delta=1e-3)
    assert predict(model, val_set).shape == (len(val_set), 3)
    path = save_record(tmp_path, config={"train": cfg, "dp": dp}, metrics=res.summary(), history=res.history, seed=0,
                       notebook="01b_dp_finetuning_transformer")
    record = load_record(path)
    assert record["metrics"]["val_accuracy"] == pytest.approx(res.metrics["accuracy"])
    assert json.loads(json.dumps(record["history"]))[0]["epoch"] == 1


SMALL = (["good", "bad day", "so so", "great great fun"] * 2, [2, 0, 1, 2] * 2)


def _train_one_block(engine):
    model = MiniLMClassifier(n_classes=3, layers=1, dropout=0.0, seed=0).double()
    select_trainable(model, part="all")
    dp = DPConfig(noise_multiplier=0.0, max_grad_norm=0.5, poisson_sampling=False, engine=engine)
    train(model, TokenizedTexts(*SMALL, max_len=8), config=TrainConfig(epochs=1, batch_size=4, lr=0.5, optimizer="sgd", seed=0),
          dp=dp, progress=False)
    return {n: p.detach().clone() for n, p in model.named_parameters()}


@pytest.fixture(scope="module")
def fast_reference():
    return _train_one_block("fast")


@pytest.mark.slow
@pytest.mark.parametrize("engine", ["opacus-hooks", "opacus-ghost"])
def test_opacus_runs_on_minilm_and_agrees_with_the_fast_engine_without_noise(fast_reference, engine):
    """One block of MiniLM (embeddings with position / token-type ids included), noise 0, fixed batches, SGD: Opacus
    (with the classifier's workarounds) and the fast engine compute the same clipped updates."""
    got = _train_one_block(engine)
    for n, p in fast_reference.items():
        assert torch.allclose(got[n], p, rtol=1e-6, atol=1e-9), n
    assert any(not torch.equal(p, q) for p, q in zip(got.values(), _initial().values()))  # it did train


def _initial():
    return {n: p.detach().clone() for n, p in MiniLMClassifier(n_classes=3, layers=1, dropout=0.0, seed=0).double().named_parameters()}


def test_bias_only_fine_tuning_trains_only_the_biases(tweets):
    train_set, val_set = tweets
    model = MiniLMClassifier(n_classes=3, layers=1, seed=0)
    info = select_trainable(model, part="bias")
    before = {n: p.detach().clone() for n, p in model.named_parameters()}
    res = train(model, train_set, config=TrainConfig(epochs=1, batch_size=16, lr=1e-2, seed=0),
                dp=DPConfig(noise_multiplier=1.0, delta=1e-3), val=val_set, progress=False)
    changed = {n for n, p in model.named_parameters() if not torch.equal(p.detach(), before[n])}
    assert changed == set(info["names"]) and all(n.endswith("bias") or n.startswith("head.") for n in changed)
    assert res.steps == math.ceil(len(train_set) / 16) and evaluate(model, val_set)["accuracy"] == res.metrics["accuracy"]
