"""Prometheus metrics in the text exposition format (version 0.0.4), written by hand.

``prometheus-client`` is not a dependency: the few series the service exposes are kept in
plain dicts under one lock, and the ledger gauges are read from the ledger at scrape time.

Series
------
``governance_decisions_total{model,version,outcome}``
    Counter: decisions recorded through this process.
``governance_decision_latency_seconds{endpoint}``
    Histogram: time to score and durably record one request's decisions (``endpoint`` is
    ``decisions``, ``batch`` or ``invocations``).
``governance_decision_requests_total{thread}``
    Counter: single-decision requests run on the event loop's thread (``loop``) and in the
    thread pool (``pool``), see :mod:`governance.service.dispatch`.
``governance_ledger_records``
    Gauge: records in the ledger (all processes, all event types).
``governance_checkpoint_age_seconds``
    Gauge: seconds since the newest signed checkpoint; ``+Inf`` if the ledger holds records
    but has never been checkpointed, ``0`` for an empty ledger with no checkpoint.
``governance_checkpoint_records``
    Gauge: records covered by the newest checkpoint.
``governance_ledger_up``
    Gauge: 1 if the ledger answered this scrape, else 0 (and the two gauges above are absent).

With witnesses (read from the kept cosigned notes, :mod:`governance.transparency.status`;
absent when the ledger did not answer):

``governance_witnessing_up``
    Gauge: 1 if the witness configuration and kept notes could be read, else 0 (and the
    witness series below are absent).
``governance_witness_quorum``
    Gauge: cosignatures that publish a checkpoint (0: no witnesses configured).
``governance_witnessed_checkpoint_age_seconds``
    Gauge: seconds since the newest checkpoint cosigned by a quorum of witnesses was signed;
    ``+Inf`` if none was (only with a quorum configured).
``governance_witnessed_checkpoint_records``
    Gauge: records covered by that checkpoint (0 if none; only with a quorum configured).
``governance_witness_cosigned{witness}``
    Gauge: 1 if the witness cosigned the newest signed checkpoint (it answered the last
    round), else 0.
``governance_witness_cosigned_records{witness}``
    Gauge: the largest tree size the witness cosigned (0 if none).
"""

from __future__ import annotations

import bisect
import math
import threading
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Protocol

from governance.transparency.status import WitnessStatus

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
LATENCY_BUCKETS: tuple[float, ...] = (
    0.0005,
    0.001,
    0.0025,
    0.005,
    0.01,
    0.025,
    0.05,
    0.1,
    0.25,
    0.5,
    1.0,
    2.5,
    5.0,
    10.0,
)


class _Checkpoint(Protocol):
    @property
    def size(self) -> int: ...

    @property
    def timestamp(self) -> str: ...

    @property
    def root(self) -> bytes: ...


class WitnessSource(Protocol):
    """What the metrics read about witnessing (:class:`~governance.transparency.WitnessMonitor`)."""

    def status(self, newest: _Checkpoint | None) -> WitnessStatus:
        """Who cosigned ``newest`` and the newest witnessed checkpoint, from the kept notes."""
        ...


class _Head(Protocol):
    @property
    def size(self) -> int: ...


class LedgerLike(Protocol):
    """What the metrics read from a ledger."""

    def head(self) -> _Head:
        """The ledger's head (its size)."""
        ...

    def checkpoints(self) -> Sequence[_Checkpoint]:
        """The ledger's signed checkpoints, oldest first."""
        ...


def _number(value: float) -> str:
    if math.isnan(value):
        return "NaN"
    if math.isinf(value):
        return "+Inf" if value > 0 else "-Inf"
    if value == int(value) and abs(value) < 1e15:
        return str(int(value))
    return repr(value)


def _label(value: str) -> str:
    return value.replace("\\", "\\\\").replace("\n", "\\n").replace('"', '\\"')


def _labels(pairs: Iterable[tuple[str, str]]) -> str:
    inner = ",".join(f'{k}="{_label(v)}"' for k, v in pairs)
    return "{" + inner + "}" if inner else ""


