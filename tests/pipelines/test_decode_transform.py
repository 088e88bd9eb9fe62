"""DecodeVideoFn.process called directly (no Beam runner) on short clips generated with ffmpeg.

A 12.3 s 25 FPS clip with a tone: ceil(12.3 * 2) = 25 frames at 2 FPS -> 3 windows of 10 frames.
With 2 windows per chunk the decoder must yield a header, then chunk 0 = frames [0, 20) and
chunk 1 = frames [20, 25); their frames and audio, joined, are exactly the whole-file decode.
"""

from __future__ import annotations

import math
import subprocess

import numpy as np
import pytest
from apache_beam.pvalue import TaggedOutput

from favor_ops.media.decode import DecodeConfig, decode
from favor_ops.media.sync import WHISPER_FRAME_RATE_HZ, first_audio_frame
from favor_ops.media.windowing import WindowSpec
from pipelines.index.decode_transform import FAILURES_TAG, HEADERS_TAG, DecodeVideoFn
from pipelines.index.elements import Failure, MediaChunk, VideoHeader, VideoTask

CFG = DecodeConfig(fps=2.0, image_size=32)
SPEC = WindowSpec(frames_per_window=10, stride_frames=10)
SAMPLES_PER_SPEECH_FRAME = CFG.sample_rate_hz / WHISPER_FRAME_RATE_HZ  # 320
CLIP_S = 12.3
AUDIO_CLIP_S = 7.2


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


@pytest.fixture(scope="module")
def media_dir(tmp_path_factory):
    out = tmp_path_factory.mktemp("decode_transform")
    _ffmpeg("-f", "lavfi", "-i", f"testsrc2=s=160x120:r=25:d={CLIP_S}", "-f", "lavfi",
            "-i", f"sine=f=440:r=44100:d={CLIP_S}", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
            "-c:a", "aac", "-shortest", str(out / "clip.mp4"))
    _ffmpeg("-f", "lavfi", "-i", f"sine=f=660:r=16000:d={AUDIO_CLIP_S}", str(out / "tone.wav"))
    (out / "empty.mp4").write_bytes(b"")
    (out / "notes.mp4").write_bytes(b"these are meeting notes, not a video\n" * 20)
    return out


def _run(uri: str, windows_per_chunk: int, video_id: str = "vid0", speech_chunk_s: float = 5.0):
    """process() outputs split into (headers, chunks, failures).

    speech_chunk_s=5.0 (one window per speech piece) keeps `windows_per_chunk` as given, to test tiling.
    """
    fn = DecodeVideoFn(CFG, SPEC, windows_per_chunk, speech_chunk_s=speech_chunk_s)
    headers, chunks, failures = [], [], []
    for out in fn.process(VideoTask(uri=uri, video_id=video_id, size_bytes=0)):
        if isinstance(out, TaggedOutput):
            {HEADERS_TAG: headers, FAILURES_TAG: failures}[out.tag].append(out.value)
        else:
            chunks.append(out)
    return headers, chunks, failures


def _audio_span(lo_frame: int, hi_frame: int) -> tuple[int, int]:
    return (int(round(first_audio_frame(lo_frame, CFG.fps) * SAMPLES_PER_SPEECH_FRAME)),
            int(round(first_audio_frame(hi_frame, CFG.fps) * SAMPLES_PER_SPEECH_FRAME)))


def test_a_video_yields_a_header_then_chunks_that_tile_it_exactly(media_dir):
    uri = str(media_dir / "clip.mp4")
    headers, chunks, failures = _run(uri, windows_per_chunk=2)
    assert failures == []
    n_frames = math.ceil(CLIP_S * CFG.fps)  # 25
    (header,) = headers
    assert isinstance(header, VideoHeader)
    assert (header.video_id, header.uri, header.fps, header.has_video, header.has_audio) == ("vid0", uri, 2.0, True, True)
    assert (header.n_frames, header.n_windows) == (n_frames, 3)
    assert header.duration_s == pytest.approx(CLIP_S, abs=0.05)

    assert all(isinstance(c, MediaChunk) for c in chunks)
    assert [(c.chunk_idx, c.first_window, c.n_windows, c.first_frame, len(c.frames_rgb)) for c in chunks] == [
        (0, 0, 2, 0, 20), (1, 2, 1, 20, 5)]
    assert all((c.fps, c.sample_rate_hz, c.has_video, c.has_audio) == (2.0, 16000, True, True) for c in chunks)
    assert all(c.duration_s == header.duration_s and c.video_id == "vid0" for c in chunks)

    whole = decode(uri, CFG)
    np.testing.assert_array_equal(np.concatenate([c.frames_rgb for c in chunks]), whole.frames_rgb)
    for chunk, (lo, hi) in zip(chunks, [(0, 20), (20, 25)]):
        a0, a1 = _audio_span(lo, hi)  # samples [0, 160000) and [160000, 200000) clipped to the audio
        np.testing.assert_array_equal(chunk.audio, whole.audio[a0:a1])
    assert sum(len(c.audio) for c in chunks) == len(whole.audio)  # 12.3 s < 12.5 s: the audio ends first


