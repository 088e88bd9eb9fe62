from dataclasses import dataclass

import numpy as np
import torch

from favor_ops.models.outputs import FavorWindowOutput
from tests.models import tiny_model  # noqa: F401  (fixture)

SR = 16000


@dataclass
class FrameChunk:  # same fields as favor_ops.media.decode.FrameChunk
    frames_rgb: np.ndarray
    times_s: np.ndarray
    first_index: int


@dataclass
class AudioChunk:  # same fields as favor_ops.media.decode.AudioChunk
    samples: np.ndarray
    t_start_s: float


def _media(seconds, size, fps=2.0, seed=0):
    rng = np.random.default_rng(seed)
    n = int(np.ceil(seconds * fps - 1e-6))
    frames = rng.integers(0, 256, size=(n, size, size, 3), dtype=np.uint8)
    audio = (0.1 * rng.standard_normal(int(seconds * SR))).astype(np.float32)
    return frames, audio


def _frame_chunks(frames, n, fps=2.0):
    return [FrameChunk(frames[i:i + n], np.arange(i, min(i + n, len(frames))) / fps, i)
            for i in range(0, len(frames), n)]


def _audio_chunks(audio, seconds):
    n = int(seconds * SR)
    return [AudioChunk(audio[i:i + n], i / SR) for i in range(0, len(audio), n)]


def _whole(model, frames, audio, **kw):
    visual = model.encode_frames(model.preprocess_frames(frames)) if len(frames) else None
    speech = model.encode_speech(audio) if len(audio) else None
    return model.encode_windows(visual, speech, **kw)


def _assert_same(stream: FavorWindowOutput, whole: FavorWindowOutput):
    assert stream.window_index.tolist() == whole.window_index.tolist()
    assert stream.t_start_s.tolist() == whole.t_start_s.tolist()
    assert stream.t_end_s.tolist() == whole.t_end_s.tolist()
    assert torch.equal(stream.frame_mask, whole.frame_mask)
    torch.testing.assert_close(stream.query_tokens, whole.query_tokens, rtol=1e-4, atol=1e-5)


def test_stream_equals_whole_input(tiny_model):
    size = tiny_model.config.visual.image_size
    frames, audio = _media(67.5, size)  # 135 frames, 3 Whisper chunks (30 + 30 + 7.5 s), 14 windows
    whole = _whole(tiny_model, frames, audio, duration_s=67.5)
    assert len(whole) == 14
    trace = {}
    parts = list(tiny_model.iter_encode_windows(_frame_chunks(frames, 7), _audio_chunks(audio, 12.5),
                                                duration_s=67.5, trace=trace))
    assert len(parts) > 3  # windows come out as the input streams in, not all at the end
    _assert_same(FavorWindowOutput.concat(parts), whole)
    # Bounded buffers: never more than ~one Whisper chunk ahead of the oldest unfinished window.
    assert trace["frames"] <= 10 + 60 + 7
    assert trace["speech_frames"] <= 1500 + 250 + 25
    assert trace["pending_samples"] < 30 * SR


def test_stream_audio_only_and_video_only(tiny_model):
    size = tiny_model.config.visual.image_size
    frames, audio = _media(12.0, size, seed=1)
    audio_only = list(tiny_model.iter_encode_windows(None, _audio_chunks(audio, 4.0), has_video=False))
    _assert_same(FavorWindowOutput.concat(audio_only), _whole(tiny_model, frames[:0], audio))
    video_only = list(tiny_model.iter_encode_windows(_frame_chunks(frames, 5), None, has_audio=False))
    _assert_same(FavorWindowOutput.concat(video_only), _whole(tiny_model, frames, audio[:0]))


def test_stream_still_image_with_audio(tiny_model):
    size = tiny_model.config.visual.image_size
    frames, audio = _media(9.0, size, seed=2)
    image = frames[:1]
    stream = list(tiny_model.iter_encode_windows([image], _audio_chunks(audio, 2.0), is_still_image=True))
    visual = tiny_model.encode_frames(tiny_model.preprocess_frames(image))
    whole = tiny_model.encode_windows(visual, tiny_model.encode_speech(audio), is_still_image=True)
    assert len(whole) == 2
    _assert_same(FavorWindowOutput.concat(stream), whole)
