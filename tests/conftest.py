"""Shared test set-up: offline, deterministic, and quiet."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")


@pytest.fixture(scope="module")
def one_torch_thread():
    """Tiny models train several times faster on one thread, and a shared 2-core machine stays responsive."""
    from workbench.training import torch_threads

    with torch_threads(1):
        yield
