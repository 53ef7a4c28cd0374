"""Model cards (Mitchell et al., 2019) as JSON, Markdown and HTML.

The JSON document is the card; Markdown and HTML are renderings of it, so the three never
disagree. Sections: model details, intended use, factors, metrics, evaluation data, training
data, quantitative analyses, intersectional analyses, ethical considerations, caveats and
recommendations, then lineage, validation and the reason-code catalogue.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, PackageLoader, StrictUndefined
from markdown_it import MarkdownIt

from governance.core.pages import inline, markdown_page

SECTIONS = (
    "model_details",
    "intended_use",
    "factors",
    "metrics",
    "evaluation_data",
    "training_data",
    "quantitative_analyses",
    "intersectional_analyses",
    "ethical_considerations",
    "caveats",
    "lineage",
    "validation",
    "reason_codes",
    "alternatives",
)
FRONTIER_IMAGE = "alternatives.svg"


_ENV = Environment(
    loader=PackageLoader("governance", "templates"),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
    autoescape=False,  # Markdown, not HTML: the HTML rendering escapes (markdown-it, html=False)
    finalize=inline,  # every value is literal text: no link, image, heading or cell it forges
)


def _num(value: float | None, digits: int = 3) -> str:
    """A number for a card; undefined rates (a group with no positives) read "n/a"."""
    if value is None or value != value:
        return "n/a"
    return f"{value:.{digits}f}"


_ENV.filters["num"] = _num


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown."""
    return _ENV.get_template("model_card.md.j2").render(c=card).strip() + "\n"


def _inline_figures(html_text: str, card: dict[str, Any]) -> str:
    """Put the frontier plot (SVG our own code drew from numbers) where the Markdown links it."""
    alternatives = card.get("alternatives") or {}
    svg = alternatives.get("svg")
    if not svg:
        return html_text
    tag = f'<img src="{FRONTIER_IMAGE}" alt="Accuracy–fairness frontier" />'
    inline = svg.replace(' xmlns="http://www.w3.org/2000/svg"', "")  # HTML needs no namespace
    return html_text.replace(tag, f'<figure id="frontier">{inline}</figure>')


def render_fragment(card: dict[str, Any]) -> str:
    """The card as an HTML fragment (raw HTML in the Markdown escaped; figures inlined)."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    return _inline_figures(md.render(render_markdown(card)), card)


def render_html(card: dict[str, Any]) -> str:
    """The card as a self-contained HTML page (no external assets; figures inlined)."""
    page = markdown_page(f"Model card: {card['model_details']['name']}", render_markdown(card))
    return _inline_figures(page, card)


def _values(kind: str, values: list[str]) -> str:
    if kind == "numeric":
        return f"{values[0]} values" if values else "no values"
    return " or ".join(f"“{v}”" for v in values) if values else "no category"


def _reworded_caveat(r: dict[str, Any]) -> str:
    return (
        f"The fitted model contradicts the reason of {r['feature']}: the spec's "
        f"“{r['spec_reason']}” speaks of {_values(r['kind'], r['spec'])}, but the model raises "
        f"the adverse score for {_values(r['kind'], r['model'])}, so its decisions say "
        + " or ".join(f"“{w}”" for w in r["said"])
        + " where the spec's words would be false. Review this before approving the model."
    )


def build_card(
    *,
    model_details: dict[str, Any],
    intended_use: dict[str, str],
    sensitive_features: list[str],
    evaluation: dict[str, Any],
    fairness: dict[str, Any],
    gate: dict[str, Any],
    training_data: dict[str, Any],
    evaluation_data: dict[str, Any],
    lineage: dict[str, Any],
    validation: dict[str, Any],
    reasons: list[dict[str, str]],
    reason_count: int,
    alternatives: dict[str, Any] | None = None,
    reworded: list[dict[str, Any]] | None = None,
) -> dict[str, Any]:
    """Assemble the card document from the pipeline's evidence.

    ``reasons`` are the words decisions give (:func:`governance.core.scorecard.catalogue`);
    ``reworded`` names each feature whose fitted model contradicts its spec's reason (feature,
    kind, ``spec_reason``, the words ``said`` instead, and the adverse values each states),
    said as a caveat for the approver.
    """
    reworded = reworded or []
    groupings = fairness["groupings"]
    single = [g for g in groupings if len(g["features"]) == 1]
    intersections = [g for g in groupings if len(g["features"]) > 1]
    return {
        "schema": "governance.model_card/1",
        "model_details": model_details,
        "intended_use": intended_use,
        "factors": {"sensitive_features": sensitive_features},
        "metrics": {
            "n": evaluation["n"],
            "confidence": evaluation["confidence"],
            "n_bootstrap": evaluation.get("n_bootstrap"),
            "estimates": evaluation["metrics"],
            "intervals": evaluation["intervals"],
        },
        "evaluation_data": evaluation_data,
        "training_data": training_data,
        "quantitative_analyses": {"gate": gate, "groupings": single},
        "intersectional_analyses": {"groupings": intersections},
        "ethical_considerations": [
            "Sensitive attributes (" + ", ".join(sensitive_features) + ") are not model inputs: "
            "using them to decide would be disparate treatment (ECOA / Regulation B). They are "
            "used only to measure outcomes by group.",
            "Inputs can still act as proxies for sensitive attributes; the group metrics above "
            "measure the effect, and production fairness is monitored from the decision ledger.",
            "Every decision is recorded with its inputs, score, explanation and principal reasons, "
            "so an applicant can be told why and can contest it (GDPR art. 22(3)).",
        ],
        "caveats": [
            "Metrics come from one held-out split; intervals show their sampling uncertainty, "
            "and small groups have wide intervals.",
            "Groups smaller than the gate's minimum size are reported but not gated.",
            "The data describe one market and period; revalidate before use elsewhere.",
            *(_reworded_caveat(r) for r in reworded),
        ],
        "lineage": lineage,
        "validation": validation,
        "reason_codes": {"count": reason_count, "reasons": reasons, "reworded": reworded},
        "alternatives": alternatives,
        "registration": None,
        "comparison": None,  # champion/challenger, added at registration when there is one
    }
