"""ffprobe -> MediaInfo: what a media file holds, before decoding it.

Conventions:
- `width`/`height` are the display size *after* rotation: ffmpeg autorotates
  while decoding, so a phone clip stored 1920x1080 with a 90 degree display
  matrix is reported (and decoded) as 1080x1920. `rotation_deg` is the display
  rotation as ffprobe reports it (display-matrix side data, else the legacy
  `rotate` tag), normalised to [0, 360).
- `duration_s` drives the frame timing contract in decode.py. It is the video
  stream's own span (end - start) when the container is at most MUX_SLACK_S
  longer (the excess is codec delay / padding / millisecond rounding, e.g. an
  Opus track in webm makes the container 8.008 s for 8.0 s of video); otherwise
  the container's declared duration (a genuinely longer audio track), falling
  back to the longest stream. `video_duration_s`/`audio_duration_s` are each
  stream's own declared span (used to detect truncated data).
- Still images (jpg, png, webp, bmp, ...; a single-picture video stream) have
  `is_still_image=True`, `duration_s=0.0`, `has_audio=False`; decoding yields
  exactly one frame at t=0 (an image has no duration; the "at least 1 frame
  for a video/image" rule gives that frame).
- Cover art (`attached_pic`, e.g. in an mp3) is not a video stream.
- Errors: a missing file, zero bytes, ffprobe failing (not media, unreadable)
  or no audio/video stream raise ProbeError with ffprobe's own one-line reason.
"""

from __future__ import annotations

import math
import os
import re
from dataclasses import dataclass

import ffmpeg

from favor_ops.errors import ProbeError
from favor_ops.media.source import local_media_path

# Demuxers that only ever hold one picture.
STILL_IMAGE_FORMAT_SUFFIX = "_pipe"  # png_pipe, jpeg_pipe, webp_pipe, bmp_pipe, ...
STILL_IMAGE_FORMATS = ("image2",)
# A container up to this much longer than its video stream (audio codec delay/padding, millisecond
# timestamps, start offsets) is treated as lasting exactly as long as the video: less than half a frame at 2 FPS.
MUX_SLACK_S = 0.25
STILL_IMAGE_CODECS = ("mjpeg", "png", "webp", "bmp", "tiff", "gif", "jpeg2000", "jpegls", "ppm", "pgm", "pam")


@dataclass(frozen=True)
class MediaInfo:
    uri: str
    size_bytes: int
    container: str  # ffprobe format_name, e.g. "mov,mp4,m4a,3gp,3g2,mj2", "matroska,webm"
    duration_s: float  # declared duration; 0.0 for a still image
    has_video: bool
    has_audio: bool
    width: int  # pixels, after rotation (0 without video)
    height: int  # pixels, after rotation (0 without video)
    rotation_deg: int  # display rotation in [0, 360)
    avg_fps: float  # average frame rate of the video stream (0.0 without video)
    is_still_image: bool
    video_codec: str | None
    audio_codec: str | None
    # Additions beyond the contract: each stream's own declared span (end - start), None when unknown/absent.
    # decode.py checks truncation against these.
    video_duration_s: float | None = None
    audio_duration_s: float | None = None


_ADDRESS_PREFIX = re.compile(r"\[([\w:,-]+) @ 0x[0-9a-fA-F]+\]\s*")


def ffmpeg_reason(stderr: bytes | str | None, path: str, default: str, first: bool = False) -> str:
    """One line from ffmpeg/ffprobe stderr saying why it failed, tidied.

    ffprobe's verdict is its last line; for ffmpeg decoding the first error is the cause
    (later lines are consequences like "Error marking filters as finished"), so pass first=True.
    """
    text = stderr.decode("utf-8", "replace") if isinstance(stderr, bytes) else (stderr or "")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    if not lines:
        return default
    last = lines[0] if first else lines[-1]
    for prefix in (f"{path}: ", f"{os.path.basename(path)}: "):
        if last.startswith(prefix):
            last = last[len(prefix):]
    return _ADDRESS_PREFIX.sub(lambda m: f"{m.group(1)}: ", last).strip() or default


def _float_or_nan(value) -> float:
    try:
        result = float(value)
    except (TypeError, ValueError):
        return math.nan
    return result


def _rate(text: str | None) -> float:
    if not text or text in ("0/0", "N/A"):
        return 0.0
    if "/" in text:
        num, den = text.split("/", 1)
        den_f = _float_or_nan(den)
        return _float_or_nan(num) / den_f if den_f else 0.0
    value = _float_or_nan(text)
    return 0.0 if math.isnan(value) else value


def _rotation_of(stream: dict) -> int:
    for side in stream.get("side_data_list") or []:
        if "rotation" in side:
            return int(round(_float_or_nan(side["rotation"]) or 0)) % 360
    tag = (stream.get("tags") or {}).get("rotate")
    if tag is not None and not math.isnan(_float_or_nan(tag)):
        return int(round(float(tag))) % 360
    return 0


