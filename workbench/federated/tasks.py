"""Federated tasks built from the offline data: Shakespeare next-character LM and the tweets classifier.

* :func:`shakespeare_task` - one device per (play, speaker); a sample is a window of ``context`` characters
  of the speaker's lines and the label is the next character. Devices are as uneven as the plays: a few
  protagonists hold thousands of samples, most characters a handful. Each device's last ``test_fraction``
  of its samples (in time order) is its test set.
* :func:`tweets_task` - MiniLM sentence features of the tweets (cached), split over ``n_clients`` devices
  with Dirichlet label skew (``alpha``), IID or quantity skew.

Examples
--------
>>> data = shakespeare_task(size="tiny", context=8, stride=64)
>>> data.task, data.n_clients > 20, data.X.shape[1]
('language_model', True, 8)
>>> model = CharMLP(vocab_size=data.n_classes, context=8)
>>> model(data.X[:2]).shape[1] == data.n_classes
True
"""
from __future__ import annotations

from collections import Counter

import numpy as np
import torch
from torch import nn

from .partition import Partition, make_partition
from .simulation import FederatedData

__all__ = ["CharMLP", "CharVocabulary", "shakespeare_task", "speech_features", "tweets_task", "make_model_fn"]


class CharVocabulary:
    """Characters by decreasing frequency; id 0 = padding, 1 = unknown (rare characters)."""

    def __init__(self, chars: list[str]):
        self.id_to_char = ["<pad>", "<unk>"] + list(chars)
        self.char_to_id = {c: i for i, c in enumerate(self.id_to_char)}

    @classmethod
    def build(cls, texts, *, max_size: int = 64) -> "CharVocabulary":
        counts = Counter()
        for t in texts:
            counts.update(t)
        return cls([c for c, _ in sorted(counts.items(), key=lambda kv: (-kv[1], kv[0]))[: max_size - 2]])

    def __len__(self) -> int:
        return len(self.id_to_char)

    def encode(self, text: str) -> np.ndarray:
        lut = self.char_to_id
        return np.fromiter((lut.get(c, 1) for c in text), dtype=np.int64, count=len(text))

    def decode(self, ids) -> str:
        return "".join(self.id_to_char[int(i)] if int(i) > 1 else "?" for i in ids)


class CharMLP(nn.Module):
    """Next-character model: embed a window of characters, concatenate, one hidden ReLU layer, logits.

    Examples
    --------
    >>> CharMLP(vocab_size=10, context=4, dim=3, hidden=5)(torch.zeros(2, 4, dtype=torch.long)).shape
    torch.Size([2, 10])
    """

    def __init__(self, *, vocab_size: int, context: int, dim: int = 16, hidden: int = 128):
        super().__init__()
        self.embedding = nn.Embedding(vocab_size, dim)
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(context * dim, hidden), nn.ReLU(), nn.Linear(hidden, vocab_size))

    def forward(self, ids: torch.Tensor) -> torch.Tensor:
        return self.net(self.embedding(ids))


def shakespeare_task(*, size: str = "tiny", n_plays: int | None = None, context: int = 16, stride: int = 8,
                     min_samples: int = 4, max_clients: int | None = None, test_fraction: float = 0.2,
                     lowercase: bool = True, max_vocab: int = 48) -> FederatedData:
    """Next-character prediction with one device per Shakespeare speaker.

    Parameters
    ----------
    size, n_plays : passed to :func:`workbench.datasets.load_shakespeare` ("tiny": 2 plays, "small": 8).
    context : int
        Characters the model sees.
    stride : int
        One sample every ``stride`` characters of a speaker's text (1 = every position).
    min_samples : int
        Drop speakers with fewer samples.
    max_clients : int, optional
        Keep only the most active speakers.
    test_fraction : float
        Each device's last samples (in time order) held out as its test set.

    Returns
    -------
    FederatedData
        ``X`` int64 (N, context) character ids, ``y`` next-character ids; ``train``/``test`` natural
        partitions whose ``names`` are "play/SPEAKER" (most active first).
    """
    from workbench.datasets import load_shakespeare

    if context < 1 or stride < 1:
        raise ValueError(f"The 'context' and 'stride' parameters of shakespeare_task must be >= 1. Got {context!r}, {stride!r}.")
    speeches = load_shakespeare(size=size, n=n_plays)
    by_speaker = speeches.groupby("client_id", sort=False)["text"]
    texts = by_speaker.apply(lambda s: "\n".join(s) + "\n")
    if lowercase:
        texts = texts.str.lower()
    vocab = CharVocabulary.build(texts.tolist(), max_size=max_vocab)
    windows, targets, owners, names, speech_of = [], [], [], [], []
    for (name, text), (_, lines) in zip(texts.items(), by_speaker):
        ids = np.concatenate([np.zeros(context, dtype=np.int64), vocab.encode(text)])  # left-pad with <pad>
        positions = np.arange(context, len(ids), stride)
        if len(positions) < min_samples:
            continue
        win = np.lib.stride_tricks.sliding_window_view(ids, context)[positions - context]
        windows.append(win)
        targets.append(ids[positions])
        owners.append(np.full(len(positions), len(names)))
        names.append(name)
        # The speech (row of `speeches`) each sample's target character belongs to (its closing newline included).
        ends = np.cumsum([len(t.lower() if lowercase else t) + 1 for t in lines.tolist()])
        speech_of.append(lines.index.to_numpy()[np.searchsorted(ends, positions - context, side="right")])
    assign = np.concatenate(owners)
    full = Partition.from_assignment(assign, n_clients=len(names), names=np.asarray(names, dtype=object))
    # Most active first, so max_clients keeps the heaviest speakers.
    order = np.argsort(-full.sizes, kind="stable")
    if max_clients is not None:
        order = order[:max_clients]
    keep_ids = np.concatenate([full.client(int(i)) for i in order])
    X = torch.as_tensor(np.concatenate(windows)[keep_ids])
    y = torch.as_tensor(np.concatenate(targets)[keep_ids])
    part = Partition.from_sizes(full.sizes[order], names=full.names[order])
    train, test = part.split(test_fraction)
    return FederatedData(X, y, train=train, test=test, n_classes=len(vocab), task="language_model",
                         name=f"shakespeare-{size if n_plays is None else n_plays}",
                         info={"vocab": vocab.id_to_char, "context": context, "stride": stride,
                               "speech": np.concatenate(speech_of)[keep_ids].astype(np.int64),
                               "speeches": speeches["text"].tolist()})


