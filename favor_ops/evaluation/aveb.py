"""AVEB-lite: every number of one checkpoint on one synthetic corpus (DESIGN 7).

`evaluate_model(spec, corpus_dir)` returns one run's metrics:

    {"model": spec, "corpus": abs dir, "source": {...}, "windows": N, "files": F,
     "tasks": {key: {"value": x, "n": count}},      x is None when n is 0
     "qa_metrics": {...} | {"status": ...}, "transcript_wer": {"value": x, "n": words} | {"status": ...},
     "examples": [top hits of a few queries], "elapsed_s": t}

Task keys (the windows and the retrieval metrics are favor_ops.retrieval.evaluate's; see its module doc):

    text.<kind>.<m>      kind: single (visual + word + sound pooled), visual, word, sound, joint (a visual and a word
                         at the same moment); m: r1 / r5 / r10 (share of queries with a relevant window in the top k),
                         iou (temporal IoU of the top hit `favor search` returns, adjacent windows merged, with
                         its best relevant segment, 0 when not relevant), iou_window (the same for the top single
                         window), iou_oracle (iou_window of the best relevant window: what one 5 s window allows).
                         n = queries.
    av.swap_accuracy     AV match accuracy, true vs swapped audio. Over the windows holding both audio and video:
                         for each window i and each window j that shares no ground-truth segment with i (j's audio
                         is a genuine swap), is cos(audio_vec_i, visual_vec_i) > cos(audio_vec_j, visual_vec_i)?
                         The mean over all such (i, j) pairs; chance 0.5; n = pairs.
    av.audio_to_video.r1 for each window i, is visual_vec_i strictly the nearest visual_vec to audio_vec_i among i's
                         and those of every window sharing no segment with i? n = windows; chance ~ 1 / windows.
    av.video_to_audio.r1 the converse: is audio_vec_i strictly the nearest audio_vec to visual_vec_i among the same
                         candidates? n = windows.

The windows come from encoding the corpus with the model (`db=None`), or from a LanceDB feature store the index job
wrote (`db=URI`): then the stored vectors are scored (a file missing from the store loses its hits) and, when the
store holds transcripts, their word error rate against the manifest's spoken words is reported.

QA is a hook: `default_qa_hook` imports `favor_ops.qa.evaluate.evaluate_qa` lazily and runs it when the checkpoint
holds a QA model (`<ckpt>/qa/`); otherwise `qa_metrics` is {"status": "no QA model in checkpoint"}.
"""

from __future__ import annotations

import dataclasses
import importlib
import re
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

NO_QA = "no QA model in checkpoint"
WER_NOT_CONFIGURED = "not configured"
EXAMPLE_KINDS = ("visual", "word", "sound", "joint")


def metric(value, n: int) -> dict:
    """{"value": float | None, "n": int}; NaN / no samples -> None (JSON has no NaN)."""
    n = int(n)
    if value is None or n == 0:
        return {"value": None, "n": n}
    value = float(value)
    return {"value": None if not np.isfinite(value) else value, "n": n}


def usable_records(corpus_dir: str | Path) -> list[dict]:
    from favor_ops.corpus.manifest import read_manifest

    return [r for r in read_manifest(corpus_dir) if r.get("kind") != "bad" and not r.get("broken")]


# ---------------------------------------------------------------------------------------------- retrieval tasks
def retrieval_tasks(text: dict, av: dict, video_to_audio: dict) -> dict[str, dict]:
    """favor_ops.retrieval.evaluate's text / av dicts (+ the swapped-role av dict) -> flat {key: metric}."""
    tasks: dict[str, dict] = {}
    for kind in ("single", "visual", "word", "sound", "joint"):
        entry = text.get(kind)
        if entry is None:
            continue
        for m in ("r1", "r5", "r10", "iou", "iou_window", "iou_oracle"):
            if m in entry:
                tasks[f"text.{kind}.{m}"] = metric(entry[m], entry["n"])
    tasks["av.swap_accuracy"] = metric(av["accuracy"], av["pairs"])
    tasks["av.audio_to_video.r1"] = metric(av["top1"], av["n"])
    tasks["av.video_to_audio.r1"] = metric(video_to_audio["top1"], video_to_audio["n"])
    return tasks


def video_to_audio_metrics(windows, records: list[dict]) -> dict:
    """av_matching_metrics with the two modalities' roles exchanged: its `top1` is video -> audio R@1."""
    from favor_ops.retrieval.evaluate import av_matching_metrics

    swapped = dataclasses.replace(windows, audio_vec=windows.visual_vec, visual_vec=windows.audio_vec)
    return av_matching_metrics(swapped, records)


# ---------------------------------------------------------------------------------------------- store windows
@dataclasses.dataclass
class StoreWindows:
    windows: object  # favor_ops.retrieval.evaluate.CorpusWindows
    transcripts: list[str]  # per window
    info: dict  # files_found, files_missing, model_versions


