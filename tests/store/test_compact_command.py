"""`favor store compact --db DB --keep-versions N`: compaction + version pruning keeps search results intact.

The store is the planted store of tests/retrieval_search, committed in three runs (one video each) so that
every table has several Lance versions and `windows` several small fragments, then the FTS index. Commits
are spaced by VERSION_GAP_S: pruning is by age, and versions committed closer than
maintenance.MIN_VERSION_GAP_S are kept or pruned together.
"""

from __future__ import annotations

import datetime as dt
import json
import time

import pyarrow as pa
import pytest

from favor_ops.retrieval.query_encoder import AlignedQueryEncoder
from favor_ops.retrieval.search import SearchRequest, hits_as_dicts, search
from favor_ops.store.commit import CommitConfig, commit_run
from favor_ops.store.feature_store import FeatureStore
from favor_ops.store.maintenance import MIN_VERSION_GAP_S, cleanup_age_keeping, compact_store, ensure_indexes
from favor_ops.store.schema import VIDEOS, WINDOWS
from favor_ops.store.shards import write_shard
from pipelines.cli.main import main
from tests.retrieval_search.planted_store import D, N_QUERY_TOKENS, FakeAlignedModel, build_store, planted_rows

VERSION_GAP_S = MIN_VERSION_GAP_S + 0.05

REQUESTS = [
    SearchRequest(text="red circle", mode="av", k=3),
    SearchRequest(text="blue square", mode="visual", k=3),
    SearchRequest(text="dog bark", mode="audio", k=3),
    SearchRequest(text="zebra", mode="transcript", k=3),
    SearchRequest(text="giraffe", mode="hybrid", k=3),
    SearchRequest(text="red circle", mode="av", k=5, where=("duration_s>=6",)),
]


@pytest.fixture()
def versioned_store(tmp_path):
    db = tmp_path / "store"
    store = FeatureStore.open(str(db), dim=D, n_query_tokens=N_QUERY_TOKENS)
    store.ensure_tables()
    videos, windows = planted_rows("/archive/a.mp4")
    for i, video in enumerate(videos):  # one run per video: several versions, several fragments
        time.sleep(VERSION_GAP_S)
        run_id = f"run-{i}"
        mine = [w for w in windows if w["video_id"] == video["video_id"]]
        write_shard(str(db), run_id, WINDOWS, pa.Table.from_pylist(mine, schema=store.schema(WINDOWS)))
        write_shard(str(db), run_id, VIDEOS, pa.Table.from_pylist([video], schema=store.schema(VIDEOS)))
        commit_run(store, run_id, CommitConfig(optimize_after=False))  # small fragments left to compact
    time.sleep(VERSION_GAP_S)
    ensure_indexes(store)
    time.sleep(VERSION_GAP_S)
    return store


@pytest.fixture(scope="module")
def plain_store(tmp_path_factory):
    """The planted store as the index job commits it (versions close together): for the checks that do not prune."""
    return build_store(tmp_path_factory.mktemp("plain") / "store", "/archive/a.mp4")


def _results(store) -> list:
    encoder = AlignedQueryEncoder(FakeAlignedModel())
    return [hits_as_dicts(search(store, encoder, request)) for request in REQUESTS]


def _same(before: list, after: list) -> None:
    assert len(before) == len(after)
    for hits_before, hits_after in zip(before, after):
        assert [{k: v for k, v in h.items() if k != "score"} for h in hits_before] == \
               [{k: v for k, v in h.items() if k != "score"} for h in hits_after]
        assert [h["score"] for h in hits_after] == pytest.approx([h["score"] for h in hits_before], rel=1e-5, abs=1e-6)


def _versions(store, name: str) -> list[int]:
    table = store.table(name)
    table.checkout_latest()
    return sorted(v["version"] for v in table.list_versions())


