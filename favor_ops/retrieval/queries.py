"""Ground-truth text queries over a synthetic corpus, from its manifest.

A query is a set of attributes and a templated caption:

    kind     attributes                      example text
    visual   color, shape                    "a red circle"
    word     word                            "someone says apple"
    sound    sound ("tone" + tone name | "noise")   "a high beep", "a burst of noise"
    joint    color, shape, word              "a blue square while someone says river"

A segment matches a query when it carries every attribute; a window (clip_id, [t_start, t_end)) is relevant when
its span overlaps (positive length) a matching segment of its clip. Joint queries are kept only when the corpus
holds distractors: segments that match the visual part but not the word, or the word but not the visual part.

Each kind has a few paraphrase templates; `query_text(attrs, variant)` picks one (training draws them at random,
evaluation cycles through them deterministically).
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field

QUERY_KINDS = ("visual", "word", "sound", "joint")
SINGLE_KINDS = ("visual", "word", "sound")

TEMPLATES: dict[str, tuple[str, ...]] = {
    "visual": ("a {color} {shape}", "a {color} {shape} on screen", "a video showing a {color} {shape}"),
    "word": ("someone says {word}", "a voice saying {word}", "the word {word} is spoken"),
    "tone": ("a {tone} beep", "a {tone} beep plays", "a {tone} pitched beep sound"),
    "noise": ("a burst of noise", "a burst of noise plays", "a short noise burst"),
    "joint": ("a {color} {shape} while someone says {word}", "someone says {word} while a {color} {shape} is shown",
              "a {color} {shape} and a voice saying {word} at the same time"),
}

TONE_NAMES = {440: "low", 880: "mid", 1760: "high"}


def _frozen(attrs: dict) -> tuple:
    return tuple(sorted(attrs.items()))


@dataclass(frozen=True)
class Segment:
    clip_id: str
    t_start: float
    t_end: float
    attrs: dict = field(hash=False)  # color, shape, word, sound (absent when not present)
    word_span: tuple[float, float] | None = None  # the spoken word's [t_start, t_end)
    sound_span: tuple[float, float] | None = None  # the tone / noise event's [t_start, t_end)
    sounding_spans: tuple[tuple[float, float], ...] = ()  # when the shape is drawn sounding (corpus/scene.py)


@dataclass(frozen=True)
class Query:
    query_id: str
    kind: str  # visual | word | sound | joint
    text: str
    attrs: tuple  # sorted (key, value) pairs
    segments: tuple[Segment, ...]  # every segment of the corpus matching all attributes
    n_distractors: int = 0  # segments matching only part of a joint query


def segment_attrs(segment: dict) -> dict:
    """Attributes of one manifest segment record: color, shape, word, sound ("tone:<name>" | "noise")."""
    attrs: dict = {}
    v = segment.get("visual")
    if v:
        attrs["color"], attrs["shape"] = v["color"], v["shape"]
    a = segment.get("audio")
    if a:
        if a.get("word"):
            attrs["word"] = a["word"]
        if a.get("sound") == "tone" and a.get("tone_hz") is not None:
            attrs["sound"] = "tone:" + TONE_NAMES.get(int(a["tone_hz"]), str(a["tone_hz"]))
        elif a.get("sound") == "noise":
            attrs["sound"] = "noise"
    return attrs


def manifest_segments(records: list[dict]) -> list[Segment]:
    """Every segment of usable (non-bad) clips, with positive duration, as Segments."""
    out = []
    for rec in records:
        if rec.get("kind") == "bad" or rec.get("broken"):
            continue
        for seg in rec.get("segments", []):
            if seg["t_end"] <= seg["t_start"]:
                continue
            word_span = sound_span = None
            for ev in seg.get("audio_events", []):
                if ev["type"] == "word":
                    word_span = (float(ev["t_start"]), float(ev["t_end"]))
                elif ev["type"] in ("tone", "noise"):
                    sound_span = (float(ev["t_start"]), float(ev["t_end"]))
            sounding = tuple((float(t0), float(t1)) for t0, t1 in (seg.get("visual") or {}).get("sounding_spans", []))
            out.append(Segment(rec["clip_id"], float(seg["t_start"]), float(seg["t_end"]), segment_attrs(seg),
                               word_span, sound_span, sounding))
    return out


def query_kind(attrs: dict) -> str:
    keys = set(attrs)
    if keys == {"color", "shape", "word"}:
        return "joint"
    if keys == {"color", "shape"}:
        return "visual"
    if keys == {"word"}:
        return "word"
    if keys == {"sound"}:
        return "sound"
    raise ValueError(f"no query kind for attributes {sorted(keys)}")


def query_text(attrs: dict, variant: int = 0) -> str:
    """The caption of an attribute set; `variant` picks a paraphrase (modulo the number of templates)."""
    kind = query_kind(attrs)
    if kind == "sound":
        sound = attrs["sound"]
        if sound == "noise":
            templates, fill = TEMPLATES["noise"], {}
        else:
            templates, fill = TEMPLATES["tone"], {"tone": sound.split(":", 1)[1]}
    else:
        templates, fill = TEMPLATES[kind], attrs
    return templates[variant % len(templates)].format(**fill)


def n_variants(attrs: dict) -> int:
    kind = query_kind(attrs)
    if kind == "sound":
        return len(TEMPLATES["noise" if attrs["sound"] == "noise" else "tone"])
    return len(TEMPLATES[kind])


def project_attrs(attrs: dict, kind: str) -> dict | None:
    """The part of a segment's attributes a query of `kind` asks for, or None if the segment lacks it."""
    keys = {"visual": ("color", "shape"), "word": ("word",), "sound": ("sound",),
            "joint": ("color", "shape", "word")}[kind]
    if not all(k in attrs for k in keys):
        return None
    return {k: attrs[k] for k in keys}


