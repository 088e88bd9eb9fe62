"""Window channels: exact features, exact question match, the channel vector lands on every token of its window and
only there, a model that reads channels refuses unscored windows, and checkpoints keep (or lack) the channels."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from favor_ops.qa.config import QAConfig, tiny_qa_config
from favor_ops.qa.evidence import select_windows, stored_windows
from favor_ops.qa.prompt import PromptWindow, prompt_pieces
from favor_ops.qa.question_grounding import GroundedQuestion, ground_question, question_phrases, question_words
from favor_ops.qa.qa_model import FavorQAModel, QAModelError, load_qa_model, qa_dir
from favor_ops.qa.window_channels import QuestionMatcher, WindowChannelError, av_agreement, channel_features

WIDTH = 4


def _window(i: int, tokens, **channels) -> PromptWindow:
    return PromptWindow(5.0 * i, 5.0 * (i + 1), np.asarray(tokens, np.float32), **channels)


def _axis_encoder(texts: list[str]) -> np.ndarray:
    """Question -> a unit axis: "x" questions point along axis 0, others along axis 1 (a text head, hand-set)."""
    return np.array([[1.0, 0, 0, 0] if "x" in t else [0, 1.0, 0, 0] for t in texts], np.float32)


def test_av_agreement_is_the_cosine_and_none_without_a_modality():
    assert av_agreement([3.0, 4.0], [6.0, 8.0]) == pytest.approx(1.0)
    assert av_agreement([1.0, 0.0], [0.0, 2.0]) == pytest.approx(0.0)
    assert av_agreement([1.0, 1.0], [-1.0, -1.0]) == pytest.approx(-1.0)
    assert av_agreement(None, [1.0]) is None and av_agreement([0.0, 0.0], [1.0, 0.0]) is None


def test_channel_features_are_exact():
    windows = [_window(0, [[0.0]], question_match=0.5, av_agreement=0.25),
               _window(1, [[0.0]], question_match=0.5 - 0.02 * np.log(3), av_agreement=None)]
    f = channel_features(windows, temperature=0.02)
    # softmax of (0, -log 3) = (3/4, 1/4); distance from the best; a missing agreement reads 0 ...
    # the video's mean agreement leaves the missing one out
    np.testing.assert_allclose(f, [[0.75, 0.0, 0.25, 0.25], [0.25, -0.02 * np.log(3), 0.0, 0.25]], rtol=1e-6,
                               atol=1e-7)
    with pytest.raises(WindowChannelError, match="annotate"):
        channel_features([_window(0, [[0.0]])], temperature=0.02)


def test_question_match_is_the_maxsim_of_the_question_vector():
    tokens = [[0.2, 0.9, 0, 0], [0.7, -0.1, 0, 0]]  # (Nq=2, E=4)
    calls = []
    matcher = QuestionMatcher(lambda texts: calls.append(list(texts)) or _axis_encoder(texts))
    a, b = matcher.annotate([_window(0, tokens), _window(1, [[0.1, 0.1, 0, 0]] * 2)], "what about x?")
    assert a.question_match == pytest.approx(0.7) and b.question_match == pytest.approx(0.1)
    assert matcher.annotate([_window(0, tokens)], "other?")[0].question_match == pytest.approx(0.9)
    matcher.annotate([_window(0, tokens)], "what about x?")
    assert calls == [["what about x?"], ["other?"]]  # each question encoded once
    with pytest.raises(WindowChannelError, match="wide"):
        matcher.annotate([_window(0, [[1.0, 0.0]])], "x")


def test_each_word_is_grounded_by_its_best_phrase():
    """Hand-set phrase vectors: "red circle" is seen in window 2 of 3, "apple" heard in window 0."""
    axes = {"red circle": 0, "apple": 1}

    def phrase_vectors(phrases):
        out = np.zeros((len(phrases), WIDTH), np.float32)
        for i, p in enumerate(phrases):
            if p in axes:
                out[i, axes[p]] = 1.0
            elif p == "red":
                out[i, 0] = 0.5  # a word alone matches less than its phrase
        return out

    windows = [np.eye(WIDTH, dtype=np.float32)[[1]], np.zeros((1, WIDTH), np.float32),
               np.eye(WIDTH, dtype=np.float32)[[0]]]  # (Nq=1, E) each
    text = "Red circle or apple?"
    g = ground_question(text, windows, phrase_vectors, temperature=0.02)
    assert question_words(text)[0] == ["red", "circle", "or", "apple"]
    assert question_phrases(["a", "b", "c"]) == [(0, 1), (1, 2), (2, 3), (0, 2), (1, 3)]
    assert [text[a:b] for a, b in g.word_spans] == ["Red", "circle", "or", "apple"]
    np.testing.assert_allclose(g.features[[0, 1, 3], :2], [[1.0, 1.0], [1.0, 1.0], [0.0, 1.0]], atol=1e-6)
    assert g.features[2, 1] == 0.0 and g.features[2, 0] == pytest.approx(0.5)  # "or": no match, the mean index
    # earlier: "red circle" (window 2) comes after "apple" (window 0), weighed among the words that match (all but
    # "or"); the words of one name are at one place and add nothing to each other
    np.testing.assert_allclose(g.features[:, 2], [-0.5, -0.5, 1 / 3, 1.0], atol=1e-6)
    # tokens take their word's features; punctuation gets none
    tokens = g.token_features([(0, 3), (4, 10), (11, 13), (14, 17), (17, 19), (19, 20)])  # "app" + "le" + "?"
    np.testing.assert_allclose(tokens[[3, 4]], [[0.0, 1.0, 1.0], [0.0, 1.0, 1.0]], atol=1e-6)
    assert not tokens[5].any()


def test_select_windows_keeps_the_best_matches_in_time_order():
    windows = [_window(i, np.zeros((2, WIDTH)), question_match=m) for i, m in enumerate([0.1, 0.9, 0.2, 0.8])]
    assert [w.t_start for w in select_windows(windows, max_window_tokens=4)] == [5.0, 15.0]
    assert select_windows(windows, max_window_tokens=8) == windows
    unscored = [dataclasses.replace(w, question_match=None) for w in windows]
    assert select_windows(unscored, max_window_tokens=4) == unscored[:2]


def _channel_model() -> FavorQAModel:
    torch.manual_seed(0)
    model = FavorQAModel.build(tiny_qa_config(window_dim=WIDTH))
    model.question_matcher = QuestionMatcher(_axis_encoder)
    return model


def test_each_window_gets_its_own_channel_vector_on_every_token():
    model = _channel_model()
    t0 = np.eye(WIDTH, dtype=np.float32)[:2]  # matches "x" questions (axis 0): question_match 1
    t1 = np.eye(WIDTH, dtype=np.float32)[2:]  # matches nothing: question_match 0
    windows = [_window(0, t0, av_agreement=0.5), _window(1, t1, av_agreement=-0.5)]
    prompt = model.prompt(windows, "x?")
    scored = [p for p in prompt if isinstance(p, PromptWindow)]
    assert [w.question_match for w in scored] == [1.0, 0.0]
    with torch.no_grad():
        emb = model.embed_prompts([prompt]).inputs_embeds[0]  # (L, H)
        feats = torch.tensor(channel_features(scored, model.cfg.question_match_temperature))
        add = model.channels(feats)  # (2, H)
        # the text pieces are embedded as without channels; each window's tokens are projection + its own vector
        rows, pos = [], 1  # after BOS
        embed = model.base_lm.get_input_embeddings()
        for piece in prompt:
            if isinstance(piece, PromptWindow):
                rows.append(emb[pos:pos + 2])
                pos += 2
            elif isinstance(piece, GroundedQuestion):  # the question's tokens: embedding + their words' grounding
                ids, offsets = model.text_ids_and_offsets(piece.text)
                grounding = torch.tensor(piece.token_features(offsets))
                torch.testing.assert_close(emb[pos:pos + len(ids)],
                                           embed(torch.tensor(ids)) + model.question_channels(grounding))
                pos += len(ids)
            else:
                ids = model.text_ids(piece)
                torch.testing.assert_close(emb[pos:pos + len(ids)], embed(torch.tensor(ids)))
                pos += len(ids)
        assert pos == len(emb)
        torch.testing.assert_close(rows[0], model.projection(torch.tensor(t0)) + add[0])
        torch.testing.assert_close(rows[1], model.projection(torch.tensor(t1)) + add[1])
        assert not torch.allclose(add[0], add[1])


def test_a_channel_model_refuses_unscored_windows():
    model = _channel_model()
    with pytest.raises(QAModelError, match="annotate"):
        model.embed_prompts([prompt_pieces([_window(0, np.zeros((2, WIDTH)))], "x?")])
    model.question_matcher = None
    with pytest.raises(QAModelError, match="question matcher"):
        model.prompt([_window(0, np.zeros((2, WIDTH)))], "x?")


def test_channels_round_trip_and_old_configs_load_without_them(tmp_path):
    model = _channel_model()
    model.save(tmp_path)
    with pytest.raises(QAModelError, match="not an aligned checkpoint"):
        load_qa_model(tmp_path)  # a channel model scores questions with the aligned checkpoint next to it
    # a config saved before window channels existed: no field, no channel weights
    plain = FavorQAModel.build(dataclasses.replace(tiny_qa_config(window_dim=WIDTH), window_channels=False))
    plain.save(tmp_path / "old")
    path = qa_dir(tmp_path / "old") / "qa_config.json"
    payload = json.loads(path.read_text())
    del payload["config"]["window_channels"]
    path.write_text(json.dumps(payload))
    assert QAConfig.from_dict(payload["config"]).window_channels is False
    old = load_qa_model(tmp_path / "old")
    assert old.channels is None and old.question_matcher is None
    # the weights file and the config must agree
    with pytest.raises(QAModelError, match="disagree"):
        FavorQAModel.build(tiny_qa_config(window_dim=WIDTH)).load_trainable_state(plain.trainable_state())
    state = model.trainable_state()
    again = FavorQAModel.build(tiny_qa_config(window_dim=WIDTH))
    again.load_trainable_state(state)
    assert torch.equal(again.channels.weight, model.channels.weight)


def test_stored_windows_carry_the_av_agreement_of_their_row(qa_store):
    rows = qa_store.windows_for_video("aa11")
    windows = stored_windows(qa_store, "aa11")
    for w, row in zip(windows, rows.itertuples()):
        a, v = np.asarray(row.audio_vec, np.float64), np.asarray(row.visual_vec, np.float64)
        assert w.av_agreement == pytest.approx(float(a @ v / np.linalg.norm(a) / np.linalg.norm(v)), abs=1e-6)
