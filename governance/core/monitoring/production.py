"""Production data: decisions, inputs, outcomes and overrides as DataFrames, and the effective
outcome of each decision."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from governance.core.monitoring.params import ERR_FRAMES

# -- production data ----------------------------------------------------------------------


@dataclass(frozen=True)
class ProductionFrames:
    """A model version's production decisions, as loaded from the ledger.

    Attributes
    ----------
    decisions : pandas.DataFrame
        Indexed by decision id: ``ts``, ``score``, ``outcome`` (as decided), ``effective_outcome``
        (overrides applied), ``overridden`` (bool), ``observed`` (the last recorded ground truth,
        missing until it arrives) and, when recorded, ``out_of_distribution`` (the features the
        decision flagged outside the training range, a tuple).
    inputs : pandas.DataFrame
        Same index: the recorded model inputs.
    sensitive : pandas.DataFrame
        Same index: sensitive attributes supplied by the callers, as strings; missing where a
        caller did not supply one.
    erased : int
        Decisions whose sensitive attributes were erased (GDPR art. 17) and are not counted.
    """

    decisions: pd.DataFrame
    inputs: pd.DataFrame
    sensitive: pd.DataFrame
    erased: int = 0

    def __post_init__(self) -> None:
        index = self.decisions.index
        if not (self.inputs.index.equals(index) and self.sensitive.index.equals(index)):
            raise ValueError(ERR_FRAMES)


def latest_by_decision(events: pd.DataFrame, value: str) -> pd.Series:
    """The last event's ``value`` per decision (events with ``decision_id``, ``seq``, value).

    Parameters
    ----------
    events : pandas.DataFrame
        Columns ``decision_id``, ``seq`` and ``value``.
    value : str
        The column to take.

    Returns
    -------
    pandas.Series
        Indexed by decision id.
    """
    if events.empty:
        return pd.Series(dtype=object, name=value)
    last = events.sort_values("seq").groupby("decision_id", sort=False).tail(1)
    return last.set_index("decision_id")[value]


def effective_outcomes(outcomes: pd.Series, overrides: pd.DataFrame) -> pd.Series:
    """Recorded outcomes with overrides applied: the last override of a decision wins.

    Parameters
    ----------
    outcomes : pandas.Series
        Recorded outcome per decision id.
    overrides : pandas.DataFrame
        Override reviews: ``decision_id``, ``seq``, ``outcome``. Overrides of decisions not in
        ``outcomes`` are ignored.

    Returns
    -------
    pandas.Series
        Same index as ``outcomes``.
    """
    latest = latest_by_decision(overrides, "outcome")
    latest = latest[latest.index.isin(outcomes.index)]
    out = outcomes.copy()
    out.loc[latest.index] = latest.to_numpy()
    return out
