"""Indexing an s3:// archive: a local moto S3 server, the real Beam runner, a local LanceDB store.

The endpoint reaches every reader through the environment alone (no code path takes it as an
option): AWS_ENDPOINT_URL is read by botocore under s3fs, both in this process (the catalog lists
the bucket) and in Beam's worker processes, which inherit os.environ (hashing, and decoding,
which copies each object to a worker-local temp file through fsspec).
"""

from __future__ import annotations

import numpy as np
import pytest

from favor_ops.store.feature_store import FeatureStore
from tests.integration.conftest import STAGE_OF_EXPECTED_ERROR

BUCKET = "favor-archive"
PREFIX = "clips/2026"
S3_FILES = ("v003.mp4", "v008.wav", "v010.webm", "v011.jpg", "bad_not_media.mp4")  # video, audio, no audio, image, bad
VIDEO_ID_HEX = 16
DURATION_TOL_S = 0.05


@pytest.fixture
def s3_archive(index_corpus):
    """A moto S3 server on a free local port holding S3_FILES under s3://BUCKET/PREFIX/."""
    moto_server = pytest.importorskip("moto.server")
    import fsspec

    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    with pytest.MonkeyPatch.context() as patch:
        for name in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL_S3"):
            patch.delenv(name, raising=False)
        patch.setenv("AWS_ACCESS_KEY_ID", "testing")
        patch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
        patch.setenv("AWS_DEFAULT_REGION", "us-east-1")
        patch.setenv("AWS_ENDPOINT_URL", f"http://{host}:{port}")
        fs = fsspec.filesystem("s3", skip_instance_cache=True)
        fs.mkdir(BUCKET)
        for name in S3_FILES:
            fs.put_file(str(index_corpus.archive / name), f"{BUCKET}/{PREFIX}/{name}")
        assert sorted(p.rsplit("/", 1)[-1] for p in fs.ls(f"{BUCKET}/{PREFIX}")) == sorted(S3_FILES)
        try:
            yield f"s3://{BUCKET}/{PREFIX}"
        finally:
            fsspec.filesystem("s3").clear_instance_cache()
            server.stop()


@pytest.mark.slow
def test_an_s3_archive_indexes_like_the_local_copy(s3_archive, indexed_db, tmp_path, cli_index, expected_windows,
                                                   read_windows):
    manifest = indexed_db.corpus.by_file()
    db = tmp_path / "db"  # the store stays local
    run = cli_index(s3_archive, db)

    assert run.exit_code == 3  # bad_not_media.mp4
    assert (run.summary["listed"], run.summary["indexed"], run.summary["failed"]) == (5, 4, 1)
    store = FeatureStore.open(str(db))
    videos = {row["uri"]: row for row in store.videos_df().to_dict("records")}
    assert set(videos) == {f"{s3_archive}/{name}" for name in S3_FILES}
    local = FeatureStore.open(str(indexed_db.db))
    for name in S3_FILES:
        record, row = manifest[name], videos[f"{s3_archive}/{name}"]
        assert row["video_id"] == record["sha256"][:VIDEO_ID_HEX], name  # hashed through s3fs
        if record["kind"] == "bad":
            assert row["status"] == "failed", name
            continue
        expect = expected_windows(record)
        assert (row["status"], row["n_windows"]) == ("indexed", expect.n_windows), name
        assert row["duration_s"] == pytest.approx(record["duration_s"], abs=DURATION_TOL_S), name
        assert (bool(row["has_video"]), bool(row["has_audio"])) == (record["has_video"], record["has_audio"]), name
        got = read_windows(store, row["video_id"])
        np.testing.assert_array_equal(got["window_idx"], np.arange(expect.n_windows), err_msg=name)
        np.testing.assert_array_equal(got["t_start"], expect.t_start_s, err_msg=name)
        # Decoded from the s3 copy, the same bytes give the same vectors as the local archive.
        same_local = read_windows(local, row["video_id"])
        for column in ("t_end", "tokens", "pooled", "audio_vec", "visual_vec"):
            np.testing.assert_allclose(got[column], same_local[column], atol=1e-5, err_msg=f"{name}.{column}")

    failures = store.failures_df()
    bad = manifest["bad_not_media.mp4"]
    assert failures[["uri", "stage", "error_type"]].to_dict("records") == [
        {"uri": f"{s3_archive}/bad_not_media.mp4",
         "stage": STAGE_OF_EXPECTED_ERROR[bad["broken"]["expected_error"]],
         "error_type": bad["broken"]["expected_error"]}
    ]
