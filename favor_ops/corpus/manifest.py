"""manifest.jsonl: one JSON record per corpus file, the ground truth of the synthetic corpus.

Record schema (key order fixed so the file is byte-identical across runs):
  file, clip_id, kind ("video" | "audio_only" | "no_audio" | "still_image" | "bad"), container (file
  extension), video_codec / audio_codec (ffprobe codec_name or null), fps (average frames per second,
  null without video and for still images), vfr, width, height (null without video), duration_s
  (0.0 for a still image), has_video, has_audio, sha256 (of the written file), broken (null, or
  {"reason", "expected_error"} for bad inputs), segments (see synth.py; [] for bad inputs).
Times are absolute seconds from the start of the file.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Iterable

MANIFEST_NAME = "manifest.jsonl"


def sha256_file(path: str | os.PathLike, chunk_bytes: int = 1 << 20) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while block := f.read(chunk_bytes):
            h.update(block)
    return h.hexdigest()


def manifest_line(record: dict) -> str:
    """One record as one JSON line (no trailing newline); key order preserved."""
    return json.dumps(record, ensure_ascii=True, separators=(", ", ": "), allow_nan=False)


def write_manifest(out_dir: str | os.PathLike, records: Iterable[dict]) -> str:
    """Write out_dir/manifest.jsonl atomically; return its path."""
    path = os.path.join(os.fspath(out_dir), MANIFEST_NAME)
    tmp = path + ".part"
    with open(tmp, "w", encoding="utf-8", newline="\n") as f:
        for record in records:
            f.write(manifest_line(record) + "\n")
    os.replace(tmp, path)
    return path


def read_manifest(dir_or_file: str | os.PathLike) -> list[dict]:
    """Records of a corpus: pass the corpus directory (or the manifest.jsonl path itself)."""
    path = os.fspath(dir_or_file)
    if os.path.isdir(path):
        path = os.path.join(path, MANIFEST_NAME)
    if not os.path.exists(path):
        raise FileNotFoundError(f"no corpus manifest at {path}")
    with open(path, encoding="utf-8") as f:
        return [json.loads(line) for line in f if line.strip()]
