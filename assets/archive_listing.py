"""What is in the archive: (uri, size, mtime) of each media file, without reading the files.

Built on favor_ops.store.catalog.list_media (same media extensions, hidden names and the store's
own directory skipped, unreadable entries reported). The sensor compares two listings; the
`video_catalog` asset picks the files of its arrival window and hashes only those.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

import fsspec

from favor_ops.store.catalog import CatalogConfig, CatalogFailure, list_media

# fsspec `info` keys that carry a modification time, by filesystem (local, s3, gcs/az, memory).
MTIME_KEYS = ("mtime", "LastModified", "last_modified", "updated", "created")


@dataclass(frozen=True)
class ArchiveFile:
    uri: str  # as the index job records it: a plain path for a local archive, protocol://path otherwise
    size_bytes: int
    mtime_s: float  # seconds since the epoch (UTC)


def mtime_seconds(info: Mapping) -> float:
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


def list_archive(
    archive_uri: str, *, exclude_uris: Iterable[str] = (), cfg: CatalogConfig = CatalogConfig()
) -> tuple[list[ArchiveFile], list[CatalogFailure]]:
    """Media files under `archive_uri` sorted by uri, and the entries that could not be listed."""
    fs, _ = fsspec.core.url_to_fs(archive_uri)
    protocols = (fs.protocol,) if isinstance(fs.protocol, str) else tuple(fs.protocol)
    plain_paths = ("file" in protocols or "local" in protocols) and "://" not in str(archive_uri)
    listed, failures = list_media(archive_uri, cfg, exclude_uris=exclude_uris)
    files = [
        ArchiveFile(
            uri=path if plain_paths else fs.unstrip_protocol(path),
            size_bytes=int(info.get("size") or 0),
            mtime_s=mtime_seconds(info),
        )
        for path, info in listed
    ]
    return sorted(files, key=lambda f: f.uri), failures


def listing_state(files: Iterable[ArchiveFile]) -> dict[str, list]:
    """{uri: [size_bytes, mtime_s]}: the sensor's cursor (JSON round-trips it exactly)."""
    return {f.uri: [f.size_bytes, f.mtime_s] for f in files}


def listing_digest(state: Mapping[str, list]) -> str:
    """sha256 of a listing state: equal listings, equal digests (the sensor's run key)."""
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
