"""Synchronise speech-encoder frames (50 Hz) with sampled video frames.

FAVOR pairs each video frame with the speech frames of its own time slice:
video frame k stands for [k / fps, (k + 1) / fps) seconds, and speech-encoder
frame j (time j / audio_rate_hz) belongs to frame k when it falls in that slice.
At 2 FPS and 50 Hz that is 25 speech frames per video frame; the slot count
per frame is ceil(audio_rate_hz / fps) so any FPS works, and slots past the
end of a frame's slice (or past the end of the audio) are masked padding.

Pure functions on numpy arrays or torch tensors; no I/O, no Python loop over frames.
"""

from __future__ import annotations

import math

import numpy as np

WHISPER_FRAME_RATE_HZ = 50.0  # Whisper encoder output: one frame per 20 ms


def audio_slots_per_frame(fps: float, audio_rate_hz: float = WHISPER_FRAME_RATE_HZ) -> int:
    """Speech-frame slots per video frame: ceil(audio_rate_hz / fps)."""
    if fps <= 0 or audio_rate_hz <= 0:
        raise ValueError(f"fps and audio_rate_hz must be positive, got fps={fps}, audio_rate_hz={audio_rate_hz}")
    # The epsilon keeps exact ratios exact (50 / 2 = 25, not 26 through float noise).
    return max(1, math.ceil(audio_rate_hz / fps - 1e-9))


def frame_audio_index(
    n_frames: int,
    n_audio_frames: int,
    fps: float,
    audio_rate_hz: float = WHISPER_FRAME_RATE_HZ,
) -> tuple[np.ndarray, np.ndarray]:
    """Which speech frames fill each video frame's slots.

    Returns:
        index: (N, S_a) int64, speech-frame index per slot (0 where masked, safe to gather).
        mask:  (N, S_a) bool, True where the slot holds a real speech frame.
    """
    n_slots = audio_slots_per_frame(fps, audio_rate_hz)
    frame = np.arange(n_frames, dtype=np.float64)[:, None]  # (N, 1)
    # First speech frame whose time is >= k / fps, and the first one of the next frame's slice.
    first = np.ceil(frame * audio_rate_hz / fps - 1e-9).astype(np.int64)  # (N, 1)
    stop = np.ceil((frame + 1.0) * audio_rate_hz / fps - 1e-9).astype(np.int64)  # (N, 1)
    index = first + np.arange(n_slots, dtype=np.int64)[None, :]  # (N, S_a)
    mask = (index < stop) & (index < n_audio_frames)
    index = np.where(mask, index, 0)
    return index, mask


def gather_audio_slots(audio_feats, index: np.ndarray, mask: np.ndarray):
    """Gather per-frame speech slots; masked slots are zero.

    Args:
        audio_feats: (A, D) numpy array or torch tensor of speech-encoder frames.
        index, mask: from `frame_audio_index`, (N, S_a).
    Returns:
        (N, S_a, D), same array type and dtype as `audio_feats`.
    """
    if hasattr(audio_feats, "index_select"):  # torch.Tensor
        import torch

        idx = torch.as_tensor(index, device=audio_feats.device)
        keep = torch.as_tensor(mask, device=audio_feats.device)
        if audio_feats.shape[0] == 0:
            return audio_feats.new_zeros((*idx.shape, audio_feats.shape[-1]))
        slots = audio_feats[idx]  # (N, S_a, D)
        return slots * keep[..., None].to(slots.dtype)
    feats = np.asarray(audio_feats)
    if feats.shape[0] == 0:
        return np.zeros((*index.shape, feats.shape[-1]), dtype=feats.dtype)
    slots = feats[index]  # (N, S_a, D)
    return slots * mask[..., None].astype(slots.dtype)


def frame_times_s(n_frames: int, fps: float, t0_s: float = 0.0) -> np.ndarray:
    """(N,) float64 presentation time of each sampled frame: t0 + k / fps."""
    return t0_s + np.arange(n_frames, dtype=np.float64) / fps


def first_audio_frame(frame_idx: int, fps: float, audio_rate_hz: float = WHISPER_FRAME_RATE_HZ) -> int:
    """Index of the first speech frame in video frame `frame_idx`'s slice (as `frame_audio_index` assigns them)."""
    return math.ceil(frame_idx * audio_rate_hz / fps - 1e-9)
