"""The explorer's charts, laid out here and drawn by the templates as inline SVG.

:func:`contribution_chart` places one bar per feature (its contribution to the log-odds) on a
horizontal axis at zero; :func:`score_gauge` places the score and the threshold on a 0-1 track.
Both return plain frozen dataclasses in SVG user units, so the layout is testable without HTML.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from governance.service.ui.render import value_text


@dataclass(frozen=True)
class Bar:
    """One feature's bar in the contribution chart (SVG user units)."""

    feature: str
    value: float
    shown: str
    y: float
    x: float
    width: float
    positive: bool
    text_x: float
    anchor: str


@dataclass(frozen=True)
class Chart:
    """The per-feature contribution chart: bars left (lower score) or right (higher)."""

    width: int
    height: int
    axis_x: float
    label_x: float
    top: float
    row: float
    bar_height: float
    bars: list[Bar]
    base_value: float
    logit: float


CHART_WIDTH = 720
CHART_LABEL_X = 196
CHART_AXIS_X = 460
CHART_HALF = 196
CHART_ROW = 24
CHART_BAR = 16
CHART_TOP = 30


def contribution_chart(
    contributions: Mapping[str, float],
    inputs: Mapping[str, Any],
    base_value: float,
    logit: float,
) -> Chart:
    """Lay out a horizontal bar chart of per-feature contributions (log-odds).

    Bars are sorted by contribution, largest push towards a higher score first; the axis is
    at zero and the scale is the largest absolute contribution.
    """
    items = sorted(contributions.items(), key=lambda kv: (-kv[1], kv[0]))
    scale = max((abs(v) for _, v in items), default=0.0) or 1.0
    bars = []
    for i, (feature, value) in enumerate(items):
        width = abs(value) / scale * CHART_HALF
        positive = value >= 0
        x = CHART_AXIS_X if positive else CHART_AXIS_X - width
        bars.append(
            Bar(
                feature=feature,
                value=float(value),
                shown=value_text(inputs.get(feature)),
                y=CHART_TOP + i * CHART_ROW,
                x=x,
                width=max(width, 0.5),
                positive=positive,
                text_x=x + width + 4 if positive else x - 4,
                anchor="start" if positive else "end",
            )
        )
    return Chart(
        width=CHART_WIDTH,
        height=int(CHART_TOP + len(bars) * CHART_ROW + 8),
        axis_x=CHART_AXIS_X,
        label_x=CHART_LABEL_X,
        top=CHART_TOP,
        row=CHART_ROW,
        bar_height=CHART_BAR,
        bars=bars,
        base_value=base_value,
        logit=logit,
    )


@dataclass(frozen=True)
class Gauge:
    """The score against the threshold on a 0-1 scale."""

    width: int
    left: float
    right: float
    score: float
    threshold: float
    score_x: float
    threshold_x: float
    above: bool


def score_gauge(score: float, threshold: float, width: int = CHART_WIDTH) -> Gauge:
    """Place the score and the threshold on a 0-1 track."""
    left, right = 20.0, float(width - 20)

    def at(v: float) -> float:
        return left + min(max(v, 0.0), 1.0) * (right - left)

    return Gauge(width, left, right, score, threshold, at(score), at(threshold), score >= threshold)
