"""Backtest every model on the user's own data: an accuracy and calibration table.

Each model is run through :func:`spm_models.evaluation.backtest.backtest` on the same frame and
origins; the table pools :meth:`~spm_models.evaluation.backtest.BacktestResult.summary` (MASE, CRPS,
interval coverage, bias) per model and level, and :func:`calibration_table` compares each
central interval's nominal coverage with the share of actuals that fell inside it.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from spm_models.evaluation.backtest import BacktestResult, backtest
from spm_models.models.forecast import quantile_column

__all__ = ["calibration_plot", "compare_on_dataset", "compare_models", "accuracy_table", "calibration_table"]


def compare_models(
    models: Mapping[str, object],
    frame: pd.DataFrame,
    *,
    h: int = 4,
    n_origins: int = 3,
    n_draws: int = 300,
    season: int = 1,
) -> dict[str, BacktestResult]:
    """Rolling-origin backtest of each model (name -> unfitted model) on the same frame and origins."""
    return {
        name: backtest(model, frame, h=h, n_origins=n_origins, n_draws=n_draws, season=season)
        for name, model in models.items()
    }


def accuracy_table(
    results: Mapping[str, BacktestResult], *, level: Mapping[str, str] | pd.Series | None = None
) -> pd.DataFrame:
    """Scores pooled over origins and series, one row per model (and level when ``level`` maps
    series to levels), best mean CRPS first."""
    parts = [r.summary(level=level).assign(model=name) for name, r in results.items()]
    out = pd.concat(parts, ignore_index=True)
    cols = ["model"] + [c for c in out.columns if c != "model"]
    sort = "scaled_crps" if "scaled_crps" in out.columns else cols[1]
    return out[cols].sort_values(sort, ignore_index=True)


def calibration_table(results: Mapping[str, BacktestResult]) -> pd.DataFrame:
    """Nominal versus observed coverage of each central interval the forecasts carry.

    ``observed = share of (origin, series, period) with q_lo <= y <= q_hi`` over rows with an
    actual, for every pair of quantile levels ``(a, 1 - a)`` present.

    Returns
    -------
    DataFrame
        ``model, nominal, observed, n``.
    """
    rows = []
    for name, r in results.items():
        f = r.forecasts[r.forecasts["y"].notna()]
        levels = sorted(float(c[1:]) for c in f.columns if c.startswith("q") and c[1:].replace(".", "").isdigit())
        for lo in [q for q in levels if q < 0.5]:
            hi = round(1 - lo, 10)
            if hi not in levels:
                continue
            y = f["y"].to_numpy()
            inside = (y >= f[quantile_column(lo)].to_numpy()) & (y <= f[quantile_column(hi)].to_numpy())
            rows.append({"model": name, "nominal": hi - lo, "observed": inside.mean(), "n": len(y)})
    return pd.DataFrame(rows, columns=["model", "nominal", "observed", "n"]).sort_values(
        ["model", "nominal"], ignore_index=True
    )


def compare_on_dataset(
    dataset,
    *,
    models: list[str],
    h: int = 4,
    n_origins: int = 3,
    fast: bool = False,
    n_draws: int = 300,
) -> dict[str, BacktestResult]:
    """:func:`compare_models` for registered model names, with the workbench's settings
    (:func:`~spm_models.workbench.forecasting.make_model`), on the weekly agent bookings of
    ``dataset`` (and the tables a model reads at fit, such as the open deals)."""
    from spm_models.workbench.forecasting import make_model
    from spm_models.workbench.frames import model_frame

    frame = model_frame(dataset, grain="week")
    chosen = {name: make_model(name, fast=fast) for name in models}
    return {
        name: backtest(m, frame, h=h, n_origins=n_origins, n_draws=n_draws, tables=dataset)
        for name, m in chosen.items()
    }


def calibration_plot(calibration: pd.DataFrame):
    """Observed against nominal interval coverage, one line per model (matplotlib Figure)."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(4, 4))
    ax.plot([0, 1], [0, 1], color="grey", lw=1)
    for name, part in calibration.groupby("model", sort=True):  # a handful of models
        ax.plot(part["nominal"], part["observed"], marker="o", label=name)
    ax.set_xlabel("nominal coverage")
    ax.set_ylabel("observed coverage")
    ax.legend(fontsize=8)
    return fig
