"""ffprobe -> MediaInfo on clips made with ffmpeg lavfi (fixtures shared with test_decode.py)."""

from __future__ import annotations

import math

import pytest

from favor_ops.errors import ProbeError
from favor_ops.media.probe import MediaInfo, ffmpeg_reason, media_info_from_probe, probe
from tests.media.test_decode import media_clips  # noqa: F401  (session fixture)


def test_av_clip_metadata(media_clips):  # noqa: F811
    info = probe(str(media_clips["av.mp4"]))
    assert isinstance(info, MediaInfo)
    assert info.has_video and info.has_audio and not info.is_still_image
    assert (info.width, info.height, info.rotation_deg) == (96, 64, 0)
    assert info.avg_fps == pytest.approx(25.0)
    assert info.duration_s == pytest.approx(3.2, abs=0.03)
    assert (info.video_codec, info.audio_codec) == ("h264", "aac")
    assert info.container.startswith("mov,mp4")
    assert info.size_bytes == media_clips["av.mp4"].stat().st_size
    assert info.uri == str(media_clips["av.mp4"])


def test_missing_streams(media_clips):  # noqa: F811
    noaudio = probe(str(media_clips["noaudio.mp4"]))
    assert noaudio.has_video and not noaudio.has_audio and noaudio.audio_codec is None
    assert noaudio.duration_s == pytest.approx(2.0)
    audio = probe(str(media_clips["audio.m4a"]))
    assert audio.has_audio and not audio.has_video
    assert (audio.width, audio.height, audio.avg_fps, audio.video_codec) == (0, 0, 0.0, None)


def test_rotation_swaps_width_and_height(media_clips):  # noqa: F811
    plain = probe(str(media_clips["land.mp4"]))
    rotated = probe(str(media_clips["rotated.mp4"]))
    assert (plain.width, plain.height, plain.rotation_deg) == (64, 32, 0)
    assert (rotated.width, rotated.height) == (32, 64)
    assert rotated.rotation_deg in (90, 270)


def test_still_image_convention(media_clips):  # noqa: F811
    info = probe(str(media_clips["still.png"]))
    assert info.is_still_image and info.has_video and not info.has_audio
    assert (info.width, info.height, info.duration_s) == (40, 30, 0.0)
    assert info.video_codec == "png"


@pytest.mark.parametrize("name, reason", [("zero.mp4", "empty file (0 bytes)"),
                                          ("text.mp4", "Invalid data found when processing input")])
def test_unreadable_files_raise_probe_error_with_ffprobe_reason(media_clips, name, reason):  # noqa: F811
    with pytest.raises(ProbeError) as caught:
        probe(str(media_clips[name]))
    assert caught.value.reason == reason
    assert caught.value.stage == "probe"
    assert str(caught.value) == f"[probe] {media_clips[name]}: {reason}"


def test_json_without_streams_is_a_probe_error():
    with pytest.raises(ProbeError, match="no audio or video stream"):
        media_info_from_probe("x.mkv", 10, {"format": {"format_name": "matroska", "duration": "1.0"}, "streams": []})


def test_cover_art_is_not_video_and_stream_duration_is_the_fallback():
    probed = {
        "format": {"format_name": "mp3"},
        "streams": [
            {"codec_type": "audio", "codec_name": "mp3", "duration": "12.5"},
            {"codec_type": "video", "codec_name": "mjpeg", "width": 500, "height": 500, "disposition": {"attached_pic": 1}},
        ],
    }
    info = media_info_from_probe("song.mp3", 1000, probed)
    assert not info.has_video and info.has_audio and info.duration_s == 12.5 and not info.is_still_image


def test_display_matrix_rotation_is_normalised():
    probed = {
        "format": {"format_name": "mov,mp4", "duration": "2.0"},
        "streams": [{"codec_type": "video", "codec_name": "h264", "width": 1920, "height": 1080,
                     "avg_frame_rate": "30000/1001", "side_data_list": [{"rotation": -90}]}],
    }
    info = media_info_from_probe("phone.mp4", 1, probed)
    assert (info.width, info.height, info.rotation_deg) == (1080, 1920, 270)
    assert math.isclose(info.avg_fps, 29.97, abs_tol=0.01)


def test_ffmpeg_reason_takes_last_line_without_path_or_address():
    stderr = b"[h264 @ 0x55d65602b1c0] error while decoding MB 3 4\n/tmp/a.mp4: Invalid data found when processing input\n"
    assert ffmpeg_reason(stderr, "/tmp/a.mp4", "x") == "Invalid data found when processing input"
    assert ffmpeg_reason("[mov,mp4,m4a @ 0xdeadbeef] moov atom not found", "a.mp4", "x") == "mov,mp4,m4a: moov atom not found"
    assert ffmpeg_reason("", "a.mp4", "fallback") == "fallback"
