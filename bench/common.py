"""What every benchmark shares: result rows, repeated timing, statistics, PostgreSQL schemas.

A benchmark module exposes ``NAME``, ``TITLE`` and ``run(ctx) -> list[Row]``. Each figure is the
median of repeated runs; a row names the row it is compared with (its baseline, measured in the
same run) and the ratio is computed from the two medians when the table is made, never from a
stored figure.
"""

from __future__ import annotations

import os
import statistics
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_PG_URL = "postgresql://127.0.0.1:5432/test"


@dataclass
class Row:
    """One line of the table.

    Attributes
    ----------
    bench
        The benchmark (``decisions``, ``batch``, ``http``, ``audit``, ``pipeline``).
    key
        Unique within the benchmark; baselines are referred to by it.
    label
        What was measured, in words.
    unit
        ``/s`` (higher is better), ``ms`` or ``s`` (lower is better).
    runs
        One figure per repeated run; ``value`` is their median.
    baseline
        ``key`` of the row (same benchmark) this one is compared with, or ``None``.
    also
        Further rows to compare with (keys), shown after the main ratio.
    goal
        The goal in words and as a check: ``("≥ 250x mlflow-run", "ratio", 250)`` means the
        ratio to ``baseline`` must be at least 250; ``("≤ 5 s", "value", 5)`` means the median
        must be at most 5 (for ``s``/``ms`` units) or at least (for ``/s`` units).
    extra
        Anything else worth keeping in the JSON (sizes, counts, checks).
    """

    bench: str
    key: str
    label: str
    unit: str
    runs: list[float]
    baseline: str | None = None
    also: list[str] = field(default_factory=list)
    goal: tuple[str, str, float] | None = None
    extra: dict[str, Any] = field(default_factory=dict)
    is_baseline: bool = False

    @property
    def value(self) -> float:
        return float(statistics.median(self.runs)) if self.runs else float("nan")

    @property
    def higher_is_better(self) -> bool:
        return self.unit.startswith("/")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["value"] = self.value
        return d


def log(message: str) -> None:
    """Progress on stderr (the table goes to stdout)."""
    print(f"[bench {time.strftime('%H:%M:%S')}] {message}", file=sys.stderr, flush=True)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0..100), linear interpolation, of a non-empty list."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = (len(ordered) - 1) * q / 100.0
    lo = int(k)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (k - lo)


class Budget:
    """Repeat a measurement up to ``repeats`` times while its total time stays under ``seconds``.

    At least ``minimum`` runs are always made; the row then shows how many runs its median has.
    """

    def __init__(self, repeats: int, seconds: float, minimum: int = 1) -> None:
        self.repeats = repeats
        self.seconds = seconds
        self.minimum = minimum
        self.started = time.perf_counter()
        self.done = 0

    def __iter__(self) -> Iterator[int]:
        while self.done < self.repeats:
            spent = time.perf_counter() - self.started
            # stop if another run (as long as the average so far) would overrun the budget
            if self.done >= max(self.minimum, 1) and spent + spent / self.done > self.seconds:
                return
            yield self.done
            self.done += 1


def run_for(seconds: float, step: Callable[[], int], max_count: int | None = None) -> float:
    """Call ``step`` (returning how many operations it did) until ``seconds`` pass; rate per s."""
    count = 0
    start = time.perf_counter()
    deadline = start + seconds
    while True:
        count += step()
        now = time.perf_counter()
        if now >= deadline or (max_count is not None and count >= max_count):
            return count / (now - start)


# -- PostgreSQL ------------------------------------------------------------------------------


def pg_base_url() -> str:
    """The server for the PostgreSQL rows (the tests' server by default)."""
    return (
        os.environ.get("GOVERNANCE_BENCH_PG_URL")
        or os.environ.get("GOVERNANCE_TEST_PG_URL")
        or DEFAULT_PG_URL
    )


def pg_available() -> str | None:
    """``None`` if the PostgreSQL server answers, else why not (one line)."""
    if os.environ.get("GOVERNANCE_BENCH_NO_PG"):
        return "GOVERNANCE_BENCH_NO_PG is set"
    try:
        import psycopg

        with psycopg.connect(pg_base_url(), connect_timeout=3) as conn:
            conn.execute("SELECT 1")
    except Exception as exc:
        return f"PostgreSQL not reachable at {pg_base_url()}: {str(exc).splitlines()[0]}"
    return None


@contextmanager
def pg_schema(prefix: str) -> Iterator[tuple[str, str]]:
    """A fresh schema name, dropped (with everything in it) afterwards: ``(url, schema)``.

    The schemas of a sharded ledger's other shards (``SCHEMA_shard<i>``) are dropped too.
    """
    import psycopg

    schema = f"bench_{prefix}_{uuid.uuid4().hex[:10]}"
    base = pg_base_url()
    sep = "&" if "?" in base else "?"
    try:
        yield f"{base}{sep}schema={schema}", schema
    finally:
        with psycopg.connect(base, autocommit=True) as conn:
            shards = conn.execute(
                "SELECT nspname FROM pg_namespace WHERE nspname ~ %s",
                (f"^{schema}_shard[0-9]+$",),
            ).fetchall()
            for name in [schema, *(str(row[0]) for row in shards)]:
                conn.execute(f"DROP SCHEMA IF EXISTS {name} CASCADE")
