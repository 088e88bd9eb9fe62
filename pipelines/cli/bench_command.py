"""`favor bench <name>`: benchmarks, each measured against a baseline in the same process.

A benchmark is a module (favor_ops/bench/, or pipelines/bench/ when it runs
a Beam job) with one entry in BENCHMARKS:

    name -> (module path, function name, one-line help, extra argparse options)

The function takes the parsed argparse namespace (the common options below)
and returns a JSON-able dict; its "report" key is the human-readable text
(printed by default; `--json` prints the dict without it). Modules are
imported only when their benchmark runs, so heavy imports stay out of
`favor --help`. Adding `model`, `index`, `search` or `qa` is one module and
one line here.
"""

from __future__ import annotations

import argparse
import importlib
import json

PRESET_OPTION = (("--preset",), {"default": "demo", "help": "model preset: tiny, demo or favor-13b (random init)"})
DEVICE_OPTION = (("--device",), {"default": "cpu", "help": "cpu or cuda (bf16 autocast, SDPA)"})

# name -> (module path, function name, one-line help, extra argparse options)
BENCHMARKS: dict[str, tuple[str, str, str, tuple]] = {
    "decode": (
        "favor_ops.bench.decode_bench",
        "run_from_args",
        "decode throughput (frames @2 FPS 224x224 + 16 kHz audio) vs plain `ffmpeg -vf fps=2,scale=224:224`, "
        "and peak memory",
        (),
    ),
    "model": (
        "favor_ops.bench.model_bench",
        "run_from_args",
        "per-stage throughput (visual, speech, causal Q-Former) in video-seconds per second, FLOPs per "
        "video-second counted from the config, achieved FLOP/s",
        (PRESET_OPTION, DEVICE_OPTION,
         (("--threads",), {"type": int, "default": 1, "help": "torch CPU threads (default 1)"})),
    ),
    "index": (
        "pipelines.bench.index_bench",
        "run_from_args",
        "index job end to end (Beam local runner) vs decode-only and encoder-only throughput of the same files",
        (PRESET_OPTION, DEVICE_OPTION,
         (("--videos",), {"type": int, "default": 50, "help": "synthetic videos (default 50)"}),
         (("--max-duration",), {"type": float, "default": 8.0, "help": "longest video in seconds (default 8)"}),
         (("--workers",), {"type": int, "default": None, "help": "worker processes (default: one per core)"})),
    ),
    "scaling": (
        "pipelines.bench.scaling_bench",
        "run_from_args",
        "index job at growing corpus sizes: wall time, video-seconds per wall-second and peak memory of the "
        "driver + worker process tree; ratios of the largest size vs 100 videos; PNG plot",
        (PRESET_OPTION,
         (("--sizes",), {"default": "10,100,1000", "help": "comma-separated corpus sizes in videos (default 10,100,1000)"}),
         (("--min-duration",), {"type": float, "default": 4.0, "help": "shortest clip in seconds (default 4)"}),
         (("--max-duration",), {"type": float, "default": 8.0, "help": "longest clip in seconds (default 8)"}),
         (("--workers",), {"type": int, "default": None, "help": "worker processes (default: one per core)"}),
         (("--workdir",), {"default": None, "help": "corpus cache and scratch stores (default ~/.cache/favor/bench-scaling)"}),
         (("--plot",), {"default": None, "help": "PNG path (default docs/perf/scaling.png in the repository; '' for none)"}),
         (("--baseline-size",), {"type": int, "default": None, "help": "size the ratios compare with (default 100, "
                                                                      "else the smallest)"})),
    ),
    "search": (
        "favor_ops.bench.search_bench", "run_from_args",
        "search latency p50/p95 (MaxSim tokens ANN, pooled ANN, pooled ANN + exact MaxSim re-rank, full text, hybrid), "
        "recall@10 against an exact numpy scan and process RSS during the queries, on a synthetic LanceDB table",
        ((("--windows",), {"type": int, "default": 100_000, "help": "synthetic windows (default 100000)"}),
         (("--queries",), {"type": int, "default": 200, "help": "timed queries per method (default 200)"}),
         (("--dim",), {"type": int, "default": 128, "help": "vector width D (default 128)"}),
         (("--tokens",), {"type": int, "default": 32, "help": "tokens per window (default 32)"}),
         (("--clusters",), {"type": int, "default": 1024, "help": "cluster centres of the synthetic vectors (default 1024)"}),
         (("--k",), {"type": int, "default": 10, "help": "hits per query, recall@k (default 10)"}),
         (("--seed",), {"type": int, "default": 0, "help": "random seed (default 0)"}),
         (("--methods",), {"default": None, "help": "comma-separated ranked lists to time: maxsim_ann, pooled_ann, fulltext, "
                                                    "hybrid, search_av (default all; without maxsim_ann and search_av the "
                                                    "tokens index is not built)"}),
         (("--rerank-candidates",), {"default": None, "help": "pooled ANN + exact MaxSim re-rank: comma-separated "
                                                              "candidate counts (default 200,1000; '' for none)"})),
    ),
    "qa": (
        "favor_ops.bench.qa_bench", "run_from_args",
        "QA answer generation: batched vs one question at a time (questions/s, tokens/s), random-init LLM of the "
        "preset (demo on CPU; 7b = a Llama-7B-sized LM in bf16 with --device cuda)",
        ((("--preset",), {"default": "demo", "help": "tiny, demo or 7b (default demo)"}), DEVICE_OPTION,
         (("--questions",), {"type": int, "default": 32, "help": "questions (default 32)"}),
         (("--batch",), {"type": int, "default": 16, "help": "questions per generate call (default 16)"}),
         (("--windows",), {"type": int, "default": 6, "help": "windows per question (default 6 = 30 s)"}),
         (("--new-tokens",), {"type": int, "default": 8, "help": "generated tokens per answer (default 8)"}),
         (("--threads",), {"type": int, "default": 1, "help": "torch CPU threads (default 1)"})),
    ),
}

