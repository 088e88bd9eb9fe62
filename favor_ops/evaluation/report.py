"""The evaluation report: metrics.json, report.html and PNG plots (matplotlib, Agg backend).

    write_report(metrics, out_dir) -> {"metrics": path, "html": path, "plots": [paths], "thumbnails": [paths]}

    metrics.json          the metrics dict (aveb.evaluate_model's, + "ablations" when they ran); NaN never appears
    tasks.png             one horizontal bar per task of the evaluated checkpoint (value, n on the bar)
    comparison.png        when several runs have numbers (the checkpoint and the ablations that ran): grouped bars
                          per headline task, one bar per run
    thumbs/example_<i>.png   the frame at the middle of each example hit (decoded from the corpus file; skipped
                          for a hit without video or a file that no longer decodes)
    report.html           the results table, the plots, the example hits and every status note, self-contained
                          apart from the PNGs next to it
"""

from __future__ import annotations

import datetime as dt
import html
import json
import math
from pathlib import Path

from favor_ops.evaluation.metrics_table import (
    format_value,
    markdown_table,
    ordered_keys,
    run_rows,
    table_runs,
    task_label,
)

METRICS_FILE = "metrics.json"
HTML_FILE = "report.html"
TASKS_PLOT = "tasks.png"
COMPARISON_PLOT = "comparison.png"
THUMBS_DIR = "thumbs"
FORMAT = "favor-eval"
FORMAT_VERSION = 1
HEADLINE_TASKS = ("text.single.r1", "text.single.r5", "text.joint.r1", "text.single.iou", "av.swap_accuracy",
                  "av.audio_to_video.r1", "av.video_to_audio.r1", "qa.overall")
THUMB_SIZE = 128


def _clean(obj):
    """JSON-safe copy: NaN / inf -> None, tuples -> lists, numpy scalars -> Python numbers, Paths -> str."""
    if isinstance(obj, dict):
        return {str(k): _clean(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_clean(v) for v in obj]
    if isinstance(obj, Path):
        return str(obj)
    if hasattr(obj, "item") and callable(obj.item) and getattr(obj, "ndim", 1) == 0:
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def with_header(metrics: dict) -> dict:
    """metrics with format / version / created_at first (kept when already there)."""
    head = {"format": FORMAT, "version": FORMAT_VERSION,
            "created_at": metrics.get("created_at") or dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds")}
    return {**head, **{k: v for k, v in metrics.items() if k not in head}}


def write_metrics_json(metrics: dict, out_dir: str | Path) -> Path:
    path = Path(out_dir) / METRICS_FILE
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".json.part")
    tmp.write_text(json.dumps(_clean(with_header(metrics)), indent=2, allow_nan=False) + "\n")
    tmp.replace(path)
    return path


# ---------------------------------------------------------------------------------------------- plots
def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=True)
    import matplotlib.pyplot as plt

    return plt


def plot_tasks(rows: dict[str, dict], path: str | Path, title: str = "AVEB-lite") -> Path | None:
    """Horizontal bars, one per task with a value (keys in table order); None when there is nothing to plot."""
    keys = [k for k in ordered_keys([rows]) if rows[k]["value"] is not None]
    if not keys:
        return None
    plt = _pyplot()
    values = [float(rows[k]["value"]) for k in keys]
    fig, ax = plt.subplots(figsize=(9, 0.32 * len(keys) + 1.2))
    y = list(range(len(keys)))[::-1]
    colors = ["tab:red" if k == "transcript.wer" else "tab:blue" for k in keys]
    ax.barh(y, values, color=colors, height=0.7)
    ax.set_yticks(y)
    ax.set_yticklabels(keys, fontsize=8)
    ax.set_xlim(0, max(1.0, max(values) * 1.1))
    for yi, k, v in zip(y, keys, values):
        ax.text(v + 0.01, yi, f"{v:.2f} (n={rows[k]['n']})", va="center", fontsize=7)
    ax.set_xlabel("value (WER in red: lower is better)")
    ax.set_title(title)
    ax.grid(axis="x", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def plot_comparison(runs: list[tuple[str, dict]], path: str | Path, tasks=HEADLINE_TASKS) -> Path | None:
    """Grouped bars: for each headline task any run has, one bar per run; None with fewer than 2 runs."""
    columns = [(name, run_rows(run)) for name, run in runs]
    if len(columns) < 2:
        return None
    keys = [k for k in tasks if any(col.get(k, {}).get("value") is not None for _, col in columns)]
    if not keys:
        return None
    plt = _pyplot()
    width = 0.8 / len(columns)
    fig, ax = plt.subplots(figsize=(max(8, 1.3 * len(keys) + 2), 4.5))
    for r, (name, col) in enumerate(columns):
        xs = [i - 0.4 + width * (r + 0.5) for i in range(len(keys))]
        vals = [col.get(k, {}).get("value") for k in keys]
        ax.bar(xs, [0.0 if v is None else float(v) for v in vals], width=width, label=name)
    ax.set_xticks(range(len(keys)))
    ax.set_xticklabels(keys, rotation=30, ha="right", fontsize=8)
    ax.set_ylim(0, 1.05)
    ax.set_ylabel("value")
    ax.set_title("AVEB-lite: checkpoint and ablations")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, format="png", dpi=100)
    plt.close(fig)
    return Path(path)


