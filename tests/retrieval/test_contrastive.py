import math

import torch

from favor_ops.training.contrastive import av_matching_loss, maxsim_scores, multi_positive_nce


def _unit(*xs):
    t = torch.tensor(xs, dtype=torch.float32)
    return t / t.norm(dim=-1, keepdim=True)


def test_maxsim_takes_the_best_token():
    tokens = torch.stack([_unit([1.0, 0.0], [0.0, 1.0]), _unit([0.6, 0.8], [-1.0, 0.0])])  # (2 windows, 2 tokens, 2)
    texts = _unit([1.0, 0.0], [0.0, 1.0], [0.6, -0.8])  # (3, 2)
    s = maxsim_scores(tokens, texts)
    expected = torch.tensor([[1.0, 1.0, 0.6], [0.6, 0.8, 0.0]])
    # window 1, text 2: tokens (0.6, 0.8).(0.6,-0.8) = -0.28 and (-1, 0).(0.6, -0.8) = -0.6 -> max -0.28
    expected[1, 2] = -0.28
    assert torch.allclose(s, expected, atol=1e-6)


def test_single_positive_loss_equals_hand_computed_infonce():
    logits = torch.tensor([[2.0, 0.0], [1.0, 3.0]])
    labels = torch.tensor([[1, 0], [0, 1]])
    row = 0.5 * ((math.log(math.exp(2) + 1) - 2) + (math.log(math.e + math.exp(3)) - 3))
    col = 0.5 * ((math.log(math.exp(2) + math.e) - 2) + (math.log(1 + math.exp(3)) - 3))
    assert abs(float(multi_positive_nce(logits, labels)) - 0.5 * (row + col)) < 1e-6


def test_multi_positive_and_ignored_entries():
    logits = torch.tensor([[1.0, 2.0, 0.5], [0.0, 1.0, 4.0]])
    labels = torch.tensor([[1, 1, -1], [0, -1, 1]])
    # window 0: positives {0, 1}, text 2 ignored -> -log((e^1 + e^2) / (e^1 + e^2)) = 0
    # window 1: positive {2}, text 1 ignored -> log(e^0 + e^4) - 4
    row = 0.5 * (0.0 + (math.log(1 + math.exp(4)) - 4))
    # text 0: positive window 0, window 1 negative -> log(e^1 + e^0) - 1
    # text 1: positive window 0, window 1 ignored -> 0
    # text 2: positive window 1, window 0 ignored -> 0
    col = ((math.log(math.e + 1) - 1) + 0.0 + 0.0) / 3
    assert abs(float(multi_positive_nce(logits, labels)) - 0.5 * (row + col)) < 1e-6
    # changing an ignored logit changes nothing
    logits2 = logits.clone()
    logits2[0, 2], logits2[1, 1] = 50.0, -50.0
    assert abs(float(multi_positive_nce(logits2, labels)) - float(multi_positive_nce(logits, labels))) < 1e-6


def test_av_matching_loss_hand_computed():
    a = _unit([1.0, 0.0], [0.0, 1.0])
    v = _unit([1.0, 0.0], [0.6, 0.8])
    scale = torch.tensor(2.0)
    # logits = 2 * a @ v.T = [[2, 1.2], [0, 1.6]]
    ce_rows = (math.log(math.exp(2) + math.exp(1.2)) - 2 + math.log(1 + math.exp(1.6)) - 1.6) / 2
    ce_cols = (math.log(math.exp(2) + 1) - 2 + math.log(math.exp(1.2) + math.exp(1.6)) - 1.6) / 2
    assert abs(float(av_matching_loss(a, v, scale)) - 0.5 * (ce_rows + ce_cols)) < 1e-6
    assert float(av_matching_loss(a, v, scale, torch.tensor([True, False]))) == 0.0  # < 2 valid windows


def test_text_direction_labels_make_partial_windows_compete():
    logits = torch.tensor([[2.0], [1.0]])  # 2 windows, 1 text
    labels = torch.tensor([[1], [1]])  # both show it
    text_labels = torch.tensor([[1], [0]])  # window 1 only briefly: a competitor when ranking windows
    # window direction: each window's only text is positive -> 0
    # text direction: -log(e^2 / (e^2 + e^1))
    expected = 0.5 * (0.0 + (math.log(math.exp(2) + math.e) - 2))
    assert abs(float(multi_positive_nce(logits, labels, text_labels)) - expected) < 1e-6
    assert abs(float(multi_positive_nce(logits, labels))) < 1e-6
