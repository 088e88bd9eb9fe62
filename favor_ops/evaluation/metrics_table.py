"""A Markdown results table from a metrics.json (`favor eval --table metrics.json`), for the README.

One run (no ablations):

    | Task | Value | n |
    |---|---:|---:|
    | Text→window R@1, single modality (visual+word+sound) | 0.640 | 69 |

Several runs (the evaluated checkpoint, then each ablation that ran): one value column per run, n from the first
run that has the task; a cell whose n differs from the row's reads "0.500 (n=3)". Rows follow TASK_ORDER, then any
other task key in sorted order; QA rows are `qa.<question type>` from `qa_metrics`, the WER row
`transcript.wer`. Below the table, one note per metric or run that has a status instead of numbers
(QA without a QA model, WER without an ASR, an ablation whose model switch does not exist, ...).
Values: 3 decimals; "n/a" for a metric without samples; "–" where a run lacks the task.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

PRIMARY_COLUMN = "checkpoint"
KIND_LABELS = {
    "single": "single modality (visual+word+sound)",
    "visual": "visual",
    "word": "spoken word",
    "sound": "sound",
    "joint": "joint (seen and heard at the same moment)",
}
METRIC_LABELS = {
    "r1": "R@1",
    "r5": "R@5",
    "r10": "R@10",
    "iou": "top-hit temporal IoU (search's merged span)",
    "iou_window": "top-window temporal IoU",
    "iou_oracle": "temporal IoU ceiling of one window",
}
TASK_ORDER: tuple[str, ...] = (
    *(f"text.{k}.{m}" for k in KIND_LABELS for m in ("r1", "r5", "r10")),
    *(f"text.{k}.{m}" for k in KIND_LABELS for m in ("iou", "iou_window", "iou_oracle")),
    "av.swap_accuracy",
    "av.audio_to_video.r1",
    "av.video_to_audio.r1",
)
FIXED_LABELS = {
    "av.swap_accuracy": "AV match accuracy (true vs swapped audio)",
    "av.audio_to_video.r1": "Audio→video R@1",
    "av.video_to_audio.r1": "Video→audio R@1",
    "transcript.wer": "Transcript WER (lower is better)",
    "qa.overall": "QA accuracy, overall",
}


def task_label(key: str) -> str:
    if key in FIXED_LABELS:
        return FIXED_LABELS[key]
    parts = key.split(".")
    if len(parts) == 3 and parts[0] == "text" and parts[1] in KIND_LABELS and parts[2] in METRIC_LABELS:
        return f"Text→window {METRIC_LABELS[parts[2]]}, {KIND_LABELS[parts[1]]}"
    if len(parts) == 2 and parts[0] == "qa":
        return f"QA accuracy, {parts[1].replace('_', ' ')}"
    return key


def format_value(value) -> str:
    return "n/a" if value is None or not math.isfinite(float(value)) else f"{float(value):.3f}"


def is_metric(entry) -> bool:
    return isinstance(entry, dict) and "value" in entry and "n" in entry


def run_rows(run: dict) -> dict[str, dict]:
    """Every {"value", "n"} of a run by row key: tasks, qa.<type>, transcript.wer."""
    rows = {k: v for k, v in (run.get("tasks") or {}).items() if is_metric(v)}
    for k, v in (run.get("qa_metrics") or {}).items():
        if is_metric(v):
            rows[f"qa.{k}"] = v
    if is_metric(run.get("transcript_wer")):
        rows["transcript.wer"] = run["transcript_wer"]
    return rows


def status_notes(name: str | None, run: dict, errors_only: bool = False) -> list[str]:
    """One line per part of a run that carries a status instead of numbers (only failures when errors_only)."""
    prefix = f"{name}: " if name else ""
    notes = []
    for key, label in (("qa_metrics", "QA"), ("transcript_wer", "transcript WER")):
        part = run.get(key)
        if isinstance(part, dict) and "status" in part and not is_metric(part):
            if errors_only and part["status"] != "error":
                continue
            detail = f" ({part['error']})" if part.get("error") else ""
            notes.append(f"{prefix}{label}: {part['status']}{detail}")
    return notes


def ordered_keys(columns: list[dict[str, dict]]) -> list[str]:
    present = set().union(*columns) if columns else set()
    known = [k for k in TASK_ORDER if k in present]
    qa = sorted(k for k in present if k.startswith("qa.") and k != "qa.overall")
    qa += ["qa.overall"] if "qa.overall" in present else []
    tail = ["transcript.wer"] if "transcript.wer" in present else []
    rest = sorted(present - set(known) - set(qa) - set(tail))
    return known + rest + qa + tail


def table_runs(metrics: dict) -> tuple[list[tuple[str, dict]], list[str]]:
    """(named runs that have numbers, notes): the evaluated checkpoint first, then each ablation that ran."""
    runs: list[tuple[str, dict]] = []
    notes: list[str] = []
    if run_rows(metrics):
        runs.append((PRIMARY_COLUMN, metrics))
    ablations = (metrics.get("ablations") or {}).get("runs") or {}
    multi = bool(ablations)
    notes += status_notes(PRIMARY_COLUMN if multi else None, metrics)
    for name, run in ablations.items():
        status = run.get("status", "ok")
        if status == "unavailable":
            notes.append(f"{name}: not run: {run.get('missing', 'unavailable')}")
            continue
        if status == "same_as":
            notes.append(f"{name}: same configuration as {run.get('same_as')} (same numbers)")
        elif status != "ok":
            notes.append(f"{name}: {status}" + (f" ({run['error']})" if run.get("error") else ""))
            continue
        if run_rows(run):
            runs.append((name, run))
        if status == "ok":
            notes += status_notes(name, run, errors_only=True)
    return runs, notes


def markdown_table(metrics: dict) -> str:
    """The results table of a metrics.json dict (module doc); ends with a newline."""
    runs, notes = table_runs(metrics)
    columns = [run_rows(run) for _, run in runs]
    keys = ordered_keys(columns)
    lines: list[str] = []
    if not keys:
        lines.append("_no metrics_")
    elif len(runs) == 1:
        lines += ["| Task | Value | n |", "|---|---:|---:|"]
        for key in keys:
            m = columns[0][key]
            lines.append(f"| {task_label(key)} | {format_value(m['value'])} | {m['n']} |")
    else:
        names = [name for name, _ in runs]
        lines += ["| Task | n | " + " | ".join(names) + " |", "|---|---:|" + "---:|" * len(names)]
        for key in keys:
            n = next(col[key]["n"] for col in columns if key in col)
            cells = []
            for col in columns:
                m = col.get(key)
                if m is None:
                    cells.append("–")
                elif m["n"] != n:
                    cells.append(f"{format_value(m['value'])} (n={m['n']})")
                else:
                    cells.append(format_value(m["value"]))
            lines.append(f"| {task_label(key)} | {n} | " + " | ".join(cells) + " |")
    if notes:
        lines.append("")
        lines += [f"- {note}" for note in notes]
    from favor_ops.evaluation.claims import check_claims

    claims = check_claims(metrics)
    if any(c.verdict != "not measured" for c in claims):  # nothing to say without the numbers
        lines += ["", "The paper's claims on these numbers:", ""] + [f"- {c.sentence()}" for c in claims]
    return "\n".join(lines) + "\n"


def table_from_file(path: str | Path) -> str:
    p = Path(path)
    if p.is_dir():
        p = p / "metrics.json"
    if not p.is_file():
        raise FileNotFoundError(f"no metrics file at {p}")
    try:
        metrics = json.loads(p.read_text())
    except json.JSONDecodeError as exc:
        raise ValueError(f"{p}: not a JSON file ({exc})") from None
    if not isinstance(metrics, dict):
        raise ValueError(f"{p}: not a metrics.json object")
    return markdown_table(metrics)


RESULTS_START = "<!-- results:start -->"
RESULTS_END = "<!-- results:end -->"


def replace_results_block(text: str, table: str, source: str) -> str:
    """`text` with the block between the results markers replaced by `table` (the README's results table)."""
    if RESULTS_START not in text or RESULTS_END not in text:
        raise ValueError(f"no {RESULTS_START} ... {RESULTS_END} block to replace")
    head, rest = text.split(RESULTS_START, 1)
    _, tail = rest.split(RESULTS_END, 1)
    body = (f"\n<!-- generated by `favor eval --table {source} --readme README.md`; do not edit by hand -->\n\n"
            f"{table.rstrip()}\n\n")
    return head + RESULTS_START + body + RESULTS_END + tail
