"""Decode any media URI into model-ready frames and 16 kHz mono audio, streamed in chunks.

Frames
------
One ffmpeg process (built with ffmpeg-python) decodes the first video stream and
does all the image work in its own filter graph, so Python only copies bytes:

    fps=fps=F:start_time=0:round=up        sample-and-hold at F frames per second
    scale=S:S:force_original_aspect_ratio=decrease|increase:flags=area
    format=rgb24, pad=S:S:(ow-iw)/2:(oh-ih)/2:black   ("pad": letterbox, bars black)
                  crop=S:S                             ("crop": centre crop)

Frame timing contract: frame k shows the picture on screen at `k / fps`
seconds (the last source frame with pts <= k/fps: that is what `round=up`
gives; `start_time=0` repeats the first picture if the stream starts late) and
there are exactly `n_frames = ceil(duration_s * fps - 1e-6)` frames (at least 1
for a video or image). ffmpeg is told to stop after n_frames (`-frames:v`); if
it delivers fewer because the stream ends a little early (rounding, a video
stream slightly shorter than the container) the last frame is repeated. If the
data ends far short of the stream's declared duration (more than one frame
missing and short by > `truncation_tolerance_s` or > `truncation_tolerance_frac`
of the duration) it raises DecodeError("truncated: decoded X s of Y s declared").
The same rule, checked before ffmpeg starts, refuses a container that declares
far more time than its longest stream holds (a header saying 6 hours over 5 s of
streams): DecodeError("truncated: the streams hold X s of Y s declared").

GPU decode (optional): `hwaccel="cuda"` (or any `ffmpeg -hwaccels` method) adds `-hwaccel cuda` before the
input, so NVDEC decodes and ffmpeg downloads the pictures for the same filter graph. When that ffmpeg fails
before its first frame (no driver, no device, a codec NVDEC lacks), the file is decoded again on the CPU, and
the process stops asking for that method (one warning per process); a failure after frames were delivered is
the file's own and raises as usual.

Still images yield exactly one frame at t=0 (see probe.py: duration_s is 0).
Rotation: ffmpeg autorotates (display matrix / rotate tag), so frames are upright.
VFR input is resampled to constant rate by the fps filter. Non-square pixels
(SAR != 1) are not corrected.

Sources larger than `max_source_pixels` (after rotation) or longer than
`max_duration_s` are refused with UnsupportedMediaError before ffmpeg starts
(refusing is predictable; decoding an 8K+ frame already costs ffmpeg hundreds of MB).

Audio
-----
A second ffmpeg process: first audio stream -> `aresample=async=1:first_pts=0`
(silence-pads a late-starting stream so sample i is at i / rate) -> mono
float32 little-endian at `sample_rate_hz` (`-f f32le -ac 1 -ar 16000`). The
output has exactly round(duration_s * sample_rate_hz) samples: extra samples
are cut, a short tail is zero-padded, and the same truncation rule applies.

Memory: chunks are read with `readinto` into freshly allocated numpy buffers of
exact byte size (chunk_frames frames or chunk_s seconds); nothing holds the
whole file. Processes are killed and reaped when a generator is closed, garbage
collected or fails. Errors name the stage, the file and ffmpeg's one-line reason
(`-v error` stderr).
"""

from __future__ import annotations

import collections
import logging
import math
import subprocess
import threading
from concurrent.futures import ThreadPoolExecutor, wait
from dataclasses import dataclass
from typing import Iterator

import ffmpeg
import numpy as np

from favor_ops.errors import DecodeError, UnsupportedMediaError
from favor_ops.media.probe import MediaInfo, ffmpeg_reason, probe, probe_local
from favor_ops.media.source import local_media_path

LOG = logging.getLogger(__name__)

__all__ = [
    "AudioChunk",
    "DecodeConfig",
    "DecodedMedia",
    "FrameChunk",
    "MediaInfo",
    "decode",
    "iter_audio",
    "iter_frames",
    "n_frames_for",
    "n_samples_for",
    "probe",
]

