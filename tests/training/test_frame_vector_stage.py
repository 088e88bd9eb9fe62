"""Frame vector stage: each frame's captions come from the manifest at the frame's time, and training the two frame
heads (everything else frozen) makes each frame score its own captions first."""

from types import SimpleNamespace

import numpy as np
import torch

from favor_ops.retrieval.queries import Segment
from favor_ops.training.frame_vector_stage import FrameVectorConfig, frame_labels, train_frame_vectors
from favor_ops.training.window_dataset import WindowItem


def _dataset(segments, windows, fps=2.0, L=4):
    return SimpleNamespace(cfg=SimpleNamespace(windows=SimpleNamespace(fps=fps, frames_per_window=L)),
                           segments=segments, windows=windows)


def test_frames_get_the_visual_shown_at_their_time_and_the_event_that_covers_their_slice():
    segments = [
        Segment("v0", 0.0, 1.2, {"color": "red", "shape": "circle", "word": "apple"}, word_span=(0.3, 0.9)),
        Segment("v0", 1.2, 3.0, {"color": "blue", "shape": "square", "sound": "noise"}, sound_span=(1.45, 1.55)),
        Segment("v0", 3.0, 4.0, {"word": "river"}, word_span=(3.05, 3.6)),  # nothing shown
    ]
    windows = [WindowItem(0, 0, 0.0, 2.0, 4, 0, 0, segment_ids=(0, 1)),
               WindowItem(0, 1, 2.0, 4.0, 3, 4, 100, segment_ids=(1, 2))]  # a last window with 3 real frames
    labels = frame_labels(_dataset(segments, windows))
    assert labels.visual_captions == ["a blue square", "a red circle"]
    assert labels.audio_captions == ["a burst of noise", "someone says apple", "someone says river"]
    # frames at 0.0, 0.5, 1.0, 1.5 s: red until 1.2 s; apple covers [0.0, 0.5) by 0.2 s and [0.5, 1.0) by 0.4 s;
    # the noise burst covers [1.0, 1.5) and [1.5, 2.0) by 0.05 s each: under min_overlap_s, no label
    np.testing.assert_array_equal(labels.visual[0], [1, 1, 1, 0])
    np.testing.assert_array_equal(labels.audio[0], [1, 1, -1, -1])
    # frames at 2.0, 2.5, 3.0 s (and a padded one): blue, blue, nothing shown; river covers [3.0, 3.5) by 0.45 s
    np.testing.assert_array_equal(labels.visual[1], [0, 0, -1, -1])
    np.testing.assert_array_equal(labels.audio[1], [-1, -1, 2, -1])


class _FakeAligned:
    """The frame stage's view of an aligned model: frozen text vectors and the retrieval heads' frame heads."""

    def __init__(self, heads, text_vectors: dict[str, torch.Tensor]):
        self.heads, self.device, self._text = heads, torch.device("cpu"), text_vectors

    def encode_text(self, texts):
        return torch.stack([self._text[t] for t in texts])


def test_training_makes_each_frame_score_its_own_caption_first(monkeypatch):
    from favor_ops.retrieval.heads import RetrievalHeads, RetrievalHeadsConfig
    from favor_ops.training import frame_vector_stage

    torch.manual_seed(0)
    D, E, L = 6, 8, 4
    heads = RetrievalHeads(RetrievalHeadsConfig(window_dim=4, embed_dim=E, text_hidden_dim=0, modality_dim=D,
                                                frame_vectors=True, frame_vector_hidden_dim=16))
    segments = [Segment("v0", 0.0, 1.0, {"color": "red", "shape": "circle", "word": "apple"}, word_span=(0.0, 0.5)),
                Segment("v0", 1.0, 2.0, {"color": "blue", "shape": "square", "word": "river"}, word_span=(1.5, 2.0))]
    windows = [WindowItem(0, i, 0.0, 2.0, L, 0, 0, segment_ids=(0, 1)) for i in range(6)]
    dataset = _dataset(segments, windows, L=L)
    # frame means: each frame's visual mean says which shape (feature 0 / 1), its audio mean which word (2 / 3)
    visual = torch.zeros(6, L, D)
    visual[:, :2, 0], visual[:, 2:, 1] = 1.0, 1.0
    audio = torch.zeros(6, L, D)
    audio[:, 0, 2], audio[:, 3, 3] = 1.0, 1.0
    audio += 0.05 * torch.randn(6, L, D)
    monkeypatch.setattr(frame_vector_stage, "window_frame_means",
                        lambda aligned, ds, idx, batch_windows=32: (audio[idx], visual[idx],
                                                                     torch.ones(len(idx), dtype=torch.bool),
                                                                     torch.ones(len(idx), dtype=torch.bool)))
    text = {c: v for c, v in zip(["a blue square", "a red circle", "someone says apple", "someone says river"],
                                 torch.nn.functional.normalize(torch.randn(4, E), dim=-1))}
    aligned = _FakeAligned(heads, text)
    before = [p.detach().clone() for p in heads.parameters()]
    summary = train_frame_vectors(aligned, dataset, FrameVectorConfig(steps=150, batch_windows=4, lr=1e-2),
                                  np.random.default_rng(0), progress=False)
    assert summary["steps"] == 150 and summary["windows"] == 6
    with torch.no_grad():
        seen = heads.frame_visual(visual[:1])[0] @ torch.stack([text["a red circle"], text["a blue square"]]).T
        heard = heads.frame_audio(audio[:1])[0] @ torch.stack([text["someone says apple"],
                                                                text["someone says river"]]).T  # (L, 2)
    assert seen.argmax(dim=1).tolist() == [0, 0, 1, 1]
    assert heard[0].argmax() == 0 and heard[3].argmax() == 1
    assert heard[0, 0] > heard[1:3, 0].max() and heard[3, 1] > heard[:3, 1].max()  # silence scores below the word
    changed = {n for (n, p), b in zip(heads.named_parameters(), before) if not torch.equal(p, b)}
    assert changed and all(n.startswith(("frame_audio_proj", "frame_visual_proj")) for n in changed)
