"""The business rules of the data contract: what must hold between the columns of one row.

Called by :func:`spm_models.data.validation.validate` on typed frames, after every cell has
been converted; each rule reports the rows breaking it through a
:class:`~spm_models.data.problems.ProblemCollector`, with the user's file, row and column.

Opportunities
    A won deal needs a close date on or after its created date, and an amount when bookings
    are measured in money. A lost deal may lack a close date (exports often record only wins):
    it then counts for cohort rates, never for rates by close period. An open deal has no close
    date. Where both ``cost`` and ``margin`` are given, ``margin = amount - cost``.
Agents
    Leave date on or after the hire date.
Leads
    Disqualified on or after the created date.
Targets
    For exactly one of agent or territory; period end on or after its start.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.data.dataset import SourceRef
from spm_models.data.problems import ProblemCollector, sheet_rows

__all__ = ["business_rules", "MARGIN_TOLERANCE"]

#: Largest difference between ``margin`` and ``amount - cost`` taken as rounding.
MARGIN_TOLERANCE = 0.005


def _flag(out: ProblemCollector, order: int, ref: SourceRef, typed, bad, mask, column: str, rule: str) -> None:
    mask = np.asarray(mask, dtype=bool)
    if column in bad:  # the conversion problem already covers this cell
        mask = mask & ~bad[column].to_numpy()
    pos = np.flatnonzero(mask)
    out.add(order, ref.file, sheet_rows(ref, len(typed), pos), ref.column_of(column), typed[column].iloc[pos], rule)


def _opportunities(t: pd.DataFrame, flag, *, measure: str) -> None:
    won = (t["outcome"] == "won").to_numpy()
    no_close = t["close_date"].isna().to_numpy()
    flag(won & no_close, "close_date", "a won deal needs a close date")
    flag(
        (t["outcome"] == "open").to_numpy() & ~no_close,
        "close_date",
        "an open opportunity must not have a close date (set outcome to won or lost, or clear the date)",
    )
    flag((t["close_date"] < t["created_date"]).to_numpy(), "close_date", "close date is before the created date")
    if measure == "money":
        flag(
            won & t["amount"].isna().to_numpy(),
            "amount",
            'a won deal needs an amount (or count bookings in deals: bookings_measure = "deals")',
        )
    both = t["cost"].notna() & t["margin"].notna() & t["amount"].notna()
    off = (t["amount"] - t["cost"] - t["margin"]).abs() > MARGIN_TOLERANCE
    flag((both & off).to_numpy(), "margin", "margin must equal amount - cost")


def business_rules(
    name: str,
    typed: pd.DataFrame,
    bad: dict[str, pd.Series],
    ref: SourceRef,
    order: int,
    out: ProblemCollector,
    *,
    measure: str = "money",
) -> None:
    """Check the rules of table ``name`` (module docstring) on its typed frame.

    Parameters
    ----------
    name : str
        Canonical table.
    typed : DataFrame
        The table with canonical dtypes.
    bad : dict
        Column -> cells that could not be converted (already reported, skipped here).
    ref : SourceRef
        Where the rows came from.
    order : int
        Load order of the table (sorts the problems).
    out : ProblemCollector
    measure : {"money", "deals"}
        How bookings are measured.
    """
    t = typed

    def flag(mask, column: str, rule: str) -> None:
        _flag(out, order, ref, t, bad, mask, column, rule)

    if name == "opportunities":
        _opportunities(t, flag, measure=measure)
    elif name == "agents":
        flag((t["leave_date"] < t["hire_date"]).to_numpy(), "leave_date", "leave date is before the hire date")
    elif name == "leads":
        flag(
            (t["disqualified_date"] < t["created_date"]).to_numpy(),
            "disqualified_date",
            "disqualified before the lead was created",
        )
    elif name == "targets":
        has_agent = t["agent_id"].notna().to_numpy()
        has_terr = t["territory_id"].notna().to_numpy()
        flag(
            has_agent & has_terr,
            "territory_id",
            "a target is for one agent or one territory: fill agent_id or territory_id, not both",
        )
        flag(~has_agent & ~has_terr, "agent_id", "a target needs an agent_id or a territory_id")
        flag((t["period_end"] < t["period_start"]).to_numpy(), "period_end", "period end is before the period start")
