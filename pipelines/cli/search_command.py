"""`favor search "query" --db DB`: text or media-file search over the feature store.

    favor search "a red circle" --db DB                     text query, av mode (MaxSim on window tokens)
    favor search --audio bark.wav --db DB --mode audio      media query files: --audio / --image / --video
    favor search "zebra" --db DB --mode transcript          full text only (no model needed)
    favor search "cat" --db DB --where "duration_s>10" --where "uri^=s3://archive/cats/" --k 5 --json

Output: a table (video, span, score, transcript snippet) or, with --json, one JSON object
{"query": ..., "mode": ..., "k": ..., "hits": [{video_id, uri, t_start, t_end, score, transcript,
window_indices}]}. Bad input: one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import os

MODE_CHOICES = ("av", "visual", "audio", "transcript", "hybrid")
SNIPPET_CHARS = 60  # transcript characters shown per row of the table
URI_CHARS = 48  # uri characters shown per row of the table


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "search",
        help="search indexed videos by text, audio, image or video; prints time spans",
        description=(
            "Search the feature store at --db. Give a text query or one of --audio/--image/--video. "
            "Modes: av (MaxSim over the window tokens, default), visual, audio (per-modality vectors), "
            "transcript (full text), hybrid (pooled vector + full text, reciprocal-rank fusion). "
            "--where COLUMN OP VALUE filters on video metadata (columns: video_id, uri, duration_s, fps, has_audio, "
            "has_video, n_windows, indexed_at, model_version, status; OP: = != < <= > >= and ^= for 'starts with')."
        ),
    )
    parser.add_argument("query", nargs="?", default=None, help="text query")
    parser.add_argument("--db", required=True, help="LanceDB URI of the feature store")
    parser.add_argument("--audio", default=None, metavar="FILE", help="audio query file")
    parser.add_argument("--image", default=None, metavar="FILE", help="image query file")
    parser.add_argument("--video", default=None, metavar="FILE", help="video query file")
    # --mode and --k are checked by the search itself, so a bad value is one line, not argparse's usage block
    parser.add_argument("--mode", default="av", metavar="|".join(MODE_CHOICES), help="what to match (default: av)")
    parser.add_argument("--k", default="10", help="number of hits (1-1000, default 10)")
    parser.add_argument("--where", action="append", default=[], metavar="EXPR",
                        help='metadata filter, e.g. "duration_s>10" (repeat to AND several)')
    parser.add_argument("--model", default=None, help="aligned checkpoint dir or preset used to encode the query; "
                                                      "default: the demo checkpoint when it exists")
    parser.add_argument("--device", default="cpu", help="cpu or cuda for the query encoder")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.set_defaults(handler=run_search)


def parse_k(value) -> int:
    from favor_ops.retrieval.search_errors import SearchInputError

    try:
        return int(str(value).strip())
    except ValueError:
        raise SearchInputError("k", f"k must be a whole number from 1 to 1000, got {str(value)[:20]!r}") from None


def build_request(args: argparse.Namespace):
    from favor_ops.retrieval.search import SearchRequest
    from favor_ops.retrieval.search_errors import SearchInputError

    files = {"audio_path": args.audio, "image_path": args.image, "video_path": args.video}
    if args.query is not None and any(v is not None for v in files.values()):
        raise SearchInputError("query", "give a text query or a query file, not both")
    return SearchRequest(text=args.query, mode=args.mode, k=parse_k(args.k), where=tuple(args.where), **files)


def open_store(db: str):
    """The store at `db`, which must exist (a typo must not create an empty store)."""
    from favor_ops.retrieval.search_errors import SearchInputError
    from favor_ops.store.feature_store import FeatureStore
    from favor_ops.store.schema import WINDOWS

    from favor_ops.media.source import is_local_uri

    local = db[len("file://"):] if db.startswith("file://") else db
    if is_local_uri(db) and not os.path.isdir(local):
        raise SearchInputError(db, "no store at this path (run `favor index SOURCE --db DB` first)")
    store = FeatureStore.open(db)
    if not store.has_table(WINDOWS):
        raise SearchInputError(db, "no indexed windows in this store (run `favor index SOURCE --db DB` first)")
    return store


def run_search(args: argparse.Namespace) -> int:
    from favor_ops.retrieval.query_encoder import load_query_encoder
    from favor_ops.retrieval.search import MODE_TRANSCRIPT, hits_as_dicts, search, validate_request

    request, _ = validate_request(build_request(args))  # bad input fails before any model loads
    store = open_store(args.db)
    encoder = None if request.mode == MODE_TRANSCRIPT else load_query_encoder(args.model, device=args.device)
    hits = search(store, encoder, request)
    if args.json:
        query = {"text": request.text, "audio": request.audio_path, "image": request.image_path, "video": request.video_path}
        out = {"query": {k: v for k, v in query.items() if v is not None}, "mode": request.mode, "k": request.k,
               "where": [list(c.as_triple()) for c in request.where], "hits": hits_as_dicts(hits)}  # fmt: skip
        print(json.dumps(out, indent=2, default=str))
        return 0
    print(format_table(hits))
    return 0


def _clip(text: str, width: int) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= width else text[: width - 1] + "…"


def format_span(t_start: float, t_end: float) -> str:
    def clock(seconds: float) -> str:
        minutes, secs = divmod(max(float(seconds), 0.0), 60.0)
        hours, minutes = divmod(int(minutes), 60)
        return f"{hours}:{minutes:02d}:{secs:04.1f}" if hours else f"{minutes}:{secs:04.1f}"

    return f"{clock(t_start)}-{clock(t_end)}"


def format_table(hits) -> str:
    if not hits:
        return "no hits"
    rows = [("#", "video", "span", "score", "transcript")]
    for rank, hit in enumerate(hits, start=1):
        where = _clip(hit.uri or hit.video_id, URI_CHARS)
        rows.append((str(rank), where, format_span(hit.t_start, hit.t_end), f"{hit.score:.4f}", _clip(hit.transcript, SNIPPET_CHARS)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row[:4], widths)) + "  " + row[4] for row in rows]
    return "\n".join(line.rstrip() for line in lines)

