"""What to train when fine-tuning a pretrained transformer: everything, the last k layers, bias terms, or the head.

:func:`select_trainable` sets ``requires_grad`` on a model made of a pretrained *backbone* (a ``transformers``
model such as the MiniLM ``BertModel`` of ``workbench.datasets.load_encoder("minilm")``) and a *head* (every
parameter outside the backbone, e.g. a linear classifier). The DP engines then clip and noise exactly the
trainable parameters: fewer trainable parameters means less noise in total (the noise's norm grows with the
square root of their number) and a cheaper step. Build the DP engine *after* choosing.

The parts (:data:`PARTS`, a registry of ``(parameter name, structure, k) -> bool``):

``"all"``
    Full fine-tuning: every parameter.
``"last_layers"``
    The last ``k`` blocks of the backbone's layer list (BERT: ``encoder.layer``), what the backbone runs after them
    (BERT's pooler, a decoder's final norm) and the head.
``"bias"``
    BiTFiT / BitFit (Ben Zaken et al. 2022): every bias term (attention, feed-forward and LayerNorm biases) and the
    head.
``"head"``
    The head only, on frozen features (notebook 01's frozen-MiniLM models, trained end to end here).

On MiniLM (all-MiniLM-L6-v2 with its pooler, 22,713,216 parameters) plus a 3-class linear head (1,155):
``"all"`` trains 22,714,371; ``"last_layers"`` with ``k=2`` trains 3,697,923 (two blocks of 1,774,464, the pooler's
147,840 and the head); ``"bias"`` trains 27,267 (26,112 biases and the head); ``"head"`` trains 1,155
(``tests/privacy/test_transformer_clipping.py`` checks these counts).

Examples
--------
>>> import torch
>>> from torch import nn
>>> class Tiny(nn.Module):                  # a stand-in backbone: embeddings, a list of blocks, a final norm
...     def __init__(self):
...         super().__init__()
...         self.embed = nn.Embedding(10, 4)
...         self.layers = nn.ModuleList(nn.Linear(4, 4) for _ in range(3))
...         self.norm = nn.LayerNorm(4)
>>> model = nn.ModuleDict({"backbone": Tiny(), "head": nn.Linear(4, 2)})
>>> out = select_trainable(model, part="last_layers", last_layers=1, backbone="backbone")
>>> out["names"]
('backbone.layers.2.weight', 'backbone.layers.2.bias', 'backbone.norm.weight', 'backbone.norm.bias', 'head.weight', 'head.bias')
>>> select_trainable(model, part="bias", backbone="backbone")["trainable"]   # 3 x 4 + 4 biases, 10 in the head
26
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from torch import nn

from ..validation import InstanceOf, Interval, Options, check

__all__ = ["PARTS", "select_trainable", "find_backbone"]


@dataclass(frozen=True)
class _Structure:
    backbone: str  # the backbone's path with a trailing "." ("" when the model is the backbone)
    blocks: tuple  # the block prefixes of the backbone's layer list, in order, each ending in "."
    after: frozenset  # names of backbone parameters registered after the last block

    def in_head(self, name: str) -> bool:
        return bool(self.backbone) and not name.startswith(self.backbone)


#: ``{part: (parameter name, structure, k) -> trainable?}``; see the module's docstring.
PARTS: dict[str, Callable[[str, _Structure, int], bool]] = {
    "all": lambda name, s, k: True,
    "last_layers": lambda name, s, k: s.in_head(name) or name in s.after or any(name.startswith(b) for b in s.blocks[-k:]),
    "bias": lambda name, s, k: s.in_head(name) or name.rsplit(".", 1)[-1] == "bias",
    "head": lambda name, s, k: s.in_head(name),
}


def find_backbone(model: nn.Module) -> str:
    """The path of ``model``'s pretrained backbone: the first ``transformers`` model in it ("" for the model itself).

    Raises ``ValueError`` when there is none; then pass ``backbone=`` to :func:`select_trainable`.
    """
    try:
        from transformers import PreTrainedModel
    except ImportError:  # pragma: no cover - transformers is a dependency
        PreTrainedModel = ()
    for name, module in model.named_modules():
        if PreTrainedModel and isinstance(module, PreTrainedModel):
            base = module.base_model
            for sub_name, sub in module.named_modules():
                if sub is base:
                    return ".".join(x for x in (name, sub_name) if x)
            return name
    raise ValueError(f"Model {type(model).__name__} holds no transformers model; pass the backbone's path as "
                     "select_trainable(..., backbone='path.to.encoder').")


def _structure(model: nn.Module, backbone: str) -> _Structure:
    module = model.get_submodule(backbone) if backbone else model
    lists = [(name, m) for name, m in module.named_modules() if isinstance(m, nn.ModuleList) and len(m)]
    prefix = f"{backbone}." if backbone else ""
    if not lists:
        return _Structure(prefix, (), frozenset())
    list_name, blocks = max(lists, key=lambda item: len(item[1]))  # the longest list: the transformer's blocks
    block_prefixes = tuple(f"{prefix}{list_name}.{i}." for i in range(len(blocks)))
    names = [f"{prefix}{n}" for n, _ in module.named_parameters()]
    last = max((i for i, n in enumerate(names) if n.startswith(f"{prefix}{list_name}.")), default=len(names))
    return _Structure(prefix, block_prefixes, frozenset(names[last + 1:]))


def select_trainable(model: nn.Module, *, part: str = "all", last_layers: int = 2, backbone: str | None = None) -> dict:
    """Set ``requires_grad`` on ``model``'s parameters so that exactly ``part`` is trained.

    Parameters
    ----------
    model : torch.nn.Module
        A pretrained backbone plus a head (the parameters outside the backbone).
    part : {"all", "last_layers", "bias", "head"}
        What to train (see the module's docstring).
    last_layers : int
        ``part="last_layers"`` only: how many of the backbone's last blocks to train (1 to the number of blocks).
    backbone : str, optional
        The backbone's path in ``model`` (``""`` when ``model`` is the backbone itself); found by
        :func:`find_backbone` by default.

    Returns
    -------
    dict
        ``{"part": part, "trainable": number of trainable parameters, "total": number of parameters,
        "names": tuple of the trainable parameters' names}``.
    """
    owner = "select_trainable"
    check(model, InstanceOf(nn.Module), name="model", owner=owner)
    part = check(part, Options(tuple(PARTS)), name="part", owner=owner)
    last_layers = check(last_layers, Interval(int, 1, None), name="last_layers", owner=owner)
    check(backbone, InstanceOf(str), None, name="backbone", owner=owner)
    if part == "all":
        structure = _Structure("", (), frozenset())
    else:
        if backbone is None:
            backbone = find_backbone(model)
        if backbone:
            try:
                model.get_submodule(backbone)
            except AttributeError:
                names = [n for n, _ in model.named_children()]
                raise ValueError(f"The 'backbone' parameter of select_trainable must be a submodule path of the model "
                                 f"(its children: {names}). Got {backbone!r} instead.") from None
        structure = _structure(model, backbone)
        if part == "last_layers" and last_layers > len(structure.blocks):
            raise ValueError(f"The 'last_layers' parameter of select_trainable must be at most the backbone's number of "
                             f"blocks ({len(structure.blocks)}). Got {last_layers} instead.")
    rule = PARTS[part]
    names, trainable, total = [], 0, 0
    for name, p in model.named_parameters():
        keep = bool(rule(name, structure, last_layers))
        p.requires_grad_(keep)
        total += p.numel()
        if keep:
            names.append(name)
            trainable += p.numel()
    if not names:
        raise ValueError(f"part={part!r} selects no parameter of {type(model).__name__} (a model without a head outside its "
                         "backbone has nothing to train with part='head').")
    return {"part": part, "trainable": trainable, "total": total, "names": tuple(names)}
