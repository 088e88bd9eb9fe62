"""What is in the archive: (uri, size, mtime) of each media file, without reading the files.

A thin layer over favor_ops.store.catalog.list_media_files, the listing the index job uses too
(same media extensions, hidden names and the store's own directory skipped, unreadable entries
reported, the same URI per file, the same half-open mtime window). The sensor compares two
listings; the `video_catalog` asset picks the files of its arrival window and hashes only those.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping

from favor_ops.store.catalog import CatalogConfig, CatalogFailure, MediaFile, list_media_files

ArchiveFile = MediaFile  # uri, size_bytes, mtime_s


def list_archive(
    archive_uri: str,
    *,
    exclude_uris: Iterable[str] = (),
    cfg: CatalogConfig = CatalogConfig(),
    modified_between_s: tuple[float, float] | None = None,
) -> tuple[list[ArchiveFile], list[CatalogFailure]]:
    """Media files under `archive_uri` sorted by uri (only start <= mtime < end when `modified_between_s`
    is given), and the entries that could not be listed."""
    return list_media_files(archive_uri, cfg, exclude_uris=exclude_uris, modified_between_s=modified_between_s)


def listing_state(files: Iterable[ArchiveFile]) -> dict[str, list]:
    """{uri: [size_bytes, mtime_s]}: the sensor's cursor (JSON round-trips it exactly)."""
    return {f.uri: [f.size_bytes, f.mtime_s] for f in files}


def listing_digest(state: Mapping[str, list]) -> str:
    """sha256 of a listing state: equal listings, equal digests (the sensor's run key)."""
    return hashlib.sha256(json.dumps(state, sort_keys=True).encode()).hexdigest()
