"""The monitoring report as Markdown and HTML."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from governance.core.pages import markdown_page

# -- rendering ----------------------------------------------------------------------------


def _n(value: Any, digits: int = 3) -> str:
    if value is None or (isinstance(value, float) and value != value):
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return str(value)
    return f"{value:.{digits}f}"


def _cell(text: Any) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(header: Sequence[str], rows: Sequence[Sequence[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return [*lines, ""]


def render_markdown(doc: Mapping[str, Any]) -> str:
    """The report (:meth:`MonitoringReport.to_dict`) as Markdown."""
    out = _summary_md(doc) + _decisions_md(doc) + _drift_md(doc) + _performance_md(doc)
    out += _fairness_md(doc)
    return "\n".join(out).rstrip() + "\n"


def verdict_of(doc: Mapping[str, Any]) -> str:
    """What a report whose checks did not fail says: a check with too little data to judge
    is named as not evaluated, never counted among those that pass."""
    if not doc["passed"]:
        return "at least one check fails"
    skipped = [name for name, c in doc["checks"].items() if not c["evaluated"]]
    if not skipped:
        return "all checks pass"
    if len(skipped) == len(doc["checks"]):
        return "no check could be evaluated (too little data)"
    done = [name for name in doc["checks"] if name not in skipped]
    return f"{', '.join(done)} pass; not evaluated: {', '.join(skipped)}"


def _summary_md(doc: Mapping[str, Any]) -> list[str]:
    """Title, verdict, window and the checks table."""
    m, w = doc["model"], doc["window"]
    title = f"{m.get('name', '?')} version {m.get('version', '?')}"
    out = [f"# Production monitoring: {title}", ""]
    verdict = "**at least one check fails**" if not doc["passed"] else verdict_of(doc)
    alias = f" (alias `{m['alias']}`)" if m.get("alias") else ""
    out += [
        f"Generated {doc.get('generated_at') or 'n/a'} for `{m.get('name')}` version "
        f"{m.get('version')}{alias}: {verdict}.",
        "",
        f"Window: since {w.get('since') or 'the first decision'}, until "
        f"{w.get('until') or 'now'}"
        + (f", purpose `{w['purpose']}`" if w.get("purpose") else "")
        + ".",
        "",
        "## Checks",
        "",
    ]
    out += _table(
        ["check", "result", "detail"],
        [
            [
                name,
                ("pass" if ch["passed"] else "FAIL") if ch["evaluated"] else "not evaluated",
                ch["message"],
            ]
            for name, ch in doc["checks"].items()
        ],
    )
    return out


def _decisions_md(doc: Mapping[str, Any]) -> list[str]:
    """The decision counts."""
    c = doc["counts"]
    out: list[str] = []
    out += ["## Decisions", ""]
    out += _table(
        [
            "decisions",
            "with outcome",
            "with sensitive attributes",
            "overridden",
            "adverse (effective)",
            "sensitive attributes erased",
            "out of distribution",
        ],
        [
            [
                c["decisions"],
                c["with_outcome"],
                c["with_sensitive"],
                c["overridden"],
                c["adverse_effective"],
                c["sensitive_erased"],
                c.get("out_of_distribution", 0),
            ]
        ],
    )
    flagged = doc.get("out_of_distribution") or {}
    if flagged:
        out += [
            "",
            "Decided with inputs inside the contract's hard bounds but outside the training range"
            " (flagged `out_of_distribution`), by feature: "
            + ", ".join(f"{name} {count}" for name, count in flagged.items())
            + ".",
        ]
    return out


def _drift_md(doc: Mapping[str, Any]) -> list[str]:
    """Input and score drift, with the bins of what shifted."""
    p = doc["params"]
    out: list[str] = []
    r = doc["reference"]
    out += [
        "## Input drift",
        "",
        f"Population stability index against the training split ({r.get('rows')} rows"
        + (f", data md5 `{r['train_md5']}`" if r.get("train_md5") else "")
        + f"): PSI = sum over bins of (p - q) ln(p / q), shares floored at {r.get('epsilon')}; "
        f"numeric features in up to {r.get('n_bins')} training-quantile bins with open ends, "
        "categorical features by category, each with a `missing` bin. Thresholds: feature PSI "
        f"at most {p['psi_max']}, score PSI at most {p['score_psi_max']}.",
        "",
    ]
    drift_doc = doc["drift"]
    if not drift_doc["features"]:
        out += ["No decisions in the window.", ""]
    else:
        rows = [
            [
                e["feature"],
                e["kind"],
                _n(e["psi"], 4),
                e["n_production"],
                "over" if e["psi"] > p["psi_max"] else "ok",
            ]
            for e in drift_doc["features"]
        ]
        s = drift_doc["score"]
        rows.append(
            [
                "**score**",
                "numeric",
                _n(s["psi"], 4),
                s["n_production"],
                "over" if s["psi"] > p["score_psi_max"] else "ok",
            ]
        )
        out += _table(["feature", "kind", "PSI", "decisions", "status"], rows)
        shifted = [e for e in drift_doc["features"] if e["psi"] > p["psi_max"]]
        if s["psi"] > p["score_psi_max"]:
            shifted.append(s)
        for e in shifted:
            out += [f"### Bins of {e['feature']}", ""]
            out += _table(
                ["bin", "training share", "production share", "PSI term"],
                [
                    [
                        b["bin"],
                        _n(b["reference_share"]),
                        _n(b["production_share"]),
                        _n(b["psi_term"], 4),
                    ]
                    for b in e["bins"]
                ],
            )
    return out


def _performance_md(doc: Mapping[str, Any]) -> list[str]:
    """Production performance against the held-out evaluation."""
    p = doc["params"]
    out: list[str] = []
    perf = doc["performance"]
    ref = perf.get("reference") or {}
    out += [
        "## Production performance",
        "",
        f"On the {perf['n']} decisions whose outcome has arrived (ground truth recorded as "
        "`outcome` events). Outcomes are usually observed only for approved applications, so "
        "these figures describe that population. Thresholds: AUC at least "
        f"{p['min_auc']}, calibration error at most {p['max_calibration_error']}, judged from "
        f"{p['min_outcomes']} outcomes.",
        "",
    ]
    out += _table(
        ["metric", "production", "held-out evaluation"],
        [
            [k, _n(perf.get(k)), _n(ref.get(k))]
            for k in ("auc", "brier", "calibration_error", "accuracy")
        ]
        + [
            ["observed adverse rate", _n(perf.get("observed_adverse_rate")), ""],
            ["predicted adverse rate", _n(perf.get("predicted_adverse_rate")), ""],
        ],
    )
    return out


def _fairness_md(doc: Mapping[str, Any]) -> list[str]:
    """Production fairness by each sensitive attribute."""
    p = doc["params"]
    out: list[str] = []
    out += [
        "## Production fairness",
        "",
        "Approval rates of the effective decisions (overrides applied) by each sensitive "
        "attribute that callers supplied with the decision (stored encrypted, never given to the "
        f"model); groups under {p['min_group_size']} decisions are shown but not compared. "
        f"Thresholds: approval-rate ratio at least {p['min_approval_ratio']}; with outcomes, "
        f"equalized-odds difference at most {p['max_equalized_odds_difference']}.",
        "",
    ]
    if not any(g["n"] for g in doc["fairness"]):
        out += ["No decision in the window came with sensitive attributes.", ""]
    for g in doc["fairness"]:
        if not g["n"]:
            continue
        a = g["approval"]
        o = g["outcomes"] or {}
        by_outcome = {row["group"]: row for row in o.get("by_group", [])}
        out += [
            f"### By {g['name']}",
            "",
            f"{g['n']} decisions; approval-rate ratio {_n(a['approval_ratio'])}"
            + (
                f"; with {o['n']} outcomes, equalized-odds difference "
                f"{_n(o['equalized_odds_difference'])} (interval "
                f"{_n(o['equalized_odds_difference_ci'][0])}–"
                f"{_n(o['equalized_odds_difference_ci'][1])})"
                if o
                else ""
            )
            + ".",
            "",
        ]
        out += _table(
            ["group", "decisions", "approval rate", "outcomes", "TPR", "FPR", "compared"],
            [
                [
                    row["group"],
                    row["count"],
                    _n(row["approval_rate"]),
                    by_outcome.get(row["group"], {}).get("count", 0),
                    _n(by_outcome.get(row["group"], {}).get("tpr")),
                    _n(by_outcome.get(row["group"], {}).get("fpr")),
                    "no" if row["excluded"] else "yes",
                ]
                for row in a["by_group"]
            ],
        )
    return out


def render_html(doc: Mapping[str, Any]) -> str:
    """The report as a self-contained HTML page (no external assets, no raw HTML passed)."""
    m = doc["model"]
    title = f"Production monitoring: {m.get('name')} version {m.get('version')}"
    return markdown_page(title, render_markdown(doc))
