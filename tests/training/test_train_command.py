import argparse

from pipelines.cli import train_command


def _parser():
    parser = argparse.ArgumentParser()
    train_command.register(parser.add_subparsers(dest="command"))
    return parser


def test_qa_stage_is_not_implemented_yet(capsys):
    args = _parser().parse_args(["train", "--stage", "qa"])
    assert args.handler(args) == 2
    assert "not implemented yet" in capsys.readouterr().err


def test_align_needs_a_corpus_with_a_manifest(tmp_path, capsys):
    args = _parser().parse_args(["train", "--stage", "align", "--corpus", str(tmp_path), "--out", str(tmp_path / "o")])
    assert args.handler(args) == 2
    assert "manifest.jsonl" in capsys.readouterr().err


def test_align_trains_a_tiny_model_from_the_command_line(tmp_path, capsys):
    import json

    from favor_ops.corpus.synth import synthesize_corpus
    from favor_ops.retrieval.aligned_model import is_aligned_checkpoint

    synthesize_corpus(tmp_path / "c", n_videos=1, seed=3, min_duration_s=6.0, max_duration_s=6.0, progress=False)
    argv = ["train", "--stage", "align", "--corpus", str(tmp_path / "c"), "--out", str(tmp_path / "o"),
            "--model", "tiny", "--steps", "1", "--visual-steps", "1", "--speech-steps", "1", "--batch", "2",
            "--json"]
    args = _parser().parse_args(argv)
    assert args.handler(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 1 and summary["windows"] == 2 and summary["files"] == 1
    assert is_aligned_checkpoint(tmp_path / "o")
