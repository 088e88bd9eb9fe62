"""Tests of favor_ops.models. Shared fixtures live here and are imported by the test modules."""

import pytest
import torch


@pytest.fixture(scope="module")
def tiny_model():
    """The `tiny` preset, eval mode, on CPU. One torch thread: the test machine's cores are shared."""
    from favor_ops.models.loading import load_favor_model

    torch.set_num_threads(1)
    return load_favor_model("tiny")