RESIZE_MODES = ("pad", "crop")
RGB_CHANNELS = 3
FLOAT32_BYTES = 4
FRAME_COUNT_EPS = 1e-6  # ceil(duration * fps - eps): a duration of exactly k / fps gives k frames
STDERR_LINES_KEPT = 20


@dataclass(frozen=True)
class DecodeConfig:
    fps: float = 2.0  # frames sampled per second of video
    image_size: int = 224  # output frames are image_size x image_size RGB
    resize_mode: str = "pad"  # "pad" (letterbox, aspect kept) or "crop" (centre crop)
    sample_rate_hz: int = 16000  # audio: mono float32 in [-1, 1]
    chunk_frames: int = 100  # frames per yielded chunk (bounded memory)
    max_source_pixels: int = 7680 * 4320  # larger sources are refused (UnsupportedMediaError)
    max_duration_s: float = 6 * 3600
    # Additions beyond the contract (all defaulted):
    threads: int = 0  # ffmpeg decoder threads per process; 0 = ffmpeg's auto (one per core)
    scale_flags: str = "area"  # swscale algorithm for the downscale
    truncation_tolerance_s: float = 1.0  # a stream may end this much short of its declared duration...
    truncation_tolerance_frac: float = 0.1  # ...and at most this fraction of it (whichever is smaller)
    audio_chunk_s: float = 30.0  # default audio chunk length for iter_audio
    hwaccel: str | None = None  # ffmpeg -hwaccel method for the video stream ("cuda": NVDEC); CPU fallback

    def __post_init__(self):
        if self.fps <= 0:
            raise ValueError(f"fps must be positive, got {self.fps}")
        if self.image_size <= 0:
            raise ValueError(f"image_size must be positive, got {self.image_size}")
        if self.resize_mode not in RESIZE_MODES:
            raise ValueError(f"resize_mode must be one of {RESIZE_MODES}, got {self.resize_mode!r}")
        if self.sample_rate_hz <= 0 or self.chunk_frames <= 0:
            raise ValueError("sample_rate_hz and chunk_frames must be positive")


@dataclass
class FrameChunk:
    frames_rgb: np.ndarray  # (N, H, W, 3) uint8, H == W == cfg.image_size
    times_s: np.ndarray  # (N,) float64, frame k at k / fps
    first_index: int  # index of frames_rgb[0] in the whole video


@dataclass
class AudioChunk:
    samples: np.ndarray  # (T,) float32 @ cfg.sample_rate_hz, mono, in [-1, 1]
    t_start_s: float  # time of samples[0]


@dataclass
class DecodedMedia:
    info: MediaInfo
    frames_rgb: np.ndarray  # (N, H, W, 3) uint8
    frame_times_s: np.ndarray  # (N,) float64
    audio: np.ndarray  # (T,) float32 @ sample_rate_hz; empty without audio
    has_audio: bool
    has_video: bool


def n_frames_for(info: MediaInfo, fps: float) -> int:
    """Frames the timing contract promises: ceil(duration_s * fps - 1e-6), >= 1 for video/images, 0 without video."""
    if not info.has_video:
        return 0
    if info.is_still_image:
        return 1
    return max(1, math.ceil(info.duration_s * fps - FRAME_COUNT_EPS))


def n_samples_for(info: MediaInfo, sample_rate_hz: int) -> int:
    """Audio samples delivered: round(duration_s * sample_rate_hz), 0 without audio."""
    return int(round(info.duration_s * sample_rate_hz)) if info.has_audio else 0


def _check_limits(info: MediaInfo, cfg: DecodeConfig) -> None:
    if info.has_video and info.width * info.height > cfg.max_source_pixels:
        raise UnsupportedMediaError(
            info.uri, f"{info.width}x{info.height} exceeds max_source_pixels={cfg.max_source_pixels}"
        )
    if info.duration_s > cfg.max_duration_s:
        raise UnsupportedMediaError(info.uri, f"{info.duration_s:.1f} s exceeds max_duration_s={cfg.max_duration_s:g}")


