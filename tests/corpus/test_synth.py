"""End-to-end: a 12-clip corpus (every required variant) with bad inputs, written twice."""

import json
import os
import subprocess

import numpy as np
import pytest

from favor_ops.corpus import vocabulary as vocab
from favor_ops.corpus.manifest import MANIFEST_NAME, read_manifest, sha256_file
from favor_ops.corpus.synth import synthesize_corpus

N_VIDEOS, SEED, MAX_S = 12, 11, 4.0
KEYS = ["file", "clip_id", "kind", "container", "video_codec", "audio_codec", "fps", "vfr", "width", "height",
        "duration_s", "has_video", "has_audio", "sha256", "broken", "segments"]


@pytest.fixture(scope="module")
def corpora(tmp_path_factory):
    a = tmp_path_factory.mktemp("corpus_a")
    b = tmp_path_factory.mktemp("corpus_b")
    rec_a = synthesize_corpus(a, N_VIDEOS, SEED, include_bad=True, max_duration_s=MAX_S, progress=False)
    rec_b = synthesize_corpus(b, N_VIDEOS, SEED, include_bad=True, max_duration_s=MAX_S, progress=False, workers=1)
    return a, b, rec_a, rec_b


def ffprobe(path):
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_entries",
         "format=duration:stream=codec_type,codec_name,width,height,r_frame_rate,avg_frame_rate",
         "-of", "json", str(path)],
        capture_output=True, text=True,
    )
    return out.returncode, json.loads(out.stdout or "{}")


def test_two_runs_give_byte_identical_manifests_and_files(corpora):
    a, b, rec_a, rec_b = corpora
    assert (a / MANIFEST_NAME).read_bytes() == (b / MANIFEST_NAME).read_bytes()
    assert rec_a == rec_b == read_manifest(a)
    for r in rec_a:
        assert sha256_file(a / r["file"]) == r["sha256"] == sha256_file(b / r["file"])


def test_manifest_schema_and_required_variants(corpora):
    a, _, records, _ = corpora
    assert [r["file"] for r in records] == [
        "v000.mp4", "v001.webm", "v002.mkv", "v003.mp4", "v004.mp4", "v005.mp4", "v006.mkv",
        "v007.m4a", "v008.wav", "v009.ogg", "v010.webm", "v011.jpg",
        "bad_zero_bytes.mp4", "bad_not_media.mp4", "bad_truncated.mp4", "bad_header_only.mp4",
    ]
    for r in records:
        assert list(r) == KEYS
    assert {r["kind"] for r in records} == {"video", "audio_only", "no_audio", "still_image", "bad"}
    assert {r["fps"] for r in records if r["kind"] == "video"} == {24, 25, 30, 60}
    assert [r["file"] for r in records if r["vfr"]] == ["v005.mp4"]
    assert {(r["width"], r["height"]) for r in records} >= {(160, 120), (1920, 1080), (360, 640)}
    pairs = {(r["container"], r["video_codec"], r["audio_codec"]) for r in records if r["kind"] != "bad"}
    assert pairs >= {("mp4", "h264", "aac"), ("webm", "vp9", "opus"), ("mkv", "h264", "flac"),
                     ("m4a", None, "aac"), ("wav", None, "pcm_s16le"), ("ogg", None, "vorbis"),
                     ("webm", "vp9", None), ("jpg", "mjpeg", None)}
    still = records[11]
    assert still["kind"] == "still_image" and still["duration_s"] == 0.0 and still["has_audio"] is False
    assert records[6]["duration_s"] == MAX_S  # the long variant is clipped to --max-duration


def test_bad_inputs_ground_truth(corpora):
    a, _, records, _ = corpora
    bad = {r["broken"]["reason"]: r for r in records if r["kind"] == "bad"}
    assert {k: v["broken"]["expected_error"] for k, v in bad.items()} == {
        "zero_bytes": "ProbeError", "not_media": "ProbeError", "truncated": "DecodeError", "header_only": "DecodeError",
    }
    assert os.path.getsize(a / "bad_zero_bytes.mp4") == 0
    assert (a / "bad_not_media.mp4").read_text().startswith("This is not a video.")
    for reason in ("zero_bytes", "not_media"):
        rc, _ = ffprobe(a / bad[reason]["file"])
        assert rc != 0
    # truncated: the header still declares the full 6 s but decoding errors out / comes up short
    rc, info = ffprobe(a / "bad_truncated.mp4")
    assert rc == 0 and abs(float(info["format"]["duration"]) - 6.0) < 0.05
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", str(a / "bad_truncated.mp4"), "-f", "null", "-"],
                         capture_output=True, text=True)
    assert dec.stderr.strip() != ""
    dec = subprocess.run(["ffmpeg", "-v", "error", "-i", str(a / "bad_header_only.mp4"), "-f", "null", "-"],
                         capture_output=True, text=True)
    assert dec.returncode != 0 or dec.stderr.strip() != ""
    assert all(r["segments"] == [] for r in bad.values())


def test_every_good_file_is_ffprobe_readable_with_manifest_streams(corpora):
    a, _, records, _ = corpora
    for r in records:
        if r["kind"] == "bad":
            continue
        rc, info = ffprobe(a / r["file"])
        assert rc == 0, r["file"]
        streams = info["streams"]
        video = [s for s in streams if s["codec_type"] == "video"]
        audio = [s for s in streams if s["codec_type"] == "audio"]
        assert [s["codec_name"] for s in video] == ([r["video_codec"]] if r["has_video"] else [])
        assert [s["codec_name"] for s in audio] == ([r["audio_codec"]] if r["has_audio"] else [])
        if r["has_video"]:
            assert (video[0]["width"], video[0]["height"]) == (r["width"], r["height"])
        if r["kind"] in ("video", "no_audio", "audio_only"):
            assert abs(float(info["format"]["duration"]) - r["duration_s"]) < 0.1, r["file"]


