"""What the data hold, decided once per review run: the facts the reports adapt to.

A review built on an export of another shape must not show what its data cannot support: a
quota section without quotas, a payout under a plan nobody configured, a funnel without
stages, a win rate of 100% because lost deals are not dated, money where bookings are deal
counts, or a catch-all owner reviewed like a person. :func:`data_profile` states these facts;
``run.json`` records them (``data``), :mod:`spm_models.review.views` exposes them as
:class:`Section` states with a one-line reason, and the notebooks show or skip sections
through :func:`spm_models.review.render.section` without branching.

Win rates
---------
``loss_dates`` says how lost deals are recorded: ``"complete"`` (at least 95% of lost deals
have a close date), ``"undated"`` (lost deals exist, too many without a date) or ``"none"`` (no
lost deal at all: an export of wins only). The close-period win rate is shown only when they
are complete. Otherwise the reports use cohort rates (of the opportunities created in a month,
the share won by now: :func:`spm_models.kpi.cohort_conversion`), or with no lost deal at all,
the conversion of leads (:mod:`spm_models.kpi.leads`), and say so.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import pandas as pd

from spm_models.data.dataset import Dataset
from spm_models.present.format import bookings_label

__all__ = ["DataProfile", "data_profile", "Section", "Sections", "sections", "DATED_LOSSES_NEEDED"]

#: Share of lost deals with a close date above which close-period win rates are shown.
DATED_LOSSES_NEEDED = 0.95


@dataclass(frozen=True)
class DataProfile:
    """The facts of one run's data that decide which sections its reports show.

    Attributes
    ----------
    bookings_measure : {"money", "deals"}
    bookings_label : str
        The currency, or ``"deals"`` (:func:`~spm_models.present.format.bookings_label`).
    has_quota, has_commission_plan, has_stages, has_pipeline, has_leads, has_spend,
    has_accounts, has_activities : bool
        Quotas for the forecast quarter; a commission plan configured; opportunity stages;
        opportunities that are not won (open or lost) besides the won ones; leads; marketing
        spend per channel; won deals naming an account; an activity log.
    loss_dates : {"complete", "undated", "none"}
        How lost deals are dated (module docstring).
    win_rate_basis : {"close", "cohort", "leads"} or None
        Which rate the reports show: by close period, by created cohort, of leads; None when
        no rate can be shown.
    non_person_owners : list of str
        Agent ids flagged as not people (``agents.is_person`` false).
    """

    bookings_measure: str = "money"
    bookings_label: str = "USD"
    has_quota: bool = False
    has_commission_plan: bool = False
    has_stages: bool = False
    has_pipeline: bool = True
    has_leads: bool = False
    has_spend: bool = False
    has_accounts: bool = False
    has_activities: bool = False
    loss_dates: str = "complete"
    win_rate_basis: str | None = "close"
    non_person_owners: list[str] = field(default_factory=list)

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict | None) -> DataProfile:
        """From ``run.json``'s ``data``; the first-version defaults for older runs."""
        known = {k: v for k, v in (d or {}).items() if k in cls.__dataclass_fields__}
        return cls(**known)

    @property
    def rate_note(self) -> str:
        """One line saying which win rate the reports show and why ("" for close-period rates)."""
        if self.win_rate_basis == "cohort":
            return (
                "Lost deals are not dated in these data, so a win rate by close month would count the wins and miss "
                "the losses. Rates here are cohort rates: of the opportunities created in a month, the share won "
                "by now."
            )
        if self.win_rate_basis == "leads":
            return (
                "These data record no lost deals, so a win rate (won against lost) cannot be measured. Conversion "
                "is measured from leads: of the leads created in a month, the share won by now."
            )
        return ""


def _loss_dates(opp: pd.DataFrame) -> str:
    lost = opp["outcome"].astype("str") == "lost"
    if not lost.any():
        return "none"
    dated = opp.loc[lost, "close_date"].notna().mean()
    return "complete" if dated >= DATED_LOSSES_NEEDED else "undated"


