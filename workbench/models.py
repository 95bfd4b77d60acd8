"""Small torch models shared across studies. All are DP-compatible: no BatchNorm (GroupNorm instead)."""
from __future__ import annotations

import torch
from torch import nn

from .validation import Interval, Seq, check

_WIDTH = Interval(int, 1, None)

__all__ = ["MLP", "ConvNet"]


class MLP(nn.Module):
    """A multilayer perceptron ``in -> hidden... -> out`` with ReLU (and optional dropout).

    Examples
    --------
    >>> MLP(in_features=4, hidden=(8,), out_features=3)(torch.zeros(2, 4)).shape
    torch.Size([2, 3])
    >>> MLP(in_features=4, hidden=8, out_features=3)
    Traceback (most recent call last):
    ...
    workbench.validation.InvalidParameterError: The 'hidden' parameter of MLP must be a list or tuple of an int >= 1. Got 8 instead.
    """

    def __init__(self, *, in_features: int, out_features: int, hidden: tuple[int, ...] = (128,), dropout: float = 0.0):
        super().__init__()
        in_features = check(in_features, _WIDTH, name="in_features", owner="MLP")
        out_features = check(out_features, _WIDTH, name="out_features", owner="MLP")
        hidden = check(hidden, Seq(_WIDTH), name="hidden", owner="MLP")
        dropout = check(dropout, Interval(float, 0, 1, closed="left"), name="dropout", owner="MLP")
        layers: list[nn.Module] = [nn.Flatten()]
        width = in_features
        for h in hidden:
            layers += [nn.Linear(width, h), nn.ReLU()]
            if dropout:
                layers.append(nn.Dropout(dropout))
            width = h
        layers.append(nn.Linear(width, out_features))
        self.net = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class ConvNet(nn.Module):
    """A small CNN for 1-channel images (28x28 or 8x8): conv-GroupNorm-ReLU blocks, global pooling, linear head.

    ``embedding_dim`` > 0 inserts a feature layer before the head (used as the embedding in retrieval).

    Examples
    --------
    >>> ConvNet(n_classes=10, width=8)(torch.zeros(2, 1, 28, 28)).shape
    torch.Size([2, 10])
    """

    def __init__(self, *, n_classes: int, width: int = 16, depth: int = 2, embedding_dim: int = 0):
        super().__init__()
        n_classes = check(n_classes, _WIDTH, name="n_classes", owner="ConvNet")
        width = check(width, _WIDTH, name="width", owner="ConvNet")
        depth = check(depth, _WIDTH, name="depth", owner="ConvNet")
        embedding_dim = check(embedding_dim, Interval(int, 0, None), name="embedding_dim", owner="ConvNet")
        blocks: list[nn.Module] = []
        channels = 1
        for i in range(depth):
            out = width * 2**i
            blocks += [nn.Conv2d(channels, out, 3, padding=1), nn.GroupNorm(min(4, out), out), nn.ReLU()]
            if i < depth - 1:
                blocks.append(nn.MaxPool2d(2))
            channels = out
        blocks += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        if embedding_dim:
            blocks += [nn.Linear(channels, embedding_dim), nn.ReLU()]
            channels = embedding_dim
        self.features = nn.Sequential(*blocks)
        self.head = nn.Linear(channels, n_classes)

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() == 3:
            x = x.unsqueeze(1)
        return self.features(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.embed(x))