def _check_streams_cover(info: MediaInfo, cfg: DecodeConfig) -> None:
    """The container may not declare far more time than its longest stream holds (a header that says
    6 hours over 5 s of data): padding that gap would index hours of one frozen picture and silence."""
    spans = [s for s in (info.video_duration_s, info.audio_duration_s) if s is not None]
    if spans and not info.is_still_image and _truncated(max(spans), info.duration_s, cfg):
        raise DecodeError(info.uri, f"truncated: the streams hold {max(spans):.2f} s of {info.duration_s:.2f} s declared")


def _declared_s(stream_span_s: float | None, info: MediaInfo) -> float:
    """What the header promises for one stream (its own span, capped at the media duration)."""
    return min(stream_span_s, info.duration_s) if stream_span_s is not None else info.duration_s


def _truncated(delivered_s: float, declared_s: float, cfg: DecodeConfig) -> bool:
    short_s = declared_s - delivered_s
    return short_s > min(cfg.truncation_tolerance_s, cfg.truncation_tolerance_frac * declared_s)


class _FfmpegPipe:
    """A running ffmpeg whose stdout we read; stderr is drained by a thread (last lines kept).

    Use as a context manager: on exit the process is killed if still running and always reaped.
    """

    def __init__(self, args: list[str], path: str):
        self.path = path
        self._stderr_tail: collections.deque[str] = collections.deque(maxlen=STDERR_LINES_KEPT)
        self.proc = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE, bufsize=0
        )
        self._drain = threading.Thread(target=self._drain_stderr, daemon=True)
        self._drain.start()

    def _drain_stderr(self) -> None:
        for raw in iter(self.proc.stderr.readline, b""):
            self._stderr_tail.append(raw.decode("utf-8", "replace").rstrip())

    def read_into(self, buffer: np.ndarray) -> int:
        """Fill `buffer`'s bytes from stdout; returns bytes read (< nbytes only at end of stream)."""
        view = memoryview(buffer).cast("B")
        filled = 0
        while filled < len(view):
            got = self.proc.stdout.readinto(view[filled:])
            if not got:
                break
            filled += got
        return filled

    def finish(self) -> tuple[int, str]:
        """Wait for a process whose stdout hit EOF; returns (exit code, one-line reason from stderr)."""
        returncode = self.proc.wait()
        self._drain.join()
        reason = ffmpeg_reason("\n".join(self._stderr_tail), self.path, f"ffmpeg exited with {returncode}", first=True)
        return returncode, reason

    def __enter__(self) -> "_FfmpegPipe":
        return self

    def __exit__(self, *exc) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait()
        self.proc.stdout.close()
        self._drain.join(timeout=5)
        self.proc.stderr.close()


def _global_args() -> tuple[str, ...]:
    return ("-nostdin", "-hide_banner", "-v", "error")


def video_args(path: str, cfg: DecodeConfig, n_frames: int, is_still_image: bool, hwaccel: str | None = None) -> list[str]:
    """The ffmpeg command line for frames (see module docstring for the filter graph)."""
    input_kwargs = {"threads": cfg.threads} if cfg.threads > 0 else {}
    if hwaccel:
        input_kwargs["hwaccel"] = hwaccel
    size = cfg.image_size
    video = ffmpeg.input(path, **input_kwargs)["v:0"]
    if not is_still_image:
        video = video.filter("fps", fps=cfg.fps, start_time=0, round="up")
    if cfg.resize_mode == "pad":
        video = (
            video.filter("scale", size, size, force_original_aspect_ratio="decrease", flags=cfg.scale_flags)
            .filter("format", "rgb24")
            .filter("pad", size, size, "(ow-iw)/2", "(oh-ih)/2", color="black")
        )
    else:
        video = (
            video.filter("scale", size, size, force_original_aspect_ratio="increase", flags=cfg.scale_flags)
            .filter("format", "rgb24")
            .filter("crop", size, size)
        )
    out = ffmpeg.output(video, "pipe:", format="rawvideo", pix_fmt="rgb24", **{"frames:v": n_frames})
    return out.global_args(*_global_args()).compile()


