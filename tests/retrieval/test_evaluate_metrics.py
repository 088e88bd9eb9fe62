import numpy as np
import pytest

from favor_ops.retrieval.evaluate import CorpusWindows, av_matching_metrics


def _seg(t0, t1):
    return {"t_start": t0, "t_end": t1, "visual": {"color": "red", "shape": "circle"},
            "audio": {"word": None, "sound": "silence", "tone_hz": None}, "audio_events": []}


def test_av_matching_on_hand_set_vectors():
    records = [{"clip_id": "a", "kind": "video", "segments": [_seg(0.0, 7.0), _seg(7.0, 10.0)]},
               {"clip_id": "b", "kind": "video", "segments": [_seg(0.0, 5.0)]}]
    # windows: a[0,5) and a[5,10) share segment [0, 7) -> never swapped with each other; b[0,5)
    e = np.eye(3, dtype=np.float32)
    audio = np.stack([e[0], e[1], e[2]])
    visual = np.stack([e[0], e[2], e[2]])  # window 1's visual looks like window 2's audio
    w = CorpusWindows(clip_ids=["a", "a", "b"], t_start=np.array([0.0, 5.0, 0.0]), t_end=np.array([5.0, 10.0, 5.0]),
                      tokens=np.zeros((3, 1, 3), np.float32), audio_vec=audio, visual_vec=visual,
                      has_audio=np.array([True, True, True]), has_video=np.array([True, True, True]))
    m = av_matching_metrics(w, records)
    # genuine pairs: (0,2), (2,0), (1,2), (2,1) -> 4
    # i=0: cos(a0,v0)=1 > cos(a2,v0)=0 win; i=2: cos(a2,v2)=1 > cos(a0,v2)=0 win, > cos(a1,v2)=0 win;
    # i=1: cos(a1,v1)=0 > cos(a2,v1)=1? no -> 3 of 4
    assert m["pairs"] == 4 and m["accuracy"] == 0.75 and m["n"] == 3
    # top1: i=0: a0 vs v0=1, v2=0 -> yes; i=1: a1 vs v1=0, v2=0 -> tie is not a win; i=2: a2.v2=1 > a2.v0, a2.v1=1? no
    assert abs(m["top1"] - 1 / 3) < 1e-9


class _TextByColour:
    """Stands in for an aligned model's text side: a caption naming red -> e0, blue -> e1."""

    def encode_text(self, texts):
        import torch

        return torch.tensor([[1.0, 0.0] if "red" in t else [0.0, 1.0] if "blue" in t else [0.0, 0.0] for t in texts])


def test_top_hit_iou_is_the_span_search_returns_and_the_window_iou_is_kept():
    from favor_ops.retrieval.evaluate import text_retrieval_metrics

    blue = {**_seg(0.0, 5.0), "visual": {"color": "blue", "shape": "square"}}
    records = [{"clip_id": "a", "kind": "video", "segments": [_seg(0.0, 3.0) | {"visual": None}, _seg(3.0, 8.0),
                                                              _seg(8.0, 15.0) | {"visual": None}]},
               {"clip_id": "b", "kind": "video", "segments": [blue]}]
    # one token per window: a[0,5) a[5,10) a[10,15) b[0,5); "a red circle" ranks a1 > a0 > a2 > b0
    tokens = np.array([[[0.9, 0.0]], [[1.0, 0.0]], [[0.1, 0.0]], [[0.0, 1.0]]], np.float32)
    w = CorpusWindows(clip_ids=["a", "a", "a", "b"], t_start=np.array([0.0, 5.0, 10.0, 0.0]),
                      t_end=np.array([5.0, 10.0, 15.0, 5.0]), tokens=tokens, audio_vec=np.zeros((4, 2), np.float32),
                      visual_vec=np.zeros((4, 2), np.float32), has_audio=np.zeros(4, bool), has_video=np.ones(4, bool))
    m = text_retrieval_metrics(_TextByColour(), w, records)["visual"]
    assert m["n"] == 2 and m["r1"] == 1.0
    # red circle [3, 8): search merges a1 with the touching a0 and a2 -> [0, 15), IoU 5/15; the top window a1 alone
    # [5, 10): 3/7, which is also the best window. Blue square [0, 5): b0 alone, IoU 1.
    assert m["iou"] == pytest.approx((5 / 15 + 1) / 2)
    assert m["iou_window"] == pytest.approx((3 / 7 + 1) / 2)
    assert m["iou_oracle"] == pytest.approx((3 / 7 + 1) / 2)
