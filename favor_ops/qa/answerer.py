"""Answerer: a QA checkpoint ready to answer questions about stored videos (`favor ask`)."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

from favor_ops.qa.evidence import QAInputError, select_windows, stored_windows, window_budget
from favor_ops.qa.prompt import PromptWindow
from favor_ops.qa.qa_model import QA_WEIGHTS_FILE, FavorQAModel, QAModelError, has_qa_model, load_qa_model, qa_dir
from favor_ops.qa.window_channels import QuestionMatcher


@dataclass
class Answer:
    video_id: str
    question: str
    answer: str
    evidence: list[tuple[float, float]]  # the window spans shown to the LLM, seconds


def qa_model_version(checkpoint: str | Path) -> str:
    digest = hashlib.sha256((qa_dir(checkpoint) / QA_WEIGHTS_FILE).read_bytes()).hexdigest()[:12]
    return f"qa-{digest}"


class Answerer:
    def __init__(self, qa: FavorQAModel, model_version: str, checkpoint: str | None = None):
        self.qa = qa
        self.model_version = model_version
        self.checkpoint = checkpoint
        self._matcher = qa.question_matcher

    @classmethod
    def load(cls, model: str | None = None, device: str = "cpu") -> "Answerer":
        from favor_ops.models.default_checkpoint import default_model_spec

        spec = model or default_model_spec()
        if not Path(spec).is_dir() or not has_qa_model(spec):
            raise QAModelError(f"{spec}: no QA model in this checkpoint (train one with "
                               f"`favor train --stage qa --corpus DIR --model CKPT`, or run `make demo`)")
        return cls(load_qa_model(spec, device=device), qa_model_version(spec), spec)

    def _question_matcher(self) -> QuestionMatcher | None:
        """Scores windows against the question in the store's space (the aligned checkpoint's text head); None when
        the checkpoint has no aligned model."""
        if self._matcher is None and self.checkpoint:
            from favor_ops.retrieval.aligned_model import is_aligned_checkpoint

            if is_aligned_checkpoint(self.checkpoint):
                self._matcher = QuestionMatcher.from_checkpoint(self.checkpoint)
        return self._matcher

    def evidence(self, store, video_id: str, question: str) -> list[PromptWindow]:
        if not isinstance(question, str) or not question.strip():
            raise QAInputError(video_id, "empty question")
        windows = stored_windows(store, video_id)
        if windows and windows[0].tokens.shape[-1] != self.qa.cfg.window_dim:
            raise QAInputError(video_id, f"stored tokens are {windows[0].tokens.shape[-1]} wide, the QA model reads "
                                         f"{self.qa.cfg.window_dim}: index with the same checkpoint")
        budget = self.qa.cfg.max_window_tokens
        matcher = self._question_matcher() if len(windows) > window_budget(windows, budget) else None
        if matcher is not None:
            windows = matcher.annotate(windows, question)
        return select_windows(windows, budget)

    def generate(self, questions: list[str], evidence: list[list[PromptWindow]]) -> list[str]:
        return self.qa.generate([self.qa.prompt(w, q) for q, w in zip(questions, evidence)])

    def ask(self, store, video_id: str, question: str) -> Answer:
        windows = self.evidence(store, video_id, question)
        answer = self.generate([question], [windows])[0]
        return Answer(video_id, question, answer, [(w.t_start, w.t_end) for w in windows])
