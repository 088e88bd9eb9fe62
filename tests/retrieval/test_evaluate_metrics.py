import numpy as np

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
