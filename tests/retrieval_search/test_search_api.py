"""The FastAPI app: auth, /healthz, /search (GET, JSON, upload), /videos, clip and thumbnail, 4xx for bad input."""

from __future__ import annotations

import subprocess

import pytest
from fastapi.testclient import TestClient

from favor_ops.retrieval.query_encoder import AlignedQueryEncoder
from pipelines.serve.app import ServeConfig, create_app
from tests.retrieval_search.planted_store import FakeAlignedModel

TOKEN = "s3cret-token"


@pytest.fixture()
def client(planted_store):
    app = create_app(ServeConfig(db=planted_store.uri, max_upload_bytes=200_000), store=planted_store,
                     encoder=AlignedQueryEncoder(FakeAlignedModel()))
    return TestClient(app, raise_server_exceptions=False)


@pytest.fixture()
def secured(planted_store):
    app = create_app(ServeConfig(db=planted_store.uri, token=TOKEN), store=planted_store,
                     encoder=AlignedQueryEncoder(FakeAlignedModel()))
    return TestClient(app, raise_server_exceptions=False)


def test_healthz(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok", "videos": 3, "windows": 9, "auth": False}


def test_page_is_served(client):
    response = client.get("/")
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    assert 'id="search-form"' in response.text


def test_search_get_and_post_json(client):
    got = client.get("/search", params={"q": "red circle", "k": "1"})
    assert got.status_code == 200
    assert [(h["video_id"], h["t_start"], h["t_end"]) for h in got.json()["hits"]] == [("aa11", 0.0, 4.0)]
    posted = client.post("/search", json={"q": "blue square", "mode": "visual", "k": 1,
                                          "where": [["has_audio", "=", False], "duration_s>=30"]})
    assert posted.status_code == 200
    assert [(h["video_id"], h["window_indices"]) for h in posted.json()["hits"]] == [("bb22", [2])]


def test_search_upload_audio_file(client, media_files):
    with open(media_files["wav"], "rb") as handle:
        response = client.post("/search", data={"kind": "audio", "mode": "audio", "k": "1"},
                               files={"file": ("bark.wav", handle, "audio/wav")})
    assert response.status_code == 200, response.text
    assert [(h["video_id"], h["window_indices"]) for h in response.json()["hits"]] == [("cc33", [0])]


def test_upload_too_large_is_413(client):
    response = client.post("/search", data={"kind": "audio"}, files={"file": ("big.wav", b"\0" * 300_000, "audio/wav")})
    assert response.status_code == 413 and "larger than" in response.json()["error"]


def test_upload_not_media_is_400(client):
    response = client.post("/search", data={"kind": "video"}, files={"file": ("x.mp4", b"not a video" * 100, "video/mp4")})
    assert response.status_code == 400 and response.json()["error"].startswith("cannot read query file")


@pytest.mark.parametrize(
    "params, status, part",
    [
        ({"q": ""}, 400, "query text is empty"),
        ({"q": "x", "k": "0"}, 400, "k must be"),
        ({"q": "x", "k": "1e9"}, 400, "k must be"),
        ({"q": "x", "mode": "drop"}, 400, "unknown mode"),
        ({"q": "x", "where": "uri=a\nb' OR '1'='1"}, 400, "control characters"),
        ({"q": "x", "where": "secret>1"}, 400, "unknown filter column"),
        ({"q": "x", "evil": "1"}, 400, "unknown parameter"),
        ({}, 400, "no query given"),
    ],
)
def test_bad_search_params_are_4xx_json(client, params, status, part):
    response = client.get("/search", params=params)
    assert response.status_code == status
    assert part in response.json()["error"]


def test_injection_in_where_is_a_literal(client):
    response = client.get("/search", params={"q": "red circle", "where": "uri=1' OR '1'='1' --"})
    assert response.status_code == 200 and response.json()["hits"] == []


def test_bad_json_bodies(client):
    assert client.post("/search", content=b"{nope", headers={"content-type": "application/json"}).status_code == 400
    assert client.post("/search", json=["q"]).status_code == 400
    assert client.post("/search", json={"q": "x", "where": "duration_s>abc"}).status_code == 400
    assert client.post("/search", json={"q": 5}).status_code == 400
    assert client.post("/search", content=b"q=x", headers={"content-type": "text/plain"}).status_code == 415


def test_video_metadata_and_windows(client, media_files):
    response = client.get("/videos/aa11")
    assert response.status_code == 200
    body = response.json()
    assert body["uri"] == str(media_files["video"]) and body["duration_s"] == 6.0
    assert [(w["window_idx"], w["t_start"], w["t_end"]) for w in body["windows"]] == [(0, 0.0, 2.0), (1, 2.0, 4.0), (2, 4.0, 6.0)]


@pytest.mark.parametrize(
    "path",
    [
        "/videos/..%2F..%2Fetc%2Fpasswd",
        "/videos/%2Fetc%2Fpasswd/clip?start=0&end=1",
        "/videos/%2e%2e",
        "/videos/AA11",
        "/videos/aa11%00/clip?start=0&end=1",
        "/videos/zz99/thumbnail?t=1",
        "/videos/aa11/clip?start=0&end=1%2F..%2F",
        "/videos/ffff",
        "/videos/../../etc/passwd",
        "/videos/%2e%2e/clip?start=0&end=1",
    ],
)
def test_path_tricks_are_4xx(client, path):
    # (plain "/videos/.." never reaches the server: the client normalises dot segments away)
    response = client.get(path)
    assert 400 <= response.status_code < 500, (path, response.status_code)
    assert response.headers["content-type"].startswith("application/json")
    assert response.headers["content-type"] != "video/mp4"


def test_clip_param_extra_uri_is_ignored_and_clip_streams_mp4(client):
    response = client.get("/videos/aa11/clip", params={"start": "1", "end": "3", "uri": "/etc/passwd"})
    assert response.status_code == 200 and response.headers["content-type"] == "video/mp4"
    assert response.content[4:8] == b"ftyp"
    probe = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-count_frames", "-show_entries",
                            "stream=nb_read_frames", "-of", "csv=p=0", "-"],
                           input=response.content, capture_output=True, check=True)  # fmt: skip
    assert int(probe.stdout) == 20  # 2 s of the 10 fps source


