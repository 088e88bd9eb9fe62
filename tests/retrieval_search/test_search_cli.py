"""`favor search`: table / JSON output, one-line errors with exit status 2."""

from __future__ import annotations

import json

import pytest

import favor_ops.retrieval.query_encoder as query_encoder_module
from pipelines.cli import main as cli_main
from tests.retrieval_search.planted_store import FakeAlignedModel

SEARCH_MODULE = "pipelines.cli.search_command"


@pytest.fixture()
def favor(monkeypatch):
    if SEARCH_MODULE not in cli_main.COMMAND_MODULES:  # until the lead wires it into main.py
        monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, SEARCH_MODULE))
    loaded = []

    def fake_loader(spec=None, device="cpu"):
        loaded.append(spec)
        return query_encoder_module.AlignedQueryEncoder(FakeAlignedModel())

    monkeypatch.setattr(query_encoder_module, "load_query_encoder", fake_loader)
    cli_main.loaded_models = loaded
    return cli_main.main


def test_text_search_json(favor, planted_store, capsys):
    code = favor(["search", "red circle", "--db", planted_store.uri, "--k", "1", "--json", "--model", "fake"])
    out = json.loads(capsys.readouterr().out)
    assert code == 0
    assert out["mode"] == "av" and out["k"] == 1 and out["query"] == {"text": "red circle"}
    assert [(h["video_id"], h["t_start"], h["t_end"], h["window_indices"]) for h in out["hits"]] == [("aa11", 0.0, 4.0, [0, 1])]
    assert cli_main.loaded_models == ["fake"]


def test_transcript_search_table_needs_no_model(favor, planted_store, capsys):
    code = favor(["search", "zebra", "--db", planted_store.uri, "--mode", "transcript", "--where", "uri^=s3://"])
    out = capsys.readouterr().out.splitlines()
    assert code == 0
    assert out[0].split() == ["#", "video", "span", "score", "transcript"]
    assert out[1].split()[:3] == ["1", "s3://bucket/dogs/c.webm", "0:03.0-0:06.0"]
    assert out[1].endswith("zebra stripes in the sun")
    assert len(out) == 2
    assert cli_main.loaded_models == []


@pytest.mark.parametrize(
    "argv, message",
    [
        (["search", "", "--mode", "transcript"], "query text is empty"),
        (["search", "x", "--k", "0"], "k must be a whole number from 1 to 1000"),
        (["search", "x", "--k", "ten"], "k must be a whole number"),
        (["search", "x", "--mode", "bogus"], "unknown mode"),
        (["search", "x", "--where", "password=1"], "unknown filter column"),
        (["search", "x", "--where", "duration_s>1; DROP TABLE videos"], "needs a number"),
        (["search", "--audio", "/nonexistent.wav"], "does not exist"),
        (["search", "x", "--audio", "/nonexistent.wav"], "not both"),
        (["search", "--mode", "transcript"], "no query given"),
    ],
)
def test_bad_input_is_one_line_and_exit_2(favor, planted_store, capsys, argv, message):
    code = favor([*argv, "--db", planted_store.uri])
    captured = capsys.readouterr()
    assert code == 2
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("favor: error: [search]") and message in lines[0]
    assert captured.out == ""


def test_missing_store_is_one_line_error(favor, tmp_path, capsys):
    code = favor(["search", "x", "--db", str(tmp_path / "nowhere"), "--mode", "transcript"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no store at this path" in err[0]
    assert not (tmp_path / "nowhere").exists()  # a typo does not create an empty store
    (tmp_path / "empty").mkdir()
    code = favor(["search", "x", "--db", str(tmp_path / "empty"), "--mode", "transcript"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and "no indexed windows" in err[0]


@pytest.mark.parametrize(
    "extra, message",
    [
        ([], "no store at this path"),
        (["--port", "0"], "--port must be 1-65535"),
    ],
)
def test_serve_bad_input_is_one_line_and_exit_2(monkeypatch, tmp_path, capsys, extra, message):
    serve_module = "pipelines.cli.serve_command"
    if serve_module not in cli_main.COMMAND_MODULES:
        monkeypatch.setattr(cli_main, "COMMAND_MODULES", (*cli_main.COMMAND_MODULES, serve_module))
    code = cli_main.main(["serve", "--db", str(tmp_path / "nowhere"), *extra])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and err[0].startswith("favor: error:") and message in err[0]