def _parse_clock(text: str) -> float:
    """'00:00:08.007000000' (matroska DURATION tag) -> seconds."""
    try:
        hours, minutes, seconds = str(text).split(":")
        return int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    except ValueError:
        return math.nan


def stream_span_s(stream: dict | None) -> float | None:
    """A stream's own duration: ffprobe `duration`, else the matroska DURATION tag (an end time) minus start_time."""
    if stream is None:
        return None
    duration = _float_or_nan(stream.get("duration"))
    if math.isnan(duration):
        end = _parse_clock((stream.get("tags") or {}).get("DURATION", ""))
        start = _float_or_nan(stream.get("start_time"))
        duration = end - (0.0 if math.isnan(start) else start)
    return duration if not math.isnan(duration) and duration > 0 else None


def _is_cover_art(stream: dict) -> bool:
    return bool((stream.get("disposition") or {}).get("attached_pic"))


def media_info_from_probe(uri: str, size_bytes: int, probed: dict) -> MediaInfo:
    """Build a MediaInfo from ffprobe's JSON (`-show_format -show_streams`). Raises ProbeError."""
    fmt = probed.get("format") or {}
    streams = probed.get("streams") or []
    video = next((s for s in streams if s.get("codec_type") == "video" and not _is_cover_art(s)), None)
    audio = next((s for s in streams if s.get("codec_type") == "audio"), None)
    if video is None and audio is None:
        raise ProbeError(uri, "no audio or video stream")

    container = str(fmt.get("format_name") or "unknown")
    is_still = False
    width = height = rotation = 0
    avg_fps = 0.0
    if video is not None:
        width, height = int(video.get("width") or 0), int(video.get("height") or 0)
        if width <= 0 or height <= 0:
            raise ProbeError(uri, "video stream has no frame size")
        rotation = _rotation_of(video)
        if rotation in (90, 270):
            width, height = height, width
        avg_fps = _rate(video.get("avg_frame_rate")) or _rate(video.get("r_frame_rate"))
        n_frames_declared = _float_or_nan(video.get("nb_frames"))
        is_still = audio is None and (
            container in STILL_IMAGE_FORMATS
            or container.endswith(STILL_IMAGE_FORMAT_SUFFIX)
            or (video.get("codec_name") in STILL_IMAGE_CODECS and n_frames_declared in (0.0, 1.0))
        )

    video_span_s = None if is_still else stream_span_s(video)
    audio_span_s = stream_span_s(audio)
    if is_still:
        duration_s = 0.0
    else:
        container_s = _float_or_nan(fmt.get("duration"))
        spans = [d for d in (video_span_s, audio_span_s) if d is not None]
        if math.isnan(container_s) or container_s <= 0:
            if not spans:
                raise ProbeError(uri, "no duration declared in the container or its streams")
            container_s = max(spans)
        duration_s = container_s
        if video_span_s is not None and container_s - video_span_s <= MUX_SLACK_S:
            duration_s = video_span_s  # container pads (codec delay, ms timestamps) are not media time

    return MediaInfo(
        uri=str(uri),
        size_bytes=int(size_bytes),
        container=container,
        duration_s=float(duration_s),
        has_video=video is not None,
        has_audio=audio is not None,
        width=width,
        height=height,
        rotation_deg=rotation,
        avg_fps=float(avg_fps),
        is_still_image=is_still,
        video_codec=video.get("codec_name") if video else None,
        audio_codec=audio.get("codec_name") if audio else None,
        video_duration_s=video_span_s,
        audio_duration_s=audio_span_s,
    )


def probe_local(path: str, uri: str | None = None) -> MediaInfo:
    """Probe a local file; `uri` is the name errors and MediaInfo carry (defaults to path)."""
    uri = str(uri if uri is not None else path)
    try:
        size_bytes = os.path.getsize(path)
    except OSError:
        raise ProbeError(uri, "no such file") from None
    if size_bytes == 0:
        raise ProbeError(uri, "empty file (0 bytes)")
    try:
        probed = ffmpeg.probe(path, v="error")
    except ffmpeg.Error as err:
        raise ProbeError(uri, ffmpeg_reason(err.stderr, path, "ffprobe failed")) from None
    except ValueError as err:  # ffprobe printed something that is not JSON
        raise ProbeError(uri, f"unreadable ffprobe output: {err}") from None
    return media_info_from_probe(uri, size_bytes, probed)


def probe(uri: str) -> MediaInfo:
    """ffprobe any fsspec URI or local path. Raises ProbeError."""
    with local_media_path(uri) as path:
        return probe_local(path, uri)
