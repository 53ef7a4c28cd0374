"""``python -m bench.readme``: put a full run's tables into ``bench/README.md``.

Examples::

    python -m bench                  # a full run: bench/results/latest.json
    python -m bench.readme           # its tables into bench/README.md
    python -m bench.readme RESULTS --stdout

The tables of ``bench/README.md`` are those of the last recorded full run: the line saying
where it ran, one table per benchmark and the run's total, between :data:`BEGIN` and
:data:`END`. This writes the run's own tables (``table_markdown``, headings one level down)
and figures, so no table is copied by hand. What the numbers say, and the history of issue 12's
goals, stay prose written around them.

A quick run, a partial run (``--only``) or a run with a failed benchmark is refused (exit 2),
and the README is not touched: its tables are a full run's.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import datetime
from pathlib import Path
from typing import Any

from bench.__main__ import BENCHMARKS, RESULTS

README = Path(__file__).resolve().parent / "README.md"
BEGIN = "<!-- the tables of a full run, written by `python -m bench.readme`: begin -->"
END = "<!-- the tables of a full run: end -->"


class RefusedError(ValueError):
    """The results or the README cannot be used (the message says why)."""


def section(doc: dict[str, Any]) -> str:
    """The README's tables for one run's results (``bench/results/latest.json``'s document).

    Raises
    ------
    RefusedError
        If the run was quick, partial or had a benchmark fail.
    """
    if doc.get("quick"):
        raise RefusedError("a quick run (--quick): the README's tables are a full run's")
    missing = [b for b in BENCHMARKS if b not in doc.get("benchmarks", {})]
    if missing:
        raise RefusedError(f"a partial run: it has no {', '.join(missing)}")
    if doc.get("errors"):
        raise RefusedError(f"{', '.join(sorted(doc['errors']))} failed in this run")
    m = doc["machine"]
    when = datetime.fromisoformat(doc["started"]).strftime("%Y-%m-%d %H:%M UTC")
    postgres = str(m.get("postgresql", "not used"))
    postgres = (
        f"PostgreSQL {postgres.split()[0]} on loopback"
        if not postgres.startswith("not used")
        else f"PostgreSQL {postgres}"
    )
    where = (
        f"The run below: {m['cores']} cores ({m['cpu']}), {m['memory_gib']} GiB, Python"
        f" {m['python']}, SQLite {m['sqlite']}, {postgres}, {when}."
    )
    # the README's own headings sit one level above the benchmarks'
    tables = doc["table_markdown"].replace("\n### ", "\n#### ")
    tables = "#### " + tables.removeprefix("### ") if tables.startswith("### ") else tables
    total = (
        f"Total {doc['total_seconds']:.0f} s on {m['cores']} cores ({m['cpu']}), fsync p50"
        f" {m['fsync_ms_p50_start']} / {m['fsync_ms_p50']} ms (start / end), load average"
        f" {m['load_average_start'][0]} / {m['load_average_end'][0]}."
    )
    return f"{where}\n\n{tables}\n\n{total}"


def splice(text: str, body: str) -> str:
    """``text`` with what lies between :data:`BEGIN` and :data:`END` replaced by ``body``.

    Raises
    ------
    RefusedError
        Unless each marker is there once, in that order.
    """
    if text.count(BEGIN) != 1 or text.count(END) != 1:
        raise RefusedError(f"the README must hold each marker once: {BEGIN} ... {END}")
    head, rest = text.split(BEGIN)
    if END not in rest:
        raise RefusedError("the README's end marker comes before its begin marker")
    _, tail = rest.split(END)
    return f"{head}{BEGIN}\n{body}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m bench.readme",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("results", nargs="?", type=Path, default=RESULTS, help=f"default {RESULTS}")
    p.add_argument("--readme", type=Path, default=README, help=f"default {README}")
    p.add_argument("--stdout", action="store_true", help="print the tables; write nothing")
    args = p.parse_args(argv)
    try:
        doc = json.loads(args.results.read_text())
        body = section(doc)
    except (OSError, ValueError, KeyError, TypeError) as exc:
        reason = f"no {exc} in it" if isinstance(exc, KeyError) else str(exc)
        return _refuse(f"{args.results}: {reason}", args.readme)
    if args.stdout:
        print(body)
        return 0
    try:
        text = splice(args.readme.read_text(), body)
        tmp = args.readme.with_name(args.readme.name + ".tmp")
        tmp.write_text(text)
        tmp.replace(args.readme)
    except (OSError, RefusedError) as exc:
        return _refuse(f"{args.readme}: {exc}", args.readme)
    print(f"{args.readme}: the tables of the run of {doc['started']}")
    return 0


def _refuse(message: str, readme: Path) -> int:
    print(f"error: {message}; {readme} is unchanged", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
