"""Direct evaluation of an aligned model on a synthetic corpus (no Beam, no LanceDB).

`evaluate_retrieval(aligned_model, corpus_dir)` decodes every usable file of the corpus, encodes all its windows
with `AlignedModel.encode_media` (the same windows and vectors the index job stores), generates the ground-truth
queries of the manifest (favor_ops.retrieval.queries) and scores each query against every window of the corpus
with MaxSim over the window's tokens.

Reported (each with its sample count `n`):
  text[kind]   for kind in visual / word / sound / joint, and "single" (visual + word + sound pooled):
               r1, r5, r10   share of queries with a relevant window in the top k (relevant: the window overlaps a
                             segment of its clip matching every attribute of the query)
               iou           mean temporal IoU of the top hit with its best relevant segment (0 when not relevant);
                             the top hit is what `favor search` returns first (k = SearchRequest's default): its
                             ranked windows with the touching ones merged into one span (search.merge_adjacent)
               iou_window    the same for the top single window, before merging
               iou_oracle    iou_window of the best-IoU relevant window: the ceiling of one 5 s window
  av           audio -> video matching over windows holding both modalities, compared by cosine of audio_vec
               with visual_vec (RetrievalHeads: frame by frame, or the single-modality passes):
               accuracy      "true vs swapped audio" (DESIGN 7): for each window i and each other window j whose
                             audio is a genuine swap (not from a window sharing a segment with i), is
                             cos(a_i, v_i) > cos(a_j, v_i)? Mean over all such (i, j) pairs; chance = 0.5.
               top1          strict retrieval: for each window i, is v_i the nearest visual_vec to a_i among the
                             visual_vecs of i and of every window not sharing a segment with i? Chance = 1/n.
               n             windows; pairs: number of (i, j) pairs of `accuracy`.
The synthetic corpus draws what is seen and what is heard independently, but the shape on screen sounds (is drawn
larger) while its segment's words, beeps and noises play (corpus/plan.py CorpusConfig.sounding_scale), so audio and
video of a window are linked by when things happen, not by what they are: a swapped audio track puts its events where
the picture does not pulse.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from favor_ops.retrieval.metrics import rank_desc, top_hit_iou
from favor_ops.retrieval.queries import QUERY_KINDS, SINGLE_KINDS, generate_queries, manifest_segments, overlap_s


@dataclass
class CorpusWindows:
    clip_ids: list[str]
    t_start: np.ndarray  # (N,)
    t_end: np.ndarray  # (N,)
    tokens: np.ndarray  # (N, Nq, E)
    audio_vec: np.ndarray  # (N, E)
    visual_vec: np.ndarray  # (N, E)
    has_audio: np.ndarray  # (N,) bool
    has_video: np.ndarray  # (N,) bool


def encode_corpus_windows(aligned_model, corpus_dir: str | Path, progress: bool = False) -> CorpusWindows:
    from favor_ops.corpus.manifest import read_manifest
    from favor_ops.media.decode import DecodeConfig, decode

    corpus = Path(corpus_dir)
    records = [r for r in read_manifest(corpus) if r.get("kind") != "bad" and not r.get("broken")]
    cfg = DecodeConfig(**aligned_model.favor.config.decode_config())
    if progress:
        from tqdm import tqdm

        records = tqdm(records, desc="encode corpus", unit="file", file=sys.stderr)
    parts = []
    clip_ids: list[str] = []
    for rec in records:
        vec = aligned_model.encode_decoded(decode(str(corpus / rec["file"]), cfg))
        if len(vec) == 0:
            continue
        parts.append(vec)
        clip_ids += [rec["clip_id"]] * len(vec)
    return CorpusWindows(
        clip_ids=clip_ids,
        t_start=np.concatenate([p.t_start_s for p in parts]),
        t_end=np.concatenate([p.t_end_s for p in parts]),
        tokens=np.concatenate([p.tokens for p in parts]),
        audio_vec=np.concatenate([p.audio_vec for p in parts]),
        visual_vec=np.concatenate([p.visual_vec for p in parts]),
        has_audio=np.concatenate([np.full(len(p), p.has_audio) for p in parts]),
        has_video=np.concatenate([np.full(len(p), p.has_video) for p in parts]),
    )


def top_search_span(order: np.ndarray, scores: np.ndarray, windows: CorpusWindows):
    """The first hit `favor search` returns for a query whose window scores are `scores` (N,), ranked `order`: the
    SearchConfig's fetch of windows for the default k, merged where they touch (SearchHit)."""
    from favor_ops.retrieval.search import DEFAULT_SEARCH_CONFIG, SearchRequest, WindowHit, merge_adjacent

    k = SearchRequest.k
    fetched = [WindowHit(windows.clip_ids[n], int(n), float(windows.t_start[n]), float(windows.t_end[n]),
                         float(scores[n])) for n in order[: DEFAULT_SEARCH_CONFIG.fetch_limit(k)]]
    return merge_adjacent(fetched, DEFAULT_SEARCH_CONFIG.merge_gap_s, max_spans=k)[0]


