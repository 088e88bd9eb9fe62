import json

import pytest

from favor_ops.corpus.synth import synthesize_corpus
from favor_ops.retrieval.aligned_model import is_aligned_checkpoint, load_aligned_model
from favor_ops.training.align import TRAIN_LOG_FILE, TRAINING_STATE_FILE, AlignConfig, train_align


@pytest.fixture(scope="module")
def tiny_corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("align_corpus")
    synthesize_corpus(out, n_videos=2, seed=5, min_duration_s=6.0, max_duration_s=6.0, progress=False)
    return out


def _cfg(tmp_path, steps, **kw):
    return AlignConfig(model="tiny", steps=steps, batch_windows=4, embed_dim=16, text_hidden_dim=8,
                       checkpoint_every=2, log_every=1, visual_steps=2, visual_batch_frames=4, speech_steps=2,
                       speech_batch_files=2, frame_vector_steps=3, frame_vector_batch_windows=4, num_threads=1,
                       cache_dir=str(tmp_path / "cache"), progress=False, **kw)


def test_three_steps_write_checkpoint_log_and_resume(tiny_corpus, tmp_path):
    out = tmp_path / "ckpt"
    summary = train_align(tiny_corpus, out, _cfg(tmp_path, 3))
    assert summary["start_step"] == 0 and summary["steps"] == 3 and summary["files"] == 2
    assert summary["windows"] == 4  # two 6 s files -> windows [0, 5) and [5, 6) each
    assert is_aligned_checkpoint(out) and (out / TRAINING_STATE_FILE).is_file()
    rows = [json.loads(line) for line in (out / TRAIN_LOG_FILE).read_text().splitlines()]
    assert [r["step"] for r in rows if r["stage"] == "visual_frames"] == [1, 2]
    rows = [r for r in rows if r["stage"] == "windows"]
    assert [r["step"] for r in rows] == [1, 2, 3]
    assert all(r["loss"] > 0 for r in rows)
    assert [r["step"] for r in rows_all(out) if r["stage"] == "frame_vectors"] == [1, 2, 3]  # after the windows
    model = load_aligned_model(str(out))
    assert model.embed_dim == 16 and model.heads.cfg.av_frames > 0 and not model.heads.cfg.identity
    assert model.heads.cfg.frame_vectors and summary["frame_vector_stage"]["steps"] == 3

    resumed = train_align(tiny_corpus, out, _cfg(tmp_path, 5), resume=True)
    assert resumed["start_step"] == 3
    rows = [json.loads(line) for line in (out / TRAIN_LOG_FILE).read_text().splitlines()]
    assert [r["step"] for r in rows if r["stage"] == "windows"] == [1, 2, 3, 4, 5]
    assert len([r for r in rows if r["stage"] == "visual_frames"]) == 2  # not repeated on resume
    # the window steps moved the text head, so the frame heads trained again after them
    assert [r["step"] for r in rows if r["stage"] == "frame_vectors"] == [1, 2, 3, 1, 2, 3]
    import torch

    assert torch.load(out / TRAINING_STATE_FILE, weights_only=False)["step"] == 5
    done = train_align(tiny_corpus, out, _cfg(tmp_path, 5), resume=True)  # nothing left: nothing retrains
    assert done["start_step"] == 5 and done["frame_vector_stage"] is None
    assert len([r for r in rows_all(out) if r["stage"] == "frame_vectors"]) == 6


def rows_all(out) -> list[dict]:
    return [json.loads(line) for line in (out / TRAIN_LOG_FILE).read_text().splitlines()]


def test_full_path_trains_the_whole_causal_qformer(tiny_corpus, tmp_path):
    import torch

    from favor_ops.models.loading import load_favor_model

    out = tmp_path / "full"
    train_align(tiny_corpus, out, _cfg(tmp_path, 1, train_frame_attention=True))
    start = load_favor_model("tiny").state_dict()
    trained = load_aligned_model(str(out)).favor.state_dict()
    frame_key = "causal_qformer.layers.0.frame_attn.query.weight"
    assert not torch.equal(start[frame_key], trained[frame_key])  # trained
    assert torch.equal(start["llm_proj.weight"], trained["llm_proj.weight"])  # not used by retrieval: frozen
    whisper_key = next(k for k in start if k.startswith("speech.encoder.") and k.endswith("weight"))
    assert not torch.equal(start[whisper_key], trained[whisper_key])  # the speech event stage trained it
    vision_key = next(k for k in start if k.startswith("visual.vision_model.") and k.endswith("weight"))
    assert not torch.equal(start[vision_key], trained[vision_key])  # the visual frame stage trained it


def test_fast_path_freezes_the_slot_side(tiny_corpus, tmp_path):
    import torch

    from favor_ops.models.loading import load_favor_model

    out = tmp_path / "fast"
    train_align(tiny_corpus, out, _cfg(tmp_path, 1))
    start = load_favor_model("tiny").state_dict()
    trained = load_aligned_model(str(out)).favor.state_dict()
    assert torch.equal(start["causal_qformer.layers.0.frame_attn.query.weight"],
                       trained["causal_qformer.layers.0.frame_attn.query.weight"])
    assert torch.equal(start["causal_qformer.slot_position.weight"], trained["causal_qformer.slot_position.weight"])
    assert not torch.equal(start["causal_qformer.layers.0.cross_attn.query.weight"],
                           trained["causal_qformer.layers.0.cross_attn.query.weight"])


def test_one_seed_trains_one_model_whatever_the_global_generator(tiny_corpus, tmp_path):
    import torch

    def trained_weights(name, seed, global_seed):
        torch.manual_seed(global_seed)  # what ran before in the process must not leak into training
        train_align(tiny_corpus, tmp_path / name, _cfg(tmp_path, 2, seed=seed))
        model = load_aligned_model(str(tmp_path / name))
        return {**model.favor.state_dict(), **{f"heads.{k}": v for k, v in model.heads.state_dict().items()}}

    first, again, other = trained_weights("a", 0, 1), trained_weights("b", 0, 2), trained_weights("c", 1, 1)
    assert first.keys() == again.keys()
    assert all(torch.equal(first[k], again[k]) for k in first)
    assert any(not torch.equal(first[k], other[k]) for k in first)  # the seed does reach the weights
