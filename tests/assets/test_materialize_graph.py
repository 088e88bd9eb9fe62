"""The whole asset graph materialised in process (dagster.materialize) on the synthetic corpus:
metadata agrees with the LanceDB tables and the manifest, every check passes, a second
materialisation writes nothing, and the checks fail on a store that is wrong.

qa_answers: with no questions file it materialises and says so; with one, it calls
favor_ops.qa.batch.run_batch_qa (replaced by a fake here, the QA library being an edge of this
package) and its metadata mirrors the returned summary; its check fails above the threshold."""

import importlib
import json
import shutil
import sys
import tempfile
import types
from dataclasses import asdict, dataclass

import pytest
from dagster import AssetSelection, DagsterInstance, materialize

from assets.checks import (
    failure_rate_below_threshold,
    index_graph_checks,
    qa_failure_rate_below_threshold,
    windows_match_videos,
)
from assets.index_assets import index_graph_assets, qa_answers
from assets.resources import ArchiveResource, BeamRunnerResource, LanceStoreResource, ModelResource, QAResource
from favor_ops.store.feature_store import FeatureStore, sql_quote
from tests.assets.conftest import ARRIVAL_DAY, TEST_MODEL

CHECK_NAMES = {"windows_match_videos", "window_keys_unique", "failure_rate_below_threshold", "indexes_cover_windows",
               "qa_failure_rate_below_threshold"}


def graph_resources(archive, db, answers_dir) -> dict:
    return {
        "archive": ArchiveResource(uri=str(archive)),
        "store": LanceStoreResource(uri=str(db)),
        "model": ModelResource(spec=TEST_MODEL, device="cpu"),
        "beam": BeamRunnerResource(running_mode="multi_threading", num_workers=1),
        "qa": QAResource(questions_path=None, answers_dir=str(answers_dir)),  # no questions file: nothing answered
    }


def metadata_of(result, asset_name: str) -> dict:
    (materialization,) = result.asset_materializations_for_node(asset_name)
    return {key: value.value for key, value in materialization.metadata.items()}


def check_outcomes(result) -> dict[str, bool]:
    return {e.check_name: e.passed for e in result.get_asset_check_evaluations()}


@pytest.fixture(scope="module")
def materialized(asset_corpus, tmp_path_factory):
    """The graph materialised twice on one instance; returns what each run reported and the store."""
    root = tmp_path_factory.mktemp("materialized")
    with pytest.MonkeyPatch.context() as patch:
        (root / "dagster_home").mkdir()
        (root / "tmp").mkdir()
        patch.setenv("DAGSTER_HOME", str(root / "dagster_home"))
        patch.setenv("TMPDIR", str(root / "tmp"))
        patch.setattr(tempfile, "tempdir", None)
        archive, db = root / "archive", root / "db"
        shutil.copytree(asset_corpus.archive, archive, copy_function=shutil.copy2)
        instance = DagsterInstance.ephemeral()
        resources = graph_resources(archive, db, root / "answers")
        first = materialize([*index_graph_assets, *index_graph_checks], resources=resources,
                            partition_key=ARRIVAL_DAY, instance=instance)
        versions_after_first = FeatureStore.open(str(db)).table_versions()
        strict = materialize(  # the (unpartitioned) failure-rate check alone, threshold below the corpus' 4 / 10
            [*index_graph_assets, *index_graph_checks], resources=resources, instance=instance, selection=AssetSelection.checks(failure_rate_below_threshold),
            run_config={"ops": {failure_rate_below_threshold.node_def.name: {"config": {"max_failure_fraction": 0.3}}}},
            raise_on_error=False,
        )
        second = materialize([*index_graph_assets, *index_graph_checks], resources=resources,
                             partition_key=ARRIVAL_DAY, instance=instance)
    return {"first": first, "strict": strict, "second": second, "db": db, "archive": archive, "root": root,
            "versions_after_first": versions_after_first, "resources": resources, "instance": instance}


