"""favor_ops/models/host_transfer.py: model inputs reach the device through pinned memory on CUDA, untouched on CPU."""

import pytest
import torch

from favor_ops.models.host_transfer import to_device


def test_on_the_cpu_the_tensor_is_not_copied():
    x = torch.arange(12, dtype=torch.uint8).reshape(3, 4)
    assert to_device(x, torch.device("cpu")) is x


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_on_cuda_the_copy_is_asynchronous_from_pinned_memory_and_exact():
    x = torch.randint(0, 255, (64, 224, 224, 3), dtype=torch.uint8)
    y = to_device(x, torch.device("cuda"))
    torch.cuda.synchronize()
    assert y.device.type == "cuda" and torch.equal(y.cpu(), x)
