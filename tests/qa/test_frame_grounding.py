"""Frame grounding: with per-frame vectors, a question word's position is read per frame (two events of one window
are ordered) and the word said during its frames lands on its tokens; without them, grounding is per window."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from favor_ops.qa.config import tiny_qa_config
from favor_ops.qa.prompt import PromptWindow
from favor_ops.qa.qa_model import FavorQAModel
from favor_ops.qa.question_grounding import GroundedQuestion, ground_question, prompt_frames, question_words
from favor_ops.qa.window_channels import QuestionMatcher

E = 4
AXES = {"red circle": 0, "blue square": 1, "a red circle": 0, "a blue square": 1,
        "someone says apple": 2, "someone says river": 3}
QUESTION = "Which comes first, the blue square or the red circle?"
T = 0.05


def _text_head(texts: list[str]) -> np.ndarray:
    """Hand-set text vectors: the shapes (and their captions) and the two words on four axes, every other text the
    zero vector."""
    out = np.zeros((len(texts), E), np.float32)
    for i, t in enumerate(texts):
        if t in AXES:
            out[i, AXES[t]] = 1.0
    return out


def _window(frames: bool = True) -> PromptWindow:
    """One 2 s window of L = 4 frames: the red circle at frames 0-1, the blue square at 2-3; apple is said in frame
    0, river in frame 3; both shapes are in the window's one token."""
    eye = np.eye(E, dtype=np.float32)
    token = ((eye[0] + eye[1]) / np.sqrt(2))[None]  # (Nq=1, E)
    if not frames:
        return PromptWindow(0.0, 2.0, token)
    return PromptWindow(0.0, 2.0, token, frame_visual=eye[[0, 0, 1, 1]],
                        frame_audio=np.stack([eye[2], np.zeros(E), np.zeros(E), eye[3]]).astype(np.float32))


def _softmax(x):
    e = np.exp((x - x.max()) / T)
    return e / e.sum()


def test_two_shapes_of_one_window_are_ordered_by_their_frames_and_carry_the_word_said_during_them():
    w = _window()
    g = ground_question(QUESTION, [w.tokens], _text_head, 0.02, frames=prompt_frames([w]), frame_temperature=T,
                        heard_words=("apple", "river"))
    words = question_words(QUESTION)[0]
    red, blue = words.index("red"), words.index("blue")
    shown = {"red": np.array([1.0, 1, 0, 0]), "blue": np.array([0.0, 0, 1, 1])}  # frame match of each shape's phrase
    for i, name in ((red, "red"), (blue, "blue")):
        weights = _softmax(shown[name])
        assert g.features[i, 0] == pytest.approx(float(weights @ np.arange(4)) / 3, abs=1e-6)
        said = np.stack([np.exp((np.array([1.0, 0, 0, 0]) - 1) / T), np.exp((np.array([0.0, 0, 0, 1]) - 1) / T)])
        during = said @ weights  # (K,)
        np.testing.assert_allclose(g.heard[i], during / during.sum(), atol=1e-6)
    assert g.features[red, 0] == pytest.approx(1 / 6, abs=1e-6)
    assert g.features[blue, 0] == pytest.approx(5 / 6, abs=1e-6)
    assert g.heard[red].argmax() == 0 and g.heard[blue].argmax() == 1  # apple with the circle, river with the square
    assert g.heard[red, 0] > 0.999
    assert g.heard[words.index("which")].sum() < 1e-8  # a word that names nothing carries no heard word
    # earlier: the circle's words see the square's two words after them (+1 each) and each other at their own place
    # (0); the question's other words match nothing and weigh ~0
    assert g.features[red, 2] == pytest.approx(2 / 3, abs=1e-5)
    assert g.features[blue, 2] == pytest.approx(-2 / 3, abs=1e-5)
    # the strength is still the window's MaxSim of the best phrase
    assert g.features[red, 1] == pytest.approx(1 / np.sqrt(2), abs=1e-6)


def test_without_frame_vectors_grounding_is_per_window_and_hears_nothing():
    w = _window(frames=False)
    assert prompt_frames([w, _window()]) is None  # every window needs them
    g = ground_question(QUESTION, [w.tokens], _text_head, 0.02, frames=prompt_frames([w]), frame_temperature=T,
                        heard_words=("apple", "river"))
    words = question_words(QUESTION)[0]
    assert g.heard is None and g.token_heard([(0, 5)]) is None
    assert g.features[words.index("red"), 0] == g.features[words.index("blue"), 0] == 0.0  # one window: one place


def test_the_word_heard_during_a_question_word_is_added_to_its_tokens():
    torch.manual_seed(0)
    model = FavorQAModel.build(dataclasses.replace(tiny_qa_config(window_dim=E), heard_words=("apple", "river"),
                                                   frame_temperature=T))
    model.question_matcher = QuestionMatcher(_text_head)
    with torch.no_grad():
        model.heard_word_scale.fill_(2.0)
    prompt = model.prompt([_window()], QUESTION)
    grounded = next(p for p in prompt if isinstance(p, GroundedQuestion))
    assert grounded.heard is not None
    ids, offsets = model.text_ids_and_offsets(grounded.text)
    heard = grounded.token_heard(offsets)  # (n, K)
    circle = [t for t, (a, b) in enumerate(offsets) if grounded.text[a:b] == "circle"]
    assert circle and heard[circle[0]].argmax() == 0
    with torch.no_grad():
        emb = model.embed_prompts([prompt]).inputs_embeds[0]
        embed = model.base_lm.get_input_embeddings()
        expected = (embed(torch.tensor(ids)) + model.question_channels(torch.tensor(grounded.token_features(offsets)))
                    + 2.0 * torch.tensor(heard) @ model.heard_word_matrix())
        rows = emb[-len(ids) - len(model.text_ids(prompt[-1])):-len(model.text_ids(prompt[-1]))]
        torch.testing.assert_close(rows, expected)
        # the same prompt without frame vectors: the question tokens carry no heard word
        plain = model.prompt([_window(frames=False)], QUESTION)
        q = next(p for p in plain if isinstance(p, GroundedQuestion))
        assert q.heard is None


def test_a_qa_checkpoint_saved_with_two_grounding_features_loads_with_the_third_off():
    torch.manual_seed(0)
    model = FavorQAModel.build(tiny_qa_config(window_dim=E))
    state = model.trainable_state()
    state["question_channels.weight"] = state["question_channels.weight"][:, :2].clone()  # (H, 2): an older save
    torch.manual_seed(1)
    loaded = FavorQAModel.build(tiny_qa_config(window_dim=E))
    loaded.load_trainable_state(state)
    weight = loaded.question_channels.weight.detach()
    torch.testing.assert_close(weight[:, :2], state["question_channels.weight"])
    assert not weight[:, 2].any()
