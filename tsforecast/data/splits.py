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
