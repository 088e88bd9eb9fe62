"""Decoding: exact frame counts/timestamps, geometry, colours, audio timing, missing streams, bad files.

Every clip is made with ffmpeg lavfi in a session tmp dir (tiny sizes, a few seconds).
`media_clips` is imported by test_probe.py too.
"""

from __future__ import annotations

import gc
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from favor_ops.errors import DecodeError, ProbeError, UnsupportedMediaError
from favor_ops.media.decode import DecodeConfig, decode, iter_audio, iter_frames, n_frames_for
from favor_ops.media.probe import probe

pytestmark = pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="ffmpeg not installed")

SMALL = DecodeConfig(image_size=32)
COLOR_RGB = (51, 102, 204)  # 0x3366CC
PORTRAIT_RGB = (230, 25, 25)


def run_ffmpeg(*args: str) -> None:
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", *args], check=True)


def ffmpeg_supports_display_rotation() -> bool:
    out = subprocess.run(["ffmpeg", "-hide_banner", "-h", "full"], capture_output=True, text=True).stdout
    return "display_rotation" in out


def make_rotated(src: Path, dst: Path) -> None:
    """Stream-copy `src` with a 90 degree display matrix (ffmpeg >= 6: -display_rotation; older: rotate tag)."""
    if ffmpeg_supports_display_rotation():
        run_ffmpeg("-display_rotation", "90", "-i", str(src), "-c", "copy", str(dst))
    else:
        run_ffmpeg("-i", str(src), "-c", "copy", "-metadata:s:v:0", "rotate=90", str(dst))