def test_every_windows_per_chunk_tiles_the_same_frames(media_dir):
    uri = str(media_dir / "clip.mp4")
    whole = decode(uri, CFG)
    for windows_per_chunk in (1, 3, 12):
        _, chunks, _ = _run(uri, windows_per_chunk)
        assert [c.first_frame for c in chunks] == [10 * windows_per_chunk * i for i in range(len(chunks))]
        assert sum(c.n_windows for c in chunks) == 3
        np.testing.assert_array_equal(np.concatenate([c.frames_rgb for c in chunks]), whole.frames_rgb)
        np.testing.assert_array_equal(np.concatenate([c.audio for c in chunks]), whole.audio)


def test_an_audio_only_file_gets_windows_on_its_audio_clock(media_dir):
    uri = str(media_dir / "tone.wav")
    (header,), chunks, failures = _run(uri, windows_per_chunk=1)
    assert failures == []
    assert (header.has_video, header.has_audio, header.n_frames, header.n_windows) == (False, True, 0, 2)  # 14.4 frames
    assert [(c.first_window, c.first_frame, c.frames_rgb.shape) for c in chunks] == [
        (0, 0, (0, 32, 32, 3)), (1, 10, (0, 32, 32, 3))]
    whole = decode(uri, CFG)
    assert len(whole.audio) == int(AUDIO_CLIP_S * CFG.sample_rate_hz)
    np.testing.assert_array_equal(chunks[0].audio, whole.audio[:80000])  # frames [0, 10) = 5 s
    np.testing.assert_array_equal(chunks[1].audio, whole.audio[80000:])


@pytest.mark.parametrize("name, reason_part", [("empty.mp4", "empty"), ("notes.mp4", "")])
def test_a_bad_file_yields_only_a_tagged_probe_failure(media_dir, name, reason_part):
    uri = str(media_dir / name)
    headers, chunks, failures = _run(uri, windows_per_chunk=2, video_id="bad0")
    assert (headers, chunks) == ([], [])
    (failure,) = failures
    assert isinstance(failure, Failure)
    assert (failure.uri, failure.video_id, failure.stage, failure.error_type) == (uri, "bad0", "probe", "ProbeError")
    assert reason_part in failure.message and "\n" not in failure.message and failure.message


def test_a_missing_file_is_a_probe_failure_not_an_exception(media_dir):
    uri = str(media_dir / "gone.mp4")
    _, _, (failure,) = _run(uri, windows_per_chunk=2)
    assert (failure.stage, failure.error_type) == ("probe", "ProbeError")


def test_chunks_are_rounded_up_to_whole_speech_pieces():
    # 30 s speech pieces at 2 FPS with 5 s windows: 6 windows per piece.
    assert [DecodeVideoFn(CFG, SPEC, n).windows_per_chunk for n in (1, 6, 7, 12)] == [6, 6, 12, 12]


def test_stored_vectors_do_not_depend_on_windows_per_chunk(media_dir):
    import torch

    from favor_ops.models.loading import load_favor_model
    from pipelines.index.chunk_encoder import encode_media_chunk_batch

    model = load_favor_model("tiny", device="cpu")
    uri = str(media_dir / "clip.mp4")
    encoded = {}
    for windows_per_chunk in (1, 12):  # 5 s chunks vs one chunk for the whole 12.3 s clip
        _, chunks, _ = _run(uri, windows_per_chunk, speech_chunk_s=30.0)
        with torch.inference_mode():
            rows = encode_media_chunk_batch(model, chunks)
        encoded[windows_per_chunk] = {f: np.concatenate([getattr(r, f) for r in rows])
                                      for f in ("window_idx", "tokens", "pooled", "audio_vec", "visual_vec")}
    np.testing.assert_array_equal(encoded[1]["window_idx"], [0, 1, 2])
    np.testing.assert_array_equal(encoded[1]["visual_vec"], encoded[12]["visual_vec"])  # frames: no context
    for field in ("audio_vec", "tokens", "pooled"):
        np.testing.assert_allclose(encoded[1][field], encoded[12][field], atol=1e-5, err_msg=field)