def write_thumbnails(examples: list[dict], corpus_dir: str | Path | None, out_dir: str | Path) -> list[Path | None]:
    """thumbs/example_<i>.png: the frame at the middle of each hit; None where there is none (no video, no file)."""
    from PIL import Image

    from favor_ops.media.decode import DecodeConfig, decode

    out: list[Path | None] = []
    if not examples or not corpus_dir:
        return [None] * len(examples)
    thumbs = Path(out_dir) / THUMBS_DIR
    cfg = DecodeConfig(fps=2.0, image_size=THUMB_SIZE)
    decoded: dict[str, object] = {}
    for i, ex in enumerate(examples):
        path = None
        file = ex.get("file")
        try:
            if file:
                if file not in decoded:
                    decoded[file] = decode(str(Path(corpus_dir) / file), cfg)
                media = decoded[file]
                if media.has_video and len(media.frames_rgb):
                    mid = 0.5 * (float(ex["t_start"]) + float(ex["t_end"]))
                    k = min(len(media.frames_rgb) - 1, max(0, int(mid * cfg.fps)))
                    thumbs.mkdir(parents=True, exist_ok=True)
                    path = thumbs / f"example_{i}.png"
                    Image.fromarray(media.frames_rgb[k]).save(path, format="PNG")
        except Exception:  # noqa: BLE001 - a thumbnail is decoration; the hit is still listed
            path = None
        out.append(path)
    return out


# ---------------------------------------------------------------------------------------------- html
def _html_table(runs: list[tuple[str, dict]]) -> str:
    columns = [run_rows(run) for _, run in runs]
    keys = ordered_keys(columns)
    if not keys:
        return "<p><em>no metrics</em></p>"
    head = "".join(f"<th>{html.escape(name)}</th>" for name, _ in runs)
    rows = []
    for key in keys:
        n = next(col[key]["n"] for col in columns if key in col)
        cells = []
        for col in columns:
            m = col.get(key)
            text = "–" if m is None else format_value(m["value"]) + (f" (n={m['n']})" if m["n"] != n else "")
            cells.append(f"<td class='num'>{html.escape(text)}</td>")
        rows.append(f"<tr><td title='{html.escape(key)}'>{html.escape(task_label(key))}</td>"
                    f"<td class='num'>{n}</td>{''.join(cells)}</tr>")
    return f"<table><thead><tr><th>Task</th><th>n</th>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def _examples_html(examples: list[dict], thumbs: list[Path | None], out_dir: Path) -> str:
    if not examples:
        return ""
    rows = []
    for ex, thumb in zip(examples, thumbs):
        img = (f"<img src='{html.escape(thumb.relative_to(out_dir).as_posix())}' width='{THUMB_SIZE}' alt='hit'>"
               if thumb else "<em>no video</em>")
        mark = "relevant" if ex.get("relevant") else "not relevant"
        rows.append(f"<tr><td>{html.escape(str(ex.get('kind')))}</td><td>{html.escape(str(ex.get('query')))}</td>"
                    f"<td>{img}</td><td>{html.escape(str(ex.get('file') or ex.get('clip_id')))} "
                    f"[{float(ex['t_start']):.1f}, {float(ex['t_end']):.1f}) s<br>score {float(ex['score']):.3f}"
                    f"<br><strong>{mark}</strong></td></tr>")
    return ("<h2>Example hits (top window per query)</h2><table><thead><tr><th>kind</th><th>query</th>"
            f"<th>frame</th><th>hit</th></tr></thead><tbody>{''.join(rows)}</tbody></table>")


