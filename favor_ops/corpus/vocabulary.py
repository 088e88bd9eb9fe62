"""The closed vocabulary of the synthetic corpus: what can be seen and heard.

Colours are far apart in RGB (minimum pairwise Euclidean distance checked by
tests) so that the dominant colour of a decoded, lossy-compressed frame still
names the shape colour. Backgrounds are dark or neutral and far from every shape
colour. Words are short, common, acoustically distinct English nouns, none of
which is a colour, shape or sound name (so captions stay unambiguous).
"""

from __future__ import annotations

from dataclasses import dataclass

RGB = tuple[int, int, int]

# Shape colours: name -> (R, G, B) uint8.
COLORS: dict[str, RGB] = {
    "red": (230, 25, 25),
    "green": (30, 190, 40),
    "blue": (30, 70, 235),
    "yellow": (245, 230, 30),
    "purple": (150, 40, 190),
    "orange": (250, 130, 10),
    "white": (245, 245, 245),
}

# Neutral backgrounds: name -> (R, G, B) uint8; far from every shape colour.
BACKGROUNDS: dict[str, RGB] = {
    "gray": (90, 90, 90),
    "black": (12, 12, 12),
    "dark_blue": (15, 20, 70),
}

SHAPES: tuple[str, ...] = ("circle", "square", "triangle", "star")

# How a shape moves during a segment. Horizontal motions are used on landscape
# frames, vertical ones on portrait frames (the long axis has room to move).
MOTIONS_LANDSCAPE: tuple[str, ...] = ("static", "left_to_right", "right_to_left")
MOTIONS_PORTRAIT: tuple[str, ...] = ("static", "top_to_bottom", "bottom_to_top")

WORDS: tuple[str, ...] = (
    "apple", "banana", "river", "mountain", "guitar", "window", "rocket", "pencil",
    "tiger", "garden", "candle", "dragon", "hammer", "jungle", "kettle", "lemon",
    "magnet", "ocean", "pillow", "rabbit", "thunder", "violin", "wagon", "zebra",
    "basket", "cookie", "dolphin", "forest", "helmet", "island", "jacket", "ladder",
    "monkey", "pepper", "robot", "spider", "tomato", "umbrella",
)


@dataclass(frozen=True)
class ToneSpec:
    """A pure sine beep: `name` is what captions call it ("high beep")."""

    name: str
    hz: int


# Tones an octave apart: low/mid/high beep.
TONES: tuple[ToneSpec, ...] = (
    ToneSpec("low", 440),
    ToneSpec("mid", 880),
    ToneSpec("high", 1760),
)
TONE_NAME_BY_HZ: dict[int, str] = {t.hz: t.name for t in TONES}

# Non-speech sounds a segment can carry (besides, or instead of, a word).
SOUNDS: tuple[str, ...] = ("tone", "noise", "silence")


def background_phrase(background: str) -> str:
    """`dark_blue` -> `dark blue` for captions."""
    return background.replace("_", " ")


def motion_phrase(motion: str) -> str:
    """`left_to_right` -> `moving left to right`; `static` -> `` (nothing to say)."""
    if motion == "static":
        return ""
    return "moving " + motion.replace("_", " ")
