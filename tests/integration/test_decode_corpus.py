"""Decoding the synthetic corpus against its ground-truth manifest.

Uses favor_ops.corpus.synth.synthesize_corpus (12 clips + the 4 bad inputs, <= 20 s each)
in a session tmp dir. For every good file: frame count = ceil(duration_s * fps - 1e-6),
frame k at k / fps; decoded colours match the segment colours; missing streams and every
broken file behave as the manifest says.
"""

from __future__ import annotations

import math

import numpy as np
import pytest

from favor_ops import errors
from favor_ops.media.decode import DecodeConfig, decode

from favor_ops.corpus import manifest as manifest_mod
from favor_ops.corpus import synth

CFG = DecodeConfig(fps=2.0, image_size=64)
PAD_RGB = (0, 0, 0)


@pytest.fixture(scope="session")
def corpus(tmp_path_factory):
    out = tmp_path_factory.mktemp("decode_corpus")
    synth.synthesize_corpus(out, n_videos=12, seed=3, include_bad=True, max_duration_s=20, progress=False)
    return out, manifest_mod.read_manifest(out)


@pytest.fixture(scope="session")
def decoded(corpus):
    """file name -> DecodedMedia for every good file (decoded once per session)."""
    out, records = corpus
    return {r["file"]: decode(str(out / r["file"]), CFG) for r in records if r["kind"] != "bad"}


def _good(records):
    return [r for r in records if r["kind"] != "bad"]


def test_corpus_covers_every_kind(corpus):
    kinds = {r["kind"] for r in corpus[1]}
    assert {"video", "audio_only", "no_audio", "still_image", "bad"} <= kinds


def test_frame_counts_and_times_match_the_manifest(corpus, decoded):
    for r in _good(corpus[1]):
        out = decoded[r["file"]]
        expected = 0 if not r["has_video"] else max(1, math.ceil(r["duration_s"] * CFG.fps - 1e-6))
        assert len(out.frames_rgb) == expected, r["file"]
        assert out.frames_rgb.shape[1:] == (64, 64, 3)
        np.testing.assert_allclose(out.frame_times_s, np.arange(expected) / CFG.fps, atol=0.5 / CFG.fps)
        assert out.has_video == r["has_video"] and out.has_audio == r["has_audio"], r["file"]
        if r["has_video"] and r["kind"] != "still_image":
            assert out.info.duration_s == pytest.approx(r["duration_s"], abs=0.05), r["file"]


def test_audio_length_matches_the_manifest(corpus, decoded):
    for r in _good(corpus[1]):
        out = decoded[r["file"]]
        if r["has_audio"]:
            assert abs(len(out.audio) / CFG.sample_rate_hz - r["duration_s"]) <= 0.05, r["file"]
        else:
            assert out.audio.shape == (0,), r["file"]


def _palette(records):
    """Shape colours (name -> rgb) and non-shape colours (backgrounds + letterbox black) seen in the manifest."""
    shapes, others = {}, {PAD_RGB}
    for r in records:
        for seg in r["segments"]:
            if seg.get("visual"):
                shapes[seg["visual"]["color"]] = tuple(seg["visual"]["rgb"])
                others.add(tuple(seg["visual"]["background_rgb"]))
    return shapes, sorted(others)


def dominant_colour(frame_rgb: np.ndarray, shapes: dict, others: list) -> str | None:
    """The shape colour with the most pixels, each pixel labelled by its nearest palette colour."""
    names = list(shapes)
    palette = np.array([shapes[n] for n in names] + list(others), dtype=np.float32)  # (C, 3)
    pixels = frame_rgb.reshape(-1, 3).astype(np.float32)  # (P, 3)
    nearest = np.argmin(((pixels[:, None, :] - palette[None]) ** 2).sum(-1), axis=1)  # (P,)
    counts = np.bincount(nearest, minlength=len(palette))[: len(names)]
    return names[int(np.argmax(counts))] if counts.max() > 0 else None


def test_dominant_colour_inside_each_segment_is_the_segment_colour(corpus, decoded):
    shapes, others = _palette(corpus[1])
    checked = 0
    for r in _good(corpus[1]):
        if not r["has_video"]:
            continue
        out = decoded[r["file"]]
        for seg in r["segments"]:
            if not seg.get("visual"):
                continue
            if r["kind"] == "still_image":
                inside = np.array([0])
            else:
                inside = np.flatnonzero((out.frame_times_s > seg["t_start"]) & (out.frame_times_s < seg["t_end"]))
            for k in inside:
                got = dominant_colour(out.frames_rgb[k], shapes, others)
                assert got == seg["visual"]["color"], (r["file"], seg["t_start"], seg["t_end"], float(out.frame_times_s[k]))
                checked += 1
    assert checked >= 20


def test_bad_files_raise_the_expected_typed_error(corpus):
    out, records = corpus
    bad = [r for r in records if r["kind"] == "bad"]
    assert len(bad) == 4
    for r in bad:
        expected = getattr(errors, r["broken"]["expected_error"])
        path = str(out / r["file"])
        with pytest.raises(errors.StageError) as caught:
            decode(path, CFG)
        assert type(caught.value) is expected, (r["file"], caught.value)
        assert caught.value.uri == path and caught.value.reason and "\n" not in caught.value.reason


def test_no_audio_video_yields_frames_without_audio(corpus, decoded):
    no_audio = [r for r in corpus[1] if r["kind"] == "no_audio"]
    assert no_audio
    for r in no_audio:
        out = decoded[r["file"]]
        assert out.has_video and not out.has_audio and len(out.frames_rgb) > 0 and out.audio.size == 0