class _Histogram:
    __slots__ = ("count", "counts", "total")

    def __init__(self, buckets: int) -> None:
        self.counts = [0] * (buckets + 1)  # the last one is +Inf
        self.total = 0.0
        self.count = 0


class Metrics:
    """Counters and histograms of one service process, rendered for Prometheus.

    Parameters
    ----------
    buckets
        Upper bounds of the latency histogram buckets, in seconds, ascending.
    """

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = tuple(sorted(buckets))
        self._lock = threading.Lock()
        self._decisions: dict[tuple[str, str, str], int] = {}
        self._latency: dict[str, _Histogram] = {}

    def observe(
        self, endpoint: str, seconds: float, decisions: Iterable[tuple[str, str, str]]
    ) -> None:
        """Count one request's decisions and its latency.

        Parameters
        ----------
        endpoint
            ``decisions``, ``batch`` or ``invocations``.
        seconds
            Time taken to score and record the request's decisions.
        decisions
            ``(model, version, outcome)`` of each decision.
        """
        index = bisect.bisect_left(self.buckets, seconds)
        with self._lock:
            for key in decisions:
                self._decisions[key] = self._decisions.get(key, 0) + 1
            hist = self._latency.get(endpoint)
            if hist is None:
                hist = self._latency[endpoint] = _Histogram(len(self.buckets))
            hist.counts[index] += 1
            hist.total += seconds
            hist.count += 1

    def decisions_total(self, model: str, version: str, outcome: str) -> int:
        """Return the counter for one ``(model, version, outcome)``."""
        with self._lock:
            return self._decisions.get((model, version, outcome), 0)

    def render(
        self,
        ledger: LedgerLike | None = None,
        *,
        now: datetime | None = None,
        witnesses: WitnessSource | None = None,
        dispatched: Mapping[str, int] | None = None,
    ) -> str:
        """Return the exposition text (ends with a newline).

        Parameters
        ----------
        ledger
            Read for the ledger gauges; a failure to read it sets ``governance_ledger_up 0``.
        now
            The current time (for the checkpoint ages); defaults to the clock.
        witnesses
            Read for the witness gauges (only when the ledger answered).
        dispatched
            Single-decision requests per thread they ran on
            (:meth:`~governance.service.dispatch.Dispatcher.counts`).
        """
        with self._lock:
            decisions = sorted(self._decisions.items())
            latency = {
                name: (list(h.counts), h.total, h.count)
                for name, h in sorted(self._latency.items())
            }
        out: list[str] = [
            "# HELP governance_decisions_total Decisions recorded in the ledger by this process.",
            "# TYPE governance_decisions_total counter",
        ]
        for (model, version, outcome), n in decisions:
            labels = _labels((("model", model), ("version", version), ("outcome", outcome)))
            out.append(f"governance_decisions_total{labels} {n}")
        out += [
            "# HELP governance_decision_latency_seconds Time to score and durably record a"
            " request's decisions.",
            "# TYPE governance_decision_latency_seconds histogram",
        ]
        for endpoint, (counts, total, count) in latency.items():
            running = 0
            for bound, n in zip((*self.buckets, math.inf), counts, strict=True):
                running += n
                labels = _labels((("endpoint", endpoint), ("le", _number(bound))))
                out.append(f"governance_decision_latency_seconds_bucket{labels} {running}")
            labels = _labels((("endpoint", endpoint),))
            out.append(f"governance_decision_latency_seconds_sum{labels} {_number(total)}")
            out.append(f"governance_decision_latency_seconds_count{labels} {count}")
        if dispatched is not None:
            out += [
                "# HELP governance_decision_requests_total Single-decision requests by the"
                " thread they ran on (the event loop's or the pool's).",
                "# TYPE governance_decision_requests_total counter",
            ]
            for where, n in sorted(dispatched.items()):
                out.append(f"governance_decision_requests_total{_labels((('thread', where),))} {n}")
        out += self._ledger_gauges(ledger, now, witnesses) if ledger is not None else []
        return "\n".join(out) + "\n"

    @staticmethod
    def _ledger_gauges(
        ledger: LedgerLike, now: datetime | None, witnesses: WitnessSource | None
    ) -> list[str]:
        out = [
            "# HELP governance_ledger_up Whether the ledger answered this scrape.",
            "# TYPE governance_ledger_up gauge",
        ]
        try:
            size = ledger.head().size
            checkpoints = ledger.checkpoints()
        except Exception:
            return [*out, "governance_ledger_up 0"]
        out.append("governance_ledger_up 1")
        latest = max(checkpoints, key=lambda cp: (cp.timestamp, cp.size), default=None)
        if latest is None:
            age = math.inf if size else 0.0
            covered = 0
        else:
            signed = datetime.fromisoformat(latest.timestamp.replace("Z", "+00:00"))
            age = max(0.0, ((now or datetime.now(UTC)) - signed).total_seconds())
            covered = latest.size
        out += [
            "# HELP governance_ledger_records Records in the ledger (all event types).",
            "# TYPE governance_ledger_records gauge",
            f"governance_ledger_records {size}",
            "# HELP governance_checkpoint_age_seconds Seconds since the newest signed checkpoint.",
            "# TYPE governance_checkpoint_age_seconds gauge",
            f"governance_checkpoint_age_seconds {_number(age)}",
            "# HELP governance_checkpoint_records Records covered by the newest checkpoint.",
            "# TYPE governance_checkpoint_records gauge",
            f"governance_checkpoint_records {covered}",
        ]
        if witnesses is not None:
            newest = max(checkpoints, key=lambda cp: cp.size, default=None)
            out += _witness_gauges(witnesses, newest, now)
        return out