def windows_from_store(store, records: list[dict], model_version: str | None = None) -> StoreWindows:
    """The stored windows of the corpus's files (matched by content hash: video_id = sha256 prefix), in manifest
    order; `model_version` keeps only that version's rows (and those of that version indexed with an ASR, whose
    version reads `<model_version>+<asr version>`). Raises ValueError when none of the files is stored."""
    from favor_ops.retrieval.evaluate import CorpusWindows
    from favor_ops.store.catalog import video_id_from_sha256

    clip_ids: list[str] = []
    parts: dict[str, list] = {k: [] for k in ("t_start", "t_end", "tokens", "audio_vec", "visual_vec", "has_audio",
                                               "has_video")}
    transcripts: list[str] = []
    missing: list[str] = []
    versions: set[str] = set()
    for rec in records:
        frame = store.windows_for_video(video_id_from_sha256(rec["sha256"]))
        if len(frame) and "model_version" in frame:
            versions.update(frame["model_version"].astype(str).unique().tolist())
            if model_version is not None:
                stored = frame["model_version"].astype(str)
                frame = frame[(stored == model_version) | stored.str.startswith(model_version + "+")]
        if len(frame) == 0:
            missing.append(rec["file"])
            continue
        clip_ids += [rec["clip_id"]] * len(frame)
        parts["t_start"].append(frame["t_start"].to_numpy(np.float64))
        parts["t_end"].append(frame["t_end"].to_numpy(np.float64))
        parts["tokens"].append(np.stack([np.stack(t) for t in frame["tokens"]]).astype(np.float32))
        for col in ("audio_vec", "visual_vec"):
            parts[col].append(np.stack(frame[col].to_list()).astype(np.float32))
        for col in ("has_audio", "has_video"):
            parts[col].append(frame[col].fillna(False).to_numpy(bool))
        transcripts += [str(t or "") for t in frame.get("transcript", [""] * len(frame))]
    if not clip_ids:
        hint = f" with model_version {model_version}" if model_version else ""
        found = f" (the store holds model versions {sorted(versions)})" if versions else ""
        raise ValueError(f"none of the corpus's {len(records)} files has windows{hint} in the store{found}")
    windows = CorpusWindows(clip_ids=clip_ids, **{k: np.concatenate(v) for k, v in parts.items()})
    info = {"files_found": len(records) - len(missing), "files_missing": missing, "model_versions": sorted(versions)}
    return StoreWindows(windows, transcripts, info)


# ---------------------------------------------------------------------------------------------- transcript WER
def normalise_words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", str(text).lower())