@pytest.mark.parametrize(
    "params, part",
    [
        ({"start": "3", "end": "1"}, "start must be before end"),
        ({"start": "2", "end": "2"}, "start must be before end"),
        ({"start": "0", "end": "7"}, "past the end"),
        ({"start": "-1", "end": "1"}, ">= 0"),
        ({"start": "nan", "end": "1"}, "finite"),
        ({"start": "abc", "end": "1"}, "must be a number"),
        ({"end": "1"}, "start is required"),
    ],
)
def test_bad_clip_times_are_400(client, params, part):
    response = client.get("/videos/aa11/clip", params=params)
    assert response.status_code == 400 and part in response.json()["error"]


def test_thumbnail_is_a_jpeg(client):
    response = client.get("/videos/aa11/thumbnail", params={"t": "3"})
    assert response.status_code == 200 and response.headers["content-type"] == "image/jpeg"
    assert response.content[:2] == b"\xff\xd8"
    assert client.get("/videos/aa11/thumbnail", params={"t": "60"}).status_code == 400


def test_media_of_a_video_whose_file_is_gone_is_4xx(client):
    # bb22's uri (/archive/cats/b.mp4) does not exist: a 4xx, never a 500 or a path from the request
    response = client.get("/videos/bb22/thumbnail", params={"t": "1"})
    assert 400 <= response.status_code < 500


def test_token_required_when_configured(secured):
    assert secured.get("/healthz").status_code == 200
    assert secured.get("/").status_code == 200
    for path in ("/search?q=red+circle", "/videos/aa11", "/videos/aa11/clip?start=0&end=1", "/videos/aa11/thumbnail?t=1"):
        response = secured.get(path)
        assert response.status_code == 401 and response.json()["error"] == "missing or wrong bearer token"
        assert secured.get(path, headers={"Authorization": "Bearer wrong"}).status_code == 401
    assert secured.post("/search", json={"q": "red circle"}).status_code == 401
    ok = secured.get("/search", params={"q": "red circle", "k": "1"}, headers={"Authorization": f"Bearer {TOKEN}"})
    assert ok.status_code == 200 and ok.json()["hits"][0]["video_id"] == "aa11"
    assert secured.get("/videos/aa11", params={"access_token": TOKEN}).status_code == 200
