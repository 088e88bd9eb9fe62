import pytest

from favor_ops.corpus.plan import (
    REQUIRED_VARIANTS,
    AudioPlan,
    CorpusConfig,
    SegmentPlan,
    VisualPlan,
    caption,
    plan_corpus,
)

CFG = CorpusConfig()


def test_plan_is_deterministic_for_a_seed_and_differs_across_seeds():
    a = plan_corpus(30, seed=7)
    b = plan_corpus(30, seed=7)
    c = plan_corpus(30, seed=8)
    assert a == b
    assert a != c
    assert [x.segments for x in a] != [x.segments for x in c]


def test_adding_clips_does_not_change_earlier_ones():
    assert plan_corpus(20, seed=3)[:15] == plan_corpus(15, seed=3)


def test_first_clips_cycle_through_required_variants():
    clips = plan_corpus(14, seed=1)
    assert [c.variant for c in clips[: len(REQUIRED_VARIANTS)]] == list(REQUIRED_VARIANTS)
    assert [c.file for c in clips[:3]] == ["v000.mp4", "v001.webm", "v002.mkv"]
    kinds = {c.variant.kind for c in clips[:12]}
    assert kinds == {"video", "audio_only", "no_audio", "still_image"}
    assert {c.variant.container for c in clips[:12]} >= {"mp4", "webm", "mkv", "m4a", "wav", "ogg", "jpg"}
    assert {c.variant.fps for c in clips[:12]} >= {24, 25, 30, 60}
    assert sum(c.variant.vfr for c in clips[:12]) == 1
    sizes = {(c.variant.width, c.variant.height) for c in clips[:12]}
    assert {(160, 120), (1920, 1080), (360, 640)} <= sizes


def test_long_clip_and_hd_clips_are_bounded():
    clips = plan_corpus(60, seed=7)
    long = [c for c in clips if c.variant.long]
    assert len(long) == 1 and long[0].duration_s == 180.0 and long[0].variant.width == 160
    for c in clips:
        v = c.variant
        if v.width and v.fps and not v.long:
            budget_s = max(CFG.pixel_frame_budget / (v.width * v.height * v.fps), CFG.hd_min_duration_s)
            assert c.duration_s <= budget_s + 0.5, c
            if v.width * v.height >= 1920 * 1080:
                assert c.duration_s <= 6.0, c
        assert 0.0 <= c.duration_s <= 180.0


@pytest.mark.parametrize("seed", [0, 7, 123])
def test_segments_tile_duration_with_one_to_eight_second_pieces(seed):
    for clip in plan_corpus(40, seed=seed, min_duration_s=1.0, max_duration_s=180.0):
        segs = clip.segments
        if clip.variant.kind == "still_image":
            assert clip.duration_s == 0.0 and [(s.t_start, s.t_end) for s in segs] == [(0.0, 0.0)]
            continue
        assert segs[0].t_start == 0.0 and segs[-1].t_end == clip.duration_s
        for prev, nxt in zip(segs, segs[1:]):
            assert prev.t_end == nxt.t_start
        for s in segs:
            assert 1.0 <= s.t_end - s.t_start <= 8.0
            assert (s.visual is not None) == clip.has_video
            assert (s.audio is not None) == clip.has_audio


def test_duration_limits_are_respected():
    clips = plan_corpus(20, seed=5, min_duration_s=2.0, max_duration_s=4.0)
    for c in clips:
        if c.variant.kind != "still_image":
            assert 2.0 <= c.duration_s <= 4.0
    assert clips[6].duration_s == 4.0  # the long variant takes the maximum


def test_bad_duration_arguments_raise():
    with pytest.raises(ValueError):
        plan_corpus(3, seed=0, min_duration_s=5.0, max_duration_s=2.0)


def test_caption_wording():
    v = VisualPlan(color="red", shape="circle", motion="left_to_right", background="dark_blue")
    both = AudioPlan(word="apple", sound="tone", tone_hz=1760, sound_first=True, sound_duration_s=0.3)
    assert caption(SegmentPlan(0.0, 3.0, v, both)) == (
        "a red circle moving left to right on a dark blue background while a high beep plays and then someone says apple"
    )
    quiet = AudioPlan(word=None, sound="silence", tone_hz=None)
    still = VisualPlan(color="white", shape="star", motion="static", background="gray")
    assert caption(SegmentPlan(0.0, 1.0, still, quiet)) == "a white star on a gray background in silence"
    assert caption(SegmentPlan(0.0, 1.0, still, None)) == "a white star on a gray background with no sound"
    noise = AudioPlan(word=None, sound="noise", tone_hz=None, sound_duration_s=0.4)
    assert caption(SegmentPlan(0.0, 1.0, None, noise)) == "a burst of noise plays"


def test_training_profile_packs_more_spoken_words_into_the_same_video_time():
    """The `training` profile (demo training corpus): shorter segments, more of them with a word; same durations."""
    from favor_ops.corpus.plan import CORPUS_PROFILES, plan_corpus

    def words_and_seconds(profile):
        clips = plan_corpus(40, 1001, 15.0, 30.0, cfg=CORPUS_PROFILES[profile])
        words = sum(1 for c in clips for s in c.segments if s.audio is not None and s.audio.word)
        longest = max(s.t_end - s.t_start for c in clips for s in c.segments)
        return words, sum(c.duration_s for c in clips), longest

    default_words, default_s, default_longest = words_and_seconds("default")
    training_words, training_s, training_longest = words_and_seconds("training")
    assert training_s == default_s  # durations are drawn before segments: the same video time
    assert training_words >= 1.5 * default_words  # measured: 181 vs 109 spoken words (seed 1001)
    assert training_longest <= CORPUS_PROFILES["training"].segment_max_s < default_longest
