"""The swapped-audio partner: the next clip whose audio sounds in other 0.5 s frames, tiled as the model hears it."""

import numpy as np

from favor_ops.qa.swapped_audio import fit_audio, sounding_frames, swapped_partner


def _clip(clip_id, duration_s, *events, **extra):
    """A usable manifest record with one segment holding `events` (type, t_start, t_end)."""
    audio_events = [{"type": kind, "t_start": t0, "t_end": t1} for kind, t0, t1 in events]
    return {"clip_id": clip_id, "kind": "video", "has_video": True, "has_audio": True, "duration_s": duration_s,
            "segments": [{"t_start": 0.0, "t_end": duration_s, "audio_events": audio_events}], **extra}


def test_sounding_frames_mark_every_frame_an_event_overlaps_and_tile_a_shorter_track():
    clip = _clip("a", 2.0, ("word", 0.2, 0.7), ("silence", 1.0, 2.0))
    np.testing.assert_array_equal(sounding_frames(clip, 2.0, fps=2.0), [True, True, False, False])
    # the track repeats every 2 s when it replaces the audio of a 5 s clip (fit_audio tiles it)
    np.testing.assert_array_equal(sounding_frames(clip, 5.0, fps=2.0), [1, 1, 0, 0, 1, 1, 0, 0, 1, 1])
    assert sounding_frames({"clip_id": "x", "duration_s": 3.0, "segments": [{"t_start": 0, "t_end": 3}]}, 3.0,
                           2.0) is None  # no audio events listed: not a synthetic record


def test_a_partner_sounding_in_the_same_frames_is_skipped():
    """v1's word and v2's word sound in frames 0 and 1 of a 1 s clip: the swap would change nothing the model sees
    at 2 FPS, so v1 gets v3's audio. v2 gets v3 (its next clip) as before."""
    records = [_clip("v1", 1.0, ("word", 0.12, 0.59)), _clip("v2", 22.0, ("word", 0.13, 0.68)),
               {"clip_id": "bad", "kind": "bad", "has_video": True, "has_audio": True},
               _clip("v3", 10.0, ("word", 0.83, 1.24)), _clip("silent", 4.0, has_audio=False)]
    assert swapped_partner(records, "v1")["clip_id"] == "v3"
    assert swapped_partner(records, "v2")["clip_id"] == "v3"
    assert swapped_partner(records, "v3")["clip_id"] == "v1"  # cyclic, skipping unusable records
    # at 8 FPS the two words differ (v1's starts in frame 0, 0-0.125 s; v2's in frame 1): v2 is v1's partner
    assert swapped_partner(records, "v1", fps=8.0)["clip_id"] == "v2"


def test_when_every_clip_sounds_alike_the_next_clip_is_the_partner():
    records = [_clip(f"v{i}", 1.0, ("word", 0.1, 0.4)) for i in range(3)]
    assert [swapped_partner(records, r["clip_id"])["clip_id"] for r in records] == ["v1", "v2", "v0"]
    unlabelled = [{k: v for k, v in r.items() if k != "segments"} for r in records]
    assert swapped_partner(unlabelled, "v0")["clip_id"] == "v1"


def test_fit_audio_tiles_and_trims():
    np.testing.assert_array_equal(fit_audio(np.array([1.0, 2.0], np.float32), 5), [1, 2, 1, 2, 1])
    np.testing.assert_array_equal(fit_audio(np.arange(6, dtype=np.float32), 3), [0, 1, 2])
    np.testing.assert_array_equal(fit_audio(np.zeros(0, np.float32), 2), [0, 0])
