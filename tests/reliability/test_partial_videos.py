"""What the job stages for a video whose chunks were encoded separately (pipelines/index/pipeline.py
`assemble_video_row`, pipelines/index/store_transform.py `StageWindowsFn`), and how the encoder handles an
out-of-memory batch (model_handler.py).

Each chunk's windows are staged by the worker that encoded it; the per-video assembly sees only small
EncodedChunk records and lists a video as indexed when its chunks add up to its window count. The commit
writes the staged windows of indexed videos only, so a video that failed part-way lists none. The OOM test
fakes only the model edge (`encode_media_chunk_batch`): a batch holding the poisoned chunk raises torch's
OutOfMemoryError.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
from apache_beam.utils.windowed_value import WindowedValue

from favor_ops.store import shards
from favor_ops.store.feature_store import FeatureStore
from pipelines.index import chunk_encoder
from pipelines.index.elements import EncodedChunk, Failure, VideoHeader, WindowRows
from pipelines.index.model_handler import FavorWindowModelHandler
from pipelines.index.pipeline import assemble_video_row
from pipelines.index.store_transform import StageWindowsFn

D, Q = 4, 2


def _rows(chunk_idx: int, first: int, n: int) -> WindowRows:
    idx = np.arange(first, first + n, dtype=np.int32)
    vec = np.ones((n, D), np.float32)
    return WindowRows("vid", chunk_idx, idx, idx * 5.0, idx * 5.0 + 5.0, np.ones((n, Q, D), np.float32), vec, vec, vec,
                      True, True)


def _assemble(encoded, failures=()):
    header = VideoHeader("vid", "/a/v.mp4", 35.0, 2.0, True, True, 70, 7)
    out = list(assemble_video_row(("vid", {"headers": [header], "windows": encoded, "failures": list(failures)}),
                                  "run", "m1"))
    staged = {}
    for item in out:
        if isinstance(item, tuple):
            staged.setdefault(item[0], []).append(item[1])
        else:  # TaggedOutput(failures, Failure)
            staged.setdefault("failures_out", []).append(item.value)
    return staged


def test_a_video_whose_chunks_add_up_is_listed_indexed_and_stages_no_windows_itself():
    staged = _assemble([EncodedChunk("vid", 1, 1), EncodedChunk("vid", 0, 6)])  # chunks arrive in any order
    assert set(staged) == {"videos"}  # the windows were staged by the encoding worker, not here
    assert [(r["status"], r["n_windows"]) for r in staged["videos"][0]] == [("indexed", 7)]


@pytest.mark.parametrize("stage", ["decode", "encode"])
def test_a_video_that_failed_after_some_chunks_is_not_listed_indexed(stage):
    staged = _assemble([EncodedChunk("vid", 0, 6)], failures=[Failure("/a/v.mp4", "vid", stage, "E", "boom")])
    if stage == "decode":  # the file itself is bad: a failed videos row, so the catalog skips it next time
        assert [(r["status"], r["n_windows"]) for r in staged["videos"][0]] == [("failed", 0)]
    else:  # a model fault: no row, the next run retries the file
        assert "videos" not in staged


def test_a_window_count_that_does_not_add_up_is_a_failure_and_no_row():
    staged = _assemble([EncodedChunk("vid", 0, 6)])  # chunk 1 never arrived
    assert "videos" not in staged
    assert [(f.stage, f.error_type, f.message) for f in staged["failures_out"]] == [
        ("window", "WindowCountMismatch", "encoded 6 of 7 windows")]


def test_stage_windows_writes_the_chunks_then_says_so(tmp_path):
    """A bundle's chunks are on disk before any EncodedChunk leaves it, tokens and all."""
    store = FeatureStore.open(str(tmp_path / "db"), dim=D, n_query_tokens=Q)
    store.ensure_tables()
    fn = StageWindowsFn(store.uri, "run1", {"windows": store.schema("windows")}, "m1")
    fn.start_bundle()
    first, second = _rows(0, 0, 6), _rows(1, 6, 1)
    second.tokens[0, 1, 2] = 7.0
    assert fn.process(first) is None and fn.process(second) is None  # no output per chunk
    assert shards.list_shards(store.uri, "run1", "windows") == []  # nothing said before the bundle ends
    done = list(fn.finish_bundle())
    assert all(isinstance(v, WindowedValue) for v in done)
    assert [v.value for v in done] == [EncodedChunk("vid", 0, 6), EncodedChunk("vid", 1, 1)]
    (path,) = shards.list_shards(store.uri, "run1", "windows")
    shard = shards.read_shard(path, db_uri=store.uri)
    assert shard.column("window_idx").to_pylist() == list(range(7))
    assert set(shard.column("model_version").to_pylist()) == {"m1"}
    tokens = np.array(shard.column("tokens").to_pylist()[6], np.float32)  # (Q, D)
    assert tokens.shape == (Q, D) and tokens[1, 2] == 7.0 and tokens.sum() == 7.0 + Q * D - 1


def test_an_out_of_memory_batch_is_halved_until_the_bad_chunk_stands_alone(monkeypatch):
    import torch

    chunks = [SimpleNamespace(uri=f"/a/{i}.mp4", video_id=f"v{i}", chunk_idx=0) for i in range(4)]
    poisoned = chunks[2]
    calls = []

    def encode(model, batch, **kwargs):
        calls.append([c.uri for c in batch])
        if poisoned in batch:
            raise torch.OutOfMemoryError("CUDA out of memory. Tried to allocate 8.00 GiB")
        return [f"encoded {c.uri}" for c in batch]

    monkeypatch.setattr(chunk_encoder, "encode_media_chunk_batch", encode)
    handler = FavorWindowModelHandler("tiny", max_batch_chunks=4)
    results = [r.inference for r in handler.run_inference(chunks, model=object())]

    assert calls == [
        ["/a/0.mp4", "/a/1.mp4", "/a/2.mp4", "/a/3.mp4"],  # the whole batch: OOM
        ["/a/0.mp4", "/a/1.mp4"],  # first half encodes
        ["/a/2.mp4", "/a/3.mp4"],  # second half: OOM again
        ["/a/2.mp4"],  # alone: OOM -> dead-lettered
        ["/a/3.mp4"],
    ]
    assert results[:2] == ["encoded /a/0.mp4", "encoded /a/1.mp4"] and results[3] == "encoded /a/3.mp4"
    failure = results[2]
    assert isinstance(failure, Failure)
    assert (failure.uri, failure.video_id, failure.stage, failure.error_type) == ("/a/2.mp4", "v2", "encode",
                                                                                   "OutOfMemoryError")
    assert failure.message.startswith("out of memory: CUDA out of memory")
