"""ffmpeg muxing of rendered frames (raw rgb24 on stdin) and a wav soundtrack into real containers.

Encodes are reproducible: fixed thread counts, `-fflags +bitexact` and
`-flags:v/-flags:a +bitexact` (no encoder version strings, fixed stream serials
and segment UIDs), `-map_metadata -1` (no creation times), fast presets
(libx264 veryfast, libvpx-vp9 realtime / cpu-used 8) and `+faststart` for
mp4/m4a so the index sits before the media data.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np

from favor_ops.errors import FavorError


class CorpusEncodeError(FavorError):
    """ffmpeg failed while writing a synthetic corpus file."""


@dataclass(frozen=True)
class EncodeConfig:
    """Encoder settings; quality is ample for colour/shape recognition after decoding."""

    threads: int = 1
    x264_preset: str = "veryfast"
    x264_crf: int = 23
    vp9_crf: int = 33
    vp9_cpu_used: int = 8
    gop_s: float = 2.0                 # keyframe interval in seconds
    aac_bitrate: str = "96k"
    opus_bitrate: str = "64k"
    vorbis_quality: int = 3
    jpeg_quality: int = 3              # ffmpeg -q:v (2 best .. 31 worst)


# Muxer names by container (file extension).
MUXERS: dict[str, str] = {
    "mp4": "mp4", "m4a": "ipod", "webm": "webm", "mkv": "matroska", "ogg": "ogg", "wav": "wav",
}


def bitexact_output_args(cfg: EncodeConfig) -> list[str]:
    return [
        "-map_metadata", "-1",
        "-fflags", "+bitexact",
        "-flags:v", "+bitexact",
        "-flags:a", "+bitexact",
        "-threads", str(cfg.threads),
    ]


def video_codec_args(codec: str, gop_frames: int, cfg: EncodeConfig) -> list[str]:
    if codec == "h264":
        return [
            "-c:v", "libx264", "-preset", cfg.x264_preset, "-crf", str(cfg.x264_crf),
            "-pix_fmt", "yuv420p", "-g", str(gop_frames),
            "-x264-params", f"threads={cfg.threads}:lookahead-threads=1",
        ]
    if codec == "vp9":
        return [
            "-c:v", "libvpx-vp9", "-deadline", "realtime", "-cpu-used", str(cfg.vp9_cpu_used),
            "-b:v", "0", "-crf", str(cfg.vp9_crf), "-row-mt", "0", "-pix_fmt", "yuv420p", "-g", str(gop_frames),
        ]
    raise ValueError(f"unsupported video codec {codec!r}")


def audio_codec_args(codec: str, cfg: EncodeConfig) -> list[str]:
    if codec == "aac":
        return ["-c:a", "aac", "-b:a", cfg.aac_bitrate]
    if codec == "opus":
        return ["-c:a", "libopus", "-b:a", cfg.opus_bitrate]
    if codec == "vorbis":
        return ["-c:a", "libvorbis", "-q:a", str(cfg.vorbis_quality)]
    if codec == "flac":
        return ["-c:a", "flac"]
    if codec == "pcm_s16le":
        return ["-c:a", "pcm_s16le"]
    raise ValueError(f"unsupported audio codec {codec!r}")


def muxer_args(container: str) -> list[str]:
    args = ["-f", MUXERS[container]]
    if container in ("mp4", "m4a"):
        args += ["-movflags", "+faststart"]
    return args


def _run(cmd: list[str], out_path: str, frames: Iterable[np.ndarray] | None = None) -> None:
    """Run ffmpeg, streaming frames (each (H, W, 3) uint8, C-contiguous) to its stdin."""
    with tempfile.TemporaryFile() as err:
        proc = subprocess.Popen(
            cmd, stdin=subprocess.PIPE if frames is not None else subprocess.DEVNULL,
            stdout=subprocess.DEVNULL, stderr=err,
        )
        try:
            if frames is not None:
                assert proc.stdin is not None
                for frame in frames:
                    proc.stdin.write(np.ascontiguousarray(frame).data)
                proc.stdin.close()
        except BrokenPipeError:
            pass
        rc = proc.wait()
        if rc != 0:
            err.seek(0)
            tail = err.read().decode("utf-8", "replace").strip().splitlines()
            raise CorpusEncodeError(f"ffmpeg failed writing {out_path}: {tail[-1] if tail else rc}")


def encode_video(
    out_path: str,
    frames: Iterable[np.ndarray],
    width: int,
    height: int,
    input_fps: int,
    container: str,
    video_codec: str,
    wav_path: str | None,
    audio_codec: str | None,
    cfg: EncodeConfig = EncodeConfig(),
    keep_frames: tuple[bool, ...] | None = None,
) -> None:
    """Encode rgb24 frames at input_fps (+ optional wav) into out_path.

    keep_frames: a repeating pattern; frame n is kept when keep_frames[n % len]. The kept
    frames keep their input timestamps, giving a variable-frame-rate stream.
    """
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-framerate", str(input_fps), "-i", "-",
    ]
    if wav_path is not None:
        cmd += ["-i", wav_path]
    cmd += ["-map", "0:v"] + (["-map", "1:a"] if wav_path is not None else [])
    if keep_frames is not None:
        period = len(keep_frames)
        terms = "+".join(f"eq(mod(n\\,{period})\\,{i})" for i, keep in enumerate(keep_frames) if keep)
        cmd += ["-vf", f"select={terms}", "-fps_mode", "vfr"]
    cmd += video_codec_args(video_codec, max(1, int(round(cfg.gop_s * input_fps))), cfg)
    if wav_path is not None:
        assert audio_codec is not None
        cmd += audio_codec_args(audio_codec, cfg)
    cmd += bitexact_output_args(cfg) + muxer_args(container) + [out_path]
    _run(cmd, out_path, frames)


def encode_audio(out_path: str, wav_path: str, container: str, audio_codec: str, cfg: EncodeConfig = EncodeConfig()) -> None:
    """Transcode a wav soundtrack into an audio-only container."""
    cmd = ["ffmpeg", "-hide_banner", "-loglevel", "error", "-y", "-i", wav_path, "-map", "0:a"]
    cmd += audio_codec_args(audio_codec, cfg) + bitexact_output_args(cfg) + muxer_args(container) + [out_path]
    _run(cmd, out_path)


def encode_still(out_path: str, frame: np.ndarray, container: str, cfg: EncodeConfig = EncodeConfig()) -> None:
    """Write one (H, W, 3) uint8 frame as a .jpg (mjpeg) or .png image."""
    height, width = frame.shape[:2]
    cmd = [
        "ffmpeg", "-hide_banner", "-loglevel", "error", "-y",
        "-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{width}x{height}", "-i", "-", "-frames:v", "1",
    ]
    if container == "jpg":
        cmd += ["-c:v", "mjpeg", "-q:v", str(cfg.jpeg_quality), "-pix_fmt", "yuvj420p"]
    elif container == "png":
        cmd += ["-c:v", "png", "-pix_fmt", "rgb24"]
    else:
        raise ValueError(f"unsupported still image container {container!r}")
    cmd += bitexact_output_args(cfg) + ["-f", "image2", "-update", "1", out_path]
    _run(cmd, out_path, [frame])
