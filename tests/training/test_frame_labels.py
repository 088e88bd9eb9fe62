"""labelled_frames: each decoded frame gets its segment's visual attributes and whether its shape is sounding."""

from types import SimpleNamespace

import numpy as np

from favor_ops.retrieval.queries import Segment
from favor_ops.training.frame_pretrain import labelled_frames


def test_frames_are_labelled_with_their_segment_and_sounding_state():
    fps = 2
    segments = [
        Segment("v0", 0.0, 1.5, {"color": "red", "shape": "circle", "word": "apple"}, sounding_spans=((0.4, 1.1),)),
        Segment("v0", 1.5, 3.0, {"color": "blue", "shape": "square"}),
        Segment("v1", 0.0, 1.0, {"word": "river"}),  # audio-only clip: no visual label
    ]
    files = [SimpleNamespace(clip_id="v0", frames=np.zeros((6, 4, 4, 3), np.uint8), visual_tokens=object(),
                             is_still_image=False),
             SimpleNamespace(clip_id="v1", frames=np.zeros((0, 4, 4, 3), np.uint8), visual_tokens=None,
                             is_still_image=False)]
    dataset = SimpleNamespace(cfg=SimpleNamespace(windows=SimpleNamespace(fps=fps)), segments=segments, files=files)
    frames, vocab = labelled_frames(dataset)
    red = (("color", "red"), ("shape", "circle"))
    blue = (("color", "blue"), ("shape", "square"))
    # frames at 0.0, 0.5, 1.0 s in the red segment (0.5 and 1.0 s inside its sounding span), 1.5, 2.0, 2.5 s blue
    assert frames == [(0, 0, red, False), (0, 1, red, True), (0, 2, red, True),
                      (0, 3, blue, False), (0, 4, blue, False), (0, 5, blue, False)]
    assert vocab == sorted([red, blue])
