import datetime as dt
import hashlib
import os

import fsspec
import pytest

from favor_ops.store.catalog import (
    CatalogConfig,
    CatalogEntry,
    build_catalog,
    content_sha256,
    plan_indexing,
    scan_archive,
    stale_video_ids,
)
from favor_ops.store.feature_store import FeatureStore
from favor_ops.store.schema import VIDEOS, conform

AT = dt.datetime(2026, 3, 1, tzinfo=dt.timezone.utc)


def sha16(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()[:16]


@pytest.fixture
def archive(tmp_path):
    root = tmp_path / "archive"
    (root / "sub" / "deeper").mkdir(parents=True)
    (root / ".hidden").mkdir()
    (root / "a.mp4").write_bytes(b"AAAA" * 1000)
    (root / "sub" / "b.WEBM").write_bytes(b"BBBB")
    (root / "sub" / "deeper" / "c.wav").write_bytes(b"CCCC")
    (root / "sub" / "copy_of_a.mp4").write_bytes(b"AAAA" * 1000)
    (root / "notes.txt").write_text("not media")
    (root / "manifest.jsonl").write_text("{}")
    (root / ".hidden" / "h.mp4").write_bytes(b"HHHH")
    (root / ".dot.mp4").write_bytes(b"DDDD")
    return root


def test_lists_media_recursively_and_hashes_stably(archive):
    cfg = CatalogConfig(hash_block_bytes=7)  # odd block size: the streamed hash must not depend on it
    entries, failures = scan_archive(str(archive), cfg)
    assert failures == []
    by_uri = {e.uri: e for e in entries}
    assert sorted(by_uri) == sorted(str(archive / p) for p in ("a.mp4", "sub/b.WEBM", "sub/copy_of_a.mp4", "sub/deeper/c.wav"))
    a = by_uri[str(archive / "a.mp4")]
    assert a.video_id == sha16(b"AAAA" * 1000) and len(a.video_id) == 16
    assert a.size_bytes == 4000
    assert a.mtime == pytest.approx(os.stat(archive / "a.mp4").st_mtime)
    assert by_uri[str(archive / "sub" / "copy_of_a.mp4")].video_id == a.video_id  # content, not name
    again, _ = scan_archive(str(archive), CatalogConfig(hash_block_bytes=1 << 20))
    assert [(e.uri, e.video_id) for e in again] == [(e.uri, e.video_id) for e in entries]
    assert scan_archive(str(archive), CatalogConfig(video_id_hex_chars=20))[0][0].video_id == hashlib.sha256(
        b"AAAA" * 1000).hexdigest()[:20]


def test_file_uri_and_memory_filesystem(archive):
    entries, _ = scan_archive(f"file://{archive}")
    assert any(e.uri == f"file://{archive}/a.mp4" for e in entries)
    fs = fsspec.filesystem("memory")
    fs.pipe("/favor-cat/x/clip.mp4", b"mem-bytes")
    fs.pipe("/favor-cat/.skip.mp4", b"zz")
    mem, failures = scan_archive("memory://favor-cat")
    assert [(e.uri, e.video_id, e.size_bytes) for e in mem] == [("memory:///favor-cat/x/clip.mp4", sha16(b"mem-bytes"), 9)]
    assert failures == []
    assert content_sha256(fs, "/favor-cat/x/clip.mp4", 2) == hashlib.sha256(b"mem-bytes").hexdigest()


def test_skips_the_store_directory_inside_the_archive(archive):
    store = FeatureStore.open(str(archive / "favor_db"), dim=8, n_query_tokens=4)
    store.ensure_tables()
    (archive / "favor_db" / "_staging").mkdir()
    (archive / "favor_db" / "_staging" / "stray.mp4").write_bytes(b"S")
    result = build_catalog(str(archive), "m1", store)
    assert not any("favor_db" in e.uri for e in result.entries)
    assert len(result.entries) == 4


def _videos(store, rows):
    store.table(VIDEOS).add(conform(rows, store.schema(VIDEOS), table=VIDEOS))


def _row(vid, uri, mv, status):
    return {"video_id": vid, "uri": uri, "duration_s": 1.0, "fps": 2.0, "has_audio": True, "has_video": True,
            "n_windows": 1, "model_version": mv, "indexed_at": AT, "status": status, "run_id": "r0"}


def test_skips_indexed_for_same_model_version_only(archive, tmp_path):
    store = FeatureStore.open(str(tmp_path / "db"), dim=8, n_query_tokens=4)
    _videos(store, [_row(sha16(b"AAAA" * 1000), str(archive / "a.mp4"), "m1", "indexed"),
                    _row(sha16(b"BBBB"), str(archive / "sub" / "b.WEBM"), "m1", "failed")])
    same = build_catalog(str(archive), "m1", store)
    assert [e.uri for e in same.to_index] == [str(archive / "sub" / "deeper" / "c.wav")]
    assert sorted(e.uri for e in same.skipped) == sorted(
        str(archive / p) for p in ("a.mp4", "sub/b.WEBM", "sub/copy_of_a.mp4"))
    retry = build_catalog(str(archive), "m1", store, CatalogConfig(retry_failed=True))
    assert sorted(e.uri for e in retry.to_index) == sorted(str(archive / p) for p in ("sub/b.WEBM", "sub/deeper/c.wav"))
    new_model = build_catalog(str(archive), "m2", store)
    # everything for the new model; identical content at two uris is indexed once
    assert sorted(e.uri for e in new_model.to_index) == sorted(
        str(archive / p) for p in ("a.mp4", "sub/b.WEBM", "sub/deeper/c.wav"))
    assert [e.uri for e in new_model.skipped] == [str(archive / "sub" / "copy_of_a.mp4")]
    # a changed file gets a new id and is indexed again
    (archive / "a.mp4").write_bytes(b"changed")
    changed = build_catalog(str(archive), "m1", store)
    assert str(archive / "a.mp4") in [e.uri for e in changed.to_index]


def test_plan_indexing_uses_video_states_mapping():
    entries = [CatalogEntry("/x/1.mp4", "id1", 1, 0.0), CatalogEntry("/x/2.mp4", "id2", 1, 0.0)]
    states = {"id1": ("/x/1.mp4", "m1", "indexed"), "id2": ("/x/2.mp4", "m0", "indexed")}
    to_index, skipped = plan_indexing(entries, states, "m1")
    assert [e.video_id for e in to_index] == ["id2"] and [e.video_id for e in skipped] == ["id1"]


def test_stale_ids_are_stored_videos_whose_content_left_their_uri_and_the_archive():
    states = {
        "a": ("/x/1.mp4", "m1", "indexed"),  # /x/1.mp4 now holds b's content, and a is listed nowhere: stale
        "b": ("/x/2.mp4", "m1", "indexed"),  # still at its uri
        "c": ("/x/3.mp4", "m1", "indexed"),  # its uri now holds d, but c's content moved to /x/4.mp4: kept
        "e": ("/x/9.mp4", "m1", "failed"),  # its uri is not listed (deleted, or outside this run's listing): kept
    }
    entries = [CatalogEntry("/x/1.mp4", "b", 1, 0.0), CatalogEntry("/x/2.mp4", "b", 1, 0.0),
               CatalogEntry("/x/3.mp4", "d", 1, 0.0), CatalogEntry("/x/4.mp4", "c", 1, 0.0)]
    assert stale_video_ids(entries, states) == ["a"]
    assert stale_video_ids([], states) == []


def test_known_entries_reuse_hash_when_size_and_mtime_match(archive):
    entries, _ = scan_archive(str(archive))
    fake = {e.uri: CatalogEntry(e.uri, "cached" + e.video_id[6:], e.size_bytes, e.mtime) for e in entries}
    reused, _ = scan_archive(str(archive), known=fake)
    assert all(e.video_id.startswith("cached") for e in reused)
    os.utime(archive / "a.mp4", (1, 1))
    partly, _ = scan_archive(str(archive), known=fake)
    assert {e.uri: e.video_id for e in partly}[str(archive / "a.mp4")] == sha16(b"AAAA" * 1000)


def test_unreadable_files_and_symlink_loops_become_failures(archive):
    (archive / "sub" / "loop_to_root").symlink_to(archive, target_is_directory=True)  # directory cycle
    (archive / "self.mp4").symlink_to(archive / "self.mp4")  # a link to itself: ELOOP
    (archive / "dangling.mkv").symlink_to(archive / "missing.mkv")
    (archive / "link_to_b.mp4").symlink_to(archive / "sub" / "b.WEBM")
    os.mkfifo(archive / "pipe.mp4")  # must not block the hash
    secret = archive / "secret.mp4"
    secret.write_bytes(b"SECRET")
    secret.chmod(0)
    try:
        readable = os.access(secret, os.R_OK)  # root reads mode-000 files
        entries, failures = scan_archive(str(archive))
    finally:
        secret.chmod(0o644)
    by_uri = {f.uri: f for f in failures}
    assert by_uri[str(archive / "self.mp4")].error_type == "SymlinkLoopError"
    assert by_uri[str(archive / "dangling.mkv")].error_type == "BrokenSymlinkError"
    assert by_uri[str(archive / "pipe.mp4")].error_type == "NotRegularFileError"
    assert all(f.stage == "catalog" for f in failures)
    uris = [e.uri for e in entries]
    assert str(archive / "link_to_b.mp4") in uris
    assert len(uris) == len(set(uris))  # the directory cycle was walked once
    assert not any("loop_to_root" in u for u in uris)
    if readable:
        assert str(secret) in uris and str(secret) not in by_uri
    else:
        assert by_uri[str(secret)].error_type == "UnreadableFileError"
        assert str(secret) not in uris
    row = by_uri[str(archive / "dangling.mkv")].to_row("r9")
    assert (row["uri"], row["stage"], row["error_type"], row["run_id"]) == (
        str(archive / "dangling.mkv"), "catalog", "BrokenSymlinkError", "r9")


def test_missing_archive_is_a_failure_not_a_crash(tmp_path):
    entries, failures = scan_archive(str(tmp_path / "nope"))
    assert entries == [] and [f.error_type for f in failures] == ["UnreadableFileError"]
