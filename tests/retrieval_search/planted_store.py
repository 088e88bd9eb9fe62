"""A small real LanceDB store with planted vectors, real media files, and a fake AlignedModel.

Vectors live in D = 8. Directions e0..e3 carry meaning, dims 4..7 are background:
    e0 "red circle"  -> `tokens` of video aa11 windows 0 (cos 1.0) and 1 (cos 0.9)      (av mode)
    e1 "blue square" -> `visual_vec` of video bb22 window 2                                (visual mode)
    e2 "dog bark"    -> `audio_vec` of video cc33 window 0                                 (audio mode)
    e3 "giraffe"     -> `pooled` of video aa11 window 2, transcript "a tall giraffe eats"  (hybrid)
    transcript "zebra stripes" in video cc33 window 1                                      (transcript mode)
Every other stored vector is background: -0.2 on e0..e3 plus random positive dims 4..7, so its cosine
with any planted direction is negative. The neighbour of each planted window has -0.9 on the planted
direction (ranked last), so with k=1 the top span is exactly the planted window(s):
aa11 w2 tokens (e0), aa11 w1 pooled (e3), bb22 w1 visual_vec (e1), cc33 w1 audio_vec (e2).

Only the model edge is faked (FakeAlignedModel: known strings / file names -> planted vectors);
the store, the filters, the decoding of query files and the search are real.
"""

from __future__ import annotations

import datetime as dt
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pyarrow as pa

D = 8
N_QUERY_TOKENS = 4
MODEL_VERSION = "fake-v1"
RUN_ID = "test-run"
VIDEO_A, VIDEO_B, VIDEO_C = "aa11", "bb22", "cc33"

E = np.eye(D, dtype=np.float32)


def unit(x) -> np.ndarray:
    x = np.asarray(x, dtype=np.float32)
    return x / np.linalg.norm(x)


def background(rng: np.random.Generator, push: int | None = None) -> np.ndarray:
    """-0.2 on e0..e3 (-0.9 on e_push) plus random positive dims 4..7, unit norm."""
    v = np.zeros(D, dtype=np.float32)
    v[:4] = -0.2
    if push is not None:
        v[push] = -0.9
    v[4:] = rng.uniform(0.5, 1.0, size=4)
    return unit(v)


TEXT_VECTORS = {
    "red circle": E[0],
    "blue square": E[1],
    "dog bark": E[2],
    "giraffe": E[3],
    "a tall giraffe": E[3],
}
FILE_VECTORS = {  # query file name -> planted direction
    "query_bark.wav": E[2],
    "query_blue.png": E[1],
    "query_red.mp4": E[0],
}


class FakeAlignedModel:
    """The AlignedModel contract with planted outputs (text -> vector, file name -> vector)."""

    embed_dim = D

    def __init__(self):
        self.favor = SimpleNamespace(config=SimpleNamespace(decode_config=lambda: {"fps": 2.0, "image_size": 32}))
        self.calls: list[tuple[str, object]] = []

    def encode_text(self, texts):
        self.calls.append(("text", list(texts)))
        fallback = unit(np.ones(D))
        return np.stack([TEXT_VECTORS.get(t, fallback) for t in texts])  # (B, E)

    def _by_name(self, uri: str) -> np.ndarray:
        return FILE_VECTORS[Path(uri).name]

    def encode_audio_query(self, waveform):
        self.calls.append(("audio", np.asarray(waveform).shape))
        return FILE_VECTORS["query_bark.wav"]

    def encode_image_query(self, frames_rgb):
        self.calls.append(("image", np.asarray(frames_rgb).shape))
        return (FILE_VECTORS["query_blue.png"], None)

    def encode_video_query(self, decoded):
        self.calls.append(("video", decoded.info.uri))
        vector = self._by_name(decoded.info.uri)
        tokens = np.stack([vector, unit(vector + 0.05 * E[5])])  # (2, E) query tokens
        return {"vector": vector, "tokens": tokens}


def _ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def make_media(directory: Path) -> dict[str, Path]:
    """A 6 s 160x120 H.264+AAC mp4 (stored video), and the three query files."""
    directory.mkdir(parents=True, exist_ok=True)
    video = directory / "archive_a.mp4"
    _ffmpeg("-f", "lavfi", "-i", "testsrc=s=160x120:r=10:d=6", "-f", "lavfi", "-i", "sine=f=440:r=16000:d=6",
            "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", "-shortest", str(video))
    wav = directory / "query_bark.wav"
    _ffmpeg("-f", "lavfi", "-i", "sine=f=880:r=16000:d=1", str(wav))
    png = directory / "query_blue.png"
    _ffmpeg("-f", "lavfi", "-i", "color=c=blue:s=64x48:d=1", "-frames:v", "1", str(png))
    query_video = directory / "query_red.mp4"
    _ffmpeg("-f", "lavfi", "-i", "color=c=red:s=64x48:r=10:d=1", "-c:v", "libx264", "-preset", "ultrafast",
            "-pix_fmt", "yuv420p", str(query_video))
    return {"video": video, "wav": wav, "png": png, "query_video": query_video}