def test_compact_keeps_search_results_and_prunes_versions(versioned_store):
    store = versioned_store
    before = _results(store)
    assert all(before), "every planted query finds something"
    versions_before = {name: _versions(store, name) for name in (VIDEOS, WINDOWS)}
    assert len(versions_before[WINDOWS]) >= 5 and len(versions_before[VIDEOS]) >= 4

    report = compact_store(store, 3)
    by_table = {t.table: t for t in report.tables}
    assert set(by_table) >= {VIDEOS, WINDOWS}
    for name in (VIDEOS, WINDOWS):
        entry = by_table[name]
        kept = _versions(store, name)
        assert entry.versions_before == len(versions_before[name])
        assert entry.versions_after == len(kept) == 3  # the newest 3, as asked
        assert entry.kept_versions == kept and kept[-1] == entry.latest_after
        assert entry.old_versions_removed == entry.versions_before + (entry.latest_after - entry.latest_before) - len(kept)
        assert entry.bytes_freed > 0
        # every kept version stays reachable by time travel; the newest 3 are exactly the ones kept
        assert kept == list(range(entry.latest_after - len(kept) + 1, entry.latest_after + 1))
        table = store.table(name)
        for version in kept:
            table.checkout(version)
            assert table.count_rows() == (3 if name == VIDEOS else 9)
        table.checkout_latest()
    assert by_table[WINDOWS].fragments_removed >= 3 and by_table[WINDOWS].fragments_added == 1

    _same(before, _results(store))  # the same store object (cached table handles)
    _same(before, _results(FeatureStore.open(store.uri)))  # a fresh reader

    # unchanged store: a second compaction changes nothing
    again = compact_store(store.uri, 3)
    assert {t.table: t.kept_versions for t in again.tables} == {t.table: t.kept_versions for t in report.tables}
    assert again.bytes_freed == 0


def test_cli_compact_json_to_one_version(versioned_store, capsys):
    store = versioned_store
    before = _results(store)
    assert main(["store", "compact", "--db", store.uri, "--keep-versions", "1", "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["keep_versions"] == 1 and out["db"] == store.uri and out["bytes_freed"] > 0
    tables = {t["table"]: t for t in out["tables"]}
    for name in (VIDEOS, WINDOWS):
        assert tables[name]["versions_after"] == 1 < tables[name]["versions_before"]
        assert _versions(store, name) == [tables[name]["latest_after"]]
    _same(before, _results(FeatureStore.open(store.uri)))


def test_cli_compact_table_output(plain_store, capsys):
    latest = _versions(plain_store, WINDOWS)[-1]
    assert main(["store", "compact", "--db", plain_store.uri, "--keep-versions", "2"]) == 0
    out = capsys.readouterr().out
    assert out.splitlines()[0].split() == ["table", "versions", "latest", "freed"]
    assert [line.split()[0] for line in out.splitlines()[1:5]] == ["videos", "windows", "failures", "answers"]
    assert out.splitlines()[-1].startswith("kept the newest 2 version(s) per table; freed ")
    assert _versions(plain_store, WINDOWS)[-1] >= latest


@pytest.mark.parametrize("value", ["0", "-3", "abc", "1.5"])
def test_bad_keep_versions_is_one_line_and_exit_2(plain_store, capsys, value):
    versions = {name: _versions(plain_store, name) for name in (VIDEOS, WINDOWS)}
    assert main(["store", "compact", "--db", plain_store.uri, f"--keep-versions={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("favor: error: --keep-versions must be") and "\n" not in err
    assert {name: _versions(plain_store, name) for name in (VIDEOS, WINDOWS)} == versions  # untouched


def test_missing_store_is_one_line_and_exit_2(tmp_path, capsys):
    assert main(["store", "compact", "--db", str(tmp_path / "nope"), "--keep-versions", "2"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("favor: error: no store at") and "\n" not in err
    assert not (tmp_path / "nope").exists()


def test_library_refuses_keep_versions_below_one(tmp_path):
    for bad in (0, -1, True, 2.0):
        with pytest.raises(ValueError, match="keep-versions must be"):
            compact_store(str(tmp_path), bad)


def test_cleanup_age_keeps_versions_too_close_to_tell_apart():
    now = dt.datetime(2024, 1, 1, 12, 0, 10)
    at = lambda s: now - dt.timedelta(seconds=s)  # noqa: E731
    # version 4 was committed 1 ms after version 3
    rows = [{"version": v, "timestamp": at(s)} for v, s in [(1, 9.0), (2, 6.0), (3, 3.0), (4, 2.999), (5, 0.0)]]
    assert cleanup_age_keeping(rows, 5, now) is None
    assert cleanup_age_keeping(rows, 1, now) == dt.timedelta(0)
    # keep 3 -> 3, 4, 5: cutoff half way between 2 (6 s old) and 3 (3 s old), at most 1 s before 3
    assert cleanup_age_keeping(rows, 3, now) == dt.timedelta(seconds=4.0)
    # keep 2 -> 4, 5; but 3 is 1 ms older than 4: both kept (never fewer than asked)
    assert cleanup_age_keeping(rows, 2, now) == dt.timedelta(seconds=4.0)
