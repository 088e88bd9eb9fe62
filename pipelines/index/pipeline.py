"""The index job's Beam graph: `build_pipeline` and the transforms it runs on the workers.

    Create(listed files)
      | Catalog/Hash          content sha256 -> video_id
      | Catalog/Plan          skip what this model version already indexed; removal rows for stored videos
      |                       whose content is gone from their uri
      | Decode                probe + frames/audio in window-aligned chunks  (CPU)
      | Encode                RunInference: encoders + causal Q-Former  (GPU when present)
      | Windows/Stage         each chunk's windows -> Arrow shards, in the worker that encoded them
      | AssembleVideos        per video (a CoGroupByKey of small records: header, chunk window counts,
      |                       failures): its `videos` row, indexed when every window was staged
      | Stage/*               videos and failures rows -> Arrow shards in <db>/_staging/<run_id>/

Window tokens never go through the shuffle: the commit (favor_ops.store.commit) writes the windows of
the videos the run lists as indexed and ignores the staged windows of the others.

Everything here is unpickled in the SDK worker processes, so this module imports
only what the workers need: Beam, the media decoders, Arrow shard writing and
(lazily, in the model handler) torch. Not LanceDB: the store is opened by the
driver alone (`pipelines.index.job`), before and after the pipeline, and an
import it does not need costs every worker about a second at start-up.
"""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import apache_beam as beam
from apache_beam.ml.inference.base import RunInference

from favor_ops.store import schema as store_schema
from favor_ops.store.catalog import (
    CatalogConfig,
    CatalogEntry,
    content_sha256,
    plan_indexing,
    stale_video_ids,
    video_id_from_sha256,
)
from pipelines.index.decode_transform import FAILURES_TAG, HEADERS_TAG, DecodeVideoFn
from pipelines.index.elements import EncodedChunk, Failure, VideoHeader, VideoTask
from pipelines.index.job_config import IndexJobConfig
from pipelines.index.model_handler import FavorWindowModelHandler
from pipelines.index.progress import mark_planned
from pipelines.index.runner_options import default_num_workers, is_local_runner
from pipelines.index.store_transform import StageWindowsFn, WriteShardsFn

# Failures at these stages say nothing about the file itself: it is retried by the next run.
if TYPE_CHECKING:
    from pipelines.index.chunk_encoder import ModelDescription

RETRYABLE_STAGES = frozenset({"encode", "store", "window"})
REMOVED_TAG = "removed"


class HashFileFn(beam.DoFn):
    """(uri, size, mtime) -> CatalogEntry with the content hash as video_id."""

    def __init__(self, catalog_config: CatalogConfig, fs_options: dict | None = None):
        self.catalog_config = catalog_config
        self.fs_options = fs_options or {}

    def process(self, listed: tuple[str, int, float]):
        import fsspec

        uri, size, mtime = listed
        try:
            fs, path = fsspec.core.url_to_fs(uri, **self.fs_options)
            digest = content_sha256(fs, path, self.catalog_config.hash_block_bytes)
        except (OSError, ValueError) as err:
            yield beam.pvalue.TaggedOutput(
                FAILURES_TAG, Failure(uri, None, "catalog", type(err).__name__, str(err).splitlines()[0] if str(err) else "")
            )
            return
        yield CatalogEntry(uri=uri, video_id=video_id_from_sha256(digest, self.catalog_config), size_bytes=size, mtime=mtime)


def plan_tasks(entries: list[CatalogEntry], video_states: dict, model_version: str, catalog_config: CatalogConfig,
               db_uri: str, run_id: str):
    """The files to index, and (tagged REMOVED_TAG) a staged `videos` removal row for each stored video whose
    content is gone from its uri."""
    to_index, _skipped = plan_indexing(entries, video_states, model_version, catalog_config)
    mark_planned(db_uri, run_id, len(to_index))
    for video_id in stale_video_ids(entries, video_states):
        yield beam.pvalue.TaggedOutput(REMOVED_TAG, ("videos", [removal_row(video_id, video_states[video_id][0],
                                                                           model_version, run_id)]))
    for entry in to_index:
        yield VideoTask(uri=entry.uri, video_id=entry.video_id, size_bytes=entry.size_bytes)


