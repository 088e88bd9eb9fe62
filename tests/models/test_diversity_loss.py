import math

import torch

from favor_ops.models.diversity_loss import diversity_loss, weighted_diversity_loss


def test_hand_computed_value():
    # Three queries: q0 = (1, 0), q1 = (1, 1), q2 = (0, 2).
    # cos(q0, q1) = 1/sqrt2, cos(q0, q2) = 0, cos(q1, q2) = 2 / (sqrt2 * 2) = 1/sqrt2.
    # Mean over the 6 ordered pairs i != j: 2 * (1/sqrt2 + 0 + 1/sqrt2) / 6 = (2 / sqrt2) / 3.
    q = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]]])
    expected = (2 / math.sqrt(2)) / 3
    assert abs(diversity_loss(q).item() - expected) < 1e-6
    assert abs(weighted_diversity_loss(q, None, 0.01).item() - 0.01 * expected) < 1e-8


def test_orthogonal_queries_give_zero_and_identical_give_one():
    eye = torch.eye(4)[None]  # (1, 4, 4): four orthogonal queries
    assert diversity_loss(eye).item() == 0.0
    same = torch.ones(1, 4, 3)
    assert abs(diversity_loss(same).item() - 1.0) < 1e-6


def test_padded_windows_are_excluded():
    real = torch.tensor([[[1.0, 0.0], [1.0, 1.0], [0.0, 2.0]]])
    padded = torch.ones(1, 3, 2)  # would add cosine 1.0 if it counted
    both = torch.cat([real, padded])
    mask = torch.tensor([True, False])
    assert abs(diversity_loss(both, mask).item() - diversity_loss(real).item()) < 1e-7
    assert diversity_loss(both, torch.tensor([False, False])).item() == 0.0
    # Unmasked, the padded window pulls the mean towards 1.
    assert diversity_loss(both).item() > diversity_loss(real).item() + 0.1
