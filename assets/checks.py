"""Asset checks on the index graph, computed from the LanceDB tables themselves.

window_tokens:
- `windows_match_videos` (blocking): every indexed video's `n_windows` equals its number of rows in
  `windows`, no `windows` rows belong to a video that is not indexed, and the latest run's reported
  `windows_written` equals the rows its videos have in `windows`.
- `window_keys_unique` (blocking): no duplicate (video_id, window_idx) in `windows`, no duplicate
  video_id in `videos`.
- `failure_rate_below_threshold`: failed files / files the latest run tried to index is at most
  `max_failure_fraction` (run config of the check, default 0.5).
search_index:
- `indexes_cover_windows`: the full-text index exists once `windows` has rows, the ANN indexes once
  it has `ann_min_rows` (the `tokens` one only up to `tokens_ann_max_rows`), and every index covers
  every row (no unindexed rows after maintenance).
- `retrieval_quality`: text -> window R@k of the indexing model on the evaluation set (a synthetic
  corpus with its manifest, FAVOR_EVAL_CORPUS, default $FAVOR_HOME/eval) is at least `min_recall`
  (favor_ops.retrieval.evaluate.evaluate_retrieval: it encodes the evaluation corpus itself, it does
  not query the LanceDB index). Without an evaluation set the check fails with WARN severity and says
  how to make one.
qa_answers:
- `qa_failure_rate_below_threshold`: failed questions / questions tried (answered + failed) of the
  latest qa_answers materialization is at most `max_failed_fraction` (run config, default 0.1).
  Passes when no questions file is configured (nothing was tried).
"""


from collections import Counter

import os

from dagster import AssetCheckExecutionContext, AssetCheckResult, AssetCheckSeverity, Config, MetadataValue, asset_check

from assets.index_assets import (
    META_FAILED_FILES,
    META_INDEX_RUN_ID,
    META_QA_ANSWERED,
    META_QA_CONFIGURED,
    META_QA_FAILED,
    META_TO_INDEX,
    PREVIEW_ROWS,
    index_descriptions,
    latest_metadata,
    qa_answers,
    search_index,
    window_tokens,
)
from assets.resources import LanceStoreResource, ModelResource
from favor_ops.models.default_checkpoint import favor_home
from favor_ops.store.schema import POOLED_COLUMN, STATUS_INDEXED, TOKENS_COLUMN, TRANSCRIPT_COLUMN, VIDEOS, WINDOWS

META_ANN_MIN_ROWS = "ann_min_rows"  # written by search_index
META_TOKENS_ANN_MAX_ROWS = "tokens_ann_max_rows"  # written by search_index
META_FTS = "fts"


def _window_keys(feature_store) -> tuple[list[str], list[int]]:
    """(video_id, window_idx) columns of `windows` (empty when the table does not exist)."""
    if not feature_store.has_table(WINDOWS):
        return [], []
    keys = feature_store.table(WINDOWS).search().select(["video_id", "window_idx"]).limit(None).to_arrow()
    return keys["video_id"].to_pylist(), keys["window_idx"].to_pylist()


@asset_check(asset=window_tokens, blocking=True)
def windows_match_videos(context: AssetCheckExecutionContext, store: LanceStoreResource) -> AssetCheckResult:
    """Row counts agree: videos.n_windows == windows rows per indexed video; the run's windows_written adds up."""
    feature_store = store.open()
    videos = feature_store.videos_df()
    indexed = videos[videos["status"] == STATUS_INDEXED] if len(videos) else videos
    expected = {vid: int(n) for vid, n in zip(indexed.get("video_id", []), indexed.get("n_windows", []))}
    rows_per_video = Counter(_window_keys(feature_store)[0])
    mismatched = sorted(vid for vid, n in expected.items() if rows_per_video.get(vid, 0) != n)
    orphans = sorted(vid for vid in rows_per_video if vid not in expected)

    run = latest_metadata(context, window_tokens.key)
    run_id = run.get(META_INDEX_RUN_ID)
    run_videos = indexed[indexed["run_id"] == run_id] if run_id and len(indexed) else indexed.iloc[0:0]
    run_rows = sum(rows_per_video.get(vid, 0) for vid in run_videos.get("video_id", []))
    reported = run.get("windows_written")
    run_consistent = reported is None or int(reported) == run_rows
    return AssetCheckResult(
        passed=not mismatched and not orphans and run_consistent,
        metadata={
            "indexed_videos": len(expected),
            "windows_rows": sum(rows_per_video.values()),
            "expected_windows": sum(expected.values()),
            "mismatched_videos": MetadataValue.json(mismatched[:PREVIEW_ROWS]),
            "orphan_video_ids": MetadataValue.json(orphans[:PREVIEW_ROWS]),
            "latest_run_windows_written": int(reported) if reported is not None else -1,
            "latest_run_windows_rows": run_rows,
        },
    )


