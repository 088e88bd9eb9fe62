"""The whole asset graph materialised in process (dagster.materialize) on the synthetic corpus:
metadata agrees with the LanceDB tables and the manifest, every check passes, a second
materialisation writes nothing, and the checks fail on a store that is wrong."""

import shutil
import tempfile

import pytest
from dagster import AssetSelection, DagsterInstance, materialize

from assets.checks import failure_rate_below_threshold, index_graph_checks, windows_match_videos
from assets.index_assets import index_graph_assets
from assets.resources import ArchiveResource, BeamRunnerResource, LanceStoreResource, ModelResource
from favor_ops.store.feature_store import FeatureStore, sql_quote
from tests.assets.conftest import ARRIVAL_DAY, TEST_MODEL

CHECK_NAMES = {"windows_match_videos", "window_keys_unique", "failure_rate_below_threshold", "indexes_cover_windows"}


def graph_resources(archive, db) -> dict:
    return {
        "archive": ArchiveResource(uri=str(archive)),
        "store": LanceStoreResource(uri=str(db)),
        "model": ModelResource(spec=TEST_MODEL, device="cpu"),
        "beam": BeamRunnerResource(running_mode="multi_threading", num_workers=1),
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
        resources = graph_resources(archive, db)
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
    return {"first": first, "strict": strict, "second": second, "db": db, "archive": archive,
            "versions_after_first": versions_after_first, "resources": resources, "instance": instance}


def test_first_materialisation_metadata_matches_the_tables(materialized, asset_corpus):
    result = materialized["first"]
    assert result.success
    store = FeatureStore.open(str(materialized["db"]))
    catalog, tokens, index = (metadata_of(result, n) for n in ("video_catalog", "window_tokens", "search_index"))

    assert catalog["files"] == len(asset_corpus.records) == 10
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