def removal_row(video_id: str, uri: str, model_version: str, run_id: str) -> dict:
    return {"video_id": video_id, "uri": uri, "duration_s": None, "fps": None, "has_audio": None, "has_video": None,
            "n_windows": 0, "model_version": model_version, "indexed_at": store_schema.utc_now(),
            "status": store_schema.STATUS_REMOVED, "run_id": run_id}


def split_encoded(result):
    """PredictionResult(MediaChunk, WindowRows | Failure) -> main WindowRows or tagged Failure."""
    inference = result.inference
    if isinstance(inference, Failure):
        yield beam.pvalue.TaggedOutput(FAILURES_TAG, inference)
    else:
        yield inference


def failure_to_record(failure: Failure, run_id: str) -> dict:
    return {
        "uri": failure.uri,
        "video_id": failure.video_id,
        "stage": failure.stage,
        "error_type": failure.error_type,
        "message": failure.message,
        "run_id": run_id,
        "at": store_schema.utc_now(),
    }


def dead_letter_to_failure(stage: str):
    """Beam dead-letter element (input, (exc_type, repr, traceback)) -> Failure."""

    def convert(bad):
        element, (exc_type, exc_repr, _traceback) = bad
        uri = getattr(element, "uri", None) or (element[0] if isinstance(element, tuple) else str(element))
        video_id = getattr(element, "video_id", None)
        name = getattr(exc_type, "__name__", str(exc_type))
        return Failure(str(uri), video_id, stage, name, str(exc_repr).splitlines()[0][:500])

    return convert


def assemble_video_row(keyed, run_id: str, model_version: str):
    """CoGroupByKey(video_id) of headers, EncodedChunks and failures -> one `videos` row (and new failures).

    The row says indexed when the video's chunks add up to its window count and nothing failed; the commit
    then writes its staged windows. The staged windows of any other video (chunks encoded before a later
    chunk failed) are never written."""
    video_id, grouped = keyed
    headers: list[VideoHeader] = list(grouped["headers"])
    encoded: list[EncodedChunk] = list(grouped["windows"])
    windows_done = sum(chunk.n_windows for chunk in encoded)
    failures: list[Failure] = list(grouped["failures"])
    n_input_failures = len(failures)
    header = headers[0] if headers else None
    uri = header.uri if header else (failures[0].uri if failures else "")
    complete = header is not None and not failures and windows_done == header.n_windows
    if header is not None and not failures and windows_done != header.n_windows:
        # Never a silent loss: a window count that does not add up is a failure of its own.
        failures.append(Failure(uri, video_id, "window", "WindowCountMismatch",
                                f"encoded {windows_done} of {header.n_windows} windows"))
    if not complete and failures and all(f.stage in RETRYABLE_STAGES for f in failures):
        # The file may be fine (a model or worker fault): no `videos` row, so the next run tries it again.
        for failure in failures[n_input_failures:]:
            yield beam.pvalue.TaggedOutput(FAILURES_TAG, failure)
        return
    row = {
        "video_id": video_id,
        "uri": uri,
        "duration_s": header.duration_s if header else None,
        "fps": header.fps if header else None,
        "has_audio": header.has_audio if header else None,
        "has_video": header.has_video if header else None,
        "n_windows": header.n_windows if complete else 0,
        "model_version": model_version,
        "indexed_at": store_schema.utc_now(),
        "status": store_schema.STATUS_INDEXED if complete else store_schema.STATUS_FAILED,
        "run_id": run_id,
    }
    yield ("videos", [row])
    for failure in failures[n_input_failures:]:
        yield beam.pvalue.TaggedOutput(FAILURES_TAG, failure)


# ---------------------------------------------------------------------------------------------
# Assembly
# ---------------------------------------------------------------------------------------------