def audio_args(path: str, cfg: DecodeConfig) -> list[str]:
    """The ffmpeg command line for 16 kHz mono float32 audio."""
    audio = ffmpeg.input(path)["a:0"].filter("aresample", **{"async": 1, "first_pts": 0})
    out = ffmpeg.output(audio, "pipe:", format="f32le", acodec="pcm_f32le", ac=1, ar=cfg.sample_rate_hz)
    return out.global_args(*_global_args()).compile()


# hwaccel methods whose ffmpeg failed before a first frame in this process: later files go straight to the CPU.
_HWACCEL_FAILED: set[str] = set()
_HWACCEL_LOCK = threading.Lock()


def _iter_frames_local(path: str, cfg: DecodeConfig, info: MediaInfo) -> Iterator[FrameChunk]:
    if not info.has_video:
        return
    _check_limits(info, cfg)
    _check_streams_cover(info, cfg)
    hwaccel = cfg.hwaccel if cfg.hwaccel and cfg.hwaccel not in _HWACCEL_FAILED else None
    if hwaccel:
        delivered = False
        try:
            for chunk in _iter_frames_ffmpeg(path, cfg, info, hwaccel):
                delivered = True
                yield chunk
            return
        except DecodeError as err:
            if delivered:
                raise
            with _HWACCEL_LOCK:
                first_failure = hwaccel not in _HWACCEL_FAILED
                _HWACCEL_FAILED.add(hwaccel)
            if first_failure:
                LOG.warning("ffmpeg -hwaccel %s failed (%s); decoding on the CPU from now on", hwaccel, err.reason)
    yield from _iter_frames_ffmpeg(path, cfg, info, None)


def _iter_frames_ffmpeg(path: str, cfg: DecodeConfig, info: MediaInfo, hwaccel: str | None) -> Iterator[FrameChunk]:
    n_frames = n_frames_for(info, cfg.fps)
    size = cfg.image_size
    frame_bytes = size * size * RGB_CHANNELS
    emitted = 0
    last_frame: np.ndarray | None = None  # (H, W, 3), kept to pad a short tail
    with _FfmpegPipe(video_args(path, cfg, n_frames, info.is_still_image, hwaccel), path) as pipe:
        while emitted < n_frames:
            want = min(cfg.chunk_frames, n_frames - emitted)
            frames = np.empty((want, size, size, RGB_CHANNELS), dtype=np.uint8)  # (N, H, W, 3)
            got = pipe.read_into(frames) // frame_bytes
            if got < want:  # end of stream before the promised count
                returncode, reason = pipe.finish()
                delivered_s = (emitted + got) / cfg.fps
                declared_s = _declared_s(info.video_duration_s, info)
                if returncode != 0:
                    raise DecodeError(info.uri, f"ffmpeg failed after {delivered_s:.2f} s of {declared_s:.2f} s: {reason}")
                if got > 0:
                    last_frame = frames[got - 1].copy()
                missing = n_frames - (emitted + got)
                if last_frame is None or (missing > 1 and _truncated(delivered_s, declared_s, cfg)):
                    raise DecodeError(info.uri, f"truncated: decoded {delivered_s:.2f} s of {declared_s:.2f} s declared")
                frames[got:] = last_frame  # repeat the last picture to the promised count
            else:
                last_frame = frames[-1].copy()
            times_s = np.arange(emitted, emitted + want, dtype=np.float64) / cfg.fps  # (N,)
            yield FrameChunk(frames_rgb=frames, times_s=times_s, first_index=emitted)
            emitted += want
            if got < want:
                # The tail only fills the current chunk; more missing frames continue below.
                while emitted < n_frames:
                    pad_n = min(cfg.chunk_frames, n_frames - emitted)
                    frames = np.broadcast_to(last_frame, (pad_n, size, size, RGB_CHANNELS)).copy()
                    times_s = np.arange(emitted, emitted + pad_n, dtype=np.float64) / cfg.fps
                    yield FrameChunk(frames_rgb=frames, times_s=times_s, first_index=emitted)
                    emitted += pad_n


