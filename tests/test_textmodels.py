"""Tokenizer, vocabulary and the from-scratch token models."""
import pytest
import torch
from torch import nn

from workbench.textmodels import BagOfEmbeddings, RecurrentClassifier, Vocabulary, tokenize


def test_tokenize():
    assert tokenize("Hello, WORLD!! it's 2024") == ["hello", ",", "world", "!", "!", "it's", "2024"]
    assert tokenize("") == []


def test_vocabulary_ids_encode_decode():
    vocab = Vocabulary.build(["b b a", "a c b"], max_size=4)
    assert vocab.id_to_token == ["<pad>", "<unk>", "b", "a"]  # by frequency, capped at max_size
    assert vocab.token_to_id["a"] == 3 and len(vocab) == 4
    ids = vocab.encode(["a b c d", "b"], max_len=3)
    assert ids.dtype == torch.long and ids.tolist() == [[3, 2, 1], [2, 0, 0]]
    assert vocab.decode(ids[1]) == ["b"]
    assert Vocabulary.build(["x y", "y"], min_freq=2).id_to_token == ["<pad>", "<unk>", "y"]
    assert Vocabulary.build(["b a", "a b"]).id_to_token == Vocabulary.build(["a b", "b a"]).id_to_token  # deterministic ties


@pytest.mark.parametrize("kwargs, name", [(dict(max_size=2), "max_size"), (dict(min_freq=0), "min_freq")])
def test_vocabulary_bad_input(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Vocabulary.build(["a"], **kwargs)
    with pytest.raises(ValueError, match="max_len"):
        Vocabulary.build(["a"]).encode(["a"], max_len=0)


def gru_reference(model: RecurrentClassifier, ids):
    """The same network with torch.nn.GRU (weights copied), run on each unpadded sequence."""
    gru = nn.GRU(model.embedding.embedding_dim, model.hidden, batch_first=True)
    with torch.no_grad():
        gru.weight_ih_l0.copy_(model.input_proj.weight); gru.bias_ih_l0.copy_(model.input_proj.bias)
        gru.weight_hh_l0.copy_(model.hidden_proj.weight); gru.bias_hh_l0.copy_(model.hidden_proj.bias)
    outs = []
    for row in ids:
        tokens = row[row != 0]
        _, h = gru(model.embedding(tokens.unsqueeze(0)))
        outs.append(model.head(h[0, 0]))
    return torch.stack(outs)


def test_recurrent_classifier_equals_torch_gru():
    torch.manual_seed(0)
    model = RecurrentClassifier(20, dim=5, hidden=7, n_classes=3)
    ids = torch.tensor([[3, 4, 5, 0, 0], [6, 0, 0, 0, 0], [7, 8, 9, 10, 11]])
    torch.testing.assert_close(model(ids), gru_reference(model, ids), atol=1e-5, rtol=1e-5)


def test_bag_of_embeddings_is_masked_mean():
    torch.manual_seed(0)
    model = BagOfEmbeddings(20, dim=4, n_classes=2)
    ids = torch.tensor([[3, 4, 0, 0], [3, 4, 4, 0]])
    expected0 = model.head(model.embedding.weight[[3, 4]].mean(0))
    expected1 = model.head(model.embedding.weight[[3, 4, 4]].mean(0))
    torch.testing.assert_close(model(ids), torch.stack([expected0, expected1]))


@pytest.mark.parametrize("cls", [BagOfEmbeddings, RecurrentClassifier])
def test_soft_embedding_interface_and_padding_invariance(cls):
    torch.manual_seed(0)
    model = cls(30, dim=6, n_classes=3)
    ids = torch.tensor([[5, 6, 7, 0], [8, 9, 0, 0]])
    torch.testing.assert_close(model(ids), model.classify(model.embed(ids), ids != 0))
    assert model.embed(ids).shape == (2, 4, 6)
    longer = torch.cat([ids, torch.zeros(2, 3, dtype=torch.long)], 1)  # extra padding changes nothing
    torch.testing.assert_close(model(longer), model(ids))
    # the padding row's embedding does not matter
    with torch.no_grad():
        model.embedding.weight[0] = 100.0
    torch.testing.assert_close(model(longer), model(ids))


@pytest.mark.parametrize("cls", [BagOfEmbeddings, RecurrentClassifier])
def test_models_learn_a_token_rule(cls):
    from workbench.training import TrainConfig, evaluate, fit

    g = torch.Generator().manual_seed(0)
    ids = torch.randint(2, 20, (256, 6), generator=g)
    y = (ids == 2).any(1).long()  # class 1 iff token 2 occurs
    torch.manual_seed(0)
    model = cls(20, dim=16, n_classes=2)
    fit(model, (ids, y), config=TrainConfig(epochs=12, batch_size=64, lr=0.05), progress=False)
    assert evaluate(model, (ids, y))["accuracy"] > 0.9


def test_bad_sizes():
    with pytest.raises(ValueError, match="vocab_size"):
        BagOfEmbeddings(0)
    with pytest.raises(ValueError, match="hidden"):
        RecurrentClassifier(10, hidden=0)


def test_numpy_sizes_are_accepted_and_bad_ones_named():
    import numpy as np

    assert BagOfEmbeddings(np.int64(10), dim=np.int32(4)).embedding.num_embeddings == 10
    assert Vocabulary.build(["a b"], max_size=np.int64(3)).id_to_token == ["<pad>", "<unk>", "a"]
    with pytest.raises(TypeError, match="The 'dim' parameter of RecurrentClassifier must be an int >= 1. Got 4.5 instead."):
        RecurrentClassifier(10, dim=4.5)