def speech_features(data: FederatedData, *, max_length: int = 64) -> np.ndarray:
    """MiniLM features of every speech of a :func:`shakespeare_task` (one row per ``data.info["speeches"]``;
    cached on disk by :func:`workbench.datasets.encode_texts`, so only the first call encodes).

    Every speech of the plays is encoded (also those of speakers with too few samples to be a device), so the
    cache is shared by every task on the same plays. ``data.info["speech"][i]`` is the row of sample ``i``: pass
    both to :func:`~workbench.federated.partition.kmeans_partition` (``groups=``) for topic-like devices.
    """
    from workbench.datasets import encode_texts

    if "speeches" not in data.info:
        raise ValueError(f"The 'data' parameter of speech_features must come from shakespeare_task. Got {data.name!r} instead.")
    return encode_texts(list(data.info["speeches"]), max_length=max_length, progress=False)


def tweets_task(*, size: str = "tiny", n: int | None = None, n_clients: int = 50, partition: str = "dirichlet",
                alpha: float = 0.5, test_fraction: float = 0.2, seed: int = 0) -> FederatedData:
    """Tweet sentiment (3 classes) from cached MiniLM features, split over devices.

    ``partition`` is "dirichlet" (label skew with ``alpha``), "iid" or "quantity" (size skew with ``alpha``).
    Each device's last ``test_fraction`` of its samples is its test set.
    """
    from workbench.datasets import encode_texts, load_tweets

    df = load_tweets(size=size, n=n, seed=seed)
    X = torch.as_tensor(encode_texts(df["text"].tolist(), progress=False))
    y = torch.as_tensor(df["label_id"].to_numpy(dtype=np.int64))
    if partition == "dirichlet":
        part = make_partition("dirichlet", y.numpy(), n_clients=n_clients, alpha=alpha, seed=seed)
    elif partition == "iid":
        part = make_partition("iid", len(y), n_clients=n_clients, seed=seed)
    elif partition == "quantity":
        part = make_partition("quantity", len(y), n_clients=n_clients, alpha=alpha, seed=seed)
    else:
        raise ValueError(f"The 'partition' parameter of tweets_task must be one of ['dirichlet', 'iid', 'quantity']. Got {partition!r} instead.")
    train, test = part.split(test_fraction)
    return FederatedData(X, y, train=train, test=test, n_classes=3, task="classification",
                         name=f"tweets-{size if n is None else n}-{partition}",
                         info={"alpha": alpha, "partition": partition})


def make_model_fn(data: FederatedData, *, hidden: int = 128, dim: int = 16):
    """A model builder suited to ``data``: :class:`CharMLP` for the LM, an MLP on features otherwise."""
    if data.task == "language_model":
        context = int(data.X.shape[1])
        return lambda: CharMLP(vocab_size=data.n_classes, context=context, dim=dim, hidden=hidden)
    from workbench.models import MLP

    in_features = int(data.X.shape[1])
    return lambda: MLP(in_features=in_features, out_features=data.n_classes, hidden=(hidden,))
