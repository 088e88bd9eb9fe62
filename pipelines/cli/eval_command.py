"""`favor eval`: the AVEB-lite evaluation of an aligned checkpoint on a synthetic corpus (DESIGN 7).

    favor eval --corpus DIR --model CKPT --out REPORT_DIR [--db DB] [--ablations [--ablation NAME ...]
               [--train-corpus DIR] [--steps N] [--visual-steps N] [--speech-steps N] [--batch N] [--seed N]
               [--qa-steps N]]
               [--device cpu|cuda] [--examples N] [--json]
    favor eval --table METRICS_JSON

Writes REPORT_DIR/metrics.json (every metric {"value": x, "n": count}), report.html and PNG plots, and prints the
Markdown results table (or, with --json, the metrics). --db scores the vectors the index job stored for the corpus's
files instead of encoding the corpus. --ablations trains every ablation (favor_ops.evaluation.ablations) from the
checkpoint's starting model with its budget and seed (read from CKPT/align_config.json; --steps etc. override) on
--train-corpus (default: --corpus) and evaluates each on --corpus; when CKPT holds a QA model (or --qa-steps N > 0)
each run also trains its QA stage with the checkpoint's QA budget (or N steps). --table prints the table of an existing
metrics.json. Bad input: one line on stderr and exit status 2.
"""

from __future__ import annotations

import argparse
import json
import sys


def register(subparsers) -> None:
    from favor_ops.evaluation.ablations import ABLATION_NAMES

    parser = subparsers.add_parser(
        "eval",
        help="AVEB-lite evaluation: retrieval, AV matching, QA metrics, ablations and a plotted report",
        description=(
            "Evaluate an aligned checkpoint on a synthetic corpus (ground truth from its manifest): text -> window "
            "R@1/5/10 and temporal IoU per query kind, joint (both modalities at the same moment) queries, AV match "
            "accuracy (true vs swapped audio), audio -> video and video -> audio R@1, QA exact match when the "
            "checkpoint holds a QA model, transcript WER when an ASR filled the store. Writes metrics.json, "
            "report.html and PNG plots to --out."),
    )
    parser.add_argument("--corpus", metavar="DIR", help="evaluation corpus directory with manifest.jsonl")
    parser.add_argument("--model", metavar="CKPT", help="aligned checkpoint dir (or a preset / FAVOR checkpoint)")
    parser.add_argument("--db", metavar="DB", default=None,
                        help="score the windows stored in this feature store (indexed with --model) instead of "
                             "encoding the corpus")
    parser.add_argument("--out", metavar="REPORT_DIR", help="report directory (metrics.json, report.html, PNGs)")
    parser.add_argument("--ablations", action="store_true",
                        help=f"also train and evaluate the ablations ({', '.join(ABLATION_NAMES)})")
    parser.add_argument("--ablation", action="append", default=[], metavar="NAME",
                        help="run only this ablation (repeat; implies --ablations)")
    parser.add_argument("--train-corpus", metavar="DIR", default=None,
                        help="corpus the ablations train on (default: --corpus)")
    parser.add_argument("--steps", type=int, default=None, metavar="N", help="ablation budget: window stage steps")
    parser.add_argument("--visual-steps", type=int, default=None, metavar="N", help="ablation budget: visual stage")
    parser.add_argument("--speech-steps", type=int, default=None, metavar="N", help="ablation budget: speech stage")
    parser.add_argument("--batch", type=int, default=None, metavar="N", help="ablation budget: windows per step")
    parser.add_argument("--seed", type=int, default=None, help="ablation training seed")
    parser.add_argument("--qa-steps", type=int, default=None, metavar="N",
                        help="ablation budget: QA stage steps per run (default: the checkpoint's own QA budget when "
                             "it holds a QA model, else no QA stage; 0: none)")
    parser.add_argument("--keep-cache", action="store_true", help="keep the ablation runs' feature caches")
    parser.add_argument("--examples", type=int, default=4, metavar="N", help="example hits in the report (default 4)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda for the evaluation forward passes")
    parser.add_argument("--readme", metavar="README", default=None,
                        help="with --table: replace the results table between the README's "
                             "<!-- results:start --> and <!-- results:end --> markers instead of printing it")
    parser.add_argument("--table", metavar="METRICS_JSON", default=None,
                        help="print the Markdown results table of an existing metrics.json and exit")
    parser.add_argument("--json", action="store_true", help="print the metrics as one JSON object")
    parser.set_defaults(handler=run_eval)


