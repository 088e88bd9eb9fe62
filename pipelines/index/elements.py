"""Elements that flow between the indexing job's transforms.

Plain dataclasses of numpy arrays and Python scalars: picklable, no model or
store handles, nothing that assumes a shared local disk.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass(frozen=True)
class VideoTask:
    """A file the catalog decided to index in this run."""

    uri: str
    video_id: str  # content hash
    size_bytes: int


@dataclass(frozen=True)
class VideoHeader:
    """What decoding learned about a file before its first chunk."""

    video_id: str
    uri: str
    duration_s: float
    fps: float  # sampling rate of the frames we keep, not the source frame rate
    has_audio: bool
    has_video: bool
    n_frames: int
    n_windows: int


@dataclass
class MediaChunk:
    """Decoded media for a run of consecutive windows of one video.

    Frames `first_frame .. first_frame + len(frames_rgb) - 1` of the video at
    `fps`, with the audio samples from `first_frame / fps` seconds on.
    """

    video_id: str
    uri: str
    chunk_idx: int
    first_window: int  # global index of this chunk's first window
    n_windows: int  # windows of this chunk (the last chunk may hold fewer)
    first_frame: int
    frames_rgb: np.ndarray  # (F, H, W, 3) uint8
    audio: np.ndarray  # (T,) float32 @ sample_rate_hz, starting at first_frame / fps
    fps: float
    sample_rate_hz: int
    duration_s: float  # of the whole video, to clip the last window's end
    has_audio: bool
    has_video: bool


@dataclass
class WindowRows:
    """The encoded windows of one chunk, ready for the `windows` table."""

    video_id: str
    chunk_idx: int
    window_idx: np.ndarray  # (K,) int32, global window index
    t_start: np.ndarray  # (K,) float64 seconds
    t_end: np.ndarray  # (K,) float64 seconds
    tokens: np.ndarray  # (K, Q, D) float32 query tokens
    pooled: np.ndarray  # (K, D) float32
    audio_vec: np.ndarray  # (K, D) float32
    visual_vec: np.ndarray  # (K, D) float32
    has_audio: bool
    has_video: bool
    transcripts: list[str] = field(default_factory=list)
    asr_error: str | None = None  # the ASR failed on this chunk: transcripts stay empty (counted, logged)
    asr_ms: int | None = None  # time spent transcribing this chunk (None: no ASR ran)
    # per-frame vectors (heads with frame_vectors; None otherwise), zeros for a missing modality and padded frames
    frame_audio: np.ndarray | None = None  # (K, L, D) float32 unit-norm: what each frame sounds like
    frame_visual: np.ndarray | None = None  # (K, L, D) float32 unit-norm: what each frame shows


@dataclass(frozen=True)
class EncodedChunk:
    """That a chunk's windows were encoded and staged: what the per-video assembly needs of them (its tokens
    stay in the worker that encoded them and go straight to a shard)."""

    video_id: str
    chunk_idx: int
    n_windows: int


@dataclass(frozen=True)
class Failure:
    """A failed input: becomes one `failures` row."""

    uri: str
    video_id: str | None
    stage: str
    error_type: str
    message: str
