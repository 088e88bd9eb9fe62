import argparse

import numpy as np

from pipelines.cli import train_command


def _parser():
    parser = argparse.ArgumentParser()
    train_command.register(parser.add_subparsers(dest="command"))
    return parser


def test_qa_stage_needs_a_corpus_and_a_checkpoint(tmp_path, capsys):
    args = _parser().parse_args(["train", "--stage", "qa"])
    assert args.handler(args) == 2
    assert "manifest.jsonl" in capsys.readouterr().err


def test_qa_stage_trains_a_tiny_qa_model_into_the_checkpoint(tmp_path, capsys):
    """A tiny preset + a 1-clip corpus: the QA stage writes OUT/qa next to the copied FAVOR weights, logs its loss,
    and `--resume` continues from the saved step."""
    import json

    from favor_ops.corpus.synth import synthesize_corpus
    from favor_ops.qa.qa_model import has_qa_model, load_qa_model

    synthesize_corpus(tmp_path / "c", n_videos=1, seed=3, min_duration_s=12.0, max_duration_s=12.0, progress=False)
    base = ["train", "--stage", "qa", "--corpus", str(tmp_path / "c"), "--out", str(tmp_path / "o"),
            "--model", "tiny", "--batch", "2", "--threads", "1", "--json"]
    args = _parser().parse_args(base + ["--steps", "2"])
    assert args.handler(args) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["steps"] == 2 and summary["qa_preset"] == "tiny" and summary["questions"] > 0
    assert has_qa_model(tmp_path / "o")
    qa = load_qa_model(tmp_path / "o")
    assert qa.cfg.window_dim == 32 and qa.channels is not None  # the tiny preset reads window channels
    # ... scoring questions with the text head of the aligned checkpoint saved next to it
    from favor_ops.qa.prompt import PromptWindow

    windows = [PromptWindow(0.0, 5.0, np.eye(32, dtype=np.float32)[:4])]
    scored = [p for p in qa.prompt(windows, "When is apple said?") if isinstance(p, PromptWindow)]
    assert -1.0 <= scored[0].question_match <= 1.0
    assert len(qa.generate([qa.prompt(windows, "When is apple said?")], max_new_tokens=2)) == 1
    log = (tmp_path / "o" / "qa" / "qa_train_log.jsonl").read_text().splitlines()
    assert [json.loads(line)["step"] for line in log] == [2]
    args = _parser().parse_args(base + ["--steps", "3", "--resume"])
    assert args.handler(args) == 0
    assert json.loads(capsys.readouterr().out)["start_step"] == 2


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


def test_align_av_flags_reach_the_saved_heads(tmp_path, capsys):
    """--av-frame-kernel sets the frame heads' temporal width; --av-from queries goes back to query-token vectors."""
    from favor_ops.corpus.synth import synthesize_corpus
    from favor_ops.retrieval.aligned_model import load_aligned_model

    synthesize_corpus(tmp_path / "c", n_videos=1, seed=3, min_duration_s=6.0, max_duration_s=6.0, progress=False)
    base = ["train", "--stage", "align", "--corpus", str(tmp_path / "c"), "--model", "tiny", "--steps", "1",
            "--visual-steps", "1", "--speech-steps", "1", "--batch", "2", "--json",
            "--cache-dir", str(tmp_path / "cache")]
    for out, flags, expected in (("k1", ["--av-frame-kernel", "1"], (10, 1)), ("q", ["--av-from", "queries"], (0, 3))):
        args = _parser().parse_args(base + ["--out", str(tmp_path / out)] + flags)
        assert args.handler(args) == 0
        heads = load_aligned_model(str(tmp_path / out)).heads.cfg
        assert (heads.av_frames, heads.av_frame_kernel) == expected
    capsys.readouterr()


def test_qa_stage_mixes_recombined_clips_unless_told_not_to(tmp_path, capsys):
    """Default: part of each batch comes from the corpus's windows recombined (the summary counts the labelled
    windows); --recombined-share 0 trains on the corpus's own clips only; a share outside [0, 1] is refused."""
    import json

    from favor_ops.corpus.synth import synthesize_corpus

    synthesize_corpus(tmp_path / "c", n_videos=4, seed=3, min_duration_s=15.0, max_duration_s=15.0, progress=False)
    base = ["train", "--stage", "qa", "--corpus", str(tmp_path / "c"), "--model", "tiny", "--batch", "2",
            "--threads", "1", "--steps", "1", "--json"]
    args = _parser().parse_args(base + ["--out", str(tmp_path / "mixed")])
    assert args.handler(args) == 0
    mixed = json.loads(capsys.readouterr().out)
    assert mixed["recombined_windows"] >= 6
    assert mixed["text_space_init"] is False  # the tiny LM (48 wide) is not as wide as its tokens (32)
    # the tiny preset reads window channels, so it also reads the words its corpus speaks
    from favor_ops.corpus.manifest import read_manifest
    from favor_ops.qa.qa_model import load_qa_model
    from favor_ops.qa.questions import spoken_words

    words = spoken_words(read_manifest(tmp_path / "c"))
    assert words and mixed["heard_words"] == len(words)
    assert load_qa_model(tmp_path / "mixed").cfg.heard_words == words
    args = _parser().parse_args(base + ["--out", str(tmp_path / "own"), "--recombined-share", "0"])
    assert args.handler(args) == 0
    own = json.loads(capsys.readouterr().out)
    assert own["recombined_windows"] == 0 and own["heard_words"] == len(words)
    args = _parser().parse_args(base + ["--out", str(tmp_path / "deaf"), "--no-heard-words"])
    assert args.handler(args) == 0
    assert json.loads(capsys.readouterr().out)["heard_words"] == 0
    assert load_qa_model(tmp_path / "deaf").heard_word_scale is None
    args = _parser().parse_args(base + ["--out", str(tmp_path / "bad"), "--recombined-share", "1.5"])
    assert args.handler(args) == 2
    assert "--recombined-share must be in [0, 1]" in capsys.readouterr().err
