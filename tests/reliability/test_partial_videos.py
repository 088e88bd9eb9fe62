"""What reaches the staging area for a video whose chunks were encoded separately (pipelines/index/pipeline.py
`assemble_video_row`), and how the encoder handles an out-of-memory batch (model_handler.py).

The commit takes a video's windows from the latest shard holding that video, so the job must stage all
windows of a video in one element; and a video that failed part-way must stage none. The OOM test
fakes only the model edge (`encode_media_chunk_batch`): a batch holding the poisoned chunk raises
torch's OutOfMemoryError.
"""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest

from pipelines.index import chunk_encoder
from pipelines.index.elements import Failure, VideoHeader, WindowRows
from pipelines.index.pipeline import assemble_video_row
from pipelines.index.model_handler import FavorWindowModelHandler

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


def test_a_video_s_chunks_are_staged_as_one_windows_element_in_time_order():
    staged = _assemble([_rows(1, 6, 1), _rows(0, 0, 6)])  # chunks arrive in any order
    assert len(staged["windows"]) == 1  # one element -> one shard
    assert [r["window_idx"] for r in staged["windows"][0]] == list(range(7))
    assert [(r["status"], r["n_windows"]) for r in staged["videos"][0]] == [("indexed", 7)]


@pytest.mark.parametrize("stage", ["decode", "encode"])
def test_a_video_that_failed_after_some_chunks_stages_no_windows(stage):
    staged = _assemble([_rows(0, 0, 6)], failures=[Failure("/a/v.mp4", "vid", stage, "E", "boom")])
    assert "windows" not in staged
    if stage == "decode":  # the file itself is bad: a failed videos row, so the catalog skips it next time
        assert [(r["status"], r["n_windows"]) for r in staged["videos"][0]] == [("failed", 0)]
    else:  # a model fault: no row, the next run retries the file
        assert "videos" not in staged


def test_a_window_count_that_does_not_add_up_stages_no_windows():
    staged = _assemble([_rows(0, 0, 6)])  # chunk 1 never arrived
    assert "windows" not in staged
    assert [(f.stage, f.error_type) for f in staged["failures_out"]] == [("window", "WindowCountMismatch")]


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
