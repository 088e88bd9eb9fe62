"""Turn any fsspec URI into a local path that ffmpeg can open.

Local paths and `file://` URIs are used in place (no copy). Any other
protocol (`s3://`, `gs://`, `memory://`, `simplecache::s3://...`) is copied in
streamed blocks (never read whole into memory) into a worker-local temporary
file that keeps the source's extension (ffmpeg guesses image formats from
it) and is deleted when the context exits, however it exits.

    with local_media_path("s3://bucket/clip.mp4") as path:
        ...  # path is a local file until the block ends
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from dataclasses import dataclass
from typing import Iterator

from favor_ops.errors import ProbeError

LOCAL_PROTOCOLS = ("file", "local")


@dataclass(frozen=True)
class SourceConfig:
    copy_block_bytes: int = 8 * 1024 * 1024  # bytes per streamed read when copying a remote source
    temp_dir: str | None = None  # worker-local scratch dir; None -> tempfile.gettempdir()


def is_local_uri(uri: str) -> bool:
    """True for plain paths and file:// (or local://) URIs."""
    uri = str(uri)
    if "::" in uri:  # chained fsspec URL (e.g. simplecache::s3://...)
        return False
    if "://" not in uri:
        return True
    return uri.split("://", 1)[0].lower() in LOCAL_PROTOCOLS


def local_path_of(uri: str) -> str:
    """The filesystem path of a local URI (strips file://)."""
    uri = str(uri)
    if "://" in uri:
        return uri.split("://", 1)[1]
    return uri


def _extension_of(uri: str) -> str:
    name = str(uri).rstrip("/").rsplit("/", 1)[-1]
    _, ext = os.path.splitext(name.split("?", 1)[0])
    return ext if 0 < len(ext) <= 10 else ""


@contextlib.contextmanager
def local_media_path(uri: str, cfg: SourceConfig = SourceConfig()) -> Iterator[str]:
    """Yield a local path holding the bytes of `uri` (see module docstring).

    Raises ProbeError (stage "probe") when the source does not exist or cannot be read.
    """
    uri = str(uri)
    if is_local_uri(uri):
        path = local_path_of(uri)
        if not os.path.isfile(path):
            raise ProbeError(uri, "no such file")
        yield path
        return

    import fsspec  # local import: only remote sources need it

    fd, tmp_path = tempfile.mkstemp(prefix="favor-src-", suffix=_extension_of(uri), dir=cfg.temp_dir)
    try:
        try:
            with fsspec.open(uri, "rb") as src, os.fdopen(fd, "wb") as dst:
                fd = -1  # owned by dst now
                shutil.copyfileobj(src, dst, length=cfg.copy_block_bytes)
        except FileNotFoundError:
            raise ProbeError(uri, "no such file") from None
        except (OSError, ValueError, ImportError) as err:
            raise ProbeError(uri, f"cannot read source: {type(err).__name__}: {err}") from None
        yield tmp_path
    finally:
        if fd >= 0:
            os.close(fd)
        with contextlib.suppress(FileNotFoundError):
            os.remove(tmp_path)
