"""The bad-input matrix: each case writes its input into an archive folder and says what the index job
must make of it (a correct index entry, or one `failures` row at a stage with an error type).

Every input is generated here with ffmpeg (and a few byte edits), each with distinct content: the
catalog indexes identical content once, so two cases sharing bytes would hide one of them.

What root can and cannot do: tests run as root in CI containers, and root ignores permission bits
(CAP_DAC_OVERRIDE): a chmod 000 file is still readable and a chmod 000 directory still listable. The
`unreadable_file` and `unlistable_dir` cases therefore expect a normal index entry as root and a
`catalog` failure as any other user; the dangling symlink, symlink loop and FIFO cases are
unreadable for root too.
"""

from __future__ import annotations

import math
import os
import stat
import struct
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from favor_ops.corpus.bad_inputs import header_only_bytes, mp4_top_level_boxes

FPS = 2.0  # frames per second every preset samples
WINDOW_S = 5.0  # 10 frames per window
FFMPEG = ("ffmpeg", "-nostdin", "-hide_banner", "-v", "error", "-y")
IS_ROOT = hasattr(os, "geteuid") and os.geteuid() == 0
SIX_HOURS_S = 6 * 3600.0
LONG_NAME_STEM = "long_" + "ü" * 120  # 245 bytes of UTF-8 (+ ".mp4": 249; Linux allows 255 per name)
NON_UTF8_NAME = b"latin1_caf\xe9_\xff.mp4"  # a name in Latin-1 bytes: not valid UTF-8


@dataclass(frozen=True)
class Expected:
    """`indexed`: a videos row (status indexed) with n_windows windows; `failed`: one failures row."""

    outcome: str  # "indexed" | "failed"
    n_windows: int = 0
    duration_s: float | None = None
    has_video: bool | None = None
    has_audio: bool | None = None
    stage: str | None = None
    error_type: str | None = None

    def describe(self) -> str:
        if self.outcome == "indexed":
            return f"indexed, {self.n_windows} window{'s' if self.n_windows != 1 else ''}"
        return f"failure [{self.stage}] {self.error_type}"


def indexed(duration_s: float, *, has_video: bool = True, has_audio: bool = True) -> Expected:
    n_windows = math.ceil(max(1, math.ceil(duration_s * FPS - 1e-6)) / (WINDOW_S * FPS))
    return Expected("indexed", n_windows, duration_s, has_video, has_audio)


def failed(stage: str, error_type: str) -> Expected:
    return Expected("failed", stage=stage, error_type=error_type)


@dataclass(frozen=True)
class Case:
    name: str
    description: str
    filename: str | bytes  # relative to the archive; bytes for a name that is not UTF-8
    make: Callable[[Path], None]  # writes the input at the given path
    expected: Expected

    def path(self, archive: Path) -> Path | bytes:
        if isinstance(self.filename, bytes):
            return os.path.join(os.fsencode(archive), self.filename)
        return archive / self.filename


# ---- generators ------------------------------------------------------------------------------


def ffmpeg(*args: str | os.PathLike | bytes) -> None:
    subprocess.run([*FFMPEG, *args], check=True, stdin=subprocess.DEVNULL, capture_output=True)


def clip(out, seconds: float, *, size: str = "96x64", rate: float = 25, video: bool = True, audio: bool = True,
         tone_hz: int = 440, source: str = "testsrc2", extra: tuple = (), vf: str | None = None, tag: str = "") -> None:
    """An h264/aac mp4 (faststart) of `seconds`; `tag` goes into the title so every case has distinct bytes."""
    inputs: list = []
    if video:
        joiner = ":" if "=" in source else "="
        inputs += ["-f", "lavfi", "-t", str(seconds), "-i", f"{source}{joiner}size={size}:rate={rate}"]
    if audio:
        inputs += ["-f", "lavfi", "-i", f"sine=frequency={tone_hz}:sample_rate=16000:duration={seconds}"]
    codecs: list = []
    if video:
        codecs += ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-g", "50"]
        if vf:
            codecs += ["-vf", vf]
    if audio:
        codecs += ["-c:a", "aac", "-b:a", "48k"]
    ffmpeg(*inputs, *codecs, *extra, "-threads", "1", "-metadata", f"title={tag}", "-movflags", "+faststart", out)


