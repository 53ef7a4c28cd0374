"""``python -m bench``: run the benchmarks, print the table, write the JSON results.

Examples::

    python -m bench                         # everything (make bench), ~12-16 minutes on 2 cores
    python -m bench --quick                 # small sizes, ~2 minutes
    python -m bench --only decisions http   # some of them
    python -m bench --profile /tmp/prof     # also write cProfile / py-spy profiles there
"""

from __future__ import annotations

import argparse
import importlib
import io
import os
import pstats
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

from bench import project, report
from bench.common import log, pg_available

BENCHMARKS = (
    "decisions",
    "batch",
    "http",
    "audit",
    "ui",
    "witness",
    "shards",
    "pipeline",
    "growth",
)
RESULTS = Path(__file__).resolve().parent / "results" / "latest.json"
PARTIAL_RESULTS = RESULTS.with_name("latest-only.json")  # a run with --only, by default


def _parse(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(
        prog="python -m bench",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--quick", action="store_true", help="small sizes, fewer repeats")
    p.add_argument(
        "--only",
        nargs="+",
        choices=BENCHMARKS,
        metavar="NAME",
        help=f"run only these ({', '.join(BENCHMARKS)})",
    )
    p.add_argument(
        "--json",
        type=Path,
        help=f"results file (default {RESULTS}; with --only, {PARTIAL_RESULTS.name} beside it,"
        " so that a partial run never replaces a full run's results)",
    )
    p.add_argument(
        "--profile",
        type=Path,
        metavar="DIR",
        help="write profiles of the hot paths here (cProfile; py-spy for servers)",
    )
    p.add_argument(
        "--loadgen",
        choices=("auto", "python", "wrk"),
        default="python",
        help="HTTP load generator (default python: bounded, exact ledger count, on every"
        " machine; wrk: apt-get install wrk; auto: wrk if installed)",
    )
    p.add_argument("--no-postgres", action="store_true", help="skip the PostgreSQL rows")
    p.add_argument("--keep", action="store_true", help="keep the temporary directory")
    args = p.parse_args(argv)
    if args.json is None:
        args.json = PARTIAL_RESULTS if args.only else RESULTS
    return args


def _summarise_profiles(directory: Path) -> None:
    for prof in sorted(directory.glob("*.prof")):
        out = io.StringIO()
        stats = pstats.Stats(str(prof), stream=out)
        stats.sort_stats("tottime").print_stats(25)
        stats.sort_stats("cumulative").print_stats(40)
        prof.with_suffix(".txt").write_text(out.getvalue())
    log(f"profiles in {directory}")


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    started = time.perf_counter()
    started_at = datetime.now(UTC).isoformat(timespec="seconds")
    load_start = [round(x, 2) for x in os.getloadavg()]
    fsync_start = round(report.fsync_ms(Path(tempfile.gettempdir())), 3)
    selected = [b for b in BENCHMARKS if not args.only or b in args.only]
    pg = "--no-postgres given" if args.no_postgres else pg_available()
    if pg:
        log(f"PostgreSQL rows skipped: {pg}")
    if args.profile:
        args.profile.mkdir(parents=True, exist_ok=True)
    if args.loadgen == "wrk" and not __import__("shutil").which("wrk"):
        print(
            "error: --loadgen wrk but wrk is not installed (apt-get install wrk)", file=sys.stderr
        )
        return 2
    ctx = project.prepare(
        quick=args.quick, keep=args.keep, profile_dir=args.profile, loadgen=args.loadgen, pg=pg
    )
    rows = []
    errors: dict[str, str] = {}
    titles: dict[str, str] = {}
    timings: dict[str, float] = {"setup": time.perf_counter() - started}
    try:
        for name in selected:
            module = importlib.import_module(f"bench.{name}")
            titles[name] = module.TITLE
            t = time.perf_counter()
            log(f"--- {name}: {module.TITLE}")
            try:
                rows += module.run(ctx)
            except Exception as exc:
                errors[name] = f"{type(exc).__name__}: {exc}"
                traceback.print_exc()
                log(f"{name} FAILED: {errors[name].splitlines()[0]}")
            timings[name] = time.perf_counter() - t
            log(f"{name} took {timings[name]:.1f} s")
        machine = report.machine(ctx.tmp, pg)
        machine["load_average_start"] = load_start
        machine["fsync_ms_p50_start"] = fsync_start
    finally:
        if not args.keep:
            project.cleanup(ctx)
    total = time.perf_counter() - started
    resolved = report.resolve(rows)
    text = report.table(resolved, titles)
    print(text)
    print(
        f"\nTotal {total:.0f} s on {machine['cores']} cores ({machine['cpu']}),"
        f" fsync p50 {fsync_start} / {machine['fsync_ms_p50']} ms (start / end),"
        f" load average {load_start[0]} / {machine['load_average_end'][0]};"
        f" results in {args.json}"
    )
    for name, err in errors.items():
        print(f"\n{name} FAILED: {err}")
    report.write_json(
        args.json,
        {
            "started": started_at,
            "quick": args.quick,
            "total_seconds": total,
            "seconds_by_benchmark": timings,
            "machine": machine,
            "benchmarks": {k: titles[k] for k in titles},
            "rows": resolved,
            "errors": errors,
            "table_markdown": text,
            "note": "ratios: > 1× means better than the baseline (faster, or less time);"
            " every baseline was measured in this run. Synthetic applications are a seeded"
            " bootstrap of the real HMDA rows with jitter.",
        },
    )
    if args.profile:
        _summarise_profiles(args.profile)
    return 1 if errors else 0


if __name__ == "__main__":
    os.environ.setdefault("PYTHONUNBUFFERED", "1")
    sys.exit(main())
