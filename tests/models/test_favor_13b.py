"""favor-13b with the real weights: runs only where local copies are named (never downloads)."""

import os

import numpy as np
import pytest
import torch

from favor_ops.models.presets import INSTRUCTBLIP_SOURCE_ENV, WHISPER_SOURCE_ENV

pytestmark = pytest.mark.slow


@pytest.mark.skipif(not (os.path.isdir(os.environ.get(INSTRUCTBLIP_SOURCE_ENV, "")) and
                         os.path.isdir(os.environ.get(WHISPER_SOURCE_ENV, ""))),
                    reason=f"set {INSTRUCTBLIP_SOURCE_ENV} and {WHISPER_SOURCE_ENV} to local checkpoint dirs")
def test_favor_13b_from_local_weights():
    from favor_ops.models.loading import load_favor_model

    device = "cuda" if torch.cuda.is_available() else "cpu"
    model = load_favor_model("favor-13b", device=device)
    cfg = model.config
    assert cfg.visual.hidden_size == 1408 and cfg.speech.d_model == 1280 and cfg.modality_width == 768
    frames = np.zeros((4, 224, 224, 3), dtype=np.uint8)
    visual = model.encode_frames(model.preprocess_frames(frames))
    speech = model.encode_speech(np.zeros(2 * 16000, dtype=np.float32))
    assert visual.shape == (4, 32, 768) and speech.shape == (100, 768)
    out = model.encode_windows(visual, speech)
    assert out.query_tokens.shape == (1, 32, 768) and torch.isfinite(out.query_tokens).all()
    assert model.project(out.query_tokens).shape == (1, 32, 5120)