@pytest.fixture(scope="session")
def media_clips(tmp_path_factory) -> dict[str, Path]:
    d = tmp_path_factory.mktemp("media_clips")
    c = {name: d / name for name in (
        "count.mkv", "av.mp4", "portrait.mp4", "color.mp4", "beep.mp4", "noaudio.mp4", "audio.m4a",
        "land.mp4", "rotated.mp4", "still.png", "odd.mp4", "short_video.mkv",
        "zero.mp4", "text.mp4", "truncated.mp4", "header_only.mp4",
    )}
    # Frame i has grey level 4*i (lossless), 25 fps, 3.2 s: shows which source frame each output sampled.
    run_ffmpeg("-f", "lavfi", "-i", "color=black:s=64x48:r=25:d=3.2,format=gray,geq=lum='N*4':cb=128:cr=128",
               "-c:v", "libx264", "-qp", "0", "-pix_fmt", "yuv444p", str(c["count.mkv"]))
    # An ordinary H.264 + AAC mp4, 3.2 s at 25 fps.
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=96x64:r=25:d=3.2", "-f", "lavfi", "-i", "sine=f=440:r=48000:d=3.2",
               "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-c:a", "aac", str(c["av.mp4"]))
    run_ffmpeg("-f", "lavfi", "-i", "color=0xE61919:s=90x160:r=10:d=1", "-c:v", "libx264", "-preset", "ultrafast",
               "-pix_fmt", "yuv444p", "-qp", "0", str(c["portrait.mp4"]))
    run_ffmpeg("-f", "lavfi", "-i", "color=0x3366CC:s=64x48:r=10:d=1", "-c:v", "libx264", "-preset", "ultrafast",
               "-pix_fmt", "yuv420p", str(c["color.mp4"]))
    # 1 kHz beep from 1.0 s to 1.5 s, silence elsewhere, 2.5 s, AAC next to a video track.
    run_ffmpeg("-f", "lavfi", "-i", "color=gray:s=32x32:r=10:d=2.5",
               "-f", "lavfi", "-i", "aevalsrc='if(between(t,1,1.5),0.5*sin(2*PI*1000*t),0)':s=48000:d=2.5",
               "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-b:a", "128k", str(c["beep.mp4"]))
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=2", "-c:v", "libx264", "-preset", "ultrafast",
               str(c["noaudio.mp4"]))
    run_ffmpeg("-f", "lavfi", "-i", "sine=f=440:r=48000:d=2", "-c:a", "aac", str(c["audio.m4a"]))
    # Landscape 64x32: left half red, right half blue; rotated by 90 degrees for display.
    run_ffmpeg("-f", "lavfi", "-i", "color=red:s=32x32:r=10:d=1", "-f", "lavfi", "-i", "color=blue:s=32x32:r=10:d=1",
               "-filter_complex", "[0][1]hstack", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv444p",
               "-qp", "0", str(c["land.mp4"]))
    make_rotated(c["land.mp4"], c["rotated.mp4"])
    run_ffmpeg("-f", "lavfi", "-i", "color=0x3366CC:s=40x30", "-frames:v", "1", str(c["still.png"]))
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=66x34:r=25:d=1.3", "-vf", "scale=33:17", "-c:v", "libx264", "-preset", "ultrafast",
               "-pix_fmt", "yuv444p", str(c["odd.mp4"]))
    # Video 3.0 s inside a 3.4 s container (audio longer): the last frame is repeated to the promised count.
    run_ffmpeg("-f", "lavfi", "-i", "color=green:s=32x32:r=25:d=3.0", "-f", "lavfi", "-i", "sine=r=48000:d=3.4",
               "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "pcm_s16le", str(c["short_video.mkv"]))
    # Bad files.
    c["zero.mp4"].write_bytes(b"")
    c["text.mp4"].write_text("this is not a video, just text with a video name\n" * 20)
    good = d / "good_faststart.mp4"
    run_ffmpeg("-f", "lavfi", "-i", "testsrc2=s=160x120:r=25:d=6", "-f", "lavfi", "-i", "sine=r=48000:d=6",
               "-c:v", "libx264", "-preset", "ultrafast", "-c:a", "aac", "-movflags", "+faststart", str(good))
    data = good.read_bytes()
    c["truncated.mp4"].write_bytes(data[: len(data) // 2])
    c["header_only.mp4"].write_bytes(data[:4096])
    return c


# ---------------------------------------------------------------- timing


def test_frame_count_and_timestamps_exact_for_3_2s_25fps_clip(media_clips):
    out = decode(str(media_clips["av.mp4"]), SMALL)
    assert out.info.duration_s == pytest.approx(3.2, abs=0.03)
    assert out.frames_rgb.shape == (7, 32, 32, 3)  # ceil(3.2 * 2) = 7
    np.testing.assert_array_equal(out.frame_times_s, [0.0, 0.5, 1.0, 1.5, 2.0, 2.5, 3.0])
    assert out.frame_times_s.dtype == np.float64
    assert out.frames_rgb.dtype == np.uint8


def test_frame_k_is_the_source_frame_on_screen_at_k_over_fps(media_clips):
    # Source frame i (at i/25 s) has grey 4*i; sample-and-hold: output k shows frame floor(k/fps * 25).
    cfg = DecodeConfig(image_size=4)
    out = decode(str(media_clips["count.mkv"]), cfg)
    expected_source = [0, 12, 25, 37, 50, 62, 75]  # last source frame with pts <= k/2
    source_index = np.round(out.frames_rgb[:, 2, 2, 0] / 4.0)  # grey 4*i, +-1 from colour conversion
    np.testing.assert_array_equal(source_index, [i % 64 for i in expected_source])


def test_chunks_have_bounded_size_and_consistent_indices(media_clips):
    cfg = DecodeConfig(image_size=8, chunk_frames=3)
    chunks = list(iter_frames(str(media_clips["count.mkv"]), cfg))
    assert [len(c.frames_rgb) for c in chunks] == [3, 3, 1]
    assert [c.first_index for c in chunks] == [0, 3, 6]
    np.testing.assert_array_equal(np.concatenate([c.times_s for c in chunks]), np.arange(7) / 2.0)
    whole = decode(str(media_clips["count.mkv"]), cfg)
    np.testing.assert_array_equal(np.concatenate([c.frames_rgb for c in chunks]), whole.frames_rgb)


def test_other_fps_follows_the_same_contract(media_clips):
    out = decode(str(media_clips["count.mkv"]), DecodeConfig(image_size=4, fps=5.0))
    assert len(out.frames_rgb) == 16  # ceil(3.2 * 5)
    np.testing.assert_allclose(out.frame_times_s, np.arange(16) / 5.0)
    np.testing.assert_array_equal(np.round(out.frames_rgb[:4, 2, 2, 0] / 4.0), [0, 5, 10, 15])  # source frames


def test_short_video_stream_is_padded_by_repeating_last_frame(media_clips):
    out = decode(str(media_clips["short_video.mkv"]), DecodeConfig(image_size=8))
    assert out.info.duration_s == pytest.approx(3.4, abs=0.01)
    assert len(out.frames_rgb) == 7  # ceil(3.4 * 2)
    np.testing.assert_array_equal(out.frames_rgb[-1], out.frames_rgb[-2])
    assert len(out.audio) == round(out.info.duration_s * 16000)


# ---------------------------------------------------------------- geometry and colour


def test_pad_letterboxes_portrait_with_black_bars(media_clips):
    out = decode(str(media_clips["portrait.mp4"]), DecodeConfig(image_size=32, resize_mode="pad"))
    frame = out.frames_rgb[0].astype(int)  # 90x160 -> 18x32 content centred in 32x32
    assert frame[:, :6].max() <= 2 and frame[:, 26:].max() <= 2  # bars are black
    np.testing.assert_allclose(frame[4:28, 10:22].reshape(-1, 3).mean(0), PORTRAIT_RGB, atol=6)


def test_crop_fills_the_square_with_content(media_clips):
    out = decode(str(media_clips["portrait.mp4"]), DecodeConfig(image_size=32, resize_mode="crop"))
    frame = out.frames_rgb[0].astype(int)
    np.testing.assert_allclose(frame.reshape(-1, 3).mean(0), PORTRAIT_RGB, atol=6)
    assert frame[..., 0].min() > 200  # no black bars anywhere: every pixel is content


def test_colour_clip_decodes_to_its_rgb(media_clips):
    out = decode(str(media_clips["color.mp4"]), SMALL)
    assert out.frames_rgb.shape == (2, 32, 32, 3)
    # 64x48 -> 32x24 content between 4-row black bars
    np.testing.assert_allclose(out.frames_rgb[:, 6:26].reshape(-1, 3).mean(0), COLOR_RGB, atol=4)
    assert out.frames_rgb[:, :3].max() <= 2 and out.frames_rgb[:, 29:].max() <= 2


def test_odd_frame_size_decodes(media_clips):
    info = probe(str(media_clips["odd.mp4"]))
    assert (info.width, info.height) == (33, 17)
    out = decode(str(media_clips["odd.mp4"]), DecodeConfig(image_size=31))
    assert out.frames_rgb.shape == (3, 31, 31, 3)  # ceil(1.3 * 2)
    # 33x17 -> 31x16 content, 7-8 black rows above and below
    assert out.frames_rgb[:, :6].max() <= 2 and out.frames_rgb[:, 25:].max() <= 2
    assert out.frames_rgb[:, 10:20].mean() > 30


def test_rotated_clip_is_decoded_upright_with_swapped_size(media_clips):
    info = probe(str(media_clips["rotated.mp4"]))
    assert (info.width, info.height) == (32, 64)
    assert info.rotation_deg in (90, 270)
    frame = decode(str(media_clips["rotated.mp4"]), DecodeConfig(image_size=32)).frames_rgb[0].astype(int)
    # Portrait after rotation: 16x32 content with black bars left and right; red and blue halves stacked vertically.
    assert frame[:, :6].max() <= 2 and frame[:, 26:].max() <= 2
    top, bottom = frame[2:14, 10:22].reshape(-1, 3).mean(0), frame[18:30, 10:22].reshape(-1, 3).mean(0)
    reds = {tuple(np.round(top / 255)), tuple(np.round(bottom / 255))}
    assert reds == {(1.0, 0.0, 0.0), (0.0, 0.0, 1.0)}


def test_still_image_gives_one_frame_at_zero(media_clips):
    out = decode(str(media_clips["still.png"]), SMALL)
    assert out.info.is_still_image and out.info.duration_s == 0.0
    assert out.has_video and not out.has_audio
    assert out.frames_rgb.shape == (1, 32, 32, 3)
    np.testing.assert_array_equal(out.frame_times_s, [0.0])
    np.testing.assert_allclose(out.frames_rgb[0, 8:24, 8:24].reshape(-1, 3).mean(0), COLOR_RGB, atol=3)


# ---------------------------------------------------------------- audio and missing streams


def test_beep_lands_in_the_right_audio_samples(media_clips):
    out = decode(str(media_clips["beep.mp4"]), SMALL)
    rate = 16000
    assert out.audio.dtype == np.float32 and len(out.audio) == round(2.5 * rate)
    rms = lambda a, b: float(np.sqrt(np.mean(out.audio[int(a * rate): int(b * rate)] ** 2)))  # noqa: E731
    assert rms(1.05, 1.45) == pytest.approx(0.5 / np.sqrt(2), rel=0.1)
    assert rms(0.0, 0.95) < 0.01
    assert rms(1.55, 2.5) < 0.01
    # The onset is within 10 ms of 1.0 s.
    envelope = np.abs(out.audio) > 0.1
    assert abs(np.argmax(envelope) / rate - 1.0) < 0.01


def test_iter_audio_chunks_cover_the_clip(media_clips):
    cfg = DecodeConfig()
    chunks = list(iter_audio(str(media_clips["beep.mp4"]), cfg, chunk_s=1.0))
    assert [len(c.samples) for c in chunks] == [16000, 16000, 8000]
    assert [c.t_start_s for c in chunks] == [0.0, 1.0, 2.0]
    np.testing.assert_array_equal(np.concatenate([c.samples for c in chunks]), decode(str(media_clips["beep.mp4"]), cfg).audio)


def test_no_audio_clip_gives_frames_and_empty_audio(media_clips):
    out = decode(str(media_clips["noaudio.mp4"]), SMALL)
    assert out.has_video and not out.has_audio
    assert len(out.frames_rgb) == 4
    assert out.audio.shape == (0,) and out.audio.dtype == np.float32
    assert list(iter_audio(str(media_clips["noaudio.mp4"]), SMALL)) == []


def test_audio_only_gives_zero_frames(media_clips):
    out = decode(str(media_clips["audio.m4a"]), SMALL)
    assert not out.has_video and out.has_audio
    assert out.frames_rgb.shape == (0, 32, 32, 3)
    assert out.frame_times_s.shape == (0,)
    assert len(out.audio) == round(out.info.duration_s * 16000)
    assert float(np.sqrt(np.mean(out.audio[4000:28000] ** 2))) == pytest.approx(0.125 / np.sqrt(2), rel=0.1)
    assert n_frames_for(out.info, 2.0) == 0


# ---------------------------------------------------------------- URIs


def test_memory_uri_decodes_like_the_local_file(media_clips):
    import fsspec

    fs = fsspec.filesystem("memory")
    fs.pipe("/favor-test/av.mp4", media_clips["av.mp4"].read_bytes())
    try:
        remote = decode("memory:///favor-test/av.mp4", SMALL)
        assert remote.info.uri == "memory:///favor-test/av.mp4"
        local = decode(str(media_clips["av.mp4"]), SMALL)
        np.testing.assert_array_equal(remote.frames_rgb, local.frames_rgb)
        np.testing.assert_array_equal(remote.audio, local.audio)
    finally:
        fs.rm("/favor-test", recursive=True)


def test_file_uri_works(media_clips):
    out = decode("file://" + str(media_clips["noaudio.mp4"]), SMALL)
    assert len(out.frames_rgb) == 4


# ---------------------------------------------------------------- failures


@pytest.mark.parametrize(
    "name, error, reason_part",
    [
        ("zero.mp4", ProbeError, "empty file"),
        ("text.mp4", ProbeError, "Invalid data"),
        ("header_only.mp4", ProbeError, ""),
        ("truncated.mp4", DecodeError, "truncated: decoded"),
    ],
)
def test_bad_files_raise_typed_errors_with_reason(media_clips, name, error, reason_part):
    path = str(media_clips[name])
    with pytest.raises(error) as caught:
        decode(path, SMALL)
    err = caught.value
    assert type(err) is error
    assert err.uri == path and err.stage == ("probe" if error is ProbeError else "decode")
    assert reason_part in err.reason and "\n" not in err.reason and err.reason != "unknown reason"


def test_truncated_message_names_decoded_and_declared_seconds(media_clips):
    with pytest.raises(DecodeError, match=r"truncated: decoded \d+\.\d+ s of 6\.00 s declared"):
        for _ in iter_frames(str(media_clips["truncated.mp4"]), SMALL):
            pass


def test_missing_file_is_a_probe_error(tmp_path):
    with pytest.raises(ProbeError, match="no such file"):
        decode(str(tmp_path / "absent.mp4"), SMALL)


def test_oversized_source_is_refused(media_clips):
    with pytest.raises(UnsupportedMediaError, match="exceeds max_source_pixels"):
        list(iter_frames(str(media_clips["av.mp4"]), DecodeConfig(max_source_pixels=96 * 64 - 1)))
    assert len(list(iter_frames(str(media_clips["av.mp4"]), DecodeConfig(max_source_pixels=96 * 64)))) == 1


def test_bad_config_values_are_rejected():
    with pytest.raises(ValueError, match="resize_mode"):
        DecodeConfig(resize_mode="stretch")
    with pytest.raises(ValueError, match="fps"):
        DecodeConfig(fps=0)


# ---------------------------------------------------------------- process hygiene


def _ffmpeg_children() -> list[tuple[int, str]]:
    """(pid, status) of this process's ffmpeg children, zombies (exited, not reaped) included."""
    psutil = pytest.importorskip("psutil")
    return [(p.pid, p.status()) for p in psutil.Process(os.getpid()).children(recursive=True) if p.name() == "ffmpeg"]


def test_closing_a_generator_early_kills_and_reaps_ffmpeg(media_clips):
    import psutil

    # 7 frames of 224x224 RGB (1 MB) overflow the pipe buffer: ffmpeg is blocked writing when we close.
    frames = iter_frames(str(media_clips["count.mkv"]), DecodeConfig(image_size=224, chunk_frames=1))
    assert next(frames).first_index == 0
    running = _ffmpeg_children()
    assert len(running) == 1 and running[0][1] != psutil.STATUS_ZOMBIE
    frames.close()
    assert _ffmpeg_children() == []
    audio = iter_audio(str(media_clips["beep.mp4"]), DecodeConfig(sample_rate_hz=48000), chunk_s=0.1)
    next(audio)
    assert len(_ffmpeg_children()) == 1
    del audio
    gc.collect()
    assert _ffmpeg_children() == []


# ---------------------------------------------------------------- memory (slow)

GIB = 1024**3


@pytest.mark.slow
def test_ten_minute_1080p_decode_keeps_resident_memory_under_1_gib(tmp_path):
    from favor_ops.bench.decode_bench import measure_decode_rss

    path = tmp_path / "long_1080p.mp4"
    duration_s = 600
    run_ffmpeg("-f", "lavfi", "-i", f"testsrc=s=1920x1080:r=5:d={duration_s}",
               "-f", "lavfi", "-i", f"sine=f=440:r=16000:d={duration_s}",
               "-c:v", "libx264", "-preset", "ultrafast", "-tune", "stillimage", "-g", "250",
               "-c:a", "aac", "-b:a", "32k", str(path))
    rss = measure_decode_rss(str(path), fps=2.0, image_size=224)
    assert rss["n_frames"] == 1200  # 600 s at 2 FPS
    assert rss["n_samples"] == 600 * 16000
    # Everything decoded would be 1200 * 150 kB frames + 38 MB audio = 219 MB in Python alone.
    print(f"\n10-min 1080p decode peak RSS: python {rss['python_peak_rss_bytes'] / 2**20:.0f} MiB, "
          f"ffmpeg {rss['ffmpeg_peak_rss_bytes'] / 2**20:.0f} MiB, wall {rss['wall_s']:.1f} s")
    assert rss["python_peak_rss_bytes"] < GIB and rss["ffmpeg_peak_rss_bytes"] < GIB
    assert rss["python_peak_rss_bytes"] < 200 * 2**20  # streaming: far below holding the whole decode


# ---------------------------------------------------------------- GPU decode (ffmpeg -hwaccel) and its CPU fallback


def test_hwaccel_goes_before_the_input_on_the_video_command_only():
    from favor_ops.media.decode import audio_args, video_args

    args = video_args("/a/v.mp4", SMALL, 4, False, "cuda")
    assert args[args.index("-hwaccel") + 1] == "cuda" and args.index("-hwaccel") < args.index("-i")
    assert "-hwaccel" not in video_args("/a/v.mp4", SMALL, 4, False) and "-hwaccel" not in audio_args("/a/v.mp4", SMALL)


def test_an_unusable_hwaccel_falls_back_to_the_cpu_once_per_process(media_clips, monkeypatch, caplog):
    """ffmpeg refuses the method before its first frame (here an unknown one; without a GPU, `cuda` fails the same
    way): the file decodes on the CPU to the same frames, and later files do not try the method again."""
    from favor_ops.media import decode as decode_module

    monkeypatch.setattr(decode_module, "_HWACCEL_FAILED", set())
    started = []
    real_pipe = decode_module._FfmpegPipe

    def counting_pipe(args, path):
        started.append("-hwaccel" in args)
        return real_pipe(args, path)

    monkeypatch.setattr(decode_module, "_FfmpegPipe", counting_pipe)
    cpu = decode(str(media_clips["count.mkv"]), SMALL)
    gpu_cfg = DecodeConfig(**{**SMALL.__dict__, "hwaccel": "nosuchaccel"})
    with caplog.at_level("WARNING", logger="favor_ops.media.decode"):
        first = [c.frames_rgb for c in iter_frames(str(media_clips["count.mkv"]), gpu_cfg)]
        second = [c.frames_rgb for c in iter_frames(str(media_clips["av.mp4"]), gpu_cfg)]
    np.testing.assert_array_equal(np.concatenate(first), cpu.frames_rgb)
    assert len(second) > 0
    assert decode_module._HWACCEL_FAILED == {"nosuchaccel"}
    # the CPU decode (count.mkv has no audio), first file: hwaccel then CPU, second file: CPU only
    assert started == [False, True, False, False]
    assert sum("hwaccel nosuchaccel failed" in r.getMessage() for r in caplog.records) == 1


def test_a_broken_file_still_fails_with_its_own_reason_under_hwaccel(media_clips, monkeypatch):
    from favor_ops.media import decode as decode_module

    monkeypatch.setattr(decode_module, "_HWACCEL_FAILED", set())
    gpu_cfg = DecodeConfig(**{**SMALL.__dict__, "hwaccel": "nosuchaccel"})
    with pytest.raises(DecodeError) as err:
        list(iter_frames(str(media_clips["truncated.mp4"]), gpu_cfg))
    with pytest.raises(DecodeError) as cpu_err:
        list(iter_frames(str(media_clips["truncated.mp4"]), SMALL))
    assert err.value.reason == cpu_err.value.reason
