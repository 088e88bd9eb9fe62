"""RunInference ModelHandler: MediaChunks in, encoded WindowRows out.

The handler owns loading (once per worker process, through RunInference's
shared model handle) and batching: the frames of every chunk in a batch go
through the visual encoder together; speech and the causal Q-Former run per
chunk. A chunk that fails becomes a Failure result instead of failing the
batch; an out-of-memory batch is retried at half size before its chunks are
dead-lettered. With `asr` set, the worker also loads that transcriber once (next
to the model: `load_model` returns both as `LoadedModels`) and every chunk's
windows get transcripts; a chunk whose ASR fails keeps empty transcripts and is
counted (`asr_failures`) and logged, never failed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import apache_beam as beam
from apache_beam.ml.inference.base import ModelHandler, PredictionResult

from pipelines.index.elements import Failure, MediaChunk, WindowRows

METRICS_NAMESPACE = "favor.index"
MODEL_LOAD_LOG_ENV = "FAVOR_MODEL_LOAD_LOG"  # tests: a file that gets one line per model load

_log = logging.getLogger(__name__)


@dataclass
class LoadedModels:
    """What one worker loads once: the FAVOR model (+ retrieval heads) and the optional transcriber."""

    model: Any  # AlignedModel
    transcriber: Any = None  # favor_ops.asr.Transcriber | None


def _is_out_of_memory(err: BaseException) -> bool:
    import torch

    return isinstance(err, torch.OutOfMemoryError) or "out of memory" in str(err).lower()


def import_worker_modules(asr: str | None = None) -> None:
    """Import what a worker imports before its first element: the job's transforms (Beam), torch, the model
    code and the transformers modules it is built from, and the ASR's runtime when one is configured. The
    worker fork server (worker_fork_server.py) runs this once, and every worker forked from it starts warm."""
    import importlib

    for name in (
        "pipelines.index.pipeline",
        "pipelines.index.chunk_encoder",
        "favor_ops.models.loading",
        "favor_ops.models.checkpoint",
        "favor_ops.retrieval.aligned_model",
        "transformers.models.instructblip.modeling_instructblip",
        "transformers.models.whisper.modeling_whisper",
        "transformers.models.whisper.feature_extraction_whisper",
    ):
        importlib.import_module(name)
    if asr:
        with contextlib.suppress(ImportError):  # a missing runtime is reported by load_model, as without warm-up
            importlib.import_module("faster_whisper")
        importlib.import_module("favor_ops.asr.whisper_ct2")


class FavorWindowModelHandler(ModelHandler[MediaChunk, Any, Any]):
    def __init__(self, model_spec: str, device: str = "auto", max_batch_chunks: int = 4,
                 torch_threads: int | None = None, asr: str | None = None):
        super().__init__()
        self.model_spec = model_spec
        self.device = device
        self.max_batch_chunks = max_batch_chunks
        self.torch_threads = torch_threads  # CPU threads per worker process (None: torch's default)
        self.asr = asr or None  # transcriber name (favor_ops.asr.ASR_CHOICES); None: no transcripts

    # -- ModelHandler API ---------------------------------------------------------------
    def load_model(self):
        import torch

        from favor_ops.retrieval.aligned_model import load_aligned_model

        if self.torch_threads:
            torch.set_num_threads(self.torch_threads)  # worker processes share the cores: no oversubscription
        device = self.device
        if device == "auto":
            device = "cuda" if torch.cuda.is_available() else "cpu"
        model = load_aligned_model(self.model_spec, device=device)  # FAVOR model + retrieval heads (identity for presets)
        transcriber = None
        if self.asr:
            from favor_ops.asr import load_transcriber

            # CPU, with this worker's share of the cores (the ASR runs between the model's batches, not beside them).
            transcriber = load_transcriber(self.asr, cpu_threads=self.torch_threads or torch.get_num_threads())
        log_path = os.environ.get(MODEL_LOAD_LOG_ENV)
        if log_path:
            with open(log_path, "a", encoding="utf-8") as log:
                log.write(f"{os.getpid()}\n")
        return LoadedModels(model, transcriber)

    def batch_elements_kwargs(self):
        return {"min_batch_size": 1, "max_batch_size": self.max_batch_chunks}

    def get_metrics_namespace(self) -> str:
        return METRICS_NAMESPACE

    def run_inference(
        self, batch: Sequence[MediaChunk], model, inference_args: dict[str, Any] | None = None
    ) -> Iterable[PredictionResult]:
        started = time.perf_counter()
        results = self._run_with_oom_retry(list(batch), model)
        elapsed_ms = int((time.perf_counter() - started) * 1000)
        beam.metrics.Metrics.distribution(METRICS_NAMESPACE, "encode_ms_per_batch").update(elapsed_ms)
        for chunk, result in zip(batch, results):
            self._count_asr(chunk, result)
        return [PredictionResult(chunk, result) for chunk, result in zip(batch, results)]

    # -- internals ----------------------------------------------------------------------
    @staticmethod
    def _count_asr(chunk: MediaChunk, result) -> None:
        if not isinstance(result, WindowRows) or result.asr_ms is None:
            return
        beam.metrics.Metrics.counter(METRICS_NAMESPACE, "asr_chunks").inc()
        beam.metrics.Metrics.distribution(METRICS_NAMESPACE, "asr_ms_per_chunk").update(result.asr_ms)
        if result.asr_error:
            beam.metrics.Metrics.counter(METRICS_NAMESPACE, "asr_failures").inc()
            _log.warning("ASR failed on %s (chunk %d): %s; its windows keep empty transcripts",
                         chunk.uri, chunk.chunk_idx, result.asr_error)

    def _run_with_oom_retry(self, chunks: list[MediaChunk], model) -> list:
        try:
            return self._encode_batch(chunks, model)
        except Exception as err:  # noqa: BLE001 - classified below, never swallowed silently
            if _is_out_of_memory(err) and len(chunks) > 1:
                self._release_memory()
                half = len(chunks) // 2
                beam.metrics.Metrics.counter(METRICS_NAMESPACE, "oom_batch_splits").inc()
                return self._run_with_oom_retry(chunks[:half], model) + self._run_with_oom_retry(chunks[half:], model)
            if len(chunks) > 1:  # isolate the bad chunk: encode one by one
                return [self._run_with_oom_retry([chunk], model)[0] for chunk in chunks]
            self._release_memory()
            chunk = chunks[0]
            reason = f"out of memory: {err}" if _is_out_of_memory(err) else str(err) or type(err).__name__
            return [Failure(chunk.uri, chunk.video_id, "encode", type(err).__name__, reason.splitlines()[0])]

    @staticmethod
    def _release_memory():
        import torch

        if torch.cuda.is_available():
            torch.cuda.empty_cache()

    def _encode_batch(self, chunks: list[MediaChunk], model) -> list[WindowRows]:
        import torch

        from pipelines.index.chunk_encoder import encode_media_chunk_batch

        if isinstance(model, LoadedModels):
            model, transcriber = model.model, model.transcriber
        else:  # a bare model (callers other than load_model)
            transcriber = None
        with torch.inference_mode():
            encoded = encode_media_chunk_batch(model, chunks, transcriber=transcriber)
        return encoded
