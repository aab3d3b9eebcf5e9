"""The LTSF protocol's train / validation / test split (Time-Series-Library borders), lookback-aware."""
from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

# ETT: 12 / 4 / 4 months of 30 days; the hourly files have 24 rows a day, the 15-minute ones 96.
_ETT_MONTH = 30 * 24


def _ett_borders(n_rows: int, rows_per_hour: int) -> tuple[int, int, int]:
    month = _ETT_MONTH * rows_per_hour
    return 12 * month, 16 * month, 20 * month


def _ratio_borders(n_rows: int) -> tuple[int, int, int]:
    n_train = int(0.7 * n_rows)
    n_test = int(0.2 * n_rows)
    return n_train, n_rows - n_test, n_rows


SCHEMES = {
    "ETTh": lambda n: _ett_borders(n, 1),
    "ETTm": lambda n: _ett_borders(n, 4),
    "ratio": _ratio_borders,
}


def split_borders(scheme: str, n_rows: int, lookback: int) -> dict[str, tuple[int, int]]:
    """Half-open row ranges of the train, val and test splits.

    Validation and test start ``lookback`` rows early so that their first window's look-back comes
    from the preceding split, exactly as in Time-Series-Library's loaders.
    """
    if scheme not in SCHEMES:
        raise ValueError(f"unknown split scheme {scheme!r}; known: {', '.join(SCHEMES)}")
    train_end, val_end, test_end = SCHEMES[scheme](n_rows)
    if test_end > n_rows:
        raise ValueError(f"split scheme {scheme!r} needs {test_end} rows, the data has {n_rows}")
    if lookback >= train_end:
        raise ValueError(f"lookback {lookback} is not shorter than the training split ({train_end} rows)")
    if scheme == "ratio":
        test_start = n_rows - int(0.2 * n_rows) - lookback
    else:
        test_start = val_end - lookback
    return {
        "train": (0, train_end),
        "val": (train_end - lookback, val_end),
        "test": (test_start, test_end),
    }


@dataclass(frozen=True)
class Split:
    train: pd.DataFrame
    val: pd.DataFrame
    test: pd.DataFrame


def protocol_split(data: str | pd.DataFrame, lookback: int, scheme: str | None = None) -> Split:
    """Split a bundled dataset (by name) or any DataFrame by the LTSF protocol.

    For a DataFrame, ``scheme`` defaults to ``"ratio"`` (70% / 10% / 20%, the protocol's rule for
    every dataset but ETT); pass ``"ETTh"`` or ``"ETTm"`` for the ETT month-based borders.
    """
    from .datasets import dataset_info, load_dataset

    if isinstance(data, str):
        scheme = scheme or dataset_info(data).split_scheme
        data = load_dataset(data)
    elif not isinstance(data, pd.DataFrame):
        raise TypeError(f"protocol_split expects a dataset name or a DataFrame, got {type(data).__name__}")
    borders = split_borders(scheme or "ratio", len(data), lookback)
    return Split(**{name: data.iloc[start:end] for name, (start, end) in borders.items()})


def _holdout_fits(n_rows: int, fraction: float, lookback: int, output_len: int) -> bool:
    n_val = int(round(n_rows * fraction))
    return n_val >= output_len and n_rows - n_val >= lookback + output_len


def _rows_needed(fraction: float, lookback: int, output_len: int) -> int:
    """Fewest rows for which the hold-out at ``fraction`` leaves one training and one validation window."""
    n = max(lookback + 2 * output_len, int((output_len - 0.5) / fraction) if fraction > 0 else 0)
    while not _holdout_fits(n, fraction, lookback, output_len):
        n += 1
    return n


def _smallest_fraction(n_rows: int, lookback: int, output_len: int) -> float | None:
    """A readable validation fraction (2 decimals, else exact) whose hold-out fits ``n_rows``; None if none does."""
    if n_rows < lookback + 2 * output_len:
        return None
    for candidate in (-(-100 * output_len // n_rows) / 100, output_len / n_rows):
        if 0 < candidate < 1 and _holdout_fits(n_rows, candidate, lookback, output_len):
            return candidate
    return None


def holdout_split(n_rows: int, fraction: float, lookback: int, output_len: int) -> int:
    """Row where ``fit``'s early-stopping hold-out begins: the last ``round(fraction * n_rows)`` rows.

    The training rows ``[:cut]`` need one window (``lookback + output_len`` rows) and the held-out
    rows one target span (``output_len`` rows; their windows look back into the training rows, so
    validation uses ``[cut - lookback:]``). When that does not fit, the ValueError says how many rows
    would, and which settings fit the rows there are: another ``validation_fraction``, a shorter
    ``lookback``, a ``val_df``, or ``validation_fraction=0`` (no early stopping).
    """
    n_val = int(round(n_rows * fraction))
    if _holdout_fits(n_rows, fraction, lookback, output_len):
        return n_rows - n_val
    window = lookback + output_len
    fixes = [f"give at least {_rows_needed(fraction, lookback, output_len)} rows"]
    better = _smallest_fraction(n_rows, lookback, output_len)
    if better is not None:
        held = int(round(n_rows * better))
        fixes.append(f"validation_fraction={better:g} (holds out {held} rows, leaves {n_rows - held} to train on)")
    if n_val >= output_len and n_rows - n_val - output_len >= 1:
        fixes.append(f"lookback={n_rows - n_val - output_len} (or less)")
    if n_rows >= window:
        fixes.append(f"val_df=<a separate frame of at least {window} rows: the lookback rows before the first "
                     f"validation target, then {output_len} or more targets> to train on all {n_rows} rows")
        fixes.append("validation_fraction=0 (no early stopping: trains every epoch on all rows)")
    raise ValueError(
        f"validation_fraction={fraction} of {n_rows} rows leaves no room for training and validation windows: "
        f"the last {n_val} rows are held out, validation needs at least {output_len} (the output length) and "
        f"training needs at least lookback {lookback} + output length {output_len} = {window} rows before them "
        f"({n_rows - n_val} left). Fix: " + "; or ".join(fixes)
    )


def check_window_rows(n_rows: int, lookback: int, output_len: int, what: str) -> None:
    """Raise a ValueError naming the rows needed when ``n_rows`` cannot hold one window."""
    window = lookback + output_len
    if n_rows >= window:
        return
    fix = f"give at least {window} rows"
    if n_rows - output_len >= 1:
        fix += f", or lookback={n_rows - output_len} (or less)"
    raise ValueError(f"{what} has {n_rows} rows: too few for one window of lookback {lookback} + output length "
                     f"{output_len} = {window} rows; {fix}")
