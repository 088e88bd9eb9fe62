"""Searches while an index job commits into the same store.

A store holds a first run (3 clips); a second run adds 3 more while a thread searches in a bounded
loop (`favor_ops.retrieval.search.search_encoded`, the real search path after the query encoder, on its
own FeatureStore handle as a server process would have). The commit writes `windows`, then
`failures`, then `videos` (favor_ops/store/commit.py); a hook on that last write holds the commit in the
gap until the searcher has searched there too, aiming straight at a window whose video is not listed
yet. Every search must succeed, return exactly k spans, and every hit must belong to a video listed in
`videos` with its uri, at a window span the `windows` table holds.
"""

from __future__ import annotations

import threading
import time

import numpy as np

from favor_ops.retrieval.query_encoder import QueryVectors
from favor_ops.retrieval.search import SearchRequest, search_encoded
from favor_ops.store import commit as commit_module
from favor_ops.store.feature_store import FeatureStore
from pipelines.index.job import IndexJobConfig, run_index_job
from tests.reliability.cases import clip

K = 3
MAX_SEARCHES = 400  # the loop's bound
GAP_SEARCHES = 5  # searches the commit waits for between its windows and videos writes
WAIT_S = 120.0


def _index(archive, db):
    return run_index_job(IndexJobConfig(source=str(archive), db=str(db), model="tiny", running_mode="in_memory"))


def _unit(x: np.ndarray) -> np.ndarray:
    return (x / np.linalg.norm(x, axis=-1, keepdims=True)).astype(np.float32)


class Searcher(threading.Thread):
    """Searches until stopped (at most MAX_SEARCHES); records every error and inconsistency."""

    def __init__(self, db, dim: int, seed: int = 0):
        super().__init__(daemon=True)
        self.store = FeatureStore.open(str(db))
        self.rng = np.random.default_rng(seed)
        self.dim = dim
        self.stop = threading.Event()
        self.in_gap = threading.Event()  # set by the commit hook: windows written, videos not yet
        self.gap_done = threading.Event()
        self.searches = 0
        self.gap_searches = 0
        self.aimed_at_unlisted = 0
        self.problems: list[str] = []

    def _query(self, aim_unlisted: bool) -> QueryVectors:
        if aim_unlisted:  # the tokens of a committed window whose video has no videos row yet
            listed = set(self.store.videos_df()["video_id"])
            windows = self.store.table("windows").search().select(["video_id", "tokens"]).limit(None).to_pandas()
            unlisted = windows[~windows["video_id"].isin(listed)]
            if len(unlisted):
                self.aimed_at_unlisted += 1
                tokens = _unit(np.stack(unlisted.iloc[0]["tokens"]))  # (Q, D)
                return QueryVectors(vector=_unit(tokens.mean(0)), tokens=tokens)
        tokens = _unit(self.rng.normal(size=(4, self.dim)))
        return QueryVectors(vector=_unit(tokens.mean(0)), tokens=tokens)

    def _check(self, hits) -> None:
        if len(hits) != K:
            self.problems.append(f"search {self.searches}: {len(hits)} hits, expected {K}")
        videos = self.store.videos_df()  # read after the search: rows only get added in this test
        uris = dict(zip(videos["video_id"], videos["uri"]))
        for hit in hits:
            if hit.video_id not in uris or not hit.uri or hit.uri != uris[hit.video_id]:
                self.problems.append(f"search {self.searches}: hit of video {hit.video_id} (uri {hit.uri!r}) "
                                     "that videos does not list")
                continue
            spans = self.store.windows_for_video(hit.video_id)
            if not (np.isclose(spans["t_start"], hit.t_start).any() and np.isclose(spans["t_end"], hit.t_end).any()):
                self.problems.append(f"search {self.searches}: span {hit.t_start}-{hit.t_end} not in windows")

    def run(self) -> None:
        while not self.stop.is_set() and self.searches < MAX_SEARCHES:
            in_gap = self.in_gap.is_set() and not self.gap_done.is_set()
            try:
                query = self._query(aim_unlisted=in_gap)
                hits = search_encoded(self.store, SearchRequest(text="probe", mode="av", k=K), query)
                self._check(hits)
            except Exception as err:  # noqa: BLE001 - every failure of a search is a finding
                self.problems.append(f"search {self.searches}: {type(err).__name__}: {err}")
            self.searches += 1
            if in_gap:
                self.gap_searches += 1
                if self.gap_searches >= GAP_SEARCHES:
                    self.gap_done.set()
            time.sleep(0.005)


def test_searches_during_a_commit_see_listed_videos_only(tmp_path, monkeypatch):
    first, second, db = tmp_path / "first", tmp_path / "second", tmp_path / "db"
    for archive, names in ((first, ("a", "b", "c")), (second, ("d", "e", "f"))):
        archive.mkdir()
        for i, name in enumerate(names):
            clip(archive / f"{name}.mp4", 6.0, tone_hz=600 + 40 * i + (200 if archive == second else 0),
                 tag=f"concurrent_{name}")
    assert _index(first, db).indexed == 3
    store = FeatureStore.open(str(db))
    searcher = Searcher(db, dim=store.shape.dim)

    real_merge = commit_module._merge

    def merge_holding_the_gap(target, name, batch, delete_where, write):
        if name == "videos" and batch is not None and batch.num_rows:
            searcher.in_gap.set()  # windows (and failures) of this run are committed; its videos are not
            assert searcher.gap_done.wait(WAIT_S), "the searcher did not search inside the commit"
        return real_merge(target, name, batch, delete_where, write)

    monkeypatch.setattr(commit_module, "_merge", merge_holding_the_gap)
    for name in ("d", "e", "f"):  # the second run indexes the new files next to the first run's
        (second / f"{name}.mp4").rename(first / f"{name}.mp4")
    searcher.start()
    try:
        summary = _index(first, db)
    finally:
        searcher.stop.set()
        searcher.join(timeout=WAIT_S)
    assert not searcher.is_alive()

    assert summary.indexed == 3 and summary.failed == 0
    assert searcher.gap_searches >= GAP_SEARCHES and searcher.aimed_at_unlisted >= 1
    assert searcher.searches >= GAP_SEARCHES + 1
    assert searcher.problems == []
    assert FeatureStore.open(str(db)).counts()["videos"] == 6
