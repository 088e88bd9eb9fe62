"""frame_modality_means: per-frame means of the real audio and visual slot halves, exact on a hand-made batch."""

import numpy as np
import torch

from favor_ops.models.outputs import WindowBatch
from favor_ops.retrieval.frame_features import frame_modality_means


def test_means_over_real_halves_only_per_frame():
    W, L, S, D = 1, 2, 3, 2
    slots = torch.zeros(W, L * S, 2 * D)
    # frame 0: visual halves 1, 2, 3 (all real); audio halves 10, 20 real, third slot padding (value 99 ignored)
    slots[0, 0:3, :D] = torch.tensor([[1.0, 1.0], [2.0, 2.0], [3.0, 3.0]])
    slots[0, 0:3, D:] = torch.tensor([[10.0, 0.0], [20.0, 0.0], [99.0, 99.0]])
    # frame 1: no picture (visual halves masked), audio 5 in one slot
    slots[0, 3:6, :D] = 7.0
    slots[0, 3, D:] = torch.tensor([5.0, 5.0])
    visual_mask = torch.tensor([[True, True, True, False, False, False]])
    audio_mask = torch.tensor([[True, True, False, True, False, False]])
    batch = WindowBatch(slots=slots, visual_mask=visual_mask, audio_mask=audio_mask,
                        frame_mask=torch.tensor([[True, True]]), t_start_s=np.zeros(1), t_end_s=np.ones(1),
                        window_index=np.zeros(1, np.int64))
    audio, visual = frame_modality_means(batch, D)
    assert audio.shape == visual.shape == (W, L, D)
    assert torch.equal(visual[0], torch.tensor([[2.0, 2.0], [0.0, 0.0]]))
    assert torch.equal(audio[0], torch.tensor([[15.0, 0.0], [5.0, 5.0]]))