@asset_check(asset=window_tokens, blocking=True)
def window_keys_unique(store: LanceStoreResource) -> AssetCheckResult:
    """No duplicate (video_id, window_idx) in windows and no duplicate video_id in videos."""
    feature_store = store.open()
    video_ids, window_idx = _window_keys(feature_store)
    duplicate_windows = sorted(k for k, n in Counter(zip(video_ids, window_idx)).items() if n > 1)
    videos = feature_store.videos_df()
    duplicate_videos = sorted(k for k, n in Counter(videos["video_id"].tolist()).items() if n > 1) if len(videos) else []
    return AssetCheckResult(
        passed=not duplicate_windows and not duplicate_videos,
        metadata={
            "windows_rows": len(video_ids),
            "duplicate_window_keys": MetadataValue.json([list(k) for k in duplicate_windows[:PREVIEW_ROWS]]),
            "duplicate_window_key_count": len(duplicate_windows),
            "duplicate_video_ids": MetadataValue.json(duplicate_videos[:PREVIEW_ROWS]),
        },
    )


class FailureRateConfig(Config):
    max_failure_fraction: float = 0.5  # failed files / files the run tried to index, at most


@asset_check(asset=window_tokens)
def failure_rate_below_threshold(context: AssetCheckExecutionContext, config: FailureRateConfig) -> AssetCheckResult:
    """The latest index run failed on at most `max_failure_fraction` of the files it tried."""
    run = latest_metadata(context, window_tokens.key)
    to_index = int(run.get(META_TO_INDEX) or 0)
    failed = int(run.get(META_FAILED_FILES) or 0)
    fraction = failed / to_index if to_index else 0.0
    return AssetCheckResult(
        passed=bool(run) and fraction <= config.max_failure_fraction,
        severity=AssetCheckSeverity.ERROR,
        description=None if run else "window_tokens has no materialization to check",
        metadata={
            "index_run_id": str(run.get(META_INDEX_RUN_ID, "")),
            "failed_files": failed,
            "to_index": to_index,
            "failure_fraction": MetadataValue.float(fraction),
            "max_failure_fraction": MetadataValue.float(config.max_failure_fraction),
        },
    )


@asset_check(asset=search_index)
def indexes_cover_windows(context: AssetCheckExecutionContext, store: LanceStoreResource) -> AssetCheckResult:
    """FTS index once windows has rows, ANN indexes once it has ann_min_rows; none has unindexed rows."""
    feature_store = store.open()
    n_windows = feature_store.counts()[WINDOWS]
    settings = latest_metadata(context, search_index.key)
    ann_min_rows = int(settings.get(META_ANN_MIN_ROWS, 0) or 0)
    tokens_max = settings.get(META_TOKENS_ANN_MAX_ROWS)  # above it the tokens index is left out on purpose
    expected_columns = []
    if n_windows > 0 and settings.get(META_FTS, True):
        expected_columns.append(TRANSCRIPT_COLUMN)
    if ann_min_rows and n_windows >= ann_min_rows:
        expected_columns.append(POOLED_COLUMN)
        if tokens_max is None or n_windows <= int(tokens_max):
            expected_columns.append(TOKENS_COLUMN)
    indexes = [i for i in index_descriptions(feature_store) if i["table"] in (WINDOWS, VIDEOS)]
    indexed_columns = {c for i in indexes if i["table"] == WINDOWS for c in i["columns"]}
    missing = [c for c in expected_columns if c not in indexed_columns]
    stale = [i["name"] for i in indexes if i["unindexed_rows"]]
    return AssetCheckResult(
        passed=bool(settings) and not missing and not stale,
        metadata={
            "windows_rows": n_windows,
            "expected_indexed_columns": MetadataValue.json(expected_columns),
            "missing": MetadataValue.json(missing),
            "indexes_with_unindexed_rows": MetadataValue.json(stale),
        },
    )


