"""Checking a long ``unique_id``/``ds``/``y`` frame and holding it as a padded panel.

Every model sees its training data through :func:`build_panel`, so every model rejects the
same bad inputs with the same messages, and vectorized models work on one
``(n_series, n_periods)`` array instead of looping over series.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
from pandas.tseries.frequencies import to_offset

from spm_models.exceptions import ConfigError, DataError, DataValidationError, Problem

__all__ = [
    "REQUIRED_COLUMNS",
    "DT_DTYPE",
    "Panel",
    "build_panel",
    "check_frame",
    "normalize_freq",
    "periods_per_quarter",
    "default_season_length",
    "freq_grain",
]

REQUIRED_COLUMNS: tuple[str, ...] = ("unique_id", "ds", "y")
#: Timestamp resolution of ``ds`` everywhere in the models (pandas 3's default).
DT_DTYPE = "datetime64[us]"
_TABLE = "training frame"
_WEEKDAYS = ("MON", "TUE", "WED", "THU", "FRI", "SAT", "SUN")
_MONTHS = ("JAN", "FEB", "MAR")
_MAX_LISTED = 5


def normalize_freq(freq: str | pd.DateOffset) -> str:
    """Canonical pandas frequency string (``"W"`` -> ``"W-SUN"``); ConfigError if unknown."""
    try:
        return to_offset(freq).freqstr
    except (TypeError, ValueError) as exc:
        raise ConfigError(
            f"freq={freq!r} is not a pandas frequency; use e.g. 'W-MON' (weeks starting "
            "Monday) or 'MS' (months, dated on the 1st)"
        ) from exc


def periods_per_quarter(freq: str) -> int | None:
    """13 for weekly, 3 for monthly, 1 for quarterly data; ``None`` for other frequencies."""
    off = to_offset(freq)
    if isinstance(off, pd.offsets.Week):
        return 13
    if isinstance(
        off,
        (
            pd.offsets.MonthBegin,
            pd.offsets.MonthEnd,
            pd.offsets.BusinessMonthBegin,
            pd.offsets.BusinessMonthEnd,
        ),
    ):
        return 3
    if isinstance(off, (pd.offsets.QuarterBegin, pd.offsets.QuarterEnd)):
        return 1
    return None


def freq_grain(freq: str) -> str | None:
    """The calendar grain of a frequency: ``"week"``, ``"month"``, ``"quarter"``, or ``None`` (daily...)."""
    return {13: "week", 3: "month", 1: "quarter"}.get(periods_per_quarter(freq))


def default_season_length(freq: str) -> int:
    """One quarter (13 weeks, 3 months), the dominant cycle of quota-driven sales; else 1."""
    if isinstance(to_offset(freq), (pd.offsets.QuarterBegin, pd.offsets.QuarterEnd)):
        return 4
    return periods_per_quarter(freq) or 1


@dataclass(frozen=True)
class Panel:
    """Series as rows of a right-aligned, NaN-padded matrix.

    Column ``-1`` holds every series' last observation, so seasonal lags and recent windows
    are plain slices; a short series is padded with NaN on the left.

    Attributes
    ----------
    unique_ids : ndarray of str, shape (n_series,)
        Series ids, sorted.
    y : ndarray of float, shape (n_series, n_periods)
    ds : ndarray of datetime64[us], shape (n_series, n_periods)
        Date of each cell; NaT in the padding.
    n_obs : ndarray of int, shape (n_series,)
    freq : str
        Pandas frequency string of the common calendar.
    grid : DatetimeIndex
        The common calendar from the earliest to the latest date.
    last_pos : ndarray of int, shape (n_series,)
        Position in ``grid`` of each series' last date.
    """

    unique_ids: np.ndarray
    y: np.ndarray
    ds: np.ndarray
    n_obs: np.ndarray
    freq: str
    grid: pd.DatetimeIndex
    last_pos: np.ndarray

    @property
    def n_series(self) -> int:
        return len(self.unique_ids)

    @property
    def last_ds(self) -> np.ndarray:
        return self.grid.to_numpy()[self.last_pos]

    def subset(self, mask: np.ndarray) -> Panel:
        """The series where ``mask`` is true, trimmed to the longest of them."""
        mask = np.asarray(mask, dtype=bool)
        n_obs = self.n_obs[mask]
        width = max(int(n_obs.max()) if n_obs.size else 1, 1)
        return Panel(
            unique_ids=self.unique_ids[mask],
            y=self.y[mask][:, -width:],
            ds=self.ds[mask][:, -width:],
            n_obs=n_obs,
            freq=self.freq,
            grid=self.grid,
            last_pos=self.last_pos[mask],
        )


def _examples(keys: pd.DataFrame) -> str:
    shown = [f"{u} {pd.Timestamp(d).date()}" for u, d in keys.head(_MAX_LISTED).itertuples(index=False)]
    more = f" and {len(keys) - _MAX_LISTED} more" if len(keys) > _MAX_LISTED else ""
    return ", ".join(shown) + more


def check_frame(frame: pd.DataFrame) -> pd.DataFrame:
    """Validate and clean a long training frame (columns ``unique_id``, ``ds``, ``y``).

    Returns a new frame with only those columns, ``unique_id`` as text, ``ds`` as
    ``datetime64[us]`` and ``y`` as float, sorted by ``unique_id`` then ``ds``.
    Regularity of the dates is checked by :func:`build_panel`.

    Raises
    ------
    DataValidationError
        Listing every problem at once: not a frame, missing columns, no rows, empty ids,
        dates that do not parse or carry a time zone, ``y`` empty, not a number or infinite,
        and repeated (``unique_id``, ``ds``) pairs.
    """
    if not isinstance(frame, pd.DataFrame):
        raise DataError(f"expected a pandas DataFrame with columns unique_id, ds, y; got {type(frame).__name__}")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        raise DataValidationError(
            [
                Problem(
                    _TABLE,
                    None,
                    c,
                    None,
                    f"column is missing (found columns: {', '.join(map(str, frame.columns)) or 'none'})",
                )
                for c in missing
            ]
        )
    if len(frame) == 0:
        raise DataValidationError([Problem(_TABLE, None, None, None, "has no rows; nothing to fit")])

    problems: list[Problem] = []
    uid = frame["unique_id"]
    bad_id = uid.isna().to_numpy()
    uid = uid.astype("str")
    bad_id = bad_id | (uid.str.strip() == "").to_numpy()
    if bad_id.any():
        problems.append(Problem(_TABLE, None, "unique_id", None, f"{int(bad_id.sum())} rows have an empty unique_id"))

    ds_raw = frame["ds"]
    if isinstance(ds_raw.dtype, pd.DatetimeTZDtype):
        problems.append(Problem(_TABLE, None, "ds", str(ds_raw.iloc[0]), "dates carry a time zone; give plain dates"))
        ds = ds_raw.dt.tz_localize(None)
    else:
        ds = pd.to_datetime(ds_raw, errors="coerce")
    bad_ds = (ds.isna() & ~pd.Series(bad_id, index=frame.index)).to_numpy()
    if bad_ds.any():
        first = ds_raw[bad_ds].iloc[0]
        problems.append(
            Problem(_TABLE, None, "ds", str(first), f"{int(bad_ds.sum())} rows have an empty or unreadable date")
        )

    y_raw = frame["y"]
    y = pd.to_numeric(y_raw, errors="coerce").astype("float64")
    y_np = y.to_numpy()
    not_number = np.isnan(y_np) & y_raw.notna().to_numpy()
    empty = y_raw.isna().to_numpy()
    keys = pd.DataFrame({"unique_id": uid, "ds": ds})
    if empty.any():
        problems.append(
            Problem(
                _TABLE,
                None,
                "y",
                None,
                f"{int(empty.sum())} rows have no value ({_examples(keys[empty])}); "
                "fill in 0 for periods with no sales",
            )
        )
    if not_number.any():
        problems.append(
            Problem(
                _TABLE,
                None,
                "y",
                str(y_raw[not_number].iloc[0]),
                f"{int(not_number.sum())} rows are not numbers ({_examples(keys[not_number])})",
            )
        )
    inf = np.isinf(y_np)
    if inf.any():
        problems.append(
            Problem(_TABLE, None, "y", None, f"{int(inf.sum())} rows are infinite ({_examples(keys[inf])})")
        )
    ok_keys = ~(bad_id | bad_ds)
    dup = keys[ok_keys].duplicated(keep=False).to_numpy()
    if dup.any():
        d = keys[ok_keys][dup].drop_duplicates()
        problems.append(
            Problem(
                _TABLE,
                None,
                "ds",
                None,
                f"{len(d)} (unique_id, ds) pairs appear more than once ({_examples(d)}); "
                "sum them into one row per series and period",
            )
        )
    if problems:
        raise DataValidationError(problems)
    out = pd.DataFrame({"unique_id": uid.to_numpy(), "ds": ds.to_numpy().astype(DT_DTYPE), "y": y_np})
    return out.sort_values(["unique_id", "ds"], kind="stable", ignore_index=True)


def _infer_freq(ds: np.ndarray) -> str | None:
    """The calendar most dates follow: ``W-<day>``, ``MS``, ``ME``, ``QS-<month>`` or ``D``.

    ``None`` when no calendar fits.

    A majority rule, so that a few stray dates are reported by the calendar check in
    :func:`build_panel` (which names them) rather than as "no regular frequency".
    """
    dates = pd.DatetimeIndex(np.unique(ds))
    if len(dates) < 2:
        return None
    days = np.diff(dates.to_numpy().astype("datetime64[D]").astype(np.int64))
    weekday = dates.day_of_week.to_numpy()
    top = np.bincount(weekday, minlength=7)
    if np.median(days) >= 7 and np.median(days) < 28 and top.max() > 0.5 * len(dates):
        return f"W-{_WEEKDAYS[int(top.argmax())]}"
    if np.median(days) >= 85 and np.mean(dates.day == 1) > 0.5:
        first_month = int(np.bincount((dates.month.to_numpy() - 1) % 3, minlength=3).argmax())
        return f"QS-{_MONTHS[first_month]}"
    if np.median(days) >= 28:
        if np.mean(dates.day == 1) > 0.5:
            return "MS"
        if np.mean(dates.is_month_end) > 0.5:
            return "ME"
    if np.median(days) == 1:
        return "D"
    return None


def build_panel(frame: pd.DataFrame, *, freq: str | None = None) -> Panel:
    """Check a long frame and arrange it as a :class:`Panel`.

    Parameters
    ----------
    frame : DataFrame
        Columns ``unique_id``, ``ds``, ``y`` (others are ignored).
    freq : str, optional
        Pandas frequency of ``ds`` (``"W-MON"``, ``"MS"``, ...); inferred from the dates when
        omitted: weekly on the most common weekday, monthly on the 1st (``MS``) or the last
        day (``ME``), quarterly (``QS-<month>``), or daily. Dates off the inferred calendar
        are then reported one by one.

    Raises
    ------
    DataValidationError
        Everything :func:`check_frame` reports; dates that cannot be placed on one regular
        calendar; a series with missing periods inside it (every period needs a row, with
        ``y = 0`` where nothing was sold).
    """
    df = check_frame(frame)
    ds = df["ds"].to_numpy()
    if freq is None:
        freq = _infer_freq(ds)
        if freq is None:
            sample = ", ".join(str(d.date()) for d in pd.DatetimeIndex(np.unique(ds))[:4])
            raise DataValidationError(
                [
                    Problem(
                        _TABLE,
                        None,
                        "ds",
                        sample,
                        "dates are not on a regular weekly or monthly calendar; give one row per "
                        "series per week (same weekday) or per month (all on the 1st), or pass freq=",
                    )
                ]
            )
    else:
        freq = normalize_freq(freq)

    grid = pd.date_range(ds.min(), ds.max(), freq=freq)
    if len(grid) == 0 or grid[0] != ds.min():
        grid = pd.date_range(pd.Timestamp(ds.min()) - to_offset(freq), ds.max(), freq=freq)
    grid_np = grid.to_numpy().astype(DT_DTYPE)
    pos = np.searchsorted(grid_np, ds)
    on_grid = (pos < len(grid_np)) & (grid_np[np.minimum(pos, len(grid_np) - 1)] == ds)
    problems: list[Problem] = []
    if not on_grid.all():
        off = df.loc[~on_grid, ["unique_id", "ds"]]
        raise DataValidationError(
            [
                Problem(
                    _TABLE,
                    None,
                    "ds",
                    None,
                    f"{len(off)} dates are not on the {freq} calendar ({_examples(off)}); "
                    "use one date per period, e.g. the period start",
                )
            ]
        )
    codes, uniques = pd.factorize(df["unique_id"], sort=True)
    first_row = np.r_[True, codes[1:] != codes[:-1]]
    step = np.diff(pos, prepend=pos[0] - 1)
    gap = ~first_row & (step != 1)
    if gap.any():
        rows = np.flatnonzero(gap)
        listing = ", ".join(
            f"{df['unique_id'].iat[r]} between {pd.Timestamp(ds[r - 1]).date()} and {pd.Timestamp(ds[r]).date()} "
            f"({int(step[r]) - 1} missing)"
            for r in rows[:_MAX_LISTED]
        )
        more = f" and {len(rows) - _MAX_LISTED} more gaps" if len(rows) > _MAX_LISTED else ""
        problems.append(
            Problem(
                _TABLE,
                None,
                "ds",
                None,
                f"series have missing {freq} periods: {listing}{more}; give every period a row "
                "(y = 0 where nothing was sold)",
            )
        )
    if problems:
        raise DataValidationError(problems)

    n_series = len(uniques)
    n_obs = np.bincount(codes, minlength=n_series)
    width = int(n_obs.max())
    start = np.r_[0, np.cumsum(n_obs)[:-1]]
    within = np.arange(len(df)) - start[codes]
    col = width - n_obs[codes] + within
    y = np.full((n_series, width), np.nan)
    y[codes, col] = df["y"].to_numpy()
    dsm = np.full((n_series, width), np.datetime64("NaT"), dtype=DT_DTYPE)
    dsm[codes, col] = ds
    last_pos = pos[np.r_[start[1:], len(df)] - 1]
    return Panel(
        unique_ids=np.asarray(uniques, dtype=object),
        y=y,
        ds=dsm,
        n_obs=n_obs,
        freq=freq,
        grid=pd.DatetimeIndex(grid_np),
        last_pos=last_pos,
    )
