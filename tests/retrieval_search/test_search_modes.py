"""search() over a real LanceDB store with planted vectors: the planted window comes first in every mode."""

from __future__ import annotations

import numpy as np
import pytest

from favor_ops.retrieval.query_encoder import QueryVectors
from favor_ops.retrieval.search import SearchRequest, search, search_encoded, vector_window_hits
from favor_ops.retrieval.search_errors import SearchInputError
from tests.retrieval_search.planted_store import D, E, VIDEO_A, VIDEO_B, VIDEO_C


def test_av_mode_maxsim_finds_planted_token_and_merges_adjacent_windows(planted_store, fake_encoder, media_files):
    hits = search(planted_store, fake_encoder, SearchRequest(text="red circle", mode="av", k=1))
    assert len(hits) == 1
    top = hits[0]
    # windows 0 (cos 1.0) and 1 (cos 0.9) of aa11 touch at 2.0 s -> one span [0, 4), score = max = 1.0
    assert (top.video_id, top.t_start, top.t_end, top.window_indices) == (VIDEO_A, 0.0, 4.0, (0, 1))
    assert top.score == pytest.approx(1.0, abs=1e-5)
    assert top.uri == str(media_files["video"])
    assert top.transcript == "plain words aa11 0 plain words aa11 1"


def test_av_window_scores_are_mean_maxsim(planted_store):
    query = np.stack([E[0], E[0]])  # two identical query vectors: mean of max-cos stays 1.0 and 0.9
    hits = vector_window_hits(planted_store, "tokens", query, 2)
    assert [(h.video_id, h.window_idx) for h in hits] == [(VIDEO_A, 0), (VIDEO_A, 1)]
    assert [round(h.score, 4) for h in hits] == [1.0, 0.9]


def test_visual_mode_uses_visual_vec(planted_store, fake_encoder):
    hits = search(planted_store, fake_encoder, SearchRequest(text="blue square", mode="visual", k=1))
    assert [(h.video_id, h.window_indices, h.t_start, h.t_end) for h in hits] == [(VIDEO_B, (2,), 20.0, 30.0)]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)
    windows = vector_window_hits(planted_store, "visual_vec", E[1], 9)
    assert len(windows) == 9 and all(w.score < 0 for w in windows[1:])
    assert (windows[-1].video_id, windows[-1].window_idx) == (VIDEO_B, 1)  # the pushed-away neighbour


def test_audio_mode_uses_audio_vec(planted_store, fake_encoder):
    hits = search(planted_store, fake_encoder, SearchRequest(text="dog bark", mode="audio", k=1))
    assert [(h.video_id, h.window_indices) for h in hits] == [(VIDEO_C, (0,))]
    assert hits[0].score == pytest.approx(1.0, abs=1e-5)


def test_transcript_mode_is_full_text_and_needs_no_encoder(planted_store):
    hits = search(planted_store, None, SearchRequest(text="zebra", mode="transcript", k=5))
    assert [(h.video_id, h.window_indices, h.t_start, h.t_end) for h in hits] == [(VIDEO_C, (1,), 3.0, 6.0)]
    assert hits[0].transcript == "zebra stripes in the sun"
    assert hits[0].score > 0


def test_hybrid_mode_fuses_pooled_and_text(planted_store, fake_encoder):
    hits = search(planted_store, fake_encoder, SearchRequest(text="a tall giraffe", mode="hybrid", k=1))
    assert hits[0].video_id == VIDEO_A and 2 in hits[0].window_indices
    # rank 1 in both lists: RRF score 2 / (60 + 1)
    assert hits[0].score == pytest.approx(2 / 61)


def test_audio_file_query_decodes_and_searches(planted_store, fake_encoder, media_files):
    hits = search(planted_store, fake_encoder, SearchRequest(audio_path=str(media_files["wav"]), mode="audio", k=1))
    assert [(h.video_id, h.window_indices) for h in hits] == [(VIDEO_C, (0,))]
    kind, shape = fake_encoder.model.calls[-1]
    assert kind == "audio" and shape == (16000,)  # 1 s of 16 kHz mono