def data_profile(dataset: Dataset, *, currency: str, has_quota: bool, has_commission_plan: bool) -> DataProfile:
    """The facts of ``dataset`` that the reports adapt to.

    They are facts of the data's shape, so they are read from the whole data, not from the data
    as of the review date (rewound, a won deal is open before its win: the pipeline of an export
    of wins only would seem to exist).

    Parameters
    ----------
    dataset : Dataset
        The whole data.
    currency : str
        The review settings' currency.
    has_quota, has_commission_plan : bool
        Whether the forecast quarter has quotas, and a commission plan is configured.
    """
    opp = dataset["opportunities"]
    loss = _loss_dates(opp)
    leads = dataset.get("leads")
    basis = {"complete": "close", "undated": "cohort"}.get(loss, "leads" if len(leads) else None)
    agents = dataset["agents"]
    person = agents["is_person"] if "is_person" in agents else pd.Series(True, index=agents.index)
    won = opp["outcome"].astype("str") == "won"
    return DataProfile(
        bookings_measure=dataset.bookings_measure,
        bookings_label=bookings_label(currency, dataset.bookings_measure),
        has_quota=bool(has_quota),
        has_commission_plan=bool(has_commission_plan),
        has_stages=bool(opp["stage"].notna().any()) if "stage" in opp else False,
        has_pipeline=bool((~won).any()),
        has_leads=bool(len(leads) > 0),
        has_spend=bool(len(dataset.get("channel_spend")) > 0),
        has_accounts=bool(opp.loc[won, "account_id"].notna().any()) if "account_id" in opp else False,
        has_activities=bool(len(dataset.get("activities")) > 0),
        loss_dates=loss,
        win_rate_basis=basis,
        non_person_owners=sorted(agents.loc[~person.astype(bool).to_numpy(), "agent_id"].astype("str")),
    )


@dataclass(frozen=True)
class Section:
    """Whether a report section is shown, and if not, why (one line; empty: nothing to say, as for
    a section about something these data were never expected to hold)."""

    shown: bool
    reason: str = ""


@dataclass(frozen=True)
class Sections:
    """The optional sections of the reports, each a :class:`Section`.

    ``quota`` (attainment, chance of reaching quota), ``commission``, ``funnel`` (stage
    conversion), ``accounts`` (key accounts, new against existing business), ``activity``,
    ``conversion`` (cohort rates, where the data cannot give close-period win rates),
    ``channels`` (leads by channel).
    """

    quota: Section
    commission: Section
    funnel: Section
    accounts: Section
    activity: Section
    conversion: Section
    channels: Section


def sections(profile: DataProfile) -> Sections:
    """Which optional sections the data support (:class:`Sections`), and why not where they do not."""
    p = profile

    def state(ok: bool, reason: str) -> Section:
        return Section(True) if ok else Section(False, reason)

    return Sections(
        quota=state(p.has_quota, "the data hold no quotas for this quarter, so no attainment or chance of quota."),
        commission=state(
            p.has_commission_plan,
            "no commission plan is configured (plan_file or [commission] in the review settings), so no payout "
            "is estimated.",
        ),
        funnel=state(
            p.has_stages and p.has_pipeline,
            "the data hold no pipeline stages, so stage-to-stage conversion cannot be measured.",
        ),
        accounts=state(p.has_accounts, "the won deals name no customer accounts."),
        activity=state(p.has_activities, "the data hold no activity log."),
        # with dated losses the close-period win rate is in the cards and tables: nothing to add
        conversion=Section(
            p.win_rate_basis in ("cohort", "leads"),
            "" if p.win_rate_basis else "the data record neither lost deals nor leads, so no win rate can be shown.",
        ),
        # leads are an addition: data without them miss nothing the reports used to show
        channels=Section(p.has_leads),
    )
