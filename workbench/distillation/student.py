"""The student: a shallower copy of the teacher, initialised from every ``keep_every``-th of its layers
(DistilGPT2 and DistilBERT were made the same way).

With SmolLM2-135M (30 decoder layers, width 576, 134.5M parameters of which 28.3M are the tied embedding /
output matrix) and ``keep_every=2`` the student keeps layers 0, 2, ..., 28: 15 layers, 81.4M parameters.
"""
from __future__ import annotations

import copy

__all__ = ["make_student", "count_parameters"]


def make_student(teacher, *, keep_every: int = 2):
    """A new causal LM with the teacher's embeddings, final norm and head, and its layers 0, k, 2k, ...

    The teacher is left untouched (the student's weights are copies).

    Examples
    --------
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> cfg = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
    ...                   num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    >>> student = make_student(LlamaForCausalLM(cfg), keep_every=2)
    >>> student.config.num_hidden_layers, len(student.model.layers)
    (2, 2)
    """
    from workbench.validation import Interval, check

    n_layers = int(teacher.config.num_hidden_layers)
    check(keep_every, Interval(int, 1, n_layers), name="keep_every", owner="make_student")
    keep = list(range(0, n_layers, keep_every))
    student = copy.deepcopy(teacher)
    import torch

    student.model.layers = torch.nn.ModuleList([student.model.layers[i] for i in keep])
    for new_index, layer in enumerate(student.model.layers):
        if hasattr(layer, "self_attn") and hasattr(layer.self_attn, "layer_idx"):
            layer.self_attn.layer_idx = new_index  # the KV cache of generation is indexed by layer
    student.config.num_hidden_layers = len(keep)
    if getattr(student.config, "layer_types", None):
        student.config.layer_types = [student.config.layer_types[i] for i in keep]
    student.train()
    return student


def count_parameters(model) -> int:
    """Number of distinct parameters (tied weights counted once)."""
    return sum(p.numel() for p in {id(p): p for p in model.parameters()}.values())