DEFAULT_SECONDS = 30.0
DEFAULT_REPEATS = 3


def _add_common_options(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--file", default=None, help="input media (any fsspec URI); default: generate a test file")
    parser.add_argument("--seconds", type=float, default=DEFAULT_SECONDS, help="length of a generated test input")
    parser.add_argument("--repeats", type=int, default=DEFAULT_REPEATS, help="best of N runs for each side")
    parser.add_argument("--json", action="store_true", help="print one JSON object instead of the report")


def register(subparsers) -> None:
    parser = subparsers.add_parser("bench", help="run a benchmark against an in-process baseline")
    bench_sub = parser.add_subparsers(dest="benchmark", metavar="BENCHMARK")
    for name, (_module, _function, help_text, options) in BENCHMARKS.items():
        sub = bench_sub.add_parser(name, help=help_text, description=help_text)
        _add_common_options(sub)
        for flags, kwargs in options:
            sub.add_argument(*flags, **kwargs)
        sub.set_defaults(handler=run_benchmark)
    parser.set_defaults(handler=lambda args: _usage(parser))


def _usage(parser: argparse.ArgumentParser) -> int:
    parser.print_help()
    return 2


def run_benchmark(args: argparse.Namespace) -> int:
    if args.repeats < 1:
        raise ValueError("--repeats must be >= 1")
    if args.seconds <= 0:
        raise ValueError("--seconds must be positive")
    module_path, function_name, _help, _options = BENCHMARKS[args.benchmark]
    function = getattr(importlib.import_module(module_path), function_name)
    result = dict(function(args))
    report = result.pop("report", None)
    if args.json:
        print(json.dumps(result, indent=2, default=str))
    else:
        print(report if report is not None else json.dumps(result, indent=2, default=str))
    return 0