def test_first_materialisation_metadata_matches_the_tables(materialized, asset_corpus):
    result = materialized["first"]
    assert result.success
    store = FeatureStore.open(str(materialized["db"]))
    catalog, tokens, index = (metadata_of(result, n) for n in ("video_catalog", "window_tokens", "search_index"))

    assert catalog["files"] == len(asset_corpus.records) == 10
    assert catalog["arrival_window"] == tokens["arrival_window"]  # the job indexed the catalog's window
    assert catalog["new_or_changed"] == 10
    assert catalog["already_indexed"] == 0
    assert catalog["unreadable"] == 0
    assert catalog["model_version"] == tokens["model_version"]
    assert tokens["model_version"].startswith("tiny-")

    videos = store.videos_df()
    run_id = tokens["index_run_id"]
    assert tokens["videos_indexed"] == int((videos["status"] == "indexed").sum()) == len(asset_corpus.good()) == 6
    assert tokens["windows_written"] == store.counts()["windows"] == asset_corpus.expected_windows() == 11
    assert tokens["failures"] == len(store.failures_df(run_id=run_id)) == 4
    assert tokens["failed_files"] == len(asset_corpus.bad()) == 4
    assert tokens["listed"] == 10
    assert tokens["skipped"] == 0
    assert tokens["wrote_anything"] is True
    assert tokens["exit_code"] == 3
    expected_seconds = sum(float(r["duration_s"]) for r in asset_corpus.good())  # 37 s
    assert tokens["video_seconds"] == pytest.approx(expected_seconds, abs=0.1 * len(asset_corpus.good()))
    assert tokens["throughput_video_s_per_wall_s"] == pytest.approx(tokens["video_seconds"] / tokens["wall_time_s"])
    # window_tokens reports the versions its commit left; search_index the ones maintenance left (the current ones).
    assert tokens["table_versions"] == index["versions_before"]
    assert index["table_versions"] == store.table_versions() == materialized["versions_after_first"]
    assert index["row_counts"] == store.counts()
    assert [i["name"] for i in index["indexes"]] == ["transcript_idx"]  # 11 windows < ann_min_rows: FTS only
    assert index["indexes"][0]["indexed_rows"] == 11 and index["indexes"][0]["unindexed_rows"] == 0


def test_every_check_passes_on_the_first_materialisation(materialized):
    assert check_outcomes(materialized["first"]) == {name: True for name in CHECK_NAMES}


def test_qa_answers_without_a_questions_file_materialises_and_says_so(materialized):
    qa = metadata_of(materialized["first"], "qa_answers")
    assert qa["questions_configured"] is False
    assert "no questions file configured" in qa["status"]
    assert "answered" not in qa  # nothing ran: no counts that could pass for a run's
    assert not (materialized["root"] / "answers").exists()
    (evaluation,) = [e for e in materialized["first"].get_asset_check_evaluations()
                     if e.check_name == "qa_failure_rate_below_threshold"]
    assert evaluation.passed and "no questions file configured" in evaluation.description


def test_failure_rate_check_fails_above_its_threshold(materialized):
    evaluations = materialized["strict"].get_asset_check_evaluations()
    assert [(e.check_name, e.passed) for e in evaluations] == [("failure_rate_below_threshold", False)]
    metadata = {k: v.value for k, v in evaluations[0].metadata.items()}
    assert metadata["failed_files"] == 4 and metadata["to_index"] == 10
    assert metadata["failure_fraction"] == pytest.approx(0.4)


def test_second_materialisation_writes_nothing(materialized):
    result = materialized["second"]
    assert result.success
    tokens, index = metadata_of(result, "window_tokens"), metadata_of(result, "search_index")
    assert tokens["videos_indexed"] == 0
    assert tokens["windows_written"] == 0
    assert tokens["failures"] == 0
    assert tokens["skipped"] == 10
    assert tokens["wrote_anything"] is False
    assert index["compacted_tables"] == "(none)"
    assert FeatureStore.open(str(materialized["db"])).table_versions() == materialized["versions_after_first"]
    assert check_outcomes(result) == {name: True for name in CHECK_NAMES}


