"""Host -> device copies of model inputs: pinned (page-locked) memory and an asynchronous copy on CUDA.

A pageable host tensor is first copied by the driver into a pinned staging buffer, synchronously; from pinned
memory the copy is a DMA that can overlap the GPU's work on the previous batch (`non_blocking=True`). On CPU
the tensor is returned as it is (no copy).
"""

from __future__ import annotations

import torch


def to_device(tensor: torch.Tensor, device: torch.device) -> torch.Tensor:
    """`tensor` on `device`: through pinned memory and a non-blocking copy when `device` is a CUDA device."""
    if device.type != "cuda":
        return tensor.to(device)
    if tensor.device.type == "cpu":
        return tensor.pin_memory().to(device, non_blocking=True)
    return tensor.to(device, non_blocking=True)
