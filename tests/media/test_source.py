"""fsspec URI -> local path: local paths in place, remote ones streamed to a temp file that is removed."""

from __future__ import annotations

import os

import fsspec
import pytest

from favor_ops.errors import ProbeError
from favor_ops.media.source import SourceConfig, is_local_uri, local_media_path


def test_local_uri_detection():
    assert is_local_uri("/data/a.mp4") and is_local_uri("rel/a.mp4") and is_local_uri("file:///data/a.mp4")
    assert not is_local_uri("s3://bucket/a.mp4") and not is_local_uri("memory:///a.mp4")
    assert not is_local_uri("simplecache::s3://bucket/a.mp4")


def test_local_paths_are_used_in_place(tmp_path):
    f = tmp_path / "clip.mp4"
    f.write_bytes(b"abc")
    with local_media_path(str(f)) as path:
        assert path == str(f)
    with local_media_path("file://" + str(f)) as path:
        assert path == str(f)
    assert f.exists()  # never deleted


def test_remote_uri_is_copied_in_blocks_and_cleaned_up(tmp_path):
    fs = fsspec.filesystem("memory")
    payload = bytes(range(256)) * 1000  # 256 kB, copied in 10 kB blocks
    fs.pipe("/favor-source-test/dir/clip.webm", payload)
    try:
        with local_media_path("memory:///favor-source-test/dir/clip.webm",
                              SourceConfig(copy_block_bytes=10_000, temp_dir=str(tmp_path))) as path:
            assert path.endswith(".webm") and os.path.dirname(path) == str(tmp_path)
            with open(path, "rb") as f:
                assert f.read() == payload
        assert not os.path.exists(path)
        assert os.listdir(tmp_path) == []
    finally:
        fs.rm("/favor-source-test", recursive=True)


def test_temp_file_is_removed_when_the_block_raises(tmp_path):
    fs = fsspec.filesystem("memory")
    fs.pipe("/favor-source-test2/a.mp4", b"xyz")
    try:
        with pytest.raises(RuntimeError):
            with local_media_path("memory:///favor-source-test2/a.mp4", SourceConfig(temp_dir=str(tmp_path))):
                raise RuntimeError("boom")
        assert os.listdir(tmp_path) == []
    finally:
        fs.rm("/favor-source-test2", recursive=True)


@pytest.mark.parametrize("uri", ["memory:///favor-source-test/absent.mp4", "/nonexistent/dir/absent.mp4"])
def test_missing_source_is_a_probe_error(uri, tmp_path):
    with pytest.raises(ProbeError, match="no such file"):
        with local_media_path(uri, SourceConfig(temp_dir=str(tmp_path))):
            pass
    assert os.listdir(tmp_path) == []
