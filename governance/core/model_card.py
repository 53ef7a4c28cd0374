"""Model cards (Mitchell et al., 2019) as JSON, Markdown and HTML.

The JSON document is the card; Markdown and HTML are renderings of it, so the three never
disagree. Sections: model details, intended use, factors, metrics, evaluation data, training
data, quantitative analyses, intersectional analyses, ethical considerations, caveats and
recommendations, then lineage, validation and the reason-code catalogue.
"""

from __future__ import annotations

from typing import Any

from jinja2 import Environment, StrictUndefined
from markdown_it import MarkdownIt

SECTIONS = (
    "model_details", "intended_use", "factors", "metrics", "evaluation_data", "training_data",
    "quantitative_analyses", "intersectional_analyses", "ethical_considerations", "caveats",
    "lineage", "validation", "reason_codes",
)

_MARKDOWN = """\
# Model card: {{ c.model_details.name }}{% if c.registration %} version {{ c.registration.version }}{% endif %}

## Model details
- **Model:** {{ c.model_details.type }} ({{ c.model_details.library }})
- **Owner:** {{ c.model_details.owner }}
- **Dataset:** {{ c.model_details.dataset }} — {{ c.model_details.dataset_title }}
- **Decision rule:** {{ c.model_details.outcomes.adverse }} when P({{ c.model_details.target }} = {{ c.model_details.adverse_label }}) ≥ {{ c.model_details.threshold }}
- **Inputs:** {{ c.model_details.inputs | join(", ") }}
- **Parameters:** `{{ c.model_details.params_hash[:12] }}` ({% for k, v in c.model_details.train_params.items() %}{{ k }}={{ v }}{% if not loop.last %}, {% endif %}{% endfor %})
{% if c.registration %}- **Registered:** {{ c.registration.model }} version {{ c.registration.version }}, MLflow run `{{ c.registration.mlflow_run_id }}`
{% endif %}
## Intended use
{{ c.intended_use.primary }}

**Out of scope:** {{ c.intended_use.out_of_scope }}

## Factors
Sensitive attributes evaluated (never model inputs): {{ c.factors.sensitive_features | join(", ") }}; and their intersection.

## Metrics
Held-out test split, {{ c.metrics.n }} applications, {{ (c.metrics.confidence * 100) | round | int }}% bootstrap intervals ({{ c.metrics.n_bootstrap }} resamples).

| metric | value | interval |
|---|---|---|
{% for name, value in c.metrics.estimates.items() %}| {{ name }} | {{ "%.4f" | format(value) }} | {{ "%.4f" | format(c.metrics.intervals[name][0]) }} – {{ "%.4f" | format(c.metrics.intervals[name][1]) }} |
{% endfor %}
## Evaluation data
{{ c.evaluation_data.description }} — `{{ c.evaluation_data.path }}`, md5 `{{ c.evaluation_data.md5 }}`, {{ c.evaluation_data.rows }} rows.

## Training data
{{ c.training_data.description }} — `{{ c.training_data.path }}`, md5 `{{ c.training_data.md5 }}`, {{ c.training_data.rows }} rows.

## Quantitative analyses
Fairness gate: **{{ "passed" if c.quantitative_analyses.gate.passed else "FAILED" }}** — {{ c.quantitative_analyses.gate.message }}

{% for g in c.quantitative_analyses.groupings %}### By {{ g.name }}
Approval-rate ratio {{ "%.3f" | format(g.approval_ratio) }} ({{ "%.3f" | format(g.approval_ratio_ci[0]) }}–{{ "%.3f" | format(g.approval_ratio_ci[1]) }}), equalized-odds difference {{ "%.3f" | format(g.equalized_odds_difference) }} ({{ "%.3f" | format(g.equalized_odds_difference_ci[0]) }}–{{ "%.3f" | format(g.equalized_odds_difference_ci[1]) }}), demographic-parity difference {{ "%.3f" | format(g.demographic_parity_difference) }}.

| group | count | approval rate | TPR | FPR |
|---|---|---|---|---|
{% for r in g.by_group %}| {{ r.group }} | {{ r.count }} | {{ "%.3f" | format(r.approval_rate) }} | {{ "%.3f" | format(r.tpr) }} | {{ "%.3f" | format(r.fpr) }} |
{% endfor %}
{% endfor %}
## Intersectional analyses
{% for g in c.intersectional_analyses.groupings %}### By {{ g.name }}
Approval-rate ratio {{ "%.3f" | format(g.approval_ratio) }}, equalized-odds difference {{ "%.3f" | format(g.equalized_odds_difference) }}{% if g.excluded_groups %}; groups too small to gate: {{ g.excluded_groups | join(", ") }}{% endif %}.

| group | count | approval rate | TPR | FPR |
|---|---|---|---|---|
{% for r in g.by_group %}| {{ r.group }} | {{ r.count }} | {{ "%.3f" | format(r.approval_rate) }} | {{ "%.3f" | format(r.tpr) }} | {{ "%.3f" | format(r.fpr) }} |
{% endfor %}
{% else %}Only one sensitive attribute: no intersection.
{% endfor %}
## Ethical considerations
{% for line in c.ethical_considerations %}- {{ line }}
{% endfor %}
## Caveats and recommendations
{% for line in c.caveats %}- {{ line }}
{% endfor %}
## Lineage
- **Code:** commit `{{ c.lineage.git_commit }}`{% if c.lineage.git_dirty %} (**dirty**: uncommitted changes){% endif %}, governance {{ c.lineage.package_version }}
- **Parameters:** sha256 `{{ c.lineage.params_hash }}`
- **Environment:** {{ c.lineage.environment.lock_file }} sha256 `{{ c.lineage.environment.lock_sha256 }}`
{% for d in c.lineage.datasets %}- **Data** `{{ d.path }}`: md5 `{{ d.md5 }}`, {{ d.rows }} rows, {{ d.size }} bytes
{% endfor %}
## Validation
Great Expectations suite `{{ c.validation.suite }}`: **{{ "passed" if c.validation.success else "FAILED" }}** ({{ c.validation.statistics.successful_expectations }} of {{ c.validation.statistics.evaluated_expectations }} expectations) on md5 `{{ c.validation.data_md5 }}`.

## Reason-code catalogue
Principal reasons given with each decision (up to {{ c.reason_codes.count }}), Regulation B style:

| feature | reason |
|---|---|
{% for r in c.reason_codes.reasons %}| {{ r.feature }} | {{ r.reason }} |
{% endfor %}
"""