def test_image_file_query_passes_one_frame(planted_store, fake_encoder, media_files):
    hits = search(planted_store, fake_encoder, SearchRequest(image_path=str(media_files["png"]), mode="visual", k=1))
    assert [(h.video_id, h.window_indices) for h in hits] == [(VIDEO_B, (2,))]
    assert fake_encoder.model.calls[-1] == ("image", (1, 32, 32, 3))


def test_video_file_query_uses_its_tokens_for_maxsim(planted_store, fake_encoder, media_files):
    hits = search(planted_store, fake_encoder, SearchRequest(video_path=str(media_files["query_video"]), mode="av", k=1))
    assert (hits[0].video_id, hits[0].window_indices) == (VIDEO_A, (0, 1))


@pytest.mark.parametrize(
    "where, expected_first",
    [
        (("duration_s>10",), VIDEO_B),
        ((("uri", "startswith", "s3://bucket/"),), VIDEO_C),
        (("has_audio=false",), VIDEO_B),
        (("indexed_at>=2024-06-15",), VIDEO_C),
        ((("video_id", "=", "cc33"), "duration_s<=8"), VIDEO_C),
    ],
)
def test_filters_restrict_the_videos(planted_store, fake_encoder, where, expected_first):
    hits = search(planted_store, fake_encoder, SearchRequest(text="red circle", mode="av", k=10, where=where))
    assert hits and {h.video_id for h in hits} == {expected_first}


def test_filter_matching_nothing_returns_no_hits(planted_store, fake_encoder):
    assert search(planted_store, fake_encoder, SearchRequest(text="red circle", where=("duration_s>1000",))) == []


def test_injection_in_filter_value_is_only_a_literal(planted_store, fake_encoder):
    request = SearchRequest(text="red circle", k=10, where=(("uri", "=", "x' OR '1'='1"),))
    assert search(planted_store, fake_encoder, request) == []
    request = SearchRequest(text="red circle", k=10, where=(("uri", "startswith", "/archive/cats/') OR (1=1"),))
    assert search(planted_store, fake_encoder, request) == []


@pytest.mark.parametrize(
    "request_kwargs, reason_part",
    [
        (dict(text="   "), "query text is empty"),
        (dict(), "no query given"),
        (dict(text="a", audio_path="x.wav"), "give one query"),
        (dict(text="a", k=0), "k must be"),
        (dict(text="a", k=1001), "k must be"),
        (dict(text="a", k=True), "k must be"),
        (dict(text="a", mode="sql"), "unknown mode"),
        (dict(audio_path="/nonexistent/x.wav", mode="transcript"), "needs a text query"),
        (dict(audio_path="/nonexistent/x.wav"), "does not exist"),
        (dict(text="a", where=("nosuch>1",)), "unknown filter column"),
        (dict(text="a", where=("duration_s ~ 1",)), "cannot read filter"),
        (dict(text="a", where=("duration_s>abc",)), "needs a number"),
    ],
)
def test_bad_requests_raise_search_input_error(planted_store, fake_encoder, request_kwargs, reason_part):
    with pytest.raises(SearchInputError) as info:
        search(planted_store, fake_encoder, SearchRequest(**request_kwargs))
    assert info.value.stage == "search"
    assert reason_part in info.value.reason and "\n" not in str(info.value)


def test_unreadable_query_file_is_a_search_input_error(planted_store, fake_encoder, tmp_path):
    bogus = tmp_path / "not_audio.wav"
    bogus.write_bytes(b"this is not a wav file at all" * 10)
    with pytest.raises(SearchInputError) as info:
        search(planted_store, fake_encoder, SearchRequest(audio_path=str(bogus), mode="audio"))
    assert info.value.reason.startswith("cannot read query file")


def test_query_width_mismatch_is_one_line_error(planted_store):
    query = QueryVectors(vector=np.ones(D + 1, dtype=np.float32) / np.sqrt(D + 1))
    with pytest.raises(SearchInputError) as info:
        search_encoded(planted_store, SearchRequest(text="x", mode="visual"), query)
    assert "store holds D=8" in info.value.reason
