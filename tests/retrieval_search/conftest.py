"""Fixtures over planted_store.py: real media files, a real planted LanceDB store, the fake model edge."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.retrieval_search.planted_store import FakeAlignedModel, build_store, make_media


@pytest.fixture(scope="session")
def media_files(tmp_path_factory) -> dict[str, Path]:
    return make_media(tmp_path_factory.mktemp("media"))


@pytest.fixture(scope="session")
def planted_store(tmp_path_factory, media_files):
    db_dir = tmp_path_factory.mktemp("db") / "store"
    return build_store(db_dir, str(media_files["video"]))


@pytest.fixture()
def fake_encoder():
    from favor_ops.retrieval.query_encoder import AlignedQueryEncoder

    return AlignedQueryEncoder(FakeAlignedModel())
