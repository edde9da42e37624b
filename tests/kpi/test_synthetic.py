"""Large-organisation check: quarterly win rates against the generator's planted truth.

The synthetic generator knows, per agent and week, the expected number of deals closing
(``expected_closes``) and won (``expected_wins``). For each agent-quarter the true win rate is
``p = sum(expected_wins) / sum(expected_closes)`` (weeks split over quarters by weekday,
:meth:`GroundTruth.expected_by_period`). Given ``n`` closed deals, the observed rate is a
binomial share, so ``z = (obs - p) / sqrt(p (1 - p) / n)`` is close to standard normal.

Tolerance, over the agent-quarters with at least 20 closed deals (about 4,800 here): the share
with ``|z| > 1.96`` is at most 8 % (5 % expected; the binomial z is a little heavy-tailed at
n = 20) and the largest ``|z|`` is below 5 (for ~5,000 independent normal z the chance of
any ``|z| >= 5`` is about 0.3 %, a family-wise false-alarm rate under 1 %). A wrong win-rate
formula, wrong period binning or a wrong agent mapping moves far more than that.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from spm_models.data.validation import validate
from spm_models.kpi import compute_kpis
from spm_models.synthetic.generator import generate_organisation

MIN_CLOSED = 20


def agent_quarters() -> pd.DataFrame:
    """Observed closed and won deals and the planted expectations, per agent-quarter."""
    org = generate_organisation(1000, years=3, seed=3)
    ds = validate(org.dataset)
    kpis = compute_kpis(ds, grain="quarter", levels=["agent"], kpis=["deals_won", "deals_lost", "win_rate"])
    wide = kpis.pivot(index=["entity_id", "period"], columns="kpi", values="value").reset_index()
    wide.columns = [str(c) for c in wide.columns]
    truth = org.truth.expected_by_period(freq="quarter")
    # Every agent-quarter of the truth; one without a KPI row (outside employment, nothing
    # closed) had no closed deal.
    merged = truth.merge(wide, left_on=["agent_id", "period_start"], right_on=["entity_id", "period"], how="left")
    merged[["deals_won", "deals_lost"]] = merged[["deals_won", "deals_lost"]].fillna(0.0)
    merged["n"] = merged["deals_won"] + merged["deals_lost"]
    return merged


def test_quarterly_win_rates_match_the_planted_rates():
    # One test function: the organisation is generated once even under pytest-xdist.
    aq = agent_quarters()
    m = aq[aq["n"] >= MIN_CLOSED]
    assert len(m) >= 2000, f"only {len(m)} agent-quarters with {MIN_CLOSED}+ closed deals"
    p = m["expected_wins"] / m["expected_closes"]
    z = (m["win_rate"] - p) / np.sqrt(p * (1 - p) / m["n"])
    share = float((z.abs() > 1.96).mean())
    assert share <= 0.08, f"{share:.1%} of {len(z)} agent-quarters have |z| > 1.96"
    assert float(z.abs().max()) < 5, f"max |z| = {z.abs().max():.2f}"
    assert abs(float(z.mean())) < 0.1  # no systematic bias
    # Over all agent-quarters the closed-deal count is Poisson around the expected closes.
    total_n, total_expected = aq["n"].sum(), aq["expected_closes"].sum()
    assert abs(total_n - total_expected) < 5 * np.sqrt(total_expected)