def planted_rows(video_a_uri: str) -> tuple[list[dict], list[dict]]:
    rng = np.random.default_rng(7)
    videos = [
        dict(video_id=VIDEO_A, uri=video_a_uri, duration_s=6.0, fps=2.0, has_audio=True, has_video=True, n_windows=3,
             indexed_at=dt.datetime(2024, 5, 1, tzinfo=dt.timezone.utc)),
        dict(video_id=VIDEO_B, uri="/archive/cats/b.mp4", duration_s=30.0, fps=2.0, has_audio=False, has_video=True,
             n_windows=3, indexed_at=dt.datetime(2024, 6, 1, tzinfo=dt.timezone.utc)),
        dict(video_id=VIDEO_C, uri="s3://bucket/dogs/c.webm", duration_s=8.0, fps=2.0, has_audio=True, has_video=True,
             n_windows=3, indexed_at=dt.datetime(2024, 7, 1, tzinfo=dt.timezone.utc)),
    ]
    for row in videos:
        row.update(model_version=MODEL_VERSION, status="indexed", run_id=RUN_ID)
    windows = []
    spans = {VIDEO_A: [(0.0, 2.0), (2.0, 4.0), (4.0, 6.0)], VIDEO_B: [(0.0, 10.0), (10.0, 20.0), (20.0, 30.0)],
             VIDEO_C: [(0.0, 3.0), (3.0, 6.0), (6.0, 8.0)]}
    for video_id, video_spans in spans.items():
        for idx, (t0, t1) in enumerate(video_spans):
            key = (video_id, idx)
            tokens = np.stack([background(rng, 0 if key == (VIDEO_A, 2) else None) for _ in range(N_QUERY_TOKENS)])
            windows.append(dict(
                video_id=video_id, window_idx=idx, t_start=t0, t_end=t1, tokens=tokens,  # tokens (Q, D)
                pooled=background(rng, 3 if key == (VIDEO_A, 1) else None),
                audio_vec=background(rng, 2 if key == (VIDEO_C, 1) else None),
                visual_vec=background(rng, 1 if key == (VIDEO_B, 1) else None),
                has_audio=video_id != VIDEO_B, has_video=True, transcript=f"plain words {video_id} {idx}",
                model_version=MODEL_VERSION))  # fmt: skip
    by_key = {(w["video_id"], w["window_idx"]): w for w in windows}
    by_key[(VIDEO_A, 0)]["tokens"][2] = E[0]
    by_key[(VIDEO_A, 1)]["tokens"][0] = unit(0.9 * E[0] + np.sqrt(1 - 0.81) * E[4])
    by_key[(VIDEO_B, 2)]["visual_vec"] = E[1]
    by_key[(VIDEO_C, 0)]["audio_vec"] = E[2]
    by_key[(VIDEO_A, 2)]["pooled"] = E[3]
    by_key[(VIDEO_A, 2)]["transcript"] = "a tall giraffe eats leaves"
    by_key[(VIDEO_C, 1)]["transcript"] = "zebra stripes in the sun"
    for w in windows:
        w["tokens"] = [np.asarray(t, dtype=np.float32) for t in w["tokens"]]
    return videos, windows


def build_store(db_dir: Path, video_a_uri: str):
    """Write the planted rows through shards + commit_run, then the store's own indexes (FTS here)."""
    from favor_ops.store.commit import commit_run
    from favor_ops.store.feature_store import FeatureStore
    from favor_ops.store.maintenance import ensure_indexes
    from favor_ops.store.shards import write_shard

    store = FeatureStore.open(str(db_dir), dim=D, n_query_tokens=N_QUERY_TOKENS)
    store.ensure_tables()
    videos, windows = planted_rows(video_a_uri)
    write_shard(str(db_dir), RUN_ID, "windows", pa.Table.from_pylist(windows, schema=store.schema("windows")))
    write_shard(str(db_dir), RUN_ID, "videos", pa.Table.from_pylist(videos, schema=store.schema("videos")))
    commit_run(store, RUN_ID)
    ensure_indexes(store)
    return store
