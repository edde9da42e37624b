"""bench/pooling_ratio.py: the simulation behind the note on pooling and MASE (bench/README.md)."""

from __future__ import annotations

import numpy as np
import pytest


@pytest.fixture(scope="module")
def pooling(load_bench):
    return load_bench("pooling_ratio")


def test_pooling_is_nearer_each_agent_yet_its_mean_ratio_sits_above_one(pooling):
    r = pooling.row(n=10, k=0.7, w=0.5, agents=3000, rng=np.random.default_rng(1))
    # neither estimate is biased in dollars
    assert r["sample sum ratio"] == pytest.approx(1.0, abs=0.03)
    assert r["pooled sum ratio"] == pytest.approx(1.0, abs=0.03)
    # the sample mean is unbiased agent by agent, the pooled mean is not ...
    assert r["sample mean ratio"] == pytest.approx(1.0, abs=0.02)
    assert r["pooled mean ratio"] > r["sample mean ratio"] + 0.03
    # ... yet it is nearer each agent's mean
    assert r["pooled rel. error"] < 0.9 * r["sample rel. error"]


def test_the_quadrature_posterior_mean_is_the_conjugate_one_when_the_population_is_wide(pooling):
    """With a wide population the prior barely matters, and the posterior mean of mu under a
    flat prior in log mu is the inverse-gamma one, ``S / (n - 1/k)``: n / (n - 1/k) times the
    sample mean, agent by agent. The grid is checked against that closed form."""
    wide = pooling.row(n=40, k=2.0, w=2.0, agents=2000, rng=np.random.default_rng(2))
    ratio = wide["pooled mean ratio"] / wide["sample mean ratio"]
    assert ratio == pytest.approx(40 / (40 - 1 / 2.0), abs=0.001)
