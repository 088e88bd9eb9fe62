"""Broken inputs with ground truth that says how they are broken and what a decoder should raise.

- zero_bytes   (bad_zero_bytes.mp4): an empty file                         -> ProbeError
- not_media    (bad_not_media.mp4):  a text file with a video extension    -> ProbeError
- truncated    (bad_truncated.mp4):  a real faststart mp4 cut at ~50% of its bytes; its header
                                     (moov, at the front) declares the full duration but only
                                     about half the media data is present   -> DecodeError
- header_only  (bad_header_only.mp4): the same mp4's ftyp + moov boxes only, no mdat: the header
                                     declares streams and a duration, no media data follows
                                                                            -> DecodeError
The truncated / header-only records carry what their header declares (codecs, fps, size,
duration_s); their segments are [] because no content can be trusted.
"""

from __future__ import annotations

import os
import struct
import tempfile

from favor_ops.corpus.manifest import sha256_file
from favor_ops.corpus import encode
from favor_ops.corpus.plan import CorpusConfig, VariantSpec, plan_clip

# The real clip that the truncated and header-only files are cut from.
SOURCE_VARIANT = VariantSpec("video", "mp4", "h264", "aac", 30, 320, 240)
SOURCE_DURATION_S = 6.0
TRUNCATE_FRACTION = 0.5
NOT_MEDIA_TEXT = (
    "This is not a video. It is a plain text file that was given a .mp4 name,\n"
    "as happens when an upload or a download goes wrong.\n"
)


def mp4_top_level_boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """(box type, offset, size) of each top-level ISO-BMFF box."""
    boxes, pos = [], 0
    while pos + 8 <= len(data):
        size, kind = struct.unpack(">I4s", data[pos : pos + 8])
        if size == 1:
            size = struct.unpack(">Q", data[pos + 8 : pos + 16])[0]
        elif size == 0:
            size = len(data) - pos
        if size < 8:
            break
        boxes.append((kind, pos, size))
        pos += size
    return boxes


def header_only_bytes(mp4: bytes) -> bytes:
    """ftyp + moov of an mp4 (everything except media data)."""
    keep = [mp4[o : o + s] for kind, o, s in mp4_top_level_boxes(mp4) if kind in (b"ftyp", b"moov")]
    if len(keep) != 2:
        raise ValueError("source mp4 lacks ftyp/moov boxes")
    return b"".join(keep)


def _record(name: str, reason: str, expected_error: str, path: str, declared: bool) -> dict:
    v = SOURCE_VARIANT
    return {
        "file": name, "clip_id": os.path.splitext(name)[0], "kind": "bad", "container": "mp4",
        "video_codec": v.video_codec if declared else None,
        "audio_codec": v.audio_codec if declared else None,
        "fps": v.fps if declared else None, "vfr": False,
        "width": v.width if declared else None, "height": v.height if declared else None,
        "duration_s": SOURCE_DURATION_S if declared else 0.0,
        "has_video": declared, "has_audio": declared, "sha256": sha256_file(path),
        "broken": {"reason": reason, "expected_error": expected_error},
        "segments": [],
    }


def write_bad_inputs(
    out_dir: str, seed: int, cfg: CorpusConfig = CorpusConfig(), enc: encode.EncodeConfig | None = None
) -> list[dict]:
    """Write the four broken files into out_dir; return their manifest records (fixed order)."""
    from favor_ops.corpus.synth import TMP_PREFIX, render_clip

    enc = enc or encode.EncodeConfig()
    records = []
    path = os.path.join(out_dir, "bad_zero_bytes.mp4")
    open(path, "wb").close()
    records.append(_record("bad_zero_bytes.mp4", "zero_bytes", "ProbeError", path, declared=False))

    path = os.path.join(out_dir, "bad_not_media.mp4")
    with open(path, "w", encoding="ascii", newline="\n") as f:
        f.write(NOT_MEDIA_TEXT)
    records.append(_record("bad_not_media.mp4", "not_media", "ProbeError", path, declared=False))

    source = plan_clip(10_000, "bad_source", seed, SOURCE_DURATION_S, SOURCE_DURATION_S, cfg, variant=SOURCE_VARIANT)
    with tempfile.TemporaryDirectory(dir=out_dir, prefix=TMP_PREFIX) as work:
        render_clip(source, work, cfg, enc)
        with open(os.path.join(work, source.file), "rb") as f:
            full = f.read()
    path = os.path.join(out_dir, "bad_truncated.mp4")
    with open(path, "wb") as f:
        f.write(full[: int(len(full) * TRUNCATE_FRACTION)])
    records.append(_record("bad_truncated.mp4", "truncated", "DecodeError", path, declared=True))

    path = os.path.join(out_dir, "bad_header_only.mp4")
    with open(path, "wb") as f:
        f.write(header_only_bytes(full))
    records.append(_record("bad_header_only.mp4", "header_only", "DecodeError", path, declared=True))
    return records