def _write(path, data: bytes) -> None:
    with open(path, "wb") as handle:
        handle.write(data)


def _read(path) -> bytes:
    with open(path, "rb") as handle:
        return handle.read()


def make_zero_bytes(path) -> None:
    _write(path, b"")


def make_text_as_mp4(path) -> None:
    _write(path, b"This is a plain text file that was given a .mp4 name.\n" * 20)


def make_truncated(path) -> None:
    clip(path, 6.0, tone_hz=300, tag="truncated")
    data = _read(path)
    _write(path, data[: len(data) // 2])


def make_header_only(path) -> None:
    clip(path, 6.0, tone_hz=310, tag="header_only")
    _write(path, header_only_bytes(_read(path)))


def _iter_boxes(data: bytes, start: int, end: int):
    """(type, offset of the payload, end) of each ISO-BMFF box in data[start:end]."""
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", data[pos + 8 : pos + 16])[0], 16
        elif size == 0:
            size = end - pos
        if size < header:
            return
        yield kind, pos + header, pos + size
        pos += size


CONTAINER_BOXES = {b"moov", b"trak", b"mdia", b"minf", b"stbl", b"edts"}


def _patch_boxes(data: bytearray, start: int, end: int, patch) -> None:
    for kind, body, box_end in _iter_boxes(bytes(data), start, end):
        patch(data, kind, body)
        if kind in CONTAINER_BOXES:
            _patch_boxes(data, body, box_end, patch)


def make_unknown_codec(path) -> None:
    """A real h264 mp4 whose video sample entry says 'zzzz' (a codec tag no decoder knows)."""
    clip(path, 4.0, tone_hz=320, tag="unknown_codec")
    data = bytearray(_read(path))

    def patch(buf: bytearray, kind: bytes, body: int) -> None:
        if kind == b"stsd":  # full box (4) + entry count (4), then sample entries: size (4) + format (4)
            first_entry = body + 8
            if bytes(buf[first_entry + 4 : first_entry + 8]) == b"avc1":
                buf[first_entry + 4 : first_entry + 8] = b"zzzz"

    moov = next((o, s) for k, o, s in mp4_top_level_boxes(bytes(data)) if k == b"moov")
    _patch_boxes(data, moov[0] + 8, moov[0] + moov[1], patch)
    assert b"zzzz" in data, "no avc1 sample entry patched"
    _write(path, bytes(data))


def make_declares_six_hours(path) -> None:
    """5 s of real media whose movie, track and media headers declare 6 hours."""
    clip(path, 5.0, tone_hz=330, tag="six_hours")
    data = bytearray(_read(path))
    movie_timescale = [0]

    def patch(buf: bytearray, kind: bytes, body: int) -> None:
        version = buf[body]
        if kind in (b"mvhd", b"mdhd"):  # v0: flags(4) ctime(4) mtime(4) timescale(4) duration(4)
            assert version == 0, kind
            timescale = struct.unpack(">I", buf[body + 12 : body + 16])[0]
            if kind == b"mvhd":
                movie_timescale[0] = timescale
            buf[body + 16 : body + 20] = struct.pack(">I", int(SIX_HOURS_S * timescale))
        elif kind == b"tkhd":  # v0: flags(4) ctime(4) mtime(4) track_id(4) reserved(4) duration(4), movie timescale
            assert version == 0 and movie_timescale[0], kind
            buf[body + 20 : body + 24] = struct.pack(">I", int(SIX_HOURS_S * movie_timescale[0]))

    moov = next((o, s) for k, o, s in mp4_top_level_boxes(bytes(data)) if k == b"moov")
    _patch_boxes(data, moov[0] + 8, moov[0] + moov[1], patch)
    _write(path, bytes(data))


def make_no_video_stream(path) -> None:
    clip(path, 6.0, video=False, tone_hz=340, tag="no_video")


def make_no_audio_stream(path) -> None:
    clip(path, 6.0, audio=False, source="mandelbrot", tag="no_audio")


def make_no_media_streams(path) -> None:
    """A matroska file holding only a subtitle track."""
    srt = str(path) + ".srt"
    with open(srt, "w", encoding="utf-8") as handle:
        handle.write("1\n00:00:00,000 --> 00:00:02,000\nonly words, no picture or sound\n")
    try:
        ffmpeg("-i", srt, "-c:s", "srt", path)
    finally:
        os.remove(srt)


def make_one_frame(path) -> None:
    clip(path, 1.0, audio=False, source="smptebars", extra=("-frames:v", "1"), tag="one_frame")


def make_8k(path) -> None:
    clip(path, 2.0, size="7680x4320", rate=2, source="smptehdbars", tone_hz=350, tag="8k")


def make_above_8k(path) -> None:
    clip(path, 1.0, size="8192x4608", rate=2, source="color=c=navy", audio=False, tag="above_8k")


def make_vfr_1000fps(path) -> None:
    """A 1000 fps source with frames dropped irregularly: frame gaps of 1 to 3 ms."""
    clip(path, 6.0, rate=1000, size="64x48", tone_hz=360, vf="select='not(mod(n\\,3))+not(mod(n\\,7))'",
         extra=("-fps_mode", "vfr"), tag="vfr_1000")


def make_good(seconds: float, tone_hz: int, tag: str):
    def make(path) -> None:
        clip(path, seconds, tone_hz=tone_hz, tag=tag)

    return make


def make_symlink_loop(path) -> None:
    os.symlink(os.path.basename(path), path)


def make_dangling_symlink(path) -> None:
    os.symlink("does_not_exist.mp4", path)


def make_fifo(path) -> None:
    os.mkfifo(path)


def make_unreadable_file(path) -> None:
    clip(path, 3.0, tone_hz=370, tag="unreadable")
    os.chmod(path, 0)


def make_unlistable_dir(path) -> None:
    directory = os.path.dirname(path)
    os.makedirs(directory, exist_ok=True)
    clip(path, 3.0, tone_hz=380, tag="unlistable")
    os.chmod(directory, 0)


def make_truncated_after_first_chunk(path) -> None:
    """70 s of media cut at 88% of its bytes (about 61 s): the decoder reads frames 100 at a time (50 s),
    so the first 30 s chunk is decoded and sent on before the cut is met."""
    clip(path, 70.0, tone_hz=390, tag="late_truncation")
    data = _read(path)
    _write(path, data[: int(len(data) * 0.88)])


# windows_per_chunk the matrix job runs with: 1 is rounded up to the speech encoder's 30 s piece (6 windows).
MATRIX_WINDOWS_PER_CHUNK = 1

CASES: tuple[Case, ...] = (
    Case("zero_bytes", "empty file named .mp4", "zero_bytes.mp4", make_zero_bytes, failed("probe", "ProbeError")),
    Case("truncated", "6 s mp4 cut at 50% of its bytes (header declares 6 s)", "truncated.mp4", make_truncated,
         failed("decode", "DecodeError")),
    Case("text_as_mp4", "plain text renamed .mp4", "text_as_mp4.mp4", make_text_as_mp4, failed("probe", "ProbeError")),
    Case("header_only", "ftyp + moov of a 6 s mp4, no media data", "header_only.mp4", make_header_only,
         failed("decode", "DecodeError")),
    Case("unknown_codec", "h264 mp4 with its sample entry retagged 'zzzz' (no decoder)", "unknown_codec.mp4",
         make_unknown_codec, failed("decode", "DecodeError")),
    Case("no_video_stream", "mp4 holding only a 6 s AAC track", "no_video_stream.mp4", make_no_video_stream,
         indexed(6.0, has_video=False)),
    Case("no_audio_stream", "mp4 holding only a 6 s h264 track", "no_audio_stream.mp4", make_no_audio_stream,
         indexed(6.0, has_audio=False)),
    Case("no_media_streams", "mkv holding only a subtitle track", "no_media_streams.mkv", make_no_media_streams,
         failed("probe", "ProbeError")),
    Case("one_frame", "h264 mp4 of a single frame (0.04 s)", "one_frame.mp4", make_one_frame,
         indexed(0.04, has_audio=False)),
    Case("declares_6h", "5 s of media; mvhd/tkhd/mdhd declare 6 h", "declares_6h.mp4", make_declares_six_hours,
         failed("decode", "DecodeError")),
    Case("res_8k", "7680x4320 h264, 2 s (= DecodeConfig.max_source_pixels: downscaled)", "res_8k.mp4", make_8k,
         indexed(2.0)),
    Case("above_8k", "8192x4608 h264 (> max_source_pixels: refused before decoding)", "above_8k.mp4", make_above_8k,
         failed("probe", "UnsupportedMediaError")),
    Case("vfr_1000fps", "6 s VFR, 1000 fps time base, frame gaps of 1-3 ms", "vfr_1000fps.mp4", make_vfr_1000fps,
         indexed(6.0)),
    Case("non_utf8_name", "valid 3 s clip whose file name is Latin-1 bytes", NON_UTF8_NAME,
         make_good(3.0, 400, "non_utf8"), failed("catalog", "UndecodableNameError")),
    Case("long_name", "valid 3 s clip, 249-byte UTF-8 file name", LONG_NAME_STEM + ".mp4",
         make_good(3.0, 410, "long_name"), indexed(3.0)),
    Case("symlink_loop", "symlink pointing at itself", "symlink_loop.mp4", make_symlink_loop,
         failed("catalog", "SymlinkLoopError")),
    Case("dangling_symlink", "symlink to a missing file", "dangling_symlink.mp4", make_dangling_symlink,
         failed("catalog", "BrokenSymlinkError")),
    Case("fifo", "a named pipe called .mp4", "fifo.mp4", make_fifo, failed("catalog", "NotRegularFileError")),
    Case("unreadable_file", "valid 3 s clip, chmod 000" + (" (root reads it anyway)" if IS_ROOT else ""),
         "unreadable_file.mp4", make_unreadable_file,
         indexed(3.0) if IS_ROOT else failed("catalog", "PermissionError")),
    Case("unlistable_dir", "valid 3 s clip in a chmod 000 directory" + (" (root lists it anyway)" if IS_ROOT else ""),
         "unlistable_dir/clip.mp4", make_unlistable_dir,
         indexed(3.0) if IS_ROOT else failed("catalog", "UnreadableFileError")),
    Case("two_chunks", "valid 35 s clip: two 30 s chunks, encoded as separate elements", "two_chunks.mp4",
         make_good(35.0, 420, "two_chunks"), indexed(35.0)),
    Case("late_truncation", "70 s mp4 cut at 88%: the cut is past the first 30 s chunk", "late_truncation.mp4",
         make_truncated_after_first_chunk, failed("decode", "DecodeError")),
)


def build_archive(archive: Path) -> None:
    """Write every case's input under `archive`."""
    archive.mkdir(parents=True, exist_ok=True)
    for case in CASES:
        case.make(case.path(archive))


def restore_permissions(archive: Path) -> None:
    """Undo the chmod 000 cases (directory first) so the folder can be read and removed."""
    for case in CASES:
        path = case.path(archive)
        for target in (os.path.dirname(path), path):
            if os.path.lexists(target) and not os.path.islink(target):
                mode = os.lstat(target).st_mode
                if stat.S_ISDIR(mode) or stat.S_ISREG(mode):
                    os.chmod(target, 0o755)
