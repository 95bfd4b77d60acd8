"""The MiniLM encoder and its feature cache: hit, miss, invalidation, corruption."""
import numpy as np
import pytest

from workbench.datasets import encoders

TEXTS = ["what a lovely morning", "I hate waiting in traffic", "the meeting is at noon"]


@pytest.fixture
def cache(tmp_path, monkeypatch):
    monkeypatch.setenv("WORKBENCH_CACHE", str(tmp_path))
    calls = []
    real = encoders._encode

    def counting(*args, **kwargs):  # the real encoder, counted
        calls.append(len(args[1]))
        return real(*args, **kwargs)

    monkeypatch.setattr(encoders, "_encode", counting)
    return tmp_path, calls


def test_hit_returns_the_same_features_without_encoding(cache):
    folder, calls = cache
    first = encoders.encode_texts(TEXTS)
    second = encoders.encode_texts(TEXTS)
    assert calls == [3]
    assert np.array_equal(first, second)
    assert len(list((folder / "features" / "minilm").glob("*.npy"))) == 1


def test_changed_texts_or_options_miss(cache):
    _, calls = cache
    encoders.encode_texts(TEXTS)
    encoders.encode_texts(TEXTS[:2])
    encoders.encode_texts(TEXTS, pooling="cls")
    encoders.encode_texts(TEXTS, layer=3)
    encoders.encode_texts(TEXTS, normalize=True)
    assert calls == [3, 2, 3, 3, 3]


def test_changed_model_fingerprint_misses():
    enc = encoders.load_encoder("minilm")
    other = encoders.Encoder(enc.name, enc.tokenizer, enc.model, enc.fingerprint + "x")
    kw = dict(layer=-1, pooling="mean", max_length=128, normalize=False)
    assert encoders.feature_cache_path(TEXTS, encoder=enc, **kw) != encoders.feature_cache_path(TEXTS, encoder=other, **kw)


def test_corrupt_cache_file_is_recomputed(cache):
    folder, calls = cache
    good = encoders.encode_texts(TEXTS)
    (path,) = (folder / "features" / "minilm").glob("*.npy")
    path.write_bytes(b"not a numpy file")
    again = encoders.encode_texts(TEXTS)
    assert calls == [3, 3] and np.allclose(good, again)


def test_features_are_meaningful_and_order_preserving():
    x = encoders.encode_texts(["a happy joyful day", "a cheerful glad day", "quarterly tax filing deadline"],
                              normalize=True, cache=False)
    assert x.shape == (3, 384) and np.allclose(np.linalg.norm(x, axis=1), 1, atol=1e-5)
    sim = x @ x.T
    assert sim[0, 1] > sim[0, 2] + 0.2
    # batching (and the length-sorted order inside it) must not change any row
    one_by_one = np.vstack([encoders.encode_texts([t], normalize=True, cache=False) for t in
                            ["a happy joyful day", "a cheerful glad day", "quarterly tax filing deadline"]])
    assert np.allclose(x, one_by_one, atol=1e-5)


def test_bad_arguments_name_the_parameter():
    with pytest.raises(ValueError, match="'pooling' parameter"):
        encoders.encode_texts(TEXTS, pooling="median", cache=False)
    with pytest.raises(ValueError, match="'layer' parameter"):
        encoders.encode_texts(TEXTS, layer=12, cache=False)
    with pytest.raises(TypeError, match="sequence of strings"):
        encoders.encode_texts("one string", cache=False)
    with pytest.raises(ValueError, match="must be one of"):
        encoders.load_encoder("bert-large")


def test_a_hit_never_loads_the_model(cache):
    """Reading cached features costs milliseconds: the weights (seconds to load) are only read on a miss."""
    encoders.encode_texts(TEXTS)
    encoders.load_encoder.cache_clear()
    again = encoders.encode_texts(TEXTS)
    assert encoders.load_encoder.cache_info().misses == 0
    assert again.shape == (3, encoders.encoder_spec("minilm").dim)
