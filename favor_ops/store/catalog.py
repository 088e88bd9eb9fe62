"""Archive catalog: which media files exist, what their content is, which need indexing.

`scan_archive(uri)` walks an fsspec URI recursively (local dir, file://, memory://, s3://...),
skipping hidden names (".x"), the store's own directory and non-media extensions, and hashes
each file's content (sha256, streamed in blocks): `video_id` = the first `video_id_hex_chars`
hex characters. A file whose content changes gets a new video_id; a moved or copied file keeps it.

`list_media_files(uri)` is the same walk without reading any file: (uri, size, mtime) per media
file, optionally only those modified in a time window (`modified_between_s`, half-open
[start, end) in seconds since the epoch). The index job and the Dagster assets list through it, so
every caller records the same URI for a file: a plain path for an archive given as a plain local
path, protocol://path otherwise (a file:// archive keeps file://).

`plan_indexing(entries, store_states, model_version)` keeps the files that need work: a file is
skipped when its video_id is already in `videos` with the same model_version and status
"indexed" (and, unless `retry_failed`, status "failed": a file that failed with this model
fails again the same way; a changed file has a new id and is retried).

Files that cannot be read (permission, dangling link, symlink loop, a FIFO named like media)
or whose name is not valid UTF-8 (`UndecodableNameError`; the failure shows the name's bytes as
\\xNN) become `CatalogFailure`s, never exceptions. Symlinked directories are followed once
(each real directory is visited once, so a link to an ancestor does not loop).
"""

from __future__ import annotations

import errno
import hashlib
import os
from dataclasses import dataclass, field
from typing import Iterable, Mapping

import fsspec

from favor_ops.errors import StageError
from favor_ops.store.schema import STATUS_FAILED, STATUS_INDEXED, failure_row

MEDIA_EXTENSIONS = frozenset(
    {
        # video containers
        "mp4", "m4v", "mov", "mkv", "webm", "avi", "flv", "wmv", "mpg", "mpeg", "ts", "mts", "m2ts", "3gp", "ogv",
        # audio
        "wav", "mp3", "m4a", "aac", "flac", "ogg", "oga", "opus", "wma",
        # still images (indexed as image-only input)
        "jpg", "jpeg", "png", "bmp", "webp", "gif", "tif", "tiff",
    }
)


class CatalogError(StageError):
    """A file in the archive could not be listed or read."""

    stage = "catalog"


class UnreadableFileError(CatalogError):
    """The file exists but reading it failed (permissions, I/O error)."""


class BrokenSymlinkError(CatalogError):
    """A symbolic link points to nothing."""


class SymlinkLoopError(CatalogError):
    """A symbolic link resolves to itself (too many levels of links)."""


class NotRegularFileError(CatalogError):
    """A media-named entry that is not a regular file (FIFO, socket, device)."""


class UndecodableNameError(CatalogError):
    """A file name that is not valid UTF-8 (the store's text columns and Beam's coders need UTF-8)."""


@dataclass(frozen=True)
class CatalogConfig:
    extensions: frozenset[str] = MEDIA_EXTENSIONS  # lower-case, without the dot
    hash_block_bytes: int = 1 << 20  # bytes read per sha256 update
    video_id_hex_chars: int = 16  # video_id = first N hex chars of the sha256 (16..64)
    max_depth: int = 64  # directory levels below the archive root
    follow_symlinks: bool = True  # local archives: follow links to files and directories
    retry_failed: bool = False  # re-index files recorded as failed with the same model version

    def __post_init__(self):
        if not 16 <= self.video_id_hex_chars <= 64:
            raise ValueError(f"video_id_hex_chars must be in [16, 64], got {self.video_id_hex_chars}")
        if self.hash_block_bytes < 1:
            raise ValueError("hash_block_bytes must be >= 1")


@dataclass(frozen=True)
class CatalogEntry:
    uri: str  # as given to the decoder: a local path, or protocol://path
    video_id: str  # first hex chars of the content sha256
    size_bytes: int
    mtime: float  # modification time, seconds since the epoch (UTC)


@dataclass(frozen=True)
class CatalogFailure:
    uri: str
    error_type: str
    message: str
    stage: str = "catalog"
    video_id: str | None = None

    @classmethod
    def from_error(cls, err: StageError) -> "CatalogFailure":
        return cls(uri=printable_uri(err.uri), error_type=err.error_type, message=printable_uri(err.reason),
                   stage=err.stage)

    def to_row(self, run_id: str) -> dict:
        """A `failures` table row."""
        row = failure_row(CatalogError(self.uri, self.message), run_id=run_id, video_id=self.video_id, stage=self.stage)
        row["error_type"] = self.error_type
        return row