def _iter_audio_local(path: str, cfg: DecodeConfig, info: MediaInfo, chunk_s: float) -> Iterator[AudioChunk]:
    if not info.has_audio:
        return
    _check_limits(info, cfg)
    _check_streams_cover(info, cfg)
    rate = cfg.sample_rate_hz
    n_samples = n_samples_for(info, rate)
    chunk_samples = max(1, int(round(chunk_s * rate)))
    emitted = 0
    with _FfmpegPipe(audio_args(path, cfg), path) as pipe:
        while emitted < n_samples:
            want = min(chunk_samples, n_samples - emitted)
            samples = np.empty((want,), dtype=np.float32)  # (T,)
            got = pipe.read_into(samples) // FLOAT32_BYTES
            if got < want:
                returncode, reason = pipe.finish()
                delivered_s = (emitted + got) / rate
                declared_s = _declared_s(info.audio_duration_s, info)
                if returncode != 0:
                    raise DecodeError(
                        info.uri, f"ffmpeg failed after {delivered_s:.2f} s of {declared_s:.2f} s of audio: {reason}"
                    )
                if _truncated(delivered_s, declared_s, cfg):
                    raise DecodeError(info.uri, f"truncated: decoded {delivered_s:.2f} s of {declared_s:.2f} s of audio declared")
                samples[got:] = 0.0  # a short tail is silence
            yield AudioChunk(samples=samples, t_start_s=emitted / rate)
            emitted += want
            if got < want:
                while emitted < n_samples:
                    pad_n = min(chunk_samples, n_samples - emitted)
                    yield AudioChunk(samples=np.zeros((pad_n,), dtype=np.float32), t_start_s=emitted / rate)
                    emitted += pad_n


def iter_frames(uri: str, cfg: DecodeConfig = DecodeConfig(), info: MediaInfo | None = None) -> Iterator[FrameChunk]:
    """Frames of `uri` at cfg.fps, cfg.image_size square RGB, in chunks of cfg.chunk_frames.

    Raises ProbeError / UnsupportedMediaError / DecodeError (see module docstring).
    """
    with local_media_path(uri) as path:
        info = info if info is not None else probe_local(path, uri)
        yield from _iter_frames_local(path, cfg, info)


def iter_audio(
    uri: str, cfg: DecodeConfig = DecodeConfig(), info: MediaInfo | None = None, chunk_s: float | None = None
) -> Iterator[AudioChunk]:
    """Mono float32 audio of `uri` at cfg.sample_rate_hz in chunks of chunk_s seconds (default cfg.audio_chunk_s)."""
    chunk_s = cfg.audio_chunk_s if chunk_s is None else chunk_s
    with local_media_path(uri) as path:
        info = info if info is not None else probe_local(path, uri)
        yield from _iter_audio_local(path, cfg, info, chunk_s)


def _collect_audio(path: str, cfg: DecodeConfig, info: MediaInfo) -> np.ndarray:
    chunks = [chunk.samples for chunk in _iter_audio_local(path, cfg, info, cfg.audio_chunk_s)]
    return np.concatenate(chunks) if chunks else np.zeros((0,), dtype=np.float32)


def decode(uri: str, cfg: DecodeConfig = DecodeConfig()) -> DecodedMedia:
    """Whole-file decode (short clips, tests): frames and audio, the two ffmpeg processes run concurrently."""
    size = cfg.image_size
    with local_media_path(uri) as path:
        info = probe_local(path, uri)
        _check_limits(info, cfg)
        _check_streams_cover(info, cfg)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="favor-audio") as pool:
            audio_future = pool.submit(_collect_audio, path, cfg, info)
            try:
                chunks = list(_iter_frames_local(path, cfg, info))
            except BaseException:
                wait([audio_future])  # the frame error wins; the audio process still ends before the temp file goes
                raise
            audio = audio_future.result()  # re-raises an audio DecodeError
    frames = (
        np.concatenate([c.frames_rgb for c in chunks])
        if chunks
        else np.zeros((0, size, size, RGB_CHANNELS), dtype=np.uint8)
    )
    times = np.concatenate([c.times_s for c in chunks]) if chunks else np.zeros((0,), dtype=np.float64)
    return DecodedMedia(
        info=info, frames_rgb=frames, frame_times_s=times, audio=audio, has_audio=info.has_audio, has_video=info.has_video
    )