def test_row_count_check_fails_when_windows_go_missing(materialized, tmp_path):
    db = tmp_path / "db"
    shutil.copytree(materialized["db"], db)
    store = FeatureStore.open(str(db))
    victim = store.videos_df().query("status == 'indexed'").iloc[0]["video_id"]
    store.table("windows").delete(f"video_id = {sql_quote(victim)}")
    resources = dict(materialized["resources"], store=LanceStoreResource(uri=str(db)))
    result = materialize([*index_graph_assets, *index_graph_checks], resources=resources,
                         instance=materialized["instance"], selection=AssetSelection.checks(windows_match_videos),
                         raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed is False
    assert evaluation.metadata["mismatched_videos"].value == [victim]


@pytest.mark.slow
def test_retrieval_quality_check_reports_recall_on_the_evaluation_set(materialized, asset_corpus, tmp_path):
    """R@k from favor_ops.retrieval.evaluate on the corpus (tiny model): passes at a threshold below it, fails above."""
    from assets.checks import retrieval_quality

    eval_dir = tmp_path / "eval"
    shutil.copytree(asset_corpus.archive, eval_dir)
    shutil.copy(asset_corpus.archive.parent / "manifest.jsonl", eval_dir / "manifest.jsonl")
    outcomes = {}
    for min_recall in (0.0, 1.01):
        config = {"corpus_dir": str(eval_dir), "k": 10, "min_recall": min_recall}
        result = materialize([*index_graph_assets, retrieval_quality], resources=materialized["resources"],
                             instance=materialized["instance"], selection=AssetSelection.checks(retrieval_quality),
                             run_config={"ops": {retrieval_quality.node_def.name: {"config": config}}},
                             raise_on_error=False)
        (evaluation,) = result.get_asset_check_evaluations()
        outcomes[min_recall] = (evaluation.passed, {k: v.value for k, v in evaluation.metadata.items()})
    (passed_low, low), (passed_high, high) = outcomes[0.0], outcomes[1.01]
    assert passed_low is True and passed_high is False
    assert low["files"] == len(asset_corpus.good()) == 6
    assert low["windows"] == asset_corpus.expected_windows() == 11
    assert low["queries"] > 0
    assert 0.0 <= low["recall_at_10"] <= 1.0 and low["recall_at_10"] == high["recall_at_10"]


def test_retrieval_quality_check_warns_without_an_evaluation_set(materialized, tmp_path):
    from dagster import AssetCheckSeverity

    from assets.checks import retrieval_quality

    config = {"corpus_dir": str(tmp_path / "no_such_eval_set")}
    result = materialize([*index_graph_assets, retrieval_quality], resources=materialized["resources"],
                         instance=materialized["instance"], selection=AssetSelection.checks(retrieval_quality),
                         run_config={"ops": {retrieval_quality.node_def.name: {"config": config}}}, raise_on_error=False)
    (evaluation,) = result.get_asset_check_evaluations()
    assert evaluation.passed is False
    assert evaluation.severity == AssetCheckSeverity.WARN
    assert "favor corpus synth" in evaluation.description


# ---- qa_answers with a questions file (the QA library faked at its entry point) ---------------------


@dataclass
class FakeBatchQASummary:
    """What favor_ops.qa.batch.run_batch_qa returns: counts, elapsed time, as_dict()."""

    answered: int
    skipped: int
    failed: int
    elapsed_s: float

    def as_dict(self) -> dict:
        return {**asdict(self), "extra_field": "from the library"}


@pytest.fixture
def fake_batch_qa(monkeypatch):
    """Replace favor_ops.qa.batch.run_batch_qa (module created in sys.modules while the library is not there yet).

    fake_batch_qa.summary: what the next call returns; fake_batch_qa.calls: the keyword arguments of each call.
    """
    try:
        batch = importlib.import_module("favor_ops.qa.batch")
    except ModuleNotFoundError as err:
        if err.name != "favor_ops.qa.batch":
            raise
        batch = types.ModuleType("favor_ops.qa.batch")
        monkeypatch.setitem(sys.modules, "favor_ops.qa.batch", batch)

    class Fake:
        summary = FakeBatchQASummary(answered=18, skipped=2, failed=1, elapsed_s=3.25)
        calls: list[dict] = []

    def run_batch_qa(*, db: str, questions_path: str, out_path: str, model: str | None):
        Fake.calls.append({"db": db, "questions_path": questions_path, "out_path": out_path, "model": model})
        return Fake.summary

    monkeypatch.setattr(batch, "run_batch_qa", run_batch_qa, raising=False)
    return Fake


def write_questions(path, store_db) -> int:
    """One question per indexed video of the store (the library's input format); returns how many."""
    video_ids = FeatureStore.open(str(store_db)).videos_df().query("status == 'indexed'")["video_id"].tolist()
    with open(path, "w") as handle:
        for i, video_id in enumerate(sorted(video_ids)):
            handle.write(json.dumps({"question_id": f"q{i}", "video_id": video_id, "question": "What is shown?"}) + "\n")
    return len(video_ids)


def materialize_qa(materialized, qa: QAResource, *, max_failed_fraction: float | None = None):
    run_config = None
    if max_failed_fraction is not None:
        run_config = {"ops": {qa_failure_rate_below_threshold.node_def.name: {
            "config": {"max_failed_fraction": max_failed_fraction}}}}
    return materialize(
        [*index_graph_assets, *index_graph_checks], resources=dict(materialized["resources"], qa=qa),
        instance=materialized["instance"], partition_key=ARRIVAL_DAY,
        selection=AssetSelection.assets(qa_answers) | AssetSelection.checks(qa_failure_rate_below_threshold),
        run_config=run_config, raise_on_error=False,
    )


def test_qa_answers_metadata_mirrors_the_batch_summary(materialized, fake_batch_qa, tmp_path):
    questions = tmp_path / "questions.jsonl"
    assert write_questions(questions, materialized["db"]) == 6
    qa = QAResource(questions_path=str(questions), model="some-qa-ckpt", answers_dir=str(tmp_path / "answers"))
    result = materialize_qa(materialized, qa)
    assert result.success

    (call,) = fake_batch_qa.calls
    assert call["db"] == str(materialized["db"])  # the store the index graph wrote
    assert call["questions_path"] == str(questions)
    assert call["model"] == "some-qa-ckpt"
    assert call["out_path"] == str(tmp_path / "answers" / f"answers-{result.run_id}.jsonl")
    assert (tmp_path / "answers").is_dir()

    metadata = metadata_of(result, "qa_answers")
    summary = fake_batch_qa.summary
    assert metadata["questions_configured"] is True
    assert (metadata["answered"], metadata["skipped"], metadata["failed"]) == (
        summary.answered, summary.skipped, summary.failed)
    assert metadata["elapsed_s"] == pytest.approx(summary.elapsed_s)
    assert metadata["summary"] == summary.as_dict()
    assert metadata["failed_share"] == pytest.approx(summary.failed / (summary.answered + summary.failed))
    assert metadata["answers_path"] == call["out_path"] and metadata["questions_path"] == str(questions)
    assert check_outcomes(result) == {"qa_failure_rate_below_threshold": True}  # 1 of 19 tried failed <= 0.1


def test_qa_answers_default_model_is_none(materialized, fake_batch_qa, tmp_path):
    questions = tmp_path / "questions.jsonl"
    write_questions(questions, materialized["db"])
    result = materialize_qa(materialized, QAResource(questions_path=str(questions), answers_dir=str(tmp_path / "a")))
    assert result.success
    assert fake_batch_qa.calls[-1]["model"] is None  # the QA library picks its default checkpoint
    assert metadata_of(result, "qa_answers")["model"] == "(default QA checkpoint)"


def test_qa_failure_check_fails_above_its_threshold(materialized, fake_batch_qa, tmp_path):
    questions = tmp_path / "questions.jsonl"
    write_questions(questions, materialized["db"])
    fake_batch_qa.summary = FakeBatchQASummary(answered=3, skipped=0, failed=3, elapsed_s=1.0)
    qa = QAResource(questions_path=str(questions), answers_dir=str(tmp_path / "answers"))
    failing = materialize_qa(materialized, qa, max_failed_fraction=0.25)
    assert failing.success  # the asset materialised; its (non-blocking) check failed
    (evaluation,) = failing.get_asset_check_evaluations()
    assert evaluation.passed is False
    metadata = {k: v.value for k, v in evaluation.metadata.items()}
    assert (metadata["answered"], metadata["failed"]) == (3, 3)
    assert metadata["failed_fraction"] == pytest.approx(0.5)
    assert check_outcomes(materialize_qa(materialized, qa, max_failed_fraction=0.5)) == {
        "qa_failure_rate_below_threshold": True}


def test_qa_answers_fails_on_a_missing_questions_file(materialized, fake_batch_qa, tmp_path):
    qa = QAResource(questions_path=str(tmp_path / "no_such_questions.jsonl"), answers_dir=str(tmp_path / "answers"))
    result = materialize_qa(materialized, qa)
    assert not result.success
    assert fake_batch_qa.calls == []


def test_the_qa_library_accepts_the_call_qa_answers_makes():
    """Contract with favor_ops.qa.batch (once it exists): the keywords qa_answers passes bind, the summary has the fields."""
    import dataclasses
    import inspect

    batch = pytest.importorskip("favor_ops.qa.batch")
    inspect.signature(batch.run_batch_qa).bind(db="db", questions_path="q.jsonl", out_path="a.jsonl", model=None)
    summary_type = inspect.signature(batch.run_batch_qa).return_annotation
    if isinstance(summary_type, str):
        summary_type = getattr(batch, summary_type, None)
    if dataclasses.is_dataclass(summary_type):
        assert {"answered", "skipped", "failed", "elapsed_s"} <= {f.name for f in dataclasses.fields(summary_type)}
        assert callable(getattr(summary_type, "as_dict", None))
