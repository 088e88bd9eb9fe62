import dataclasses

import numpy as np
import pytest
import torch

from favor_ops.models.causal_qformer import CausalQFormer, frame_attention_mask
from favor_ops.models.config import CausalQFormerConfig
from tests.models import tiny_model  # noqa: F401  (fixture)

N_FRAMES, SLOTS = 4, 3
CFG = CausalQFormerConfig(hidden_size=16, num_hidden_layers=2, num_attention_heads=2, intermediate_size=32,
                          num_query_tokens=5, max_position_embeddings=64,
                          initializer_range=0.5)  # large weights: a change anywhere it may reach is visible


def _module(mode: str) -> CausalQFormer:
    torch.manual_seed(0)
    return CausalQFormer(dataclasses.replace(CFG, mask_mode=mode), encoder_width=8).eval()


def _inputs(seed=1):
    g = torch.Generator().manual_seed(seed)
    slots = torch.randn(1, N_FRAMES * SLOTS, 8, generator=g)  # (B, L*S, 2D)
    ones = torch.ones(1, N_FRAMES * SLOTS, dtype=torch.bool)
    return slots, ones, ones.clone()


def _noise():
    """Random, not a constant shift: LayerNorm would erase a shift."""
    return 3.0 * torch.randn(1, SLOTS, 8, generator=torch.Generator().manual_seed(9))


def test_mask_values():
    causal = frame_attention_mask(3, 2, "causal")
    released = frame_attention_mask(3, 2, "released")
    frame = np.arange(6) // 2
    assert causal.numpy().tolist() == (frame[:, None] >= frame[None, :]).tolist()
    # The release builds torch.triu over frames: frame i attends frames j >= i.
    triu = torch.kron(torch.triu(torch.ones(3, 3)), torch.ones(2, 2)).bool()
    assert torch.equal(released, triu)
    assert causal[0].tolist() == [True, True, False, False, False, False]
    assert released[5].tolist() == [False, False, False, False, True, True]


@pytest.mark.parametrize("t", [1, 2])
def test_causal_mode_hides_the_future(t):
    m = _module("causal")
    slots, vm, am = _inputs()
    changed = slots.clone()
    changed[:, t * SLOTS:(t + 1) * SLOTS] += _noise()  # perturb frame t
    with torch.no_grad():
        a = m(slots, vm, am, SLOTS, return_slot_states=True)
        b = m(changed, vm, am, SLOTS, return_slot_states=True)
    assert len(a.slot_states) == CFG.num_hidden_layers
    for sa, sb in zip(a.slot_states, b.slot_states):
        before = slice(0, t * SLOTS)  # frames < t
        from_t = slice(t * SLOTS, None)  # frames >= t
        torch.testing.assert_close(sa[:, before], sb[:, before], rtol=0, atol=1e-6)
        assert (sa[:, from_t] - sb[:, from_t]).abs().amax(-1).min() > 1e-3  # every later slot moved
    assert (a.query_tokens - b.query_tokens).abs().max() > 1e-3  # the queries read the whole window


def test_released_mode_lets_earlier_frames_see_later_ones():
    m = _module("released")
    t = 2
    slots, vm, am = _inputs()
    changed = slots.clone()
    changed[:, t * SLOTS:(t + 1) * SLOTS] += _noise()  # perturb frame t
    with torch.no_grad():
        a = m(slots, vm, am, SLOTS, return_slot_states=True)
        b = m(changed, vm, am, SLOTS, return_slot_states=True)
    for sa, sb in zip(a.slot_states, b.slot_states):
        assert (sa[:, : t * SLOTS] - sb[:, : t * SLOTS]).abs().amax(-1).min() > 1e-3  # the past sees the future
        torch.testing.assert_close(sa[:, (t + 1) * SLOTS:], sb[:, (t + 1) * SLOTS:], rtol=0, atol=1e-6)


def test_padding_is_masked_everywhere():
    m = _module("causal")
    slots, vm, am = _inputs()
    vm[:, 3 * SLOTS:] = False  # last frame is a padded frame: both halves masked
    am[:, 3 * SLOTS:] = False
    am[:, 1::SLOTS] = False  # one padded audio slot per frame
    garbage = slots.clone()
    garbage[:, 3 * SLOTS:] = 1e3 * torch.randn_like(garbage[:, 3 * SLOTS:])
    garbage[:, 1::SLOTS, 4:] = -7e2  # audio half of the padded audio slots
    with torch.no_grad():
        a = m(slots, vm, am, SLOTS, return_slot_states=True)
        b = m(garbage, vm, am, SLOTS, return_slot_states=True)
    assert torch.equal(a.query_tokens, b.query_tokens)
    for sa, sb in zip(a.slot_states, b.slot_states):
        assert torch.equal(sa[:, : 3 * SLOTS], sb[:, : 3 * SLOTS])