def test_one_video_matches_manifest_exactly(corpora):
    a, _, records, _ = corpora
    r = records[1]  # v001.webm: vp9 + opus @ 25 fps, 640x360
    rc, info = ffprobe(a / r["file"])
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert (r["fps"], r["width"], r["height"], r["video_codec"]) == (25, 640, 360, "vp9")
    assert v["r_frame_rate"] == "25/1" and (v["width"], v["height"]) == (640, 360) and v["codec_name"] == "vp9"
    vfr = records[5]
    rc, info = ffprobe(a / vfr["file"])
    v = next(s for s in info["streams"] if s["codec_type"] == "video")
    assert vfr["fps"] == 30 and v["r_frame_rate"] == "60/1"  # 60 fps timebase, 30 fps on average
    num, den = map(int, v["avg_frame_rate"].split("/"))
    assert 28.0 <= num / den <= 31.0


def test_segments_contiguous_and_events_inside(corpora):
    _, _, records, _ = corpora
    for r in records:
        if r["kind"] == "bad":
            continue
        segs = r["segments"]
        assert segs[0]["t_start"] == 0.0 and segs[-1]["t_end"] == r["duration_s"]
        for p, n in zip(segs, segs[1:]):
            assert p["t_end"] == n["t_start"]
        for s in segs:
            assert s["caption"]
            if not r["has_audio"]:
                assert s["audio"] is None and s["audio_events"] == []
                continue
            kinds = [e["type"] for e in s["audio_events"]]
            a = s["audio"]
            expected = {"word"} if a["word"] else set()
            if a["sound"]:
                expected.add(a["sound"])
            assert set(kinds) == expected
            for e in s["audio_events"]:
                assert s["t_start"] <= e["t_start"] < e["t_end"] <= s["t_end"]
                if e["type"] == "word":
                    assert e["word"] == a["word"] and e["word"] in s["caption"]
                if e["type"] == "tone":
                    assert e["hz"] == a["tone_hz"]


def _decode_frame(path, t_s, width, height):
    seek = ["-ss", f"{t_s:.3f}"] if t_s > 0 else []
    raw = subprocess.run(
        ["ffmpeg", "-v", "error", *seek, "-i", str(path), "-frames:v", "1",
         "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True, check=True,
    ).stdout
    return np.frombuffer(raw, np.uint8).reshape(height, width, 3)


def test_decoded_frames_show_the_ground_truth_colour(corpora):
    a, _, records, _ = corpora
    palette = {**{("c", k): v for k, v in vocab.COLORS.items()}, **{("b", k): v for k, v in vocab.BACKGROUNDS.items()}}
    names = list(palette)
    colours = np.array([palette[n] for n in names], float)  # (K, 3)
    for r in records[:5] + [records[11]]:  # h264, vp9, flac-mkv, 1080p, portrait, jpg
        s = r["segments"][0]
        mid = (s["t_start"] + s["t_end"]) / 2
        frame = _decode_frame(a / r["file"], mid, r["width"], r["height"]).reshape(-1, 3).astype(float)
        nearest = np.argmin(((frame[:, None, :] - colours[None]) ** 2).sum(-1), axis=1)
        counts = np.bincount(nearest, minlength=len(names))
        shape_idx = [i for i, n in enumerate(names) if n[0] == "c"]
        top_colour = names[shape_idx[int(np.argmax(counts[shape_idx]))]][1]
        top_background = names[int(np.argmax(counts))]
        assert top_colour == s["visual"]["color"], r["file"]
        assert counts[shape_idx].max() / len(frame) >= 0.12, r["file"]
        if s["visual"]["color"] != "white":
            assert top_background == ("b", s["visual"]["background"]), r["file"]


def test_the_shape_sounds_with_every_audio_event_of_its_segment(corpora):
    a, _, records, _ = corpora
    checked = 0
    for r in records:
        if r["kind"] == "bad" or not r["has_video"]:
            continue
        for s in r["segments"]:
            spans = s["visual"]["sounding_spans"]
            if r["kind"] != "video":  # no audio track (or a still image): nothing sounds
                assert spans == []
                continue
            for e in s["audio_events"]:
                if e["type"] != "silence":
                    assert any(t0 < e["t_start"] and e["t_end"] < t1 for t0, t1 in spans), (r["file"], e)
            assert all(s["t_start"] <= t0 < t1 <= s["t_end"] for t0, t1 in spans)
    for r in records[:3]:  # h264, vp9, flac-mkv: the decoded shape is larger mid-span than outside any span
        for s in r["segments"]:
            spans = s["visual"]["sounding_spans"]
            quiet = [t for t in np.arange(s["t_start"] + 0.05, s["t_end"] - 0.1, 0.1)
                     if not any(t0 - 0.1 <= t <= t1 + 0.1 for t0, t1 in spans)]
            if not spans or not quiet or s["visual"]["motion"] != "static":
                continue
            rgb = np.array(s["visual"]["rgb"], float)

            def area(t):
                frame = _decode_frame(a / r["file"], t, r["width"], r["height"]).astype(float)
                return int((np.abs(frame - rgb).sum(-1) < 60).sum())

            loud = area((spans[0][0] + spans[0][1]) / 2)
            assert loud > 1.4 * area(quiet[0]), (r["file"], s["t_start"])
            checked += 1
    assert checked >= 1