class QAFailureRateConfig(Config):
    max_failed_fraction: float = 0.1  # failed questions / questions tried (answered + failed), at most


@asset_check(asset=qa_answers)
def qa_failure_rate_below_threshold(context: AssetCheckExecutionContext, config: QAFailureRateConfig) -> AssetCheckResult:
    """The latest batch QA failed on at most `max_failed_fraction` of the questions it tried."""
    run = latest_metadata(context, qa_answers.key)
    configured = bool(run.get(META_QA_CONFIGURED, False))
    answered = int(run.get(META_QA_ANSWERED) or 0)
    failed = int(run.get(META_QA_FAILED) or 0)
    tried = answered + failed
    fraction = failed / tried if tried else 0.0
    if not run:
        description = "qa_answers has no materialization to check"
    elif not configured:
        description = "no questions file configured: nothing was answered"
    else:
        description = None
    return AssetCheckResult(
        passed=bool(run) and fraction <= config.max_failed_fraction,
        severity=AssetCheckSeverity.ERROR,
        description=description,
        metadata={
            META_QA_CONFIGURED: configured,
            "answered": answered,
            "failed": failed,
            "failed_fraction": MetadataValue.float(fraction),
            "max_failed_fraction": MetadataValue.float(config.max_failed_fraction),
        },
    )


EVAL_CORPUS_ENV = "FAVOR_EVAL_CORPUS"
EVAL_KS = (1, 5, 10)  # the k of evaluate_retrieval's r1 / r5 / r10


def default_eval_corpus() -> str:
    return os.environ.get(EVAL_CORPUS_ENV) or str(favor_home() / "eval")


class RetrievalQualityConfig(Config):
    corpus_dir: str = default_eval_corpus()  # evaluation set: synthetic corpus dir holding manifest.jsonl
    query_kind: str = "single"  # visual | word | sound | joint | single (visual + word + sound)
    k: int = 5  # one of EVAL_KS
    min_recall: float = 0.5  # R@k at least this


def torch_device(device: str) -> str:
    if device != "auto":
        return device
    import torch

    return "cuda" if torch.cuda.is_available() else "cpu"


@asset_check(asset=search_index)
def retrieval_quality(config: RetrievalQualityConfig, model: ModelResource) -> AssetCheckResult:
    """Text -> window R@k of the indexing model on the evaluation set is at least min_recall."""
    from favor_ops.corpus.manifest import MANIFEST_NAME

    if config.k not in EVAL_KS:
        raise ValueError(f"k must be one of {EVAL_KS}, got {config.k}")
    manifest = os.path.join(config.corpus_dir, MANIFEST_NAME)
    if not os.path.isfile(manifest):
        return AssetCheckResult(
            passed=False,
            severity=AssetCheckSeverity.WARN,
            description=(f"no evaluation set at {config.corpus_dir} (no {MANIFEST_NAME}); make one with "
                         f"`favor corpus synth {config.corpus_dir}` or set {EVAL_CORPUS_ENV}"),
            metadata={"corpus_dir": config.corpus_dir},
        )
    from favor_ops.retrieval.aligned_model import load_aligned_model
    from favor_ops.retrieval.evaluate import evaluate_retrieval

    report = evaluate_retrieval(load_aligned_model(model.spec, device=torch_device(model.device)), config.corpus_dir)
    scores = report["text"][config.query_kind]
    recall = scores[f"r{config.k}"]
    return AssetCheckResult(
        passed=scores["n"] > 0 and recall >= config.min_recall,
        metadata={
            "corpus_dir": config.corpus_dir,
            "model": model.spec,
            "query_kind": config.query_kind,
            "queries": int(scores["n"]),
            f"recall_at_{config.k}": MetadataValue.float(float(recall)),
            "min_recall": MetadataValue.float(config.min_recall),
            "text_recall": MetadataValue.json({kind: {key: v for key, v in entry.items()}
                                               for kind, entry in report["text"].items()}),
            "av_matching": MetadataValue.json(report["av"]),
            "windows": int(report["windows"]),
            "files": int(report["files"]),
        },
    )


index_graph_checks = [windows_match_videos, window_keys_unique, failure_rate_below_threshold, indexes_cover_windows,
                      qa_failure_rate_below_threshold]
retrieval_checks = [retrieval_quality]  # slow (encodes the evaluation set): kept apart so tests can leave it out