def text_retrieval_metrics(aligned_model, windows: CorpusWindows, records: list[dict], ks=(1, 5, 10)) -> dict:
    queries = generate_queries(records)
    texts = aligned_model.encode_text([q.text for q in queries]).cpu().numpy()  # (Q, E)
    scores = np.einsum("nqe,te->tnq", windows.tokens, texts).max(axis=2)  # (Q, N) MaxSim
    per_kind: dict[str, dict[str, list]] = {k: {"hits": [], "iou": [], "iou_window": [], "iou_oracle": []}
                                              for k in QUERY_KINDS}
    clip_ids = np.asarray(windows.clip_ids)
    for qi, q in enumerate(queries):
        spans_by_clip: dict[str, list] = {}
        for s in q.segments:
            spans_by_clip.setdefault(s.clip_id, []).append((s.t_start, s.t_end))

        def window_iou(n: int) -> float:
            return top_hit_iou((windows.t_start[n], windows.t_end[n]), spans_by_clip.get(clip_ids[n], []))

        relevant = np.array([any(overlap_s(windows.t_start[n], windows.t_end[n], *s) > 0
                                 for s in spans_by_clip.get(clip_ids[n], [])) for n in range(len(clip_ids))])
        if not relevant.any():
            continue
        order = rank_desc(scores[qi])
        per_kind[q.kind]["hits"].append(relevant[order[: max(ks)]])
        top = top_search_span(order, scores[qi], windows)
        per_kind[q.kind]["iou"].append(top_hit_iou((top.t_start, top.t_end), spans_by_clip.get(top.video_id, [])))
        per_kind[q.kind]["iou_window"].append(window_iou(int(order[0])))
        per_kind[q.kind]["iou_oracle"].append(max(window_iou(int(n)) for n in np.flatnonzero(relevant)))
    out: dict[str, dict] = {}
    groups = {k: (k,) for k in QUERY_KINDS}
    groups["single"] = SINGLE_KINDS
    for name, kinds in groups.items():
        hits = [h for k in kinds for h in per_kind[k]["hits"]]
        entry: dict = {"n": len(hits)}
        for k in ks:
            entry[f"r{k}"] = float(np.mean([h[:k].any() for h in hits])) if hits else float("nan")
        for metric in ("iou", "iou_window", "iou_oracle"):
            values = [v for k in kinds for v in per_kind[k][metric]]
            entry[metric] = float(np.mean(values)) if values else float("nan")
        out[name] = entry
    return out


def av_matching_metrics(windows: CorpusWindows, records: list[dict]) -> dict:
    both = np.flatnonzero(windows.has_audio & windows.has_video)
    if len(both) < 2:
        return {"accuracy": float("nan"), "top1": float("nan"), "n": int(len(both)), "pairs": 0}
    segments = manifest_segments(records)
    seg_sets = []
    for n in both:
        cid, t0, t1 = windows.clip_ids[n], windows.t_start[n], windows.t_end[n]
        seg_sets.append({(s.clip_id, s.t_start) for s in segments if s.clip_id == cid and overlap_s(t0, t1, s.t_start,
                                                                                                      s.t_end) > 0})
    a = windows.audio_vec[both]  # (n, E)
    v = windows.visual_vec[both]  # (n, E)
    sim = a @ v.T  # (n, n): audio i vs visual j
    n = len(both)
    genuine = np.array([[i != j and not (seg_sets[i] & seg_sets[j]) for j in range(n)] for i in range(n)])  # (n, n)
    true_score = np.diag(sim)  # (n,) cos(a_i, v_i)
    # accuracy: swap audio j into window i: cos(a_j, v_i) = sim[j, i]
    wins = (true_score[:, None] > sim.T) & genuine  # [i, j]: cos(a_i, v_i) > cos(a_j, v_i)
    pairs = int(genuine.sum())
    top1 = np.mean([(true_score[i] > sim[i, genuine[i]]).all() for i in range(n)])
    return {"accuracy": float(wins.sum() / max(pairs, 1)), "top1": float(top1), "n": int(n), "pairs": pairs}


def evaluate_retrieval(aligned_model, corpus_dir: str | Path, progress: bool = False) -> dict:
    """Text -> window R@1/5/10 and top-hit temporal IoU per query kind, and audio -> video matching (see module doc)."""
    from favor_ops.corpus.manifest import read_manifest

    records = [r for r in read_manifest(corpus_dir) if r.get("kind") != "bad" and not r.get("broken")]
    windows = encode_corpus_windows(aligned_model, corpus_dir, progress=progress)
    return {"text": text_retrieval_metrics(aligned_model, windows, records),
            "av": av_matching_metrics(windows, records),
            "windows": int(len(windows.clip_ids)), "files": len(records)}
