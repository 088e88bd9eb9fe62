"""Decode: a VideoTask -> a VideoHeader plus MediaChunks of whole windows.

Frames and audio stream from ffmpeg in bounded blocks; a chunk holds the
frames of `windows_per_chunk` consecutive windows and the audio of the same
time span, so memory per element is bounded whatever the video's length.
"""

from __future__ import annotations

import math
import time

import apache_beam as beam
import numpy as np

from favor_ops.errors import StageError
from favor_ops.media.decode import DecodeConfig, iter_audio, iter_frames, probe
from favor_ops.media.sync import WHISPER_FRAME_RATE_HZ, first_audio_frame
from favor_ops.media.windowing import WindowSpec, window_frame_index
from pipelines.index.elements import Failure, MediaChunk, VideoHeader, VideoTask
from pipelines.index.progress import mark_done

HEADERS_TAG = "headers"
FAILURES_TAG = "failures"
METRICS_NAMESPACE = "favor.index"


def expected_frame_count(duration_s: float, fps: float, has_video: bool) -> int:
    """Frames the decoder yields for a file: ceil(duration * fps) (>= 1 for any video)."""
    if not has_video:
        return 0
    return max(1, int(np.ceil(duration_s * fps - 1e-6)))


class _AudioCursor:
    """Pulls audio chunks from a generator and hands out sample ranges in order."""

    def __init__(self, chunks):
        self._chunks = chunks
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # sample index of _buffer[0]
        self._done = chunks is None

    def take(self, start: int, stop: int) -> np.ndarray:
        """Samples [start, stop) (fewer when the audio ends first); drops everything before start."""
        while not self._done and self._buffer_start + len(self._buffer) < stop:
            try:
                self._buffer = np.concatenate([self._buffer, next(self._chunks).samples])
            except StopIteration:
                self._done = True
        lo = max(start - self._buffer_start, 0)
        out = self._buffer[lo : max(stop - self._buffer_start, lo)].copy()
        self._buffer = self._buffer[lo:]
        self._buffer_start += lo
        return out


class DecodeVideoFn(beam.DoFn):
    """Probe and decode one video into a header and window-aligned media chunks.

    Outputs: main -> MediaChunk; tag `headers` -> VideoHeader; tag `failures` -> Failure.
    """

    def __init__(self, decode_config: DecodeConfig, window_spec: WindowSpec, windows_per_chunk: int,
                 progress: tuple[str, str] | None = None, speech_chunk_s: float = 30.0):
        self.decode_config = decode_config
        self.progress = progress  # (db_uri, run_id): leave a marker per finished file for the driver's bar
        self.window_spec = window_spec
        # The speech encoder works in fixed `speech_chunk_s` pieces: a chunk must end on that grid or its audio
        # features would differ from whole-file encoding. Round up to whole pieces (12 windows = 60 s at 2 FPS).
        windows_per_piece = max(1, round(speech_chunk_s * decode_config.fps / window_spec.stride_frames))
        self.windows_per_chunk = math.ceil(windows_per_chunk / windows_per_piece) * windows_per_piece
        self.videos = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "videos_decoded")
        self.video_seconds = beam.metrics.Metrics.counter(METRICS_NAMESPACE, "video_seconds_decoded")
        self.decode_ms = beam.metrics.Metrics.distribution(METRICS_NAMESPACE, "decode_ms_per_video")

    def process(self, task: VideoTask):
        started = time.perf_counter()
        try:
            yield from self._decode(task)
        except StageError as err:
            yield beam.pvalue.TaggedOutput(
                FAILURES_TAG, Failure(task.uri, task.video_id, err.stage, err.error_type, err.reason)
            )
        else:
            self.videos.inc()
            self.decode_ms.update(int((time.perf_counter() - started) * 1000))
        finally:
            if self.progress is not None:
                mark_done(*self.progress, task.video_id)

    def _decode(self, task: VideoTask):
        cfg, spec = self.decode_config, self.window_spec
        info = probe(task.uri)
        n_frames = expected_frame_count(info.duration_s, cfg.fps, info.has_video)
        # Audio-only files: windows follow the audio's duration at the same frame clock.
        n_clock_frames = n_frames if info.has_video else max(1, int(np.ceil(info.duration_s * cfg.fps - 1e-6)))
        index, frame_mask = window_frame_index(n_clock_frames, spec)  # (W, L)
        n_windows = len(index)
        yield beam.pvalue.TaggedOutput(
            HEADERS_TAG,
            VideoHeader(task.video_id, task.uri, info.duration_s, cfg.fps, info.has_audio, info.has_video,
                        n_frames, n_windows),
        )
        self.video_seconds.inc(int(round(info.duration_s)))

        frames_iter = iter_frames(task.uri, cfg, info) if info.has_video else None
        audio = _AudioCursor(iter_audio(task.uri, cfg, info) if info.has_audio else None)
        frame_buffer = np.zeros((0, cfg.image_size, cfg.image_size, 3), np.uint8)
        buffer_first = 0  # frame index of frame_buffer[0]
        samples_per_speech_frame = cfg.sample_rate_hz / WHISPER_FRAME_RATE_HZ  # 320 at 16 kHz
        try:
            for chunk_idx, w0 in enumerate(range(0, n_windows, self.windows_per_chunk)):
                w1 = min(w0 + self.windows_per_chunk, n_windows)
                lo = int(index[w0, 0])
                hi = int(np.where(frame_mask[w0:w1], index[w0:w1], -1).max()) + 1  # frames [lo, hi)
                if frames_iter is not None:
                    while buffer_first + len(frame_buffer) < hi:
                        block = next(frames_iter, None)
                        if block is None:
                            break
                        frame_buffer = np.concatenate([frame_buffer, block.frames_rgb])
                    frames = frame_buffer[lo - buffer_first : hi - buffer_first]
                    keep_from = int(index[w1, 0]) if w1 < n_windows else hi
                    frame_buffer = frame_buffer[keep_from - buffer_first :]
                    buffer_first = keep_from
                else:
                    frames = np.zeros((0, cfg.image_size, cfg.image_size, 3), np.uint8)
                # Audio from the first speech frame of frame lo to the first speech frame of frame hi.
                chunk_audio = audio.take(
                    int(round(first_audio_frame(lo, cfg.fps) * samples_per_speech_frame)),
                    int(round(first_audio_frame(hi, cfg.fps) * samples_per_speech_frame)),
                )
                yield MediaChunk(
                    video_id=task.video_id, uri=task.uri, chunk_idx=chunk_idx, first_window=w0,
                    n_windows=w1 - w0, first_frame=lo, frames_rgb=frames, audio=chunk_audio, fps=cfg.fps,
                    sample_rate_hz=cfg.sample_rate_hz, duration_s=info.duration_s,
                    has_audio=info.has_audio, has_video=info.has_video,
                )
        finally:
            if frames_iter is not None and hasattr(frames_iter, "close"):
                frames_iter.close()
