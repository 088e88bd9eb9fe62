"""encode_media_chunk_batch with the `tiny` model on hand-made MediaChunks (no Beam runner).

The synthetic media: 37.5 s at 2 FPS = 75 frames = 8 windows of 10 frames (the last one 5 frames),
random 32x32 frames (the tiny preset's image size) and 16 kHz audio (a 440 Hz tone plus noise).
Chunks are cut exactly as DecodeVideoFn cuts them: frames [10 * w0, 10 * w1), audio samples from
the first 50 Hz speech frame of frame 10 * w0 to that of frame 10 * w1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from favor_ops.media.sync import WHISPER_FRAME_RATE_HZ, first_audio_frame
from pipelines.index.chunk_encoder import encode_media_chunk_batch
from pipelines.index.elements import MediaChunk

FPS = 2.0
FRAMES_PER_WINDOW = 10
IMAGE_SIZE = 32  # tiny preset
SAMPLE_RATE_HZ = 16000
SAMPLES_PER_SPEECH_FRAME = SAMPLE_RATE_HZ / WHISPER_FRAME_RATE_HZ  # 320
DURATION_S = 37.5
N_FRAMES = math.ceil(DURATION_S * FPS)  # 75
N_WINDOWS = math.ceil(N_FRAMES / FRAMES_PER_WINDOW)  # 8
SPEECH_CHUNK_WINDOWS = 6  # 30 s speech-encoder chunk / 5 s windows
ATOL = 1e-5
VECTOR_FIELDS = ("tokens", "pooled", "audio_vec", "visual_vec")


@pytest.fixture(scope="module")
def model():
    from favor_ops.models.loading import load_favor_model

    return load_favor_model("tiny", device="cpu")


def _media(seed: int, rgb: tuple[int, int, int] | None = None):
    """(frames (F, H, W, 3) uint8: noise, or one flat colour; audio (T,) float32)."""
    rng = np.random.default_rng(seed)
    frames = rng.integers(0, 256, (N_FRAMES, IMAGE_SIZE, IMAGE_SIZE, 3), dtype=np.uint8)  # (F, H, W, 3)
    if rgb is not None:
        frames[:] = np.asarray(rgb, dtype=np.uint8)
    t = np.arange(int(DURATION_S * SAMPLE_RATE_HZ)) / SAMPLE_RATE_HZ
    audio = (0.3 * np.sin(2 * np.pi * 440.0 * t) + 0.05 * rng.standard_normal(len(t))).astype(np.float32)  # (T,)
    return frames, audio


def _chunk(media, video_id: str, chunk_idx: int, w0: int, w1: int, *, has_video=True, has_audio=True) -> MediaChunk:
    frames, audio = media
    lo, hi = w0 * FRAMES_PER_WINDOW, min(w1 * FRAMES_PER_WINDOW, N_FRAMES)
    a0 = int(round(first_audio_frame(lo, FPS) * SAMPLES_PER_SPEECH_FRAME))
    a1 = int(round(first_audio_frame(hi, FPS) * SAMPLES_PER_SPEECH_FRAME))
    return MediaChunk(
        video_id=video_id, uri=f"/archive/{video_id}.mp4", chunk_idx=chunk_idx, first_window=w0, n_windows=w1 - w0,
        first_frame=lo, frames_rgb=frames[lo:hi] if has_video else frames[:0],
        audio=audio[a0:a1] if has_audio else audio[:0], fps=FPS, sample_rate_hz=SAMPLE_RATE_HZ,
        duration_s=DURATION_S, has_audio=has_audio, has_video=has_video,
    )


def _joined(rows, field: str) -> np.ndarray:
    return np.concatenate([getattr(r, field) for r in rows])


def _encode(model, chunks):
    with torch.inference_mode():
        return encode_media_chunk_batch(model, chunks)


def _assert_same_windows(split, whole):
    np.testing.assert_array_equal(_joined(split, "window_idx"), whole.window_idx)
    np.testing.assert_array_equal(_joined(split, "t_start"), whole.t_start)
    np.testing.assert_array_equal(_joined(split, "t_end"), whole.t_end)
    for field in VECTOR_FIELDS:
        assert torch.allclose(torch.from_numpy(_joined(split, field)), torch.from_numpy(getattr(whole, field)),
                              atol=ATOL), field


def test_one_chunk_covers_every_window_with_exact_spans(model):
    (whole,) = _encode(model, [_chunk(_media(0), "a", 0, 0, N_WINDOWS)])
    np.testing.assert_array_equal(whole.window_idx, np.arange(N_WINDOWS))
    np.testing.assert_array_equal(whole.t_start, [0.0, 5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0])
    np.testing.assert_array_equal(whole.t_end, [5.0, 10.0, 15.0, 20.0, 25.0, 30.0, 35.0, 37.5])
    assert whole.tokens.shape == (N_WINDOWS, 32, 32)  # (W, Q, D)
    assert whole.has_video and whole.has_audio and whole.video_id == "a" and whole.chunk_idx == 0
    for field in ("pooled", "audio_vec", "visual_vec"):
        np.testing.assert_allclose(np.linalg.norm(getattr(whole, field), axis=1), 1.0, atol=ATOL, err_msg=field)


def test_two_chunks_on_the_speech_chunk_boundary_equal_one_chunk(model):
    media = _media(0)
    (whole,) = _encode(model, [_chunk(media, "a", 0, 0, N_WINDOWS)])
    split = _encode(model, [_chunk(media, "a", 0, 0, SPEECH_CHUNK_WINDOWS),
                            _chunk(media, "a", 1, SPEECH_CHUNK_WINDOWS, N_WINDOWS)])
    assert [r.chunk_idx for r in split] == [0, 1]
    _assert_same_windows(split, whole)


def test_chunks_of_two_videos_in_one_batch_equal_each_encoded_alone(model):
    a, b = _chunk(_media(1), "a", 0, 0, 3), _chunk(_media(2, rgb=(230, 25, 25)), "b", 0, 0, N_WINDOWS)
    together = _encode(model, [a, b])
    alone = _encode(model, [a]) + _encode(model, [b])
    assert [r.video_id for r in together] == ["a", "b"]
    for t, s in zip(together, alone):
        _assert_same_windows([t], s)
    # noise frames vs flat red frames: the visual vectors differ, so a mix-up could not pass
    assert np.abs(together[0].visual_vec - together[1].visual_vec[:3]).max() > 100 * ATOL


def test_audio_only_chunks_have_zero_visual_vectors(model):
    media = _media(3)
    (rows,) = _encode(model, [_chunk(media, "a", 0, 0, 4, has_video=False)])
    assert (rows.has_video, rows.has_audio) == (False, True)
    np.testing.assert_array_equal(rows.visual_vec, np.zeros((4, 32), np.float32))
    np.testing.assert_allclose(np.linalg.norm(rows.audio_vec, axis=1), 1.0, atol=ATOL)
    np.testing.assert_array_equal(rows.t_start, [0.0, 5.0, 10.0, 15.0])


def test_no_audio_chunks_have_zero_audio_vectors(model):
    media = _media(4)
    (rows,) = _encode(model, [_chunk(media, "a", 0, 0, 4, has_audio=False)])
    assert (rows.has_video, rows.has_audio) == (True, False)
    np.testing.assert_array_equal(rows.audio_vec, np.zeros((4, 32), np.float32))
    np.testing.assert_allclose(np.linalg.norm(rows.visual_vec, axis=1), 1.0, atol=ATOL)


def test_a_batch_mixing_audio_only_and_silent_chunks_keeps_each_modality_apart(model):
    media = _media(5)
    audio_only = _chunk(media, "a", 0, 0, 2, has_video=False)
    silent = _chunk(media, "b", 0, 0, 2, has_audio=False)
    mixed = _encode(model, [audio_only, silent])
    alone = _encode(model, [audio_only]) + _encode(model, [silent])
    np.testing.assert_array_equal(mixed[0].visual_vec, 0.0)
    np.testing.assert_array_equal(mixed[1].audio_vec, 0.0)
    for m, s in zip(mixed, alone):
        _assert_same_windows([m], s)


def _two_chunks_and_the_whole_file(model, heads_cfg):
    """(aligned model with fresh heads, the media, the rows of one file encoded in two chunks, encode_media of the file)."""
    from favor_ops.retrieval.aligned_model import AlignedModel
    from favor_ops.retrieval.heads import RetrievalHeads

    aligned = AlignedModel(model, RetrievalHeads(heads_cfg)).eval()
    media = _media(5)
    rows = _encode(aligned, [_chunk(media, "v", 0, 0, SPEECH_CHUNK_WINDOWS),
                             _chunk(media, "v", 1, SPEECH_CHUNK_WINDOWS, N_WINDOWS)])
    with torch.inference_mode():
        whole = aligned.encode_media(media[0], media[1], duration_s=DURATION_S)
    return aligned, media, rows, whole


@pytest.mark.parametrize("av_frames", [False, True], ids=["av-from-queries", "av-from-frames"])
def test_aligned_heads_give_the_query_side_vectors_and_their_own_model_version(model, tmp_path, av_frames):
    """With trained (here: random, E != H) retrieval heads the index stores exactly what
    AlignedModel.encode_media gives for the same file (the search side's space), with audio/visual vectors from the
    single-modality passes or from the windows' frames, and the heads are part of the model version: new heads
    re-index."""
    from favor_ops.retrieval.heads import RetrievalHeadsConfig
    from pipelines.index.chunk_encoder import describe_model

    H, E = model.config.causal_qformer.hidden_size, 24
    L, D = model.config.windows.frames_per_window, model.config.modality_width
    torch.manual_seed(0)
    heads_cfg = RetrievalHeadsConfig(window_dim=H, embed_dim=E, av_frames=L if av_frames else 0,
                                     modality_dim=D if av_frames else 0)
    aligned, media, rows, whole = _two_chunks_and_the_whole_file(model, heads_cfg)
    assert _joined(rows, "tokens").shape == (N_WINDOWS, 32, E)
    for field in VECTOR_FIELDS:
        np.testing.assert_allclose(_joined(rows, field), getattr(whole, field), atol=ATOL, err_msg=field)
    if av_frames:  # the last window's padded frames add nothing to its AV vectors (heads_cfg.av_mask_padding)
        k, n_real = E // L, N_FRAMES - (N_WINDOWS - 1) * FRAMES_PER_WINDOW
        for field in ("audio_vec", "visual_vec"):
            vec = _joined(rows, field)  # (K, E): L frames of k features, then E - L * k zeros
            assert np.count_nonzero(vec[-1, n_real * k:]) == 0 and np.count_nonzero(vec[-1, :n_real * k]), field
            assert np.count_nonzero(vec[0, :L * k]) == L * k, field

    first = describe_model(str(aligned.save(tmp_path / "a")))
    assert first.dim == E
    with torch.no_grad():
        aligned.heads.window_proj.bias.add_(0.01)
    second = describe_model(str(aligned.save(tmp_path / "b")))
    assert second.model_version != first.model_version and second.dim == E


def test_heads_with_frame_vectors_give_each_window_its_per_frame_vectors(model):
    """RetrievalHeadsConfig.frame_vectors: each window gets (L, E) unit-norm frame_audio / frame_visual, zeros for
    padded frames and for a modality the chunk lacks, equal to what AlignedModel.encode_media gives for the file;
    heads without them (and a bare model's identity heads) leave both None."""
    from favor_ops.retrieval.aligned_model import AlignedModel
    from favor_ops.retrieval.heads import RetrievalHeads, RetrievalHeadsConfig

    H, E = model.config.causal_qformer.hidden_size, 24
    L, D = model.config.windows.frames_per_window, model.config.modality_width
    torch.manual_seed(0)
    heads_cfg = RetrievalHeadsConfig(window_dim=H, embed_dim=E, modality_dim=D, frame_vectors=True)
    aligned, media, rows, whole = _two_chunks_and_the_whole_file(model, heads_cfg)
    real = np.ones((N_WINDOWS, L), bool)  # (K, L): the last window (37.5 - 35 s at 2 FPS) has 5 real frames
    real[-1, N_FRAMES - (N_WINDOWS - 1) * FRAMES_PER_WINDOW:] = False
    for field in ("frame_audio", "frame_visual"):
        vectors = _joined(rows, field)
        assert vectors.shape == (N_WINDOWS, L, E) and vectors.dtype == np.float32, field
        np.testing.assert_allclose(np.linalg.norm(vectors, axis=-1), real.astype(np.float32), atol=ATOL, err_msg=field)
        np.testing.assert_allclose(vectors, getattr(whole, field), atol=ATOL, err_msg=field)

    (silent,) = _encode(aligned, [_chunk(media, "s", 0, 0, 3, has_audio=False)])
    np.testing.assert_array_equal(silent.frame_audio, np.zeros((3, L, E), np.float32))
    np.testing.assert_allclose(np.linalg.norm(silent.frame_visual, axis=-1), 1.0, atol=ATOL)

    plain_heads = AlignedModel(model, RetrievalHeads(RetrievalHeadsConfig(window_dim=H, embed_dim=E))).eval()
    for encoder in (plain_heads, model):
        (rows,) = _encode(encoder, [_chunk(media, "v", 0, 0, 2)])
        assert rows.frame_audio is None and rows.frame_visual is None


# -- transcripts (a fake transcriber: the real one is tested in tests/asr) ---------------------------------------


class _FakeTranscriber:
    """Says `words` at fixed times (seconds from the first sample it is given); records what it was given."""

    name = "fake"

    def __init__(self, words=(), fail: Exception | None = None):
        self.words, self.fail, self.calls = list(words), fail, []

    def transcribe(self, audio_16k):
        from favor_ops.asr import Segment, Word

        self.calls.append(np.asarray(audio_16k))
        if self.fail is not None:
            raise self.fail
        return [Segment(s, e, t, (Word(s, e, t),)) for s, e, t in self.words]


def _encode_asr(model, chunks, transcriber):
    with torch.inference_mode():
        return encode_media_chunk_batch(model, chunks, transcriber=transcriber)


def test_without_a_transcriber_transcripts_are_empty_and_no_asr_ran(model):
    (rows,) = _encode(model, [_chunk(_media(0), "a", 0, 0, 3)])
    assert rows.transcripts == ["", "", ""] and rows.asr_ms is None and rows.asr_error is None


def test_words_land_in_the_windows_of_their_absolute_time(model):
    """The second chunk's audio starts at 30 s: a word 1 s into it belongs to window 6 ([30, 35))."""
    media = _media(0)
    second = _chunk(media, "a", 1, SPEECH_CHUNK_WINDOWS, N_WINDOWS)
    fake = _FakeTranscriber([(1.0, 1.4, "apple"), (6.0, 6.5, "river"), (7.2, 7.3, "tiger")])
    (rows,) = _encode_asr(model, [second], fake)
    assert rows.transcripts == ["apple", "river tiger"]
    assert rows.asr_error is None and rows.asr_ms is not None
    np.testing.assert_array_equal(fake.calls[0], second.audio)  # the chunk's own 16 kHz audio, unchanged
    (plain,) = _encode(model, [second])
    _assert_same_windows([rows], plain)  # the ASR changes nothing else


def test_an_asr_failure_leaves_empty_transcripts_and_says_why(model):
    chunks = [_chunk(_media(0), "a", 0, 0, 3), _chunk(_media(1), "b", 0, 0, 2)]
    rows = _encode_asr(model, chunks, _FakeTranscriber(fail=RuntimeError("decoder exploded\nsecond line")))
    for r, n in zip(rows, (3, 2)):
        assert r.transcripts == [""] * n
        assert r.asr_error == "RuntimeError: decoder exploded second line"
    for r, plain in zip(rows, _encode(model, chunks)):
        _assert_same_windows([r], plain)


def test_a_chunk_without_audio_is_not_transcribed(model):
    fake = _FakeTranscriber([(0.0, 1.0, "ghost")])
    (rows,) = _encode_asr(model, [_chunk(_media(4), "a", 0, 0, 2, has_audio=False)], fake)
    assert fake.calls == [] and rows.transcripts == ["", ""] and rows.asr_ms is None and rows.asr_error is None


def test_the_handler_counts_asr_failures_and_keeps_the_windows(model, caplog):
    """Through the ModelHandler's run_inference (as RunInference calls it): a failing ASR yields WindowRows,
    not a Failure, and a warning naming the file."""
    from pipelines.index.elements import WindowRows
    from pipelines.index.model_handler import FavorWindowModelHandler, LoadedModels

    handler = FavorWindowModelHandler("tiny", device="cpu", asr="whisper-tiny-en")
    chunk = _chunk(_media(0), "a", 0, 0, 2)
    with caplog.at_level("WARNING"):
        (result,) = handler.run_inference([chunk], LoadedModels(model, _FakeTranscriber(fail=OSError("no audio"))))
    assert isinstance(result.inference, WindowRows) and result.inference.transcripts == ["", ""]
    assert "ASR failed on /archive/a.mp4" in caplog.text and "OSError: no audio" in caplog.text


def test_the_asr_setting_is_part_of_the_model_version():
    from pipelines.index.chunk_encoder import describe_model

    plain, with_asr = describe_model("tiny"), describe_model("tiny", asr="whisper-tiny-en")
    assert with_asr.model_version.startswith(plain.model_version + "+whisper-tiny-en-")
    assert (with_asr.asr, plain.asr) == ("whisper-tiny-en", None) and with_asr.dim == plain.dim