_HTML = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>
body{{font-family:system-ui,sans-serif;max-width:60rem;margin:2rem auto;padding:0 1rem;color:#222}}
table{{border-collapse:collapse;margin:.5rem 0 1rem}}
th,td{{border:1px solid #ccc;padding:.25rem .6rem;text-align:left}}
th{{background:#f3f3f3}} code{{background:#f5f5f5;padding:0 .2rem}}
</style></head><body>
{body}
</body></html>
"""

_ENV = Environment(undefined=StrictUndefined, trim_blocks=False, autoescape=False)


def render_markdown(card: dict[str, Any]) -> str:
    """The card as Markdown."""
    return _ENV.from_string(_MARKDOWN).render(c=card).strip() + "\n"


def render_html(card: dict[str, Any]) -> str:
    """The card as a self-contained HTML page (no external assets)."""
    md = MarkdownIt("commonmark", {"html": False}).enable("table")
    title = f"Model card: {card['model_details']['name']}"
    return _HTML.format(title=title, body=md.render(render_markdown(card)))


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
) -> dict[str, Any]:
    """Assemble the card document from the pipeline's evidence."""
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
        ],
        "lineage": lineage,
        "validation": validation,
        "reason_codes": {"count": reason_count, "reasons": reasons},
        "registration": None,
    }
