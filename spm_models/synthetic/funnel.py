"""The synthetic organisation as a raw marketing-funnel export: two CRM files, and their truth.

Real exports rarely look like the canonical tables. :func:`funnel_export` writes the
organisation of :func:`~spm_models.synthetic.generator.generate_organisation` the way a
B2B marketing-funnel system exports it, with everything that makes such exports hard:

``leads.csv``
    ``lead id, first contact, channel``: one row per lead, first contact as ``dd-mm-yyyy``.
``won_deals.csv``
    ``lead id, rep id, won at, segment``: one row per won deal, ``won at`` as
    ``dd-mm-yyyy HH:MM``; no amount, and nothing about lost deals (no loss dates).

The leads are the organisation's opportunities (first contact = created date), plus leads
that never became one, so that about one lead in ten is won. Each lead gets a channel, and
channels convert differently (:data:`CHANNELS`: referral leads are won five times as often as
paid-search or e-mail leads): a won lead's channel is drawn with probability
``share_c * rate_c / R`` and any other lead's with ``share_c * (1 - rate_c) / (1 - R)``,
``R = sum_c share_c * rate_c``, so a channel's expected conversion is ``rate_c``. A won deal
keeps its agent as ``rep id``, except that the deals of agents who left were reassigned to
the catch-all owner ``unassigned``, as CRMs do. The deal's segment is its account's sector.

Draws use their own random stream (``[seed, 7301]``), so the organisation itself is unchanged.
:class:`FunnelTruth` holds what was written, computed from the generator's arrays: leads per
channel, conversion per channel and monthly cohort, deals won per rep and month, and the days
from first contact to the win. The bundled mapping ``spm_models/data/mappings/funnel.toml``
reads the export without code.
"""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

from spm_models.synthetic.generator import SyntheticOrg

__all__ = ["CHANNELS", "CATCH_ALL", "FunnelTruth", "FunnelExport", "funnel_export", "MAPPING_FILE"]

#: Lead channels: (name, share of all leads, conversion to a won deal).
CHANNELS: tuple[tuple[str, float, float], ...] = (
    ("referral", 0.10, 0.30),
    ("event", 0.15, 0.15),
    ("organic_search", 0.35, 0.08),
    ("paid_search", 0.25, 0.06),
    ("email", 0.15, 0.06),
)
#: Owner of the won deals of agents who left.
CATCH_ALL = "unassigned"
#: Name of the mapping file written beside the export.
MAPPING_FILE = "mapping.toml"
_STREAM = 7301


@dataclass
class FunnelTruth:
    """What the funnel export holds, from the generator's own arrays.

    Attributes
    ----------
    leads : DataFrame
        One row per lead: ``lead_id, channel, first_contact, won, rep_id, won_date``
        (``rep_id`` and ``won_date`` empty for leads not won).
    """

    leads: pd.DataFrame

    @property
    def leads_per_channel(self) -> pd.Series:
        """Leads per channel."""
        return self.leads.groupby("channel").size()

    @property
    def conversion(self) -> pd.DataFrame:
        """Per first-contact month and channel: ``leads``, ``won`` and ``conversion`` (won / leads)."""
        month = self.leads["first_contact"].dt.to_period("M").dt.to_timestamp()
        g = self.leads.assign(month=month).groupby(["month", "channel"])["won"]
        out = g.agg(leads="size", won="sum")
        out["conversion"] = out["won"] / out["leads"]
        return out

    @property
    def deals_won(self) -> pd.Series:
        """Deals won per rep id and month of the win."""
        w = self.leads[self.leads["won"]]
        return w.groupby([w["rep_id"], w["won_date"].dt.to_period("M").dt.to_timestamp().rename("month")]).size()

    @property
    def days_to_convert(self) -> pd.Series:
        """Days from first contact to the win, of each won lead."""
        w = self.leads[self.leads["won"]]
        return (w["won_date"] - w["first_contact"]).dt.days


