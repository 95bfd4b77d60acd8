"""The student: a shallower copy of the teacher, initialised from every ``keep_every``-th of its layers
(DistilGPT2 and DistilBERT were made the same way).

With SmolLM2-135M (30 decoder layers, width 576, 134.5M parameters of which 28.3M are the tied embedding /
output matrix) and ``keep_every=2`` the student keeps layers 0, 2, ..., 28: 15 layers, 81.4M parameters, of which
53.1M train (the embedding stays frozen by default).
"""
from __future__ import annotations

import copy

__all__ = ["make_student", "count_parameters"]


def make_student(teacher, *, keep_every: int = 2, freeze_embeddings: bool = True):
    """A new causal LM with the teacher's embeddings, final norm and head, and its layers 0, k, 2k, ...

    The teacher is left untouched (the student's weights are copies). With ``freeze_embeddings`` (the default)
    the token embedding (tied to the output head in SmolLM2: 28.3M of the student's 81.4M parameters) keeps the
    teacher's values and is not trained: the student then shares the teacher's vocabulary geometry, and on a CPU
    each step saves the gradient and the optimizer update of the largest matrix.

    Examples
    --------
    >>> from transformers import LlamaConfig, LlamaForCausalLM
    >>> cfg = LlamaConfig(vocab_size=50, hidden_size=16, intermediate_size=32, num_hidden_layers=4,
    ...                   num_attention_heads=2, num_key_value_heads=1, tie_word_embeddings=True)
    >>> student = make_student(LlamaForCausalLM(cfg), keep_every=2)
    >>> student.config.num_hidden_layers, len(student.model.layers)
    (2, 2)
    """
    from workbench.validation import Boolean, Interval, check

    n_layers = int(teacher.config.num_hidden_layers)
    check(keep_every, Interval(int, 1, n_layers), name="keep_every", owner="make_student")
    check(freeze_embeddings, Boolean(), name="freeze_embeddings", owner="make_student")
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
    if freeze_embeddings:
        student.get_input_embeddings().weight.requires_grad_(False)
        student.get_output_embeddings().weight.requires_grad_(False)  # the same tensor when tied
    student.train()
    return student


def count_parameters(model, *, trainable: bool = False) -> int:
    """Number of distinct parameters (tied weights counted once); only those that train with ``trainable=True``."""
    params = {id(p): p for p in model.parameters()}.values()
    return sum(p.numel() for p in params if p.requires_grad or not trainable)
