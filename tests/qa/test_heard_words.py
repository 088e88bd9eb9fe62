"""Heard words: exact softmax weights over the words, the weighted word embedding lands on every token of its window
(and only there), checkpoints keep the words and their scale, and QA training names the words its corpus speaks."""

from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest
import torch

from favor_ops.qa.config import QAConfig, tiny_qa_config
from favor_ops.qa.heard_words import heard_word_phrases, heard_word_weights
from favor_ops.qa.prompt import PromptWindow
from favor_ops.qa.qa_model import FavorQAModel, QAModelError, qa_dir
from favor_ops.qa.questions import spoken_words
from favor_ops.qa.window_channels import QuestionMatcher

WIDTH = 4
WORDS = ("apple", "river")


def _encoder(texts: list[str]) -> np.ndarray:
    """A hand-set text head: "... apple" -> axis 2, "... river" -> axis 3, anything else (questions) -> axis 0."""
    axis = {"apple": 2, "river": 3}
    return np.stack([np.eye(WIDTH, dtype=np.float32)[axis.get(t.split()[-1], 0)] for t in texts])


def _heard_model() -> FavorQAModel:
    torch.manual_seed(0)
    model = FavorQAModel.build(dataclasses.replace(tiny_qa_config(window_dim=WIDTH), heard_words=WORDS))
    model.question_matcher = QuestionMatcher(_encoder)
    return model


def test_heard_word_weights_are_a_softmax_of_the_maxsim_over_the_words():
    vectors = np.eye(3, dtype=np.float32)  # three words along the three axes
    tokens = np.array([[0.5, 0.1, 0.0], [0.2, 0.3, -0.1]], np.float32)  # MaxSim per word: 0.5, 0.3, 0.0
    got = heard_word_weights([tokens], vectors, temperature=0.1)
    expected = np.exp(np.array([0.5, 0.3, 0.0]) / 0.1)
    np.testing.assert_allclose(got[0], expected / expected.sum(), rtol=1e-6)
    assert heard_word_weights([], vectors, 0.1).shape == (0, 3)
    assert heard_word_phrases(WORDS) == ["someone says apple", "someone says river"]


def test_each_window_gets_the_embedding_of_the_word_it_sounds_like():
    model = _heard_model()
    with torch.no_grad():
        model.heard_word_scale.fill_(2.0)
    apple = np.eye(WIDTH, dtype=np.float32)[[2, 1]]  # sounds like "apple" (MaxSim 1 vs 0)
    river = np.eye(WIDTH, dtype=np.float32)[[3, 1]]  # sounds like "river"
    windows = [PromptWindow(0.0, 5.0, apple), PromptWindow(5.0, 10.0, river)]
    prompt = model.prompt(windows, "what is said?")
    scored = [p for p in prompt if isinstance(p, PromptWindow)]
    with torch.no_grad():
        embed = model.base_lm.get_input_embeddings()
        word = {w: embed(torch.tensor(model.text_ids(w))).mean(dim=0) for w in WORDS}  # (H,) each
        heard = model.heard_word_embeddings(scored)  # (2, H)
        p = 1.0 / (1.0 + np.exp(-1.0 / model.cfg.heard_word_temperature))  # softmax weight of the matching word
        torch.testing.assert_close(heard[0], p * word["apple"] + (1 - p) * word["river"])
        torch.testing.assert_close(heard[1], p * word["river"] + (1 - p) * word["apple"])
        without = model._window_add(scored) - 2.0 * heard  # the window channels alone
        feats_only = dataclasses.replace(model.cfg, heard_words=())
        plain = FavorQAModel(feats_only, model.lm, model.tokenizer)
        plain.channels = model.channels
        torch.testing.assert_close(without, plain._window_add(scored))
        emb = model.embed_prompts([prompt]).inputs_embeds[0]  # (L, H)
        sizes = [2 if isinstance(p, PromptWindow) else len(model.text_ids(p if isinstance(p, str) else p.text))
                 for p in prompt]  # tokens per piece
        starts = [1 + sum(sizes[:i]) for i, p in enumerate(prompt) if isinstance(p, PromptWindow)]  # after BOS
        for start, w, tokens in zip(starts, range(2), (apple, river)):
            torch.testing.assert_close(emb[start:start + 2],
                                       model.projection(torch.tensor(tokens)) + model._window_add(scored)[w])


def test_a_heard_word_model_needs_its_text_head():
    model = _heard_model()
    model.question_matcher = None
    with pytest.raises(QAModelError, match="question matcher"):
        model.heard_word_embeddings([PromptWindow(0.0, 5.0, np.zeros((2, WIDTH), np.float32))])
    with pytest.raises(ValueError, match="window_channels"):
        dataclasses.replace(tiny_qa_config(window_dim=WIDTH), window_channels=False, heard_words=WORDS)


def test_heard_words_round_trip_and_old_configs_load_without_them(tmp_path):
    model = _heard_model()
    with torch.no_grad():
        model.heard_word_scale.fill_(0.25)
    model.save(tmp_path)
    payload = json.loads((qa_dir(tmp_path) / "qa_config.json").read_text())
    cfg = QAConfig.from_dict(payload["config"])
    assert cfg.heard_words == WORDS
    again = FavorQAModel.build(cfg)
    again.load_trainable_state(model.trainable_state())
    assert again.heard_word_scale.item() == 0.25
    del payload["config"]["heard_words"]  # a config saved before heard words existed
    assert QAConfig.from_dict(payload["config"]).heard_words == ()
    with pytest.raises(QAModelError, match="heard words"):
        FavorQAModel.build(tiny_qa_config(window_dim=WIDTH)).load_trainable_state(model.trainable_state())


def test_spoken_words_are_the_distinct_words_of_the_manifest():
    records = [{"segments": [{"audio": {"word": "river"}}, {"audio": {"sound": "tone"}}, {}]},
               {"segments": [{"audio": {"word": "apple"}}, {"audio": {"word": "river"}}]}, {}]
    assert spoken_words(records) == ("apple", "river")


def test_a_word_of_several_tokens_is_the_mean_of_their_embeddings():
    model = FavorQAModel.build(dataclasses.replace(tiny_qa_config(window_dim=WIDTH), heard_words=("apple", "zyzzyvas")))
    ids = model.text_ids("zyzzyvas")
    assert len(ids) > 1
    with torch.no_grad():
        embed = model.base_lm.get_input_embeddings()
        matrix = model.heard_word_matrix()  # (2, H)
        torch.testing.assert_close(matrix[0], embed(torch.tensor(model.text_ids("apple")))[0])
        torch.testing.assert_close(matrix[1], embed(torch.tensor(ids)).mean(dim=0))