@dataclass
class FunnelExport:
    """The two export files (as text frames, exactly as written) and their truth."""

    leads: pd.DataFrame
    won_deals: pd.DataFrame
    truth: FunnelTruth

    def write(self, folder: str | Path) -> list[Path]:
        """Write ``leads.csv``, ``won_deals.csv`` and the mapping file into ``folder``."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        written = []
        for name, frame in (("leads.csv", self.leads), ("won_deals.csv", self.won_deals)):
            tmp = folder / f".{name}.tmp"
            frame.to_csv(tmp, index=False, encoding="utf-8", lineterminator="\n")
            tmp.replace(folder / name)
            written.append(folder / name)
        source = resources.files("spm_models.data.mappings") / "funnel.toml"
        with resources.as_file(source) as path:
            shutil.copyfile(path, folder / MAPPING_FILE)
        written.append(folder / MAPPING_FILE)
        return written


def _channels(rng: np.random.Generator, won: np.ndarray) -> np.ndarray:
    names = np.array([c[0] for c in CHANNELS])
    share = np.array([c[1] for c in CHANNELS])
    rate = np.array([c[2] for c in CHANNELS])
    total = float((share * rate).sum())
    p_won = share * rate / total
    p_other = share * (1 - rate) / (1 - total)
    out = np.empty(len(won), dtype=object)
    out[won] = names[rng.choice(len(names), size=int(won.sum()), p=p_won)]
    out[~won] = names[rng.choice(len(names), size=int((~won).sum()), p=p_other / p_other.sum())]
    return out


def funnel_export(org: SyntheticOrg, *, seed: int = 0) -> FunnelExport:
    """The organisation as a raw two-file funnel export (module docstring).

    Parameters
    ----------
    org : SyntheticOrg
        From :func:`~spm_models.synthetic.generator.generate_organisation`.
    seed : int
        Seed of the export's own draws (channels, leads that never became opportunities,
        times of day).

    Returns
    -------
    FunnelExport
    """
    rng = np.random.default_rng([int(seed), _STREAM])
    ds = org.dataset
    opp, agents = ds["opportunities"], ds["agents"]
    won_opp = (opp["outcome"] == "won").to_numpy()
    overall = sum(share * rate for _, share, rate in CHANNELS)
    n_extra = max(0, int(round(won_opp.sum() / overall)) - len(opp))
    created = opp["created_date"].to_numpy().astype("datetime64[D]")
    lo, hi = created.min(), created.max()
    extra = rng.choice(created[~won_opp], size=n_extra) + rng.integers(-3, 4, size=n_extra)
    first = np.clip(np.concatenate([created, extra]), lo, hi)
    won = np.concatenate([won_opp, np.zeros(n_extra, dtype=bool)])
    channel = _channels(rng, won)
    left = agents.set_index("agent_id")["leave_date"].notna()
    agent = opp["agent_id"].astype("str").to_numpy()
    rep = np.where(left.reindex(agent).to_numpy(dtype=bool), CATCH_ALL, agent)
    minutes = rng.integers(8 * 60, 19 * 60, size=len(opp))
    won_at = opp["close_date"].to_numpy().astype("datetime64[m]") + minutes.astype("timedelta64[m]")
    sector = ds["accounts"].set_index("account_id")["sector"]
    segment = sector.reindex(opp["account_id"].astype("str").to_numpy()).fillna("other").to_numpy()
    order = np.lexsort((rng.random(len(first)), first))  # ids follow first contact, as a CRM numbers them
    ids = np.empty(len(first), dtype=object)
    ids[order] = [f"L{i:06d}" for i in range(1, len(first) + 1)]
    n_opp = len(opp)
    truth = pd.DataFrame(
        {
            "lead_id": ids,
            "channel": channel,
            "first_contact": first.astype("datetime64[us]"),
            "won": won,
            "rep_id": np.concatenate([np.where(won_opp, rep, None), np.full(n_extra, None)]),
            "won_date": np.concatenate(
                [
                    np.where(won_opp, won_at.astype("datetime64[D]"), np.datetime64("NaT")),
                    np.full(n_extra, np.datetime64("NaT"), dtype="datetime64[D]"),
                ]
            ).astype("datetime64[us]"),
        }
    ).sort_values("lead_id", ignore_index=True)
    leads = pd.DataFrame(
        {
            "lead id": truth["lead_id"],
            "first contact": truth["first_contact"].dt.strftime("%d-%m-%Y"),
            "channel": truth["channel"],
        }
    )
    w = np.flatnonzero(won_opp)
    won_deals = pd.DataFrame(
        {
            "lead id": ids[:n_opp][w],
            "rep id": rep[w],
            "won at": pd.DatetimeIndex(won_at[w]).strftime("%d-%m-%Y %H:%M"),
            "segment": segment[w],
        }
    )
    won_deals = won_deals.iloc[np.lexsort((won_deals["lead id"].to_numpy(), won_at[w]))].reset_index(drop=True)
    return FunnelExport(leads=leads, won_deals=won_deals, truth=FunnelTruth(truth))