@dataclass(frozen=True)
class MediaFile:
    """A listed media file, not read: what list_media_files returns."""

    uri: str  # as the index job records and opens it: a plain local path, or protocol://path
    size_bytes: int
    mtime_s: float  # modification time, seconds since the epoch (UTC)


@dataclass
class CatalogResult:
    entries: list[CatalogEntry] = field(default_factory=list)  # every readable media file
    to_index: list[CatalogEntry] = field(default_factory=list)  # those needing (re)indexing
    skipped: list[CatalogEntry] = field(default_factory=list)  # already done for this model version
    failures: list[CatalogFailure] = field(default_factory=list)


# ---- walking ----------------------------------------------------------------------------------


def _is_local(fs: fsspec.AbstractFileSystem) -> bool:
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    return "file" in protocols or "local" in protocols


def _public_uri(fs: fsspec.AbstractFileSystem, path: str, local_plain: bool) -> str:
    if _is_local(fs) and local_plain:
        return path
    return fs.unstrip_protocol(path)


def is_utf8(text: str) -> bool:
    """False for a str holding surrogate escapes (how Python lists a file name whose bytes are not UTF-8)."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def printable_uri(uri: str) -> str:
    """`uri` as valid UTF-8 text: the bytes of a non-UTF-8 name (surrogate escapes) are shown as \\xNN."""
    if is_utf8(uri):
        return uri
    try:
        return uri.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    except UnicodeEncodeError:
        return uri.encode("utf-8", "backslashreplace").decode("utf-8")


def _undecodable_name(uri: str) -> UndecodableNameError:
    return UndecodableNameError(uri, "file name is not valid UTF-8; rename it (e.g. convmv -f latin1 -t utf8)")


def _norm_local(path: str) -> str:
    return os.path.normcase(os.path.realpath(path))


def _excluded(path: str, excluded: list[str]) -> bool:
    return any(path == ex or path.startswith(ex.rstrip("/") + "/") for ex in excluded)


# fsspec `info` keys that carry a modification time, by filesystem (local, s3, gcs/az, memory), in order of preference.
MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created")


def mtime_seconds(info: Mapping) -> float:
    """Modification time of an fsspec `info` dict in seconds since the epoch (0.0 when it has none)."""
    for key in MTIME_KEYS:
        value = info.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return float(value.timestamp())
        try:
            return float(value)
        except (TypeError, ValueError):
            continue
    return 0.0


def modified_between(mtime_s: float, between_s: tuple[float, float] | None) -> bool:
    """True when `between_s` is None or start <= mtime_s < end (either bound may be -inf / +inf)."""
    if between_s is None:
        return True
    start_s, end_s = between_s
    return start_s <= mtime_s < end_s


def check_time_window(between_s: tuple[float, float] | None) -> tuple[float, float] | None:
    """`between_s` as a (start, end) pair of floats; ValueError unless it is two numbers with start <= end."""
    if between_s is None:
        return None
    try:
        start_s, end_s = (float(v) for v in between_s)
    except (TypeError, ValueError) as err:
        raise ValueError(f"a time window is (start_s, end_s), got {between_s!r}") from err
    if not start_s <= end_s:  # also rejects NaN
        raise ValueError(f"a time window needs start_s <= end_s, got {between_s!r}")
    return start_s, end_s


def _extension_ok(path: str, cfg: CatalogConfig) -> bool:
    name = path.rsplit("/", 1)[-1]
    return "." in name and name.rsplit(".", 1)[-1].lower() in cfg.extensions


def _local_link_failure(path: str, uri: str) -> CatalogError | None:
    """Classify a local symlink that cannot be followed (None when it resolves)."""
    try:
        os.stat(path)
        return None
    except OSError as err:
        if err.errno == errno.ELOOP:
            return SymlinkLoopError(uri, "symbolic link loop (too many levels of links)")
        if err.errno == errno.ENOENT:
            return BrokenSymlinkError(uri, f"dangling symbolic link -> {os.readlink(path)}")
        return UnreadableFileError(uri, f"cannot stat: {err.strerror}")


def list_media(
    archive_uri: str,
    cfg: CatalogConfig = CatalogConfig(),
    *,
    exclude_uris: Iterable[str] = (),
    fs_options: Mapping | None = None,
) -> tuple[list[tuple[str, dict]], list[CatalogFailure]]:
    """Media files under `archive_uri`: ([(fs path, info)], failures), sorted by path.

    `exclude_uris` are skipped with everything under them (e.g. the store's own directory).
    """
    fs, root = fsspec.core.url_to_fs(archive_uri, **dict(fs_options or {}))
    local = _is_local(fs)
    plain = local and "://" not in str(archive_uri)
    root = root.rstrip("/") or "/"
    excluded = []
    for ex in exclude_uris:
        ex_fs, ex_path = fsspec.core.url_to_fs(str(ex))
        if type(ex_fs) is type(fs):
            excluded.append(_norm_local(ex_path) if local else ex_path.rstrip("/"))
    files: list[tuple[str, dict]] = []
    failures: list[CatalogFailure] = []
    visited: set[str] = set()

    def fail(err: CatalogError) -> None:
        failures.append(CatalogFailure.from_error(err))

    def walk(directory: str, depth: int) -> None:
        key = _norm_local(directory) if local else directory
        if key in visited:
            return
        visited.add(key)
        if _excluded(key, excluded):
            return
        try:
            listing = fs.ls(directory, detail=True)
        except (OSError, PermissionError) as err:
            fail(UnreadableFileError(_public_uri(fs, directory, plain), f"cannot list directory: {err}"))
            return
        for info in sorted(listing, key=lambda i: i["name"]):
            path = info["name"].rstrip("/")
            name = path.rsplit("/", 1)[-1]
            if not name or name.startswith("."):
                continue
            uri = _public_uri(fs, path, plain)
            kind = info.get("type")
            if not is_utf8(path) and _extension_ok(path, cfg) and not (kind == "directory" or (local and os.path.isdir(path))):
                fail(_undecodable_name(uri))  # it could not be recorded, nor travel through Beam, as text
                continue
            if local and info.get("islink"):
                if not cfg.follow_symlinks:
                    continue
                broken = _local_link_failure(path, uri)
                if broken is not None:
                    if _extension_ok(path, cfg):
                        fail(broken)
                    continue
                if _excluded(_norm_local(path), excluded):
                    continue
                kind = "directory" if os.path.isdir(path) else ("file" if os.path.isfile(path) else "other")
                if kind == "file":
                    st = os.stat(path)
                    info = {**info, "size": st.st_size, "mtime": st.st_mtime}
            if kind == "directory":
                if depth < cfg.max_depth:
                    walk(path, depth + 1)
                continue
            if not _extension_ok(path, cfg):
                continue
            if local and _excluded(_norm_local(path), excluded):
                continue
            if kind != "file":
                fail(NotRegularFileError(uri, f"not a regular file (type {kind})"))
                continue
            files.append((path, info))

    try:
        root_info = fs.info(root)
    except (OSError, FileNotFoundError) as err:
        fail(UnreadableFileError(str(archive_uri), f"archive not found or unreadable: {err}"))
        return [], failures
    if root_info.get("type") == "file":
        if _extension_ok(root, cfg) and not is_utf8(root):
            fail(_undecodable_name(str(archive_uri)))
        elif _extension_ok(root, cfg):
            files.append((root, root_info))
    else:
        walk(root, 0)
    return files, failures


def list_media_files(
    archive_uri: str,
    cfg: CatalogConfig = CatalogConfig(),
    *,
    exclude_uris: Iterable[str] = (),
    fs_options: Mapping | None = None,
    modified_between_s: tuple[float, float] | None = None,
) -> tuple[list[MediaFile], list[CatalogFailure]]:
    """Media files under `archive_uri` as (uri, size, mtime), sorted by uri, and the entries that could not be listed.

    `modified_between_s=(start, end)` keeps the files with start <= mtime < end (seconds since the
    epoch; -inf / +inf leave a side open). Unlistable entries are returned whatever their time: they
    have none to filter on.
    """
    window = check_time_window(modified_between_s)
    fs, _ = fsspec.core.url_to_fs(archive_uri, **dict(fs_options or {}))
    plain = _is_local(fs) and "://" not in str(archive_uri)
    listed, failures = list_media(archive_uri, cfg, exclude_uris=exclude_uris, fs_options=fs_options)
    files = [
        MediaFile(uri=_public_uri(fs, path, plain), size_bytes=int(info.get("size") or 0), mtime_s=mtime_seconds(info))
        for path, info in listed
    ]
    return sorted((f for f in files if modified_between(f.mtime_s, window)), key=lambda f: f.uri), failures


# ---- hashing ----------------------------------------------------------------------------------


def content_sha256(fs: fsspec.AbstractFileSystem, path: str, block_bytes: int) -> str:
    """sha256 hex digest of a file's bytes, read in `block_bytes` blocks."""
    digest = hashlib.sha256()
    with fs.open(path, "rb") as handle:
        while True:
            block = handle.read(block_bytes)
            if not block:
                break
            digest.update(block)
    return digest.hexdigest()


def video_id_from_sha256(hex_digest: str, cfg: CatalogConfig = CatalogConfig()) -> str:
    return hex_digest[: cfg.video_id_hex_chars]


def scan_archive(
    archive_uri: str,
    cfg: CatalogConfig = CatalogConfig(),
    *,
    exclude_uris: Iterable[str] = (),
    fs_options: Mapping | None = None,
    known: Mapping[str, CatalogEntry] | None = None,
) -> tuple[list[CatalogEntry], list[CatalogFailure]]:
    """Catalog entries (content-hashed) of every readable media file under `archive_uri`.

    `known`: entries of a previous scan by uri; a file with the same size and mtime reuses its
    video_id instead of being hashed again (None: hash everything).
    """
    fs, _ = fsspec.core.url_to_fs(archive_uri, **dict(fs_options or {}))
    plain = _is_local(fs) and "://" not in str(archive_uri)
    files, failures = list_media(archive_uri, cfg, exclude_uris=exclude_uris, fs_options=fs_options)
    entries = []
    for path, info in files:
        uri = _public_uri(fs, path, plain)
        size_bytes = int(info.get("size") or 0)
        mtime = mtime_seconds(info)
        previous = (known or {}).get(uri)
        if previous is not None and previous.size_bytes == size_bytes and previous.mtime == mtime:
            entries.append(previous)
            continue
        try:
            digest = content_sha256(fs, path, cfg.hash_block_bytes)
        except OSError as err:
            reason = err.strerror or str(err) or type(err).__name__
            if getattr(err, "errno", None) == errno.ELOOP:
                failures.append(CatalogFailure.from_error(SymlinkLoopError(uri, reason)))
            else:
                failures.append(CatalogFailure.from_error(UnreadableFileError(uri, f"cannot read: {reason}")))
            continue
        entries.append(CatalogEntry(uri=uri, video_id=video_id_from_sha256(digest, cfg), size_bytes=size_bytes, mtime=mtime))
    return entries, failures


# ---- planning ---------------------------------------------------------------------------------


def plan_indexing(
    entries: Iterable[CatalogEntry],
    video_states: Mapping[str, tuple[str, str, str]],
    model_version: str,
    cfg: CatalogConfig = CatalogConfig(),
) -> tuple[list[CatalogEntry], list[CatalogEntry]]:
    """Split entries into (to_index, skipped).

    video_states: video_id -> (uri, model_version, status), e.g. FeatureStore.video_states().
    Identical content at two uris is indexed once (the first uri in sorted order).
    """
    done_statuses = {STATUS_INDEXED} if cfg.retry_failed else {STATUS_INDEXED, STATUS_FAILED}
    to_index, skipped = [], []
    planned: set[str] = set()
    for entry in sorted(entries, key=lambda e: e.uri):
        state = video_states.get(entry.video_id)
        if state is not None and state[1] == model_version and state[2] in done_statuses:
            skipped.append(entry)
        elif entry.video_id in planned:
            skipped.append(entry)
        else:
            planned.add(entry.video_id)
            to_index.append(entry)
    return to_index, skipped


def stale_video_ids(entries: Iterable[CatalogEntry], video_states: Mapping[str, tuple[str, str, str]]) -> list[str]:
    """Stored videos whose content is gone from their uri: the uri is listed with other content and the old
    content is listed nowhere (e.g. a file overwritten with a copy of another file, already indexed, so nothing
    new is indexed for it). Their rows are removed by the run's commit.

    video_states: video_id -> (uri, model_version, status), e.g. FeatureStore.video_states()."""
    entries = list(entries)
    listed_ids = {e.video_id for e in entries}
    id_at_uri = {e.uri: e.video_id for e in entries}
    return sorted(
        vid for vid, (uri, _mv, _status) in video_states.items()
        if vid not in listed_ids and uri in id_at_uri and id_at_uri[uri] != vid
    )


def build_catalog(
    archive_uri: str,
    model_version: str,
    store=None,
    cfg: CatalogConfig = CatalogConfig(),
    *,
    exclude_uris: Iterable[str] = (),
    fs_options: Mapping | None = None,
    known: Mapping[str, CatalogEntry] | None = None,
) -> CatalogResult:
    """Scan `archive_uri` and plan against `store` (a FeatureStore or None for an empty store).

    The store's own directory is excluded automatically when it lies inside the archive.
    """
    excluded = list(exclude_uris)
    if store is not None:
        excluded.append(store.uri)
    entries, failures = scan_archive(archive_uri, cfg, exclude_uris=excluded, fs_options=fs_options, known=known)
    states = store.video_states() if store is not None else {}
    to_index, skipped = plan_indexing(entries, states, model_version, cfg)
    return CatalogResult(entries=entries, to_index=to_index, skipped=skipped, failures=failures)
