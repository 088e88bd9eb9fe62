"""AVEB-lite evaluation (DESIGN 7): metrics of an aligned checkpoint on a synthetic corpus, ablations, reports.

    aveb.evaluate_model(spec, corpus)       -> one run's metrics (every metric {"value": x, "n": count})
    ablations.ABLATIONS / run_ablations      the ablation list, each trained with the same budget and seed
    metrics_table.markdown_table(metrics)    the README results table
    report.write_report(metrics, out_dir)    metrics.json, report.html and PNG plots
"""