def word_edit_distance(reference: list[str], hypothesis: list[str]) -> int:
    """Levenshtein distance over words (substitutions + deletions + insertions)."""
    prev = list(range(len(hypothesis) + 1))
    for i, r in enumerate(reference, start=1):
        cur = [i] + [0] * len(hypothesis)
        for j, h in enumerate(hypothesis, start=1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def reference_words(records: list[dict], clip_id: str, t_start: float, t_end: float) -> list[str]:
    """Spoken words of the manifest whose midpoint lies in [t_start, t_end) of the clip, in time order."""
    events = []
    for rec in records:
        if rec["clip_id"] != clip_id:
            continue
        for seg in rec.get("segments", []):
            for ev in seg.get("audio_events", []):
                if ev.get("type") == "word" and ev.get("word"):
                    mid = 0.5 * (float(ev["t_start"]) + float(ev["t_end"]))
                    if t_start <= mid < t_end:
                        events.append((float(ev["t_start"]), ev["word"]))
    return [w for _, word in sorted(events) for w in normalise_words(word)]


def transcript_wer(windows, transcripts: list[str] | None, records: list[dict]) -> dict:
    """Corpus WER of the stored window transcripts against the manifest's words; n = reference words.
    "not configured" when there is no transcript at all (no ASR ran: the index stores empty strings)."""
    if not transcripts or not any(t.strip() for t in transcripts):
        return {"status": WER_NOT_CONFIGURED}
    errors = n_ref = 0
    for i, hyp in enumerate(transcripts):
        ref = reference_words(records, windows.clip_ids[i], float(windows.t_start[i]), float(windows.t_end[i]))
        errors += word_edit_distance(ref, normalise_words(hyp))
        n_ref += len(ref)
    if n_ref == 0:
        return {"value": None, "n": 0, "errors": errors}
    return {"value": errors / n_ref, "n": n_ref}


# ---------------------------------------------------------------------------------------------- example hits
def example_hits(aligned, windows, records: list[dict], n: int = 4) -> list[dict]:
    """The top window of the first query of each kind (visual, word, sound, joint), up to n of them."""
    from favor_ops.retrieval.queries import generate_queries, is_relevant

    if n <= 0 or len(windows.clip_ids) == 0:
        return []
    queries = generate_queries(records)
    chosen = [next(q for q in queries if q.kind == k) for k in EXAMPLE_KINDS if any(q.kind == k for q in queries)]
    chosen = chosen[:n]
    if not chosen:
        return []
    files = {r["clip_id"]: r["file"] for r in records}
    texts = aligned.encode_text([q.text for q in chosen]).cpu().numpy()  # (Q, E)
    scores = np.einsum("nqe,te->tnq", windows.tokens, texts).max(axis=2)  # (Q, N) MaxSim
    out = []
    for qi, q in enumerate(chosen):
        top = int(np.argsort(-scores[qi], kind="stable")[0])
        cid, t0, t1 = windows.clip_ids[top], float(windows.t_start[top]), float(windows.t_end[top])
        out.append({"kind": q.kind, "query": q.text, "clip_id": cid, "file": files.get(cid), "t_start": t0,
                    "t_end": t1, "score": float(scores[qi, top]), "relevant": bool(is_relevant(q, cid, t0, t1))})
    return out


# ---------------------------------------------------------------------------------------------- QA hook
def default_qa_hook(model_spec: str, aligned, corpus_dir: Path, records: list[dict], work_dir: Path | None,
                    progress: bool = False) -> dict:
    """QA exact match per question type through favor_ops.qa.evaluate.evaluate_qa, when the QA layer exists and the
    checkpoint holds a QA model; else {"status": "no QA model in checkpoint"}. A QA failure does not lose the other
    metrics: it becomes {"status": "error", "error": ...}."""
    try:
        evaluate_qa = getattr(importlib.import_module("favor_ops.qa.evaluate"), "evaluate_qa")
        from favor_ops.qa.qa_model import has_qa_model, load_qa_model
        from favor_ops.qa.questions import corpus_questions
        from favor_ops.qa.window_features import ClipWindowFeatures
    except (ImportError, AttributeError):
        return {"status": NO_QA}
    if not (Path(model_spec).is_dir() and has_qa_model(model_spec)):
        return {"status": NO_QA}
    try:
        cfg = aligned.favor.config
        window_s = cfg.windows.frames_per_window / cfg.windows.fps
        pairs = corpus_questions(records, window_s=window_s)
        weights = Path(model_spec) / "model.safetensors"
        version = f"{Path(model_spec).resolve()}:{weights.stat().st_mtime_ns if weights.is_file() else 0}"
        cache = Path(work_dir or Path(model_spec)) / "cache" / "qa_windows"
        features = ClipWindowFeatures(aligned, corpus_dir, cache, version, records)
        qa_model = load_qa_model(model_spec, device=aligned.device)
        return evaluate_qa(qa_model, pairs, features, window_s=window_s)
    except Exception as exc:  # noqa: BLE001 - reported in the metrics, the retrieval numbers still count
        print(f"favor eval: QA evaluation failed: {type(exc).__name__}: {exc}", file=sys.stderr)
        return {"status": "error", "error": f"{type(exc).__name__}: {exc}"}


QAHook = Callable[..., dict]


# ---------------------------------------------------------------------------------------------- one run
def evaluate_model(model_spec: str, corpus_dir: str | Path, *, aligned=None, db: str | None = None,
                   model_version: str | None = None, work_dir: str | Path | None = None,
                   qa_hook: QAHook | None = default_qa_hook, n_examples: int = 4, device: str = "cpu",
                   progress: bool = False) -> dict:
    """One run's metrics (module doc). `aligned`: an already loaded AlignedModel of `model_spec`; `db`: score the
    vectors stored there instead of encoding the corpus (`model_version` keeps only that version's rows)."""
    from favor_ops.retrieval.aligned_model import load_aligned_model
    from favor_ops.retrieval.evaluate import av_matching_metrics, encode_corpus_windows, text_retrieval_metrics

    t0 = time.time()
    corpus = Path(corpus_dir).resolve()
    records = usable_records(corpus)
    if aligned is None:
        aligned = load_aligned_model(str(model_spec), device=device)
    transcripts = None
    if db is None:
        windows = encode_corpus_windows(aligned, corpus, progress=progress)
        source = {"kind": "direct"}
    else:
        from favor_ops.store.feature_store import FeatureStore

        stored = windows_from_store(FeatureStore.open(db), records, model_version)
        windows, transcripts = stored.windows, stored.transcripts
        source = {"kind": "store", "db": str(db), "model_version": model_version, **stored.info}
    text = text_retrieval_metrics(aligned, windows, records)
    tasks = retrieval_tasks(text, av_matching_metrics(windows, records), video_to_audio_metrics(windows, records))
    qa = qa_hook(str(model_spec), aligned, corpus, records, Path(work_dir) if work_dir else None,
                 progress=progress) if qa_hook else {"status": "not evaluated"}
    return {
        "model": str(model_spec),
        "corpus": str(corpus),
        "source": source,
        "windows": int(len(windows.clip_ids)),
        "files": len(records),
        "tasks": tasks,
        "qa_metrics": qa,
        "transcript_wer": transcript_wer(windows, transcripts, records),
        "examples": example_hits(aligned, windows, records, n_examples),
        "elapsed_s": round(time.time() - t0, 2),
    }
