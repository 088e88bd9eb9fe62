"""A seeded, pure plan of a synthetic corpus: which files, which segments, what is seen and heard.

Nothing here touches the disk or a subprocess: `plan_corpus(cfg, n_videos, seed)`
returns frozen dataclasses that the renderers (scene.py, soundtrack.py) and the
encoder (encode.py) turn into files. The same (config, n_videos, seed) always
gives the same plan.

The first `len(REQUIRED_VARIANTS)` files cycle deterministically through every
variant the corpus must cover (containers, codecs, frame rates incl. one
variable-frame-rate file, tiny / 1080p / portrait resolutions, one long
low-resolution file, audio-only, video without audio, a still image); the rest
are drawn at random. Each file draws from its own generator
`numpy.random.default_rng([seed, index])`, so adding files never changes
earlier ones.

Timing conventions: file durations are whole seconds (when the requested
[min, max] range allows), segment boundaries are multiples of
`segment_quantum_s`, every segment lasts `segment_min_s`..`segment_max_s`
(shorter only if the whole file is shorter), segments tile [0, duration_s)
exactly. A still image has duration_s 0 and one segment [0, 0].
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from favor_ops.corpus import vocabulary as vocab


@dataclass(frozen=True)
class CorpusConfig:
    """Every size and rate the corpus generator uses."""

    sample_rate_hz: int = 48000            # rendered audio: mono float32, written as 16-bit wav
    segment_min_s: float = 1.0
    segment_max_s: float = 8.0
    segment_quantum_s: float = 0.5         # segment boundaries are multiples of this
    duration_quantum_s: float = 1.0        # file durations are multiples of this when possible
    long_duration_s: float = 180.0         # the one long (low-resolution) file
    # Encoding cost cap: a random file's duration_s <= pixel_frame_budget / (width * height * fps),
    # clamped to [hd_min_duration_s, random_max_duration_s]. Keeps 1080p to a few seconds.
    pixel_frame_budget: float = 640 * 360 * 30 * 40.0
    hd_min_duration_s: float = 3.0
    random_max_duration_s: float = 60.0
    audio_only_max_duration_s: float = 40.0
    # Shape geometry: target area as a fraction of the frame, capped by its bounding-box side.
    shape_area_fraction: float = 0.18
    shape_max_extent_fraction: float = 0.9  # bbox side <= this * min(width, height)
    # Sounding objects: what is heard comes from what is seen. While an audio event of its segment plays (a word, a
    # beep, a noise burst), the segment's shape is drawn `sounding_scale` times larger (side length, capped by the
    # frame), from `sounding_pad_s` before the event's onset to `sounding_pad_s` after its offset (inside the
    # segment), so a 2 FPS sampling of the video sees every event (0.3 s + 2 * 0.25 s > 0.5 s). Audio and video of a
    # window are then linked by timing, the way a speaker's mouth or a struck drum is: swapped audio puts its events
    # where the picture does not pulse.
    sounding_scale: float = 1.35
    sounding_pad_s: float = 0.25
    # Audio event layout inside a segment (seconds).
    event_margin_s: float = 0.1            # from segment edges
    event_gap_s: float = 0.2               # between a word and a sound in one segment
    combo_min_segment_s: float = 2.5       # a word AND a sound only in segments at least this long
    sound_min_duration_s: float = 0.3
    sound_max_duration_s: float = 0.6
    # Probabilities of a video segment's audio: word only, word + sound, sound only, silence.
    p_word: float = 0.45
    p_word_and_sound: float = 0.25
    p_sound: float = 0.2
    # VFR: frames are rendered at vfr_base_fps and a fixed irregular pattern keeps
    # vfr_keep_pattern frames of every len(pattern) (avg fps = base * kept / len).
    vfr_base_fps: int = 60
    vfr_keep_pattern: tuple[bool, ...] = (True, True, False, True, False, False)


# Corpus profiles. `default` is what evaluation corpora (and archives we are tested on) look like. `training` packs
# more, shorter segments with a spoken word into the same video time: measured with the demo's align training (40 clips
# of 15-30 s, same steps) and a held-out default-profile corpus (seed 2002, 24 clips), word query R@1 0.23 -> 0.50,
# joint 0.41 -> 0.53, single-modality R@5 0.78 -> 0.92, at the same synthesis and training cost (a spoken word per
# vocabulary word occurs ~5 times instead of ~3 in 40 clips: 181 vs 109 spoken words).
CORPUS_PROFILES: dict[str, CorpusConfig] = {
    "default": CorpusConfig(),
    "training": CorpusConfig(segment_max_s=5.0, p_word=0.5, p_word_and_sound=0.3, p_sound=0.1),
}


@dataclass(frozen=True)
class VariantSpec:
    """What kind of file to write: container, codecs, rate, size, duration rule."""

    kind: str                    # "video" | "audio_only" | "no_audio" | "still_image"
    container: str               # file extension: mp4 webm mkv m4a wav ogg jpg png
    video_codec: str | None      # ffprobe codec_name: h264 vp9 mjpeg png
    audio_codec: str | None      # ffprobe codec_name: aac opus flac vorbis pcm_s16le
    fps: int | None              # average frames per second (None: no video / still image)
    width: int | None
    height: int | None
    vfr: bool = False
    long: bool = False           # the one long file: duration = min(long_duration_s, max_duration_s)
    min_duration_s: float = 0.0  # draw at least this long (still clipped to the requested max)


# The first files of every corpus, in order; a 12-file corpus covers them all.
REQUIRED_VARIANTS: tuple[VariantSpec, ...] = (
    VariantSpec("video", "mp4", "h264", "aac", 30, 320, 240, min_duration_s=8.0),
    VariantSpec("video", "webm", "vp9", "opus", 25, 640, 360, min_duration_s=6.0),
    VariantSpec("video", "mkv", "h264", "flac", 24, 426, 240, min_duration_s=6.0),
    VariantSpec("video", "mp4", "h264", "aac", 60, 1920, 1080, min_duration_s=3.0),
    VariantSpec("video", "mp4", "h264", "aac", 30, 360, 640, min_duration_s=5.0),
    VariantSpec("video", "mp4", "h264", "aac", 30, 480, 360, vfr=True, min_duration_s=6.0),
    VariantSpec("video", "mkv", "h264", "vorbis", 24, 160, 120, long=True),
    VariantSpec("audio_only", "m4a", None, "aac", None, None, None),
    VariantSpec("audio_only", "wav", None, "pcm_s16le", None, None, None),
    VariantSpec("audio_only", "ogg", None, "vorbis", None, None, None),
    VariantSpec("no_audio", "webm", "vp9", None, 30, 320, 240),
    VariantSpec("still_image", "jpg", "mjpeg", None, None, 640, 480),
)

# Random draws for files after the required ones.
RANDOM_KIND_WEIGHTS: dict[str, float] = {"video": 0.76, "audio_only": 0.1, "no_audio": 0.08, "still_image": 0.06}
RANDOM_VIDEO_CONTAINERS: tuple[tuple[str, str, tuple[str, ...]], ...] = (
    ("mp4", "h264", ("aac",)),
    ("webm", "vp9", ("opus",)),
    ("mkv", "h264", ("aac", "vorbis", "flac")),
)
RANDOM_NO_AUDIO_CONTAINERS: tuple[tuple[str, str], ...] = (("mp4", "h264"), ("webm", "vp9"), ("mkv", "h264"))
RANDOM_AUDIO_ONLY: tuple[tuple[str, str], ...] = (("m4a", "aac"), ("wav", "pcm_s16le"), ("ogg", "vorbis"), ("ogg", "opus"))
RANDOM_STILLS: tuple[tuple[str, str], ...] = (("jpg", "mjpeg"), ("png", "png"))
RANDOM_FPS: tuple[int, ...] = (24, 25, 30, 60)
RANDOM_RESOLUTIONS: tuple[tuple[int, int], ...] = (
    (160, 120), (320, 240), (426, 240), (480, 270), (640, 360), (640, 480),
    (854, 480), (360, 640), (1280, 720), (1920, 1080),
)


@dataclass(frozen=True)
class VisualPlan:
    color: str
    shape: str
    motion: str
    background: str

    @property
    def rgb(self) -> tuple[int, int, int]:
        return vocab.COLORS[self.color]

    @property
    def background_rgb(self) -> tuple[int, int, int]:
        return vocab.BACKGROUNDS[self.background]


@dataclass(frozen=True)
class AudioPlan:
    """What a segment sounds like; exact event times are fixed when the audio is rendered."""

    word: str | None
    sound: str | None              # "tone" | "noise" | "silence" | None
    tone_hz: int | None
    sound_first: bool = False      # with a word and a sound: which comes first
    onset_fraction: float = 0.0    # in [0, 1): where the events sit in the segment's free time
    sound_duration_s: float = 0.0
    noise_seed: int = 0


@dataclass(frozen=True)
class SegmentPlan:
    t_start: float
    t_end: float
    visual: VisualPlan | None
    audio: AudioPlan | None        # None: the file has no audio track


@dataclass(frozen=True)
class ClipPlan:
    index: int
    clip_id: str
    variant: VariantSpec
    duration_s: float
    segments: tuple[SegmentPlan, ...] = field(default_factory=tuple)

    @property
    def file(self) -> str:
        return f"{self.clip_id}.{self.variant.container}"

    @property
    def has_video(self) -> bool:
        return self.variant.video_codec is not None

    @property
    def has_audio(self) -> bool:
        return self.variant.audio_codec is not None


def plan_corpus(
    n_videos: int,
    seed: int,
    min_duration_s: float = 1.0,
    max_duration_s: float = 180.0,
    cfg: CorpusConfig = CorpusConfig(),
) -> tuple[ClipPlan, ...]:
    """The whole corpus plan: `n_videos` clips, deterministic in (n_videos, seed, durations, cfg)."""
    if n_videos < 0:
        raise ValueError(f"n_videos must be >= 0, got {n_videos}")
    if not (0 < min_duration_s <= max_duration_s):
        raise ValueError(f"need 0 < min_duration_s <= max_duration_s, got {min_duration_s}, {max_duration_s}")
    id_width = max(3, len(str(max(n_videos - 1, 0))))
    return tuple(
        plan_clip(i, f"v{i:0{id_width}d}", seed, min_duration_s, max_duration_s, cfg) for i in range(n_videos)
    )


def plan_clip(
    index: int,
    clip_id: str,
    seed: int,
    min_duration_s: float,
    max_duration_s: float,
    cfg: CorpusConfig,
    variant: VariantSpec | None = None,
) -> ClipPlan:
    """One clip; `variant` overrides the required/random choice (then duration is drawn in [min, max])."""
    rng = np.random.default_rng([int(seed), int(index)])
    if variant is None:
        variant = REQUIRED_VARIANTS[index] if index < len(REQUIRED_VARIANTS) else _random_variant(rng)
    duration_s = _draw_duration(rng, variant, min_duration_s, max_duration_s, cfg)
    segments = _plan_segments(rng, variant, duration_s, cfg)
    return ClipPlan(index=index, clip_id=clip_id, variant=variant, duration_s=duration_s, segments=segments)


def _random_variant(rng: np.random.Generator) -> VariantSpec:
    kinds = list(RANDOM_KIND_WEIGHTS)
    weights = np.array([RANDOM_KIND_WEIGHTS[k] for k in kinds])
    kind = kinds[int(rng.choice(len(kinds), p=weights / weights.sum()))]
    if kind == "audio_only":
        container, acodec = RANDOM_AUDIO_ONLY[int(rng.integers(len(RANDOM_AUDIO_ONLY)))]
        return VariantSpec("audio_only", container, None, acodec, None, None, None)
    width, height = RANDOM_RESOLUTIONS[int(rng.integers(len(RANDOM_RESOLUTIONS)))]
    if kind == "still_image":
        container, vcodec = RANDOM_STILLS[int(rng.integers(len(RANDOM_STILLS)))]
        return VariantSpec("still_image", container, vcodec, None, None, width, height)
    fps = int(RANDOM_FPS[int(rng.integers(len(RANDOM_FPS)))])
    if kind == "no_audio":
        container, vcodec = RANDOM_NO_AUDIO_CONTAINERS[int(rng.integers(len(RANDOM_NO_AUDIO_CONTAINERS)))]
        return VariantSpec("no_audio", container, vcodec, None, fps, width, height)
    container, vcodec, acodecs = RANDOM_VIDEO_CONTAINERS[int(rng.integers(len(RANDOM_VIDEO_CONTAINERS)))]
    acodec = acodecs[int(rng.integers(len(acodecs)))]
    return VariantSpec("video", container, vcodec, acodec, fps, width, height)


def _quantize_duration(raw_s: float, lo_s: float, hi_s: float, quantum_s: float) -> float:
    """Round to a multiple of quantum_s inside [lo_s, hi_s]; if no multiple fits, clip raw_s to the range."""
    q_lo, q_hi = math.ceil(lo_s / quantum_s - 1e-9), math.floor(hi_s / quantum_s + 1e-9)
    if q_lo <= q_hi:
        q = min(max(int(round(raw_s / quantum_s)), q_lo), q_hi)
        return round(q * quantum_s, 6)
    return round(min(max(raw_s, lo_s), hi_s), 6)


def _draw_duration(
    rng: np.random.Generator, variant: VariantSpec, min_s: float, max_s: float, cfg: CorpusConfig
) -> float:
    if variant.kind == "still_image":
        return 0.0
    if variant.long:
        return _quantize_duration(min(cfg.long_duration_s, max_s), min_s, max_s, cfg.duration_quantum_s)
    if variant.kind == "audio_only":
        cap_s = cfg.audio_only_max_duration_s
    else:
        assert variant.width and variant.height and variant.fps
        cap_s = cfg.pixel_frame_budget / (variant.width * variant.height * variant.fps)
        cap_s = min(max(cap_s, cfg.hd_min_duration_s), cfg.random_max_duration_s)
    hi = max(min(max_s, cap_s), min_s)
    lo = min(max(min_s, variant.min_duration_s), hi)
    # Log-uniform: many short files, a few longer ones.
    raw = float(np.exp(rng.uniform(np.log(lo), np.log(hi)))) if hi > lo else lo
    return _quantize_duration(raw, lo, hi, cfg.duration_quantum_s)


def _split_segments(rng: np.random.Generator, duration_s: float, cfg: CorpusConfig) -> list[tuple[float, float]]:
    """Tile [0, duration_s) with segments of segment_min_s..segment_max_s on the quantum grid."""
    q = cfg.segment_quantum_s
    lo_units = int(round(cfg.segment_min_s / q))
    hi_units = int(round(cfg.segment_max_s / q))
    total_units = int(math.floor(duration_s / q + 1e-9))
    if total_units < 2 * lo_units:
        return [(0.0, duration_s)]
    lengths: list[int] = []
    remaining = total_units
    while remaining > hi_units or (remaining >= 2 * lo_units and rng.random() < 0.5):
        d = int(rng.integers(lo_units, min(hi_units, remaining - lo_units) + 1))
        lengths.append(d)
        remaining -= d
    lengths.append(remaining)
    bounds = [0.0]
    acc = 0
    for d in lengths:
        acc += d
        bounds.append(round(acc * q, 6))
    bounds[-1] = duration_s  # the last segment also takes any sub-quantum remainder
    return list(zip(bounds[:-1], bounds[1:]))


def _plan_visual(rng: np.random.Generator, variant: VariantSpec, previous: VisualPlan | None) -> VisualPlan:
    colors, shapes = list(vocab.COLORS), list(vocab.SHAPES)
    portrait = (variant.height or 0) > (variant.width or 0)
    motions = vocab.MOTIONS_PORTRAIT if portrait else vocab.MOTIONS_LANDSCAPE
    if variant.kind == "still_image":
        motions = ("static",)
    while True:
        color = colors[int(rng.integers(len(colors)))]
        shape = shapes[int(rng.integers(len(shapes)))]
        if previous is None or (color, shape) != (previous.color, previous.shape):
            break
    motion = motions[int(rng.integers(len(motions)))]
    backgrounds = list(vocab.BACKGROUNDS)
    if previous is not None and rng.random() < 0.7:
        background = previous.background  # backgrounds mostly persist within a file
    else:
        background = backgrounds[int(rng.integers(len(backgrounds)))]
    return VisualPlan(color=color, shape=shape, motion=motion, background=background)


def _plan_audio(
    rng: np.random.Generator, segment_s: float, previous_word: str | None, cfg: CorpusConfig
) -> AudioPlan:
    p = np.array([cfg.p_word, cfg.p_word_and_sound, cfg.p_sound, 1.0 - cfg.p_word - cfg.p_word_and_sound - cfg.p_sound])
    mode = int(rng.choice(4, p=p / p.sum()))
    if mode == 1 and segment_s < cfg.combo_min_segment_s:
        mode = 0
    word = None
    if mode in (0, 1):
        choices = [w for w in vocab.WORDS if w != previous_word]
        word = choices[int(rng.integers(len(choices)))]
    sound = tone_hz = None
    sound_duration_s = 0.0
    if mode in (1, 2):
        sound = ("tone", "noise")[int(rng.random() < 0.3)]
        if sound == "tone":
            tone_hz = int(vocab.TONES[int(rng.integers(len(vocab.TONES)))].hz)
        steps = int(round((cfg.sound_max_duration_s - cfg.sound_min_duration_s) / 0.05))
        sound_duration_s = round(cfg.sound_min_duration_s + 0.05 * int(rng.integers(steps + 1)), 6)
    elif mode == 3:
        sound = "silence"
    return AudioPlan(
        word=word,
        sound=sound,
        tone_hz=tone_hz,
        sound_first=bool(rng.random() < 0.5) if (word and sound in ("tone", "noise")) else False,
        onset_fraction=round(float(rng.random()), 6),
        sound_duration_s=sound_duration_s,
        noise_seed=int(rng.integers(2**31 - 1)),
    )


def _plan_segments(
    rng: np.random.Generator, variant: VariantSpec, duration_s: float, cfg: CorpusConfig
) -> tuple[SegmentPlan, ...]:
    has_video = variant.video_codec is not None
    has_audio = variant.audio_codec is not None
    if variant.kind == "still_image":
        return (SegmentPlan(0.0, 0.0, _plan_visual(rng, variant, None), None),)
    segments: list[SegmentPlan] = []
    previous_visual: VisualPlan | None = None
    previous_word: str | None = None
    for t_start, t_end in _split_segments(rng, duration_s, cfg):
        visual = _plan_visual(rng, variant, previous_visual) if has_video else None
        audio = _plan_audio(rng, t_end - t_start, previous_word, cfg) if has_audio else None
        previous_visual = visual or previous_visual
        previous_word = audio.word if audio and audio.word else previous_word
        segments.append(SegmentPlan(t_start, t_end, visual, audio))
    return tuple(segments)


def caption(segment: SegmentPlan) -> str:
    """A plain-English description of what is seen and heard in the segment."""
    parts: list[str] = []
    if segment.visual is not None:
        v = segment.visual
        motion = vocab.motion_phrase(v.motion)
        parts.append(
            f"a {v.color} {v.shape}" + (f" {motion}" if motion else "") + f" on a {vocab.background_phrase(v.background)} background"
        )
    a = segment.audio
    if a is None:
        if segment.visual is not None:
            parts.append("with no sound")
        return " ".join(parts)
    heard: list[str] = []
    if a.word:
        heard.append(f"someone says {a.word}")
    if a.sound == "tone":
        heard.append(f"a {vocab.TONE_NAME_BY_HZ[int(a.tone_hz)]} beep plays")
    elif a.sound == "noise":
        heard.append("a burst of noise plays")
    if a.word and a.sound in ("tone", "noise") and a.sound_first:
        heard.reverse()
    if heard:
        joined = " and then ".join(heard)
        parts.append(("while " + joined) if parts else joined)
    else:
        parts.append("in silence" if parts else "silence")
    return " ".join(parts)
