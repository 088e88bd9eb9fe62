import argparse
import json

import pytest

from pipelines.cli import corpus_command


def _parser():
    parser = argparse.ArgumentParser(prog="favor")
    corpus_command.register(parser.add_subparsers(dest="command"))
    return parser


def test_cli_synth_json(tmp_path, capsys):
    out = tmp_path / "c"
    args = _parser().parse_args(["corpus", "synth", str(out), "--videos", "3", "--seed", "5",
                                 "--max-duration", "2", "--bad", "--json"])
    assert args.handler is corpus_command.run_synth
    assert args.handler(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["files"] == 7
    assert summary["by_kind"]["video"]["files"] == 3
    assert summary["by_kind"]["bad"]["files"] == 4
    lines = (out / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x)["file"] for x in lines][:3] == ["v000.mp4", "v001.webm", "v002.mkv"]


def test_cli_human_output(tmp_path, capsys):
    args = _parser().parse_args(["corpus", "synth", str(tmp_path / "h"), "--videos", "1", "--max-duration", "1"])
    assert args.handler(args) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[0].startswith("video") and "1 files" in out[0]
    assert out[-1].startswith("total") and "1 files in" in out[-1]


def test_cli_bare_corpus_prints_usage_and_fails(capsys):
    args = _parser().parse_args(["corpus"])
    assert args.handler(args) == 2


def test_cli_rejects_negative_count(tmp_path):
    args = _parser().parse_args(["corpus", "synth", str(tmp_path), "--videos", "-1"])
    with pytest.raises(ValueError):
        args.handler(args)
