import math

import numpy as np
import pytest

from favor_ops.retrieval.metrics import mean_recall_at_k, rank_desc, recall_at_k, temporal_iou, top_hit_iou


def test_recall_at_k_on_hand_made_rankings():
    rankings = [[False, True, False], [True, False, False], [False, False, False], [False, False, True]]
    assert [recall_at_k(r, 1) for r in rankings] == [0.0, 1.0, 0.0, 0.0]
    assert mean_recall_at_k(rankings, 1) == 0.25
    assert mean_recall_at_k(rankings, 2) == 0.5
    assert mean_recall_at_k(rankings, 3) == 0.75
    assert mean_recall_at_k(rankings, 10) == 0.75
    assert math.isnan(mean_recall_at_k([], 1))
    with pytest.raises(ValueError):
        recall_at_k([True], 0)


def test_temporal_iou_exact_values():
    assert temporal_iou((0.0, 5.0), (2.5, 7.5)) == pytest.approx(2.5 / 7.5)
    assert temporal_iou((0.0, 5.0), (1.0, 4.0)) == pytest.approx(3.0 / 5.0)
    assert temporal_iou((0.0, 5.0), (5.0, 8.0)) == 0.0  # touching spans do not overlap
    assert temporal_iou((2.0, 3.0), (2.0, 3.0)) == 1.0
    assert top_hit_iou((5.0, 10.0), [(0.0, 6.0), (6.0, 9.0)]) == pytest.approx(3.0 / 5.0)
    assert top_hit_iou((5.0, 10.0), []) == 0.0


def test_rank_desc_is_stable_on_ties():
    assert rank_desc(np.array([0.1, 0.9, 0.9, 0.5])).tolist() == [1, 2, 3, 0]
