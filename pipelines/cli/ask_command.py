"""`favor ask`: answers from the stored window tokens (no re-decoding of video).

    favor ask VIDEO_ID "question" --db DB [--model CKPT] [--beams N] [--json]
    favor ask --questions Q.jsonl --out A.jsonl --db DB [--model CKPT] [--batch N] [--no-table]

One question: prints the answer and the evidence spans (the windows shown to the LLM). Batch: resumable (question ids
already in OUT are skipped), a progress bar, per-question errors as rows; exit 0, or 3 when some questions failed.
Bad input (unknown video id, empty question, no QA model): one line on stderr, exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys

EXIT_BAD_INPUT = 2
EXIT_SOME_FAILED = 3


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "ask",
        help="answer questions about an indexed video from its stored window tokens (one, or a JSONL batch)",
        description=(
            "Answer a question about an indexed video with the QA model of a checkpoint (the LLM reads the stored "
            "window tokens with their time spans; the whole video when it fits the token budget, else the windows "
            "that best match the question). Batch mode reads --questions Q.jsonl (lines of {question_id, video_id, "
            "question}) and appends to --out A.jsonl, skipping ids already answered there."
        ),
    )
    parser.add_argument("video_id", nargs="?", default=None, help="video id (the `videos.video_id` of the store)")
    parser.add_argument("question", nargs="?", default=None, help="the question")
    parser.add_argument("--db", required=True, help="LanceDB URI of the feature store")
    parser.add_argument("--model", default=None, help="checkpoint with a QA model (default: the demo checkpoint)")
    parser.add_argument("--questions", default=None, metavar="Q.jsonl", help="batch mode: questions file")
    parser.add_argument("--out", default=None, metavar="A.jsonl", help="batch mode: answers file (appended, resumable)")
    parser.add_argument("--batch", type=int, default=None, metavar="N", help="questions per generation batch")
    parser.add_argument("--beams", type=int, default=None, metavar="N", help="beam search width (1 = greedy)")
    parser.add_argument("--no-table", action="store_true", help="batch mode: do not write the store's answers table")
    parser.add_argument("--device", default="cpu", help="cpu or cuda")
    parser.add_argument("--json", action="store_true", help="print JSON")
    parser.set_defaults(handler=run_ask)


def _fail(message: str) -> int:
    print(f"favor ask: error: {message}", file=sys.stderr)
    return EXIT_BAD_INPUT


def run_ask(args: argparse.Namespace) -> int:
    from favor_ops.qa.evidence import QAInputError
    from favor_ops.qa.qa_model import QAModelError

    try:
        if args.questions or args.out:
            return _run_batch(args)
        return _run_one(args)
    except (QAInputError, QAModelError) as err:
        return _fail(err.reason if isinstance(err, QAInputError) else str(err))


def _run_one(args: argparse.Namespace) -> int:
    from favor_ops.qa.answerer import Answerer
    from favor_ops.store.feature_store import FeatureStore

    if not args.video_id:
        return _fail("give VIDEO_ID and a question, or --questions Q.jsonl --out A.jsonl")
    if not args.question or not args.question.strip():
        return _fail("empty question")
    if args.beams is not None and args.beams < 1:
        return _fail("--beams must be >= 1")
    answerer = Answerer.load(args.model, device=args.device)
    if args.beams:
        import dataclasses

        gen = dataclasses.replace(answerer.qa.cfg.generation, num_beams=args.beams)
        answerer.qa.cfg = dataclasses.replace(answerer.qa.cfg, generation=gen)
    answer = answerer.ask(FeatureStore.open(args.db), args.video_id, args.question)
    if args.json:
        print(json.dumps({"video_id": answer.video_id, "question": answer.question, "answer": answer.answer,
                          "evidence": [list(span) for span in answer.evidence],
                          "model_version": answerer.model_version}))
    else:
        spans = ", ".join(f"{a:g}-{b:g}s" for a, b in answer.evidence)
        print(f"Q: {answer.question}\nA: {answer.answer}\nevidence: {spans}")
    return 0


def _run_batch(args: argparse.Namespace) -> int:
    from pathlib import Path

    from favor_ops.qa.batch import run_batch_qa

    if not args.questions or not args.out:
        return _fail("batch mode needs both --questions Q.jsonl and --out A.jsonl")
    if not Path(args.questions).is_file():
        return _fail(f"no such questions file: {args.questions}")
    if args.batch is not None and args.batch < 1:
        return _fail("--batch must be >= 1")
    summary = run_batch_qa(args.db, args.questions, args.out, args.model, batch_size=args.batch,
                           write_answers_table=not args.no_table, show_progress=not args.json, device=args.device)
    if args.json:
        print(json.dumps(summary.as_dict()))
    else:
        print(f"{summary.answered} answered, {summary.failed} failed, {summary.skipped} already in {args.out} "
              f"({summary.questions} questions) in {summary.elapsed_s:.1f} s "
              f"({summary.questions_per_s:.2f} questions/s)")
    return EXIT_SOME_FAILED if summary.failed else 0
