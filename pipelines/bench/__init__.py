"""Benchmarks that run Beam jobs (registered in pipelines/cli/bench_command.py)."""
