"""`favor store ACTION --db DB`: maintenance of the feature store.

    favor store compact --db DB --keep-versions 5          compact every table, keep the newest 5 versions
    favor store compact --db DB --keep-versions 1 --json   one JSON object (per-table report)

`compact` merges small fragments and folds new rows into the existing indexes (`table.optimize()`), then
deletes the files of all but the newest N Lance versions of each table (the latest always stays). Run it
when no index job is writing: a reader pinned to a pruned version fails. Output: a table (versions
before/after, latest version, bytes freed) or, with --json, {"db", "keep_versions", "bytes_freed",
"tables": [{table, versions_before, versions_after, latest_before, latest_after, kept_versions,
old_versions_removed, bytes_freed, fragments_removed, fragments_added}]}. Bad input: one line, exit 2.
"""

from __future__ import annotations

import argparse
import json
import os


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "store",
        help="maintain the feature store (compaction, version cleanup)",
        description="Maintenance of the LanceDB feature store at --db.",
    )
    actions = parser.add_subparsers(dest="store_action", metavar="ACTION")
    compact = actions.add_parser(
        "compact",
        help="compact every table and prune all but the newest N versions",
        description="Compact every table of the store (merge fragments, refresh indexes), then delete the "
                    "files of all but the newest --keep-versions Lance versions of each table (the latest "
                    "always stays). Run it while no index job writes to the store.",
    )
    compact.add_argument("--db", required=True, help="LanceDB URI of the feature store")
    # checked by the handler, so a bad value is one line rather than argparse's usage block
    compact.add_argument("--keep-versions", required=True, metavar="N",
                         help="versions kept per table, the latest included (>= 1)")
    compact.add_argument("--json", action="store_true", help="print one JSON object")
    compact.set_defaults(handler=run_compact)
    parser.set_defaults(handler=_no_action(parser))


def _no_action(parser: argparse.ArgumentParser):
    def handler(_args: argparse.Namespace) -> int:
        parser.print_help()
        return 2

    return handler


def parse_keep_versions(value) -> int:
    try:
        keep = int(str(value).strip())
    except ValueError:
        raise ValueError(f"--keep-versions must be a whole number >= 1, got {str(value)[:20]!r}") from None
    if keep < 1:
        raise ValueError(f"--keep-versions must be >= 1 (the latest version is always kept), got {keep}")
    return keep


def _check_store(db: str) -> None:
    from favor_ops.media.source import is_local_uri

    local = db[len("file://"):] if db.startswith("file://") else db
    if is_local_uri(db) and not os.path.isdir(local):
        raise FileNotFoundError(f"no store at {db}")


def run_compact(args: argparse.Namespace) -> int:
    from favor_ops.store.maintenance import compact_store

    keep = parse_keep_versions(args.keep_versions)  # bad input fails before the store is touched
    _check_store(args.db)
    report = compact_store(args.db, keep)
    if args.json:
        print(json.dumps(report.as_dict(), indent=2))
        return 0
    print(format_report(report))
    return 0


def format_bytes(n: int) -> str:
    value = float(n)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} {unit}" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{n} B"


def format_report(report) -> str:
    if not report.tables:
        return f"no tables in {report.uri}"
    rows = [("table", "versions", "latest", "freed")]
    for t in report.tables:
        rows.append((t.table, f"{t.versions_before} -> {t.versions_after}", f"{t.latest_before} -> {t.latest_after}",
                     format_bytes(t.bytes_freed)))  # fmt: skip
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(cell.ljust(width) for cell, width in zip(row, widths)).rstrip() for row in rows]
    lines.append(f"kept the newest {report.keep_versions} version(s) per table; freed {format_bytes(report.bytes_freed)}")
    return "\n".join(lines)