def test_fully_padded_window_gives_finite_output():
    m = _module("causal")
    slots, vm, am = _inputs()
    with torch.no_grad():
        out = m(slots, vm & False, am & False, SLOTS)
    assert torch.isfinite(out.query_tokens).all()


def test_padded_audio_slots_and_frames_change_nothing_in_the_model(tiny_model):
    """Whole model: garbage in the padded audio slots and the padded frames of the last window is ignored."""
    m = tiny_model
    cfg = m.config
    n_frames = 13  # last window: 3 real frames, 7 padded
    g = torch.Generator().manual_seed(0)
    visual = torch.randn(n_frames, cfg.visual.num_query_tokens, cfg.modality_width, generator=g)
    speech = torch.randn(n_frames * cfg.audio_slots_per_frame, cfg.modality_width, generator=g)
    batch = m.build_window_batch(np.arange(2), n_frames, visual, speech,
                                 n_visual_frames=n_frames, n_audio_frames=len(speech))
    assert batch.frame_mask[1].tolist() == [True] * 3 + [False] * 7
    S, D = cfg.slots_per_frame, cfg.modality_width
    assert int(batch.audio_mask[0, :S].sum()) == cfg.audio_slots_per_frame  # 25 of 32 audio slots are real
    assert not batch.visual_mask[1, 3 * S:].any() and not batch.audio_mask[1, 3 * S:].any()
    noisy = batch.slots.clone()
    pad_audio = ~batch.audio_mask  # (W, L*S)
    noisy[..., D:][pad_audio] = 1e3 * torch.randn(int(pad_audio.sum()), D, generator=g)
    noisy[1, 3 * S:, :D] = -5e2  # visual half of the padded frames too
    with torch.no_grad():
        a = m.causal_qformer(batch.slots, batch.visual_mask, batch.audio_mask, S)
        b = m.causal_qformer(noisy, batch.visual_mask, batch.audio_mask, S)
    assert torch.equal(a.query_tokens, b.query_tokens)


def test_no_causal_module_reads_the_input_slots():
    """mask_mode "none" (the no-causal ablation): the frame attention is skipped, so each layer's slot states are the
    input slots themselves, and a later frame changes earlier outputs (nothing is causal any more)."""
    import dataclasses

    import torch

    from favor_ops.models.causal_qformer import CausalQFormer
    from favor_ops.models.presets import tiny_config

    cfg = dataclasses.replace(tiny_config().causal_qformer, mask_mode="none", hidden_dropout_prob=0.0,
                              attention_dropout_prob=0.0)
    torch.manual_seed(0)
    E, S, L = 64, 4, 3
    cq = CausalQFormer(cfg, E).eval()
    slots = torch.randn(1, L * S, E)
    mask = torch.ones(1, L * S, dtype=torch.bool)
    out = cq(slots, mask, mask, S, return_slot_states=True)
    D = E // 2
    x = torch.cat([slots[..., :D], slots[..., D:]], -1)
    expected = cq.ln_slots(x) + cq.slot_position(torch.arange(L * S))
    for states in out.slot_states:
        assert torch.allclose(states, expected, atol=1e-6)


def test_no_sync_puts_the_clip_mean_speech_in_every_audio_slot():
    import dataclasses

    import numpy as np
    import torch

    from favor_ops.models.favor_model import FavorModel
    from favor_ops.models.presets import tiny_config

    cfg = tiny_config()
    cfg = cfg.replace(windows=dataclasses.replace(cfg.windows, audio_sync="clip"))
    model = FavorModel(cfg).eval()
    D = cfg.modality_width
    speech = torch.randn(100, D)  # 2 s of 50 Hz speech frames -> 4 frames at 2 FPS
    batch = model.build_window_batch(np.arange(1), 4, None, speech, n_visual_frames=0, n_audio_frames=100)
    audio = batch.slots[0, :, D:]  # (L*S, D)
    real = batch.audio_mask[0]
    assert real.sum() > 0
    assert torch.allclose(audio[real], speech.mean(0).expand(int(real.sum()), D), atol=1e-6)
    assert torch.all(audio[~real] == 0)