def matches(segment_attrs_: dict, query_attrs: dict) -> bool:
    return all(segment_attrs_.get(k) == v for k, v in query_attrs.items())


def generate_queries(records: list[dict], kinds: tuple[str, ...] = QUERY_KINDS, paraphrase: bool = True
                     ) -> list[Query]:
    """One query per distinct attribute set of each kind present in the corpus (sorted, deterministic).

    paraphrase: cycle through the templates (chosen by a hash of the attributes) instead of always the first.
    """
    segments = manifest_segments(records)
    out: list[Query] = []
    for kind in kinds:
        combos: dict[tuple, dict] = {}
        for seg in segments:
            proj = project_attrs(seg.attrs, kind)
            if proj is not None:
                combos.setdefault(_frozen(proj), proj)
        for key in sorted(combos):
            attrs = combos[key]
            matching = tuple(s for s in segments if matches(s.attrs, attrs))
            n_distractors = 0
            if kind == "joint":
                visual = {"color": attrs["color"], "shape": attrs["shape"]}
                word = {"word": attrs["word"]}
                n_distractors = sum(1 for s in segments if matches(s.attrs, visual) != matches(s.attrs, word))
                if n_distractors == 0:
                    continue
            variant = zlib.crc32(repr(key).encode()) % n_variants(attrs) if paraphrase else 0
            qid = f"{kind}:" + ",".join(f"{k}={v}" for k, v in key)
            out.append(Query(qid, kind, query_text(attrs, variant), key, matching, n_distractors))
    return out


def overlap_s(a_start: float, a_end: float, b_start: float, b_end: float) -> float:
    return max(0.0, min(a_end, b_end) - max(a_start, b_start))


def is_relevant(query: Query, clip_id: str, t_start: float, t_end: float) -> bool:
    """The window overlaps (positive length) a segment of its clip that matches every attribute of the query."""
    return any(s.clip_id == clip_id and overlap_s(t_start, t_end, s.t_start, s.t_end) > 0 for s in query.segments)


def relevant_segments(query: Query, clip_id: str, t_start: float, t_end: float) -> list[Segment]:
    return [s for s in query.segments if s.clip_id == clip_id and overlap_s(t_start, t_end, s.t_start, s.t_end) > 0]
