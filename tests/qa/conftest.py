"""A real LanceDB store with planted window tokens (tests/retrieval_search/planted_store.py: D = 8, 4 tokens per
window) and a tiny QA checkpoint trained here to answer from those tokens."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from tests.retrieval_search.planted_store import D, VIDEO_A, VIDEO_C, build_store

# Two videos, one question, two answers: only the window tokens tell them apart.
TRAINED = {VIDEO_A: "apple", VIDEO_C: "river"}
QUESTION = "What word is spoken?"


def train_tiny_qa(store, steps: int = 120):
    from favor_ops.qa.config import tiny_qa_config
    from favor_ops.qa.evidence import stored_windows
    from favor_ops.qa.prompt import prompt_pieces
    from favor_ops.qa.qa_model import FavorQAModel

    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # tiny matrices: one thread is ~10x faster than two fighting over a busy CPU
    torch.manual_seed(0)
    # no window channels: the planted store has no aligned checkpoint to score questions with
    model = FavorQAModel.build(dataclasses.replace(tiny_qa_config(window_dim=D), window_channels=False))
    prompts = [prompt_pieces(stored_windows(store, vid), QUESTION) for vid in TRAINED]
    answers = list(TRAINED.values())
    opt = torch.optim.AdamW(model.parameters(), lr=3e-3)
    model.train()
    for _ in range(steps):
        loss = model.answer_loss(prompts, answers)
        opt.zero_grad()
        loss.backward()
        opt.step()
    torch.set_num_threads(threads)
    return model.eval()


@pytest.fixture(scope="module")
def qa_store(tmp_path_factory):
    directory = tmp_path_factory.mktemp("qa_store")
    (directory / "a.mp4").write_bytes(b"")  # the planted store only needs a uri
    return build_store(directory / "db", str(directory / "a.mp4"))


@pytest.fixture(scope="module")
def qa_checkpoint(qa_store, tmp_path_factory):
    """A checkpoint directory holding only a QA model (enough for `favor ask` on a store of D = 8 tokens)."""
    checkpoint = tmp_path_factory.mktemp("qa_ckpt")
    train_tiny_qa(qa_store).save(checkpoint)
    return checkpoint
