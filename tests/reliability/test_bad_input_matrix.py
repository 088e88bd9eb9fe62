"""The bad-input matrix through the real index job: one run over every case (module fixture), then one
check per case. Each input must end as a correct index entry (a `videos` row with status indexed and
exactly the expected windows) or as exactly one `failures` row with the expected stage, error type
and a one-line reason; never a crashed run, never a silent skip. See tests/reliability/cases.py for
the inputs and docs/reliability.md for the observed table (FAVOR_WRITE_RELIABILITY_DOC=1 rewrites it).
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from favor_ops.errors import UnsupportedMediaError
from favor_ops.media.decode import DecodeConfig, iter_frames
from favor_ops.store.feature_store import FeatureStore
from pipelines.index.job import EXIT_SOME_FAILED
from tests.reliability.cases import CASES, IS_ROOT
from tests.reliability.matrix import MatrixRun, case_uri, run_matrix
from tests.reliability.write_reliability_doc import DOC_PATH, ROOT_LINE, WRITE_DOC_ENV, documented_outcomes, write_doc

DURATION_TOL_S = 0.05
ROOT_DEPENDENT = {"unreadable_file", "unlistable_dir"}


@pytest.fixture(scope="module")
def matrix(tmp_path_factory) -> MatrixRun:
    run = run_matrix(tmp_path_factory.mktemp("reliability_matrix"))
    if os.environ.get(WRITE_DOC_ENV) == "1":
        write_doc(run.observed, run.archive)
    return run


def test_the_run_finishes_and_its_summary_counts_every_case(matrix):
    summary = matrix.summary
    n_failed = sum(1 for c in CASES if c.expected.outcome == "failed")
    assert summary.exit_code == EXIT_SOME_FAILED
    assert summary.failed == n_failed
    assert summary.indexed == len(CASES) - n_failed
    assert summary.windows_written == sum(c.expected.n_windows for c in CASES)


def test_the_store_holds_rows_of_the_cases_only(matrix):
    store = FeatureStore.open(str(matrix.db))
    uris = {case_uri(c, matrix.archive) for c in CASES}
    assert set(store.videos_df()["uri"]) <= uris
    assert set(store.failures_df()["uri"]) <= uris
    assert store.counts()["windows"] == sum(c.expected.n_windows for c in CASES)  # no strays of failed files


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_case_outcome(matrix, case):
    seen, expected = matrix.observed[case.name], case.expected
    assert seen.outcome == expected.outcome, f"{case.name}: {seen}"
    if expected.outcome == "indexed":
        assert (seen.status, seen.n_windows) == ("indexed", expected.n_windows)
        assert seen.window_idx == tuple(range(expected.n_windows))  # the windows table agrees with the row
        assert seen.duration_s == pytest.approx(expected.duration_s, abs=DURATION_TOL_S)
        assert (seen.has_video, seen.has_audio) == (expected.has_video, expected.has_audio)
        return
    assert len(seen.failures) == 1, seen.failures  # exactly one row, not one per retry or per chunk
    stage, error_type, message = seen.failures[0]
    assert (stage, error_type) == (expected.stage, expected.error_type), message
    assert message.strip() and "\n" not in message and "Traceback" not in message
    assert seen.windows_in_table == 0  # a failed file leaves no windows, even for chunks encoded before it failed
    if seen.status is not None:  # failed after hashing: the videos row says so (the catalog skips it next time)
        assert (seen.status, seen.n_windows) == ("failed", 0)


def test_non_utf8_name_is_reported_with_its_bytes_escaped(matrix):
    seen = matrix.observed["non_utf8_name"]
    assert seen.uri.endswith("latin1_caf\\xe9_\\xff.mp4")
    assert "not valid UTF-8" in seen.failures[0][2]


def test_declared_six_hours_is_refused_before_decoding(matrix):
    _, _, message = matrix.observed["declares_6h"].failures[0]
    assert message == "truncated: the streams hold 5.00 s of 21600.00 s declared"


def test_the_8k_limit_is_configurable(matrix):
    path = str(matrix.archive / "res_8k.mp4")
    with pytest.raises(UnsupportedMediaError) as info:
        next(iter_frames(path, DecodeConfig(max_source_pixels=3840 * 2160)))
    assert "7680x4320 exceeds max_source_pixels=8294400" in info.value.reason
    frames = next(iter_frames(path, DecodeConfig()))  # the default bound admits 8K and downscales it
    assert frames.frames_rgb.shape == (4, 224, 224, 3)
    assert frames.frames_rgb.dtype == np.uint8


def test_docs_reliability_matches_the_observed_outcomes(matrix):
    text = DOC_PATH.read_text(encoding="utf-8")
    documented = documented_outcomes(text)
    assert set(documented) == {c.name for c in CASES}, "run `make reliability-doc`"
    same_user = ROOT_LINE.format("yes" if IS_ROOT else "no") in text
    for case in CASES:
        if case.name in ROOT_DEPENDENT and not same_user:
            continue  # the doc was generated as the other kind of user
        assert documented[case.name] == matrix.observed[case.name].describe(), f"{case.name}: run `make reliability-doc`"