def render_html(metrics: dict, plots: list[Path], thumbs: list[Path | None], out_dir: Path) -> str:
    runs, notes = table_runs(metrics)
    esc = html.escape
    source = metrics.get("source") or {}
    meta = [("model", metrics.get("model")), ("corpus", metrics.get("corpus")),
            ("windows", metrics.get("windows")), ("files", metrics.get("files")),
            ("source", f"{source.get('kind')}" + (f" {source['db']}" if source.get("db") else "") if source else None),
            ("created", metrics.get("created_at"))]
    if source.get("files_missing"):
        meta.append(("files missing from the store", ", ".join(source["files_missing"])))
    ablations = metrics.get("ablations") or {}
    if ablations:
        meta.append(("ablation train corpus", ablations.get("train_corpus")))
        meta.append(("ablation budget", json.dumps(ablations.get("budget"), sort_keys=True)))
    meta_html = "".join(f"<tr><th>{esc(k)}</th><td>{esc(str(v))}</td></tr>" for k, v in meta if v is not None)
    plots_html = "".join(f"<p><img src='{esc(p.name)}' alt='{esc(p.stem)}'></p>" for p in plots)
    notes_html = ("<h2>Notes</h2><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>") if notes else ""
    from favor_ops.evaluation.claims import check_claims

    claims = check_claims(metrics)
    if any(c.verdict != "not measured" for c in claims):  # nothing to say without the numbers
        notes_html += ("<h2>The paper's claims on these numbers</h2><ul>"
                       + "".join(f"<li>{esc(c.sentence())}</li>" for c in claims) + "</ul>")
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>favor eval: AVEB-lite report</title>
<style>
body {{ font-family: sans-serif; margin: 2em; max-width: 1100px; }}
table {{ border-collapse: collapse; margin: 1em 0; }}
th, td {{ border: 1px solid #ccc; padding: 3px 8px; text-align: left; vertical-align: top; }}
td.num {{ text-align: right; font-variant-numeric: tabular-nums; }}
img {{ max-width: 100%; }}
</style></head><body>
<h1>AVEB-lite evaluation</h1>
<table>{meta_html}</table>
<h2>Results</h2>
{_html_table(runs)}
{notes_html}
<h2>Plots</h2>
{plots_html or "<p><em>no plots</em></p>"}
{_examples_html(metrics.get("examples") or [], thumbs, out_dir)}
<h2>Markdown</h2>
<pre>{esc(markdown_table(metrics))}</pre>
</body></html>
"""


def write_report(metrics: dict, out_dir: str | Path, thumbnails: bool = True) -> dict:
    """metrics.json, the plots, the thumbnails and report.html in out_dir; returns their paths."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    metrics = with_header(metrics)
    metrics_path = write_metrics_json(metrics, out)
    runs, _ = table_runs(metrics)
    plots: list[Path] = []
    primary = run_rows(metrics)
    p = plot_tasks(primary, out / TASKS_PLOT, title=f"AVEB-lite: {Path(str(metrics.get('model', ''))).name}")
    if p:
        plots.append(p)
    p = plot_comparison(runs, out / COMPARISON_PLOT)
    if p:
        plots.append(p)
    examples = metrics.get("examples") or []
    thumbs = write_thumbnails(examples, metrics.get("corpus"), out) if thumbnails else [None] * len(examples)
    html_path = out / HTML_FILE
    html_path.write_text(render_html(metrics, plots, thumbs, out), encoding="utf-8")
    return {"metrics": str(metrics_path), "html": str(html_path), "plots": [str(p) for p in plots],
            "thumbnails": [str(t) for t in thumbs if t]}