def build_pipeline(
    pipeline: beam.Pipeline,
    *,
    listed: list[tuple[str, int, float]],
    listing_failures: list[Failure],
    config: IndexJobConfig,
    model: ModelDescription,
    video_states: dict,
    run_id: str,
    schemas: dict,
    catalog_config: CatalogConfig,
):
    """Add the index job's transforms to `pipeline`; returns nothing (outputs are staged shards)."""
    files = pipeline | "ListedFiles" >> beam.Create(listed) | "SpreadFiles" >> beam.Reshuffle()
    hashed = files | "Catalog/Hash" >> beam.ParDo(HashFileFn(catalog_config)).with_outputs(FAILURES_TAG, main="entries")
    planned = (
        hashed.entries
        | "Catalog/Gather" >> beam.combiners.ToList()
        | "Catalog/Plan" >> beam.FlatMap(plan_tasks, video_states, model.model_version, catalog_config, config.db,
                                         run_id).with_outputs(REMOVED_TAG, main="tasks")
    )
    tasks = planned.tasks | "SpreadTasks" >> beam.Reshuffle()
    decoded = tasks | "Decode" >> beam.ParDo(
        DecodeVideoFn(dataclasses.replace(model.decode_config, hwaccel=config.decode_hwaccel), model.window_spec,
                      config.windows_per_chunk, progress=(config.db, run_id))
    ).with_outputs(HEADERS_TAG, FAILURES_TAG, main="chunks").with_exception_handling(partial=True)
    decode_crashes = decoded.bad | "Decode/DeadLetter" >> beam.Map(dead_letter_to_failure("decode"))

    encoded = decoded.chunks | "Encode" >> RunInference(
        FavorWindowModelHandler(config.model, device=config.device, max_batch_chunks=config.max_batch_chunks,
                                torch_threads=torch_threads_per_worker(config), asr=config.asr)
    ).with_exception_handling()
    encoded_main, encode_dlq = encoded
    encode_crashes = (
        [encode_dlq.failed_inferences] + list(encode_dlq.failed_preprocessing) + list(encode_dlq.failed_postprocessing)
        | "Encode/DeadLetters" >> beam.Flatten()
        | "Encode/DeadLetter" >> beam.Map(dead_letter_to_failure("encode"))
    )
    split = encoded_main | "SplitEncoded" >> beam.FlatMap(split_encoded).with_outputs(FAILURES_TAG, main="rows")
    window_rows = split.rows
    # Fused with Encode: each chunk's tokens are written to a shard by the worker that encoded them; only the
    # small EncodedChunk records go on to the per-video assembly.
    windows_by_video = (
        window_rows
        | "Windows/Stage" >> beam.ParDo(StageWindowsFn(config.db, run_id, schemas, model.model_version))
        | "Windows/Key" >> beam.Map(lambda chunk: (chunk.video_id, chunk))
    )

    listing = pipeline | "ListingFailures" >> beam.Create(listing_failures)
    failures = [listing, hashed[FAILURES_TAG], decoded[FAILURES_TAG], decode_crashes, encode_crashes,
                split[FAILURES_TAG]] | "AllFailures" >> beam.Flatten()
    failures_by_video = (
        failures
        | "Failures/WithVideo" >> beam.Filter(lambda f: f.video_id is not None)
        | "Failures/Key" >> beam.Map(lambda f: (f.video_id, f))
    )
    headers_by_video = decoded[HEADERS_TAG] | "Headers/Key" >> beam.Map(lambda h: (h.video_id, h))
    videos = (
        {"headers": headers_by_video, "windows": windows_by_video, "failures": failures_by_video}
        | "Videos/Group" >> beam.CoGroupByKey()
        | "AssembleVideos" >> beam.FlatMap(assemble_video_row, run_id, model.model_version).with_outputs(
            FAILURES_TAG, main="rows"
        )
    )
    all_failures = [failures, videos[FAILURES_TAG]] | "Failures/All" >> beam.Flatten()
    failure_records = all_failures | "Failures/ToRows" >> beam.Map(lambda f: ("failures", [failure_to_record(f, run_id)]))

    (
        [videos.rows, failure_records, planned[REMOVED_TAG]]
        | "Stage/Flatten" >> beam.Flatten()
        | "Stage/WriteShards" >> beam.ParDo(WriteShardsFn(config.db, run_id, schemas))
    )


def torch_threads_per_worker(config: IndexJobConfig) -> int | None:
    """Local runs split the cores between worker processes; remote workers keep torch's default."""
    if not is_local_runner(config.runner):
        return None
    cores = default_num_workers()
    if config.running_mode == "multi_processing":
        return max(1, cores // (config.num_workers or cores))
    return cores