def _fail(message: str) -> int:
    print(f"favor: error: {message}", file=sys.stderr)
    return 2


def expected_model_version(model: str) -> str | None:
    """The model_version the index job writes for `model` (None when it cannot be described)."""
    try:
        from pipelines.index.chunk_encoder import describe_model

        return describe_model(model).model_version
    except Exception:  # noqa: BLE001 - then every stored version is scored
        return None


def run_eval(args: argparse.Namespace) -> int:
    from pathlib import Path

    if args.table is not None:
        if any(v for v in (args.corpus, args.model, args.out, args.db, args.ablations, args.ablation)):
            return _fail("--table prints an existing metrics.json; give it alone")
        from favor_ops.evaluation.metrics_table import table_from_file

        table = table_from_file(args.table)
        if args.readme:
            from favor_ops.evaluation.metrics_table import replace_results_block

            readme = Path(args.readme)
            readme.write_text(replace_results_block(readme.read_text(), table, source=args.table))
            print(f"updated the results table in {readme} from {args.table}")
            return 0
        sys.stdout.write(table)
        return 0
    if not args.corpus or not args.model or not args.out:
        return _fail("favor eval needs --corpus DIR --model CKPT --out REPORT_DIR (or --table METRICS_JSON)")
    from favor_ops.corpus.manifest import MANIFEST_NAME

    for flag, corpus in (("--corpus", args.corpus), ("--train-corpus", args.train_corpus)):
        if corpus is not None and not (Path(corpus) / MANIFEST_NAME).is_file():
            return _fail(f"{flag}: no {MANIFEST_NAME} in {corpus} (make one with `favor corpus synth`)")
    if args.examples < 0:
        return _fail("--examples must be >= 0")
    if args.qa_steps is not None and args.qa_steps < 0:
        return _fail("--qa-steps must be >= 0")
    run_ablations = args.ablations or bool(args.ablation)
    from favor_ops.evaluation.ablations import get_ablations

    if run_ablations:
        get_ablations(args.ablation)  # unknown names fail before any model loads (ValueError -> exit 2)
    if args.db is not None:
        from pipelines.cli.search_command import open_store

        open_store(args.db)  # must exist and hold windows

    from favor_ops.evaluation.aveb import evaluate_model
    from favor_ops.evaluation.report import write_report
    from favor_ops.retrieval.aligned_model import load_aligned_model

    progress = sys.stderr.isatty()
    out = Path(args.out)
    aligned = load_aligned_model(args.model, device=args.device)
    version = expected_model_version(args.model) if args.db else None
    metrics = evaluate_model(args.model, args.corpus, aligned=aligned, db=args.db, model_version=version,
                             work_dir=out, n_examples=args.examples, device=args.device, progress=progress)
    if run_ablations:
        from favor_ops.evaluation.ablations import load_base_align_config, load_base_qa_config
        from favor_ops.evaluation.ablations import run_ablations as run_all

        base = load_base_align_config(args.model, steps=args.steps, visual_steps=args.visual_steps,
                                      speech_steps=args.speech_steps, batch_windows=args.batch, seed=args.seed)

        def evaluate(ckpt: str) -> dict:
            return evaluate_model(ckpt, args.corpus, work_dir=Path(ckpt).parent, n_examples=0, device=args.device,
                                  progress=progress)

        metrics["ablations"] = run_all(args.train_corpus or args.corpus, out / "ablations", base, evaluate,
                                       names=args.ablation or None, progress=progress, keep_cache=args.keep_cache,
                                       qa_cfg=load_base_qa_config(args.model, args.qa_steps))
    paths = write_report(metrics, out)
    if args.json:
        print(json.dumps(json.loads(Path(paths["metrics"]).read_text()), indent=2))
        return 0
    from favor_ops.evaluation.metrics_table import markdown_table

    sys.stdout.write(markdown_table(metrics))
    print(f"\nmetrics: {paths['metrics']}\nreport:  {paths['html']}")
    return 0