def _witness_gauges(
    source: WitnessSource, newest: _Checkpoint | None, now: datetime | None
) -> list[str]:
    out = [
        "# HELP governance_witnessing_up Whether the witness configuration and kept cosigned"
        " notes could be read.",
        "# TYPE governance_witnessing_up gauge",
    ]
    try:
        status = source.status(newest)
    except (OSError, ValueError):
        return [*out, "governance_witnessing_up 0"]
    out += [
        "governance_witnessing_up 1",
        "# HELP governance_witness_quorum Cosignatures that publish a checkpoint.",
        "# TYPE governance_witness_quorum gauge",
        f"governance_witness_quorum {status.quorum}",
    ]
    if status.quorum:
        age = status.age_seconds(now)
        age = math.inf if age is None else age
        out += [
            "# HELP governance_witnessed_checkpoint_age_seconds Seconds since the newest"
            " checkpoint cosigned by a quorum of witnesses was signed.",
            "# TYPE governance_witnessed_checkpoint_age_seconds gauge",
            f"governance_witnessed_checkpoint_age_seconds {_number(age)}",
            "# HELP governance_witnessed_checkpoint_records Records covered by the newest"
            " witnessed checkpoint.",
            "# TYPE governance_witnessed_checkpoint_records gauge",
            f"governance_witnessed_checkpoint_records {status.witnessed_size or 0}",
        ]
    if status.witnesses:
        out += [
            "# HELP governance_witness_cosigned Whether the witness cosigned the newest signed"
            " checkpoint.",
            "# TYPE governance_witness_cosigned gauge",
        ]
        out += [
            f"governance_witness_cosigned{_labels((('witness', w.name),))} {int(w.answered)}"
            for w in status.witnesses
        ]
        out += [
            "# HELP governance_witness_cosigned_records The largest tree size the witness"
            " cosigned.",
            "# TYPE governance_witness_cosigned_records gauge",
        ]
        out += [
            f"governance_witness_cosigned_records{_labels((('witness', w.name),))}"
            f" {w.cosigned_size or 0}"
            for w in status.witnesses
        ]
    return out
