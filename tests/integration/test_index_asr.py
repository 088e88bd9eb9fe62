"""`favor index --asr whisper-tiny-en` on 3 synthetic clips: the manifest's spoken words show up in the transcript
of the window that holds them, and `favor search WORD --mode transcript` finds that window.

Expectations come from the manifest (each word's exact [t_start, t_end) in the rendered track). Whisper tiny.en
mishears some espeak-ng words ("pillow" -> "hello", "garden" -> "garbage on"): through the real decode path it
puts 33 of 50 words in their window over 3-clip corpora of seeds 0-7 (7/7 for this one, seed 0), so at least
half must be found; the search is checked for every word the ASR got right.
"""

from __future__ import annotations

import contextlib
import io
import json
import re

import pytest

from favor_ops.corpus.manifest import read_manifest
from favor_ops.corpus.synth import synthesize_corpus
from favor_ops.store.feature_store import FeatureStore
from tests.integration.conftest import WINDOW_S, run_index_cli

ASR = "whisper-tiny-en"
CORPUS_VIDEOS, CORPUS_SEED, MAX_DURATION_S = 3, 0, 12.0  # 3 clips (mp4/aac, webm/opus, mkv/flac), 7 spoken words
MIN_FOUND = 0.5  # fraction of spoken words that must appear in their window's transcript


@pytest.fixture(scope="module")
def asr_indexed(tmp_path_factory):
    root = tmp_path_factory.mktemp("asr_index")
    archive, db = root / "archive", root / "db"
    synthesize_corpus(archive, CORPUS_VIDEOS, CORPUS_SEED, max_duration_s=MAX_DURATION_S, progress=False)
    run = run_index_cli(archive, db, "--asr", ASR)
    return read_manifest(archive), archive, db, run


def _tokens(text: str) -> set[str]:
    return set(re.findall(r"[a-z]+", text.lower()))


def _spoken_words(records):
    """(file, word, window index of the word's midpoint) for every spoken word of the manifest."""
    for record in records:
        for segment in record["segments"]:
            for event in segment["audio_events"]:
                if event["type"] == "word":
                    middle = (event["t_start"] + event["t_end"]) / 2
                    yield record["file"], event["word"], int(middle // WINDOW_S)


def test_asr_run_indexes_everything_and_transcribes_every_chunk(asr_indexed):
    records, _archive, _db, run = asr_indexed
    assert run.exit_code == 0, run.summary
    assert run.summary["indexed"] == len(records) == CORPUS_VIDEOS
    assert f"+{ASR}-" in run.summary["model_version"]
    assert run.summary["metrics"]["asr_chunks"] == CORPUS_VIDEOS  # <= 12 s each: one chunk per clip
    assert run.summary["metrics"].get("asr_failures", 0) == 0


def test_spoken_words_are_in_the_transcript_of_their_window_and_searchable(asr_indexed):
    from pipelines.cli.main import main

    records, _archive, db, _run = asr_indexed
    store = FeatureStore.open(str(db))
    videos = store.videos_df()
    uri_of = {uri.rsplit("/", 1)[-1]: uri for uri in videos["uri"]}
    id_of = dict(zip(videos["uri"], videos["video_id"]))
    transcripts = {}
    for uri, video_id in id_of.items():
        frame = store.windows_for_video(video_id)
        transcripts[uri] = dict(zip(frame["window_idx"], frame["transcript"]))

    spoken = list(_spoken_words(records))
    found = [(f, w, k) for f, w, k in spoken if w in _tokens(transcripts[uri_of[f]][k])]
    assert len(spoken) >= 5
    assert len(found) >= MIN_FOUND * len(spoken), (found, transcripts)

    for file, word, window in found:
        out = io.StringIO()
        with contextlib.redirect_stdout(out):
            code = main(["search", word, "--db", str(db), "--mode", "transcript", "--k", "3", "--json"])
        assert code == 0
        hits = json.loads(out.getvalue())["hits"]
        assert any(h["uri"] == uri_of[file] and window in h["window_indices"] for h in hits), (word, hits)
        assert word in _tokens(hits[0]["transcript"]), (word, hits[0])


@pytest.mark.slow
def test_turning_the_asr_off_reindexes_every_file_without_transcripts(asr_indexed, copy_store):
    """The ASR is part of the model version: the same archive without --asr is indexed again, not skipped."""
    _records, archive, db, run = asr_indexed
    db = copy_store(db)
    plain = run_index_cli(archive, db)
    assert plain.exit_code == 0 and plain.summary["indexed"] == CORPUS_VIDEOS and plain.summary["skipped"] == 0
    assert run.summary["model_version"].startswith(plain.summary["model_version"] + f"+{ASR}-")
    store = FeatureStore.open(str(db))
    for video_id in store.videos_df()["video_id"]:
        assert set(store.windows_for_video(video_id)["transcript"]) == {""}
