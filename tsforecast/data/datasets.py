"""The bundled LTSF datasets (ETTh1, ETTh2, ETTm1, ETTm2, Weather), the published results table, and
the reader of a user's CSV (shared by ``tsforecast forecast --csv`` and ``tsforecast bench``)."""
from __future__ import annotations

import gzip
import os
import re
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .calendar import find_date_column, infer_freq


@dataclass(frozen=True)
class DatasetInfo:
    name: str
    file: str
    freq: str  # step between rows
    split_scheme: str  # key into splits.SCHEMES
    description: str
    note: str = ""


DATASETS: dict[str, DatasetInfo] = {
    info.name: info
    for info in [
        DatasetInfo("ETTh1", "ETTh1.csv.gz", "h", "ETTh",
                    "Electricity transformer temperature, station 1, hourly, 7 channels (OT last)"),
        DatasetInfo("ETTh2", "ETTh2.csv.gz", "h", "ETTh",
                    "Electricity transformer temperature, station 2, hourly, 7 channels (OT last)"),
        DatasetInfo("ETTm1", "ETTm1.csv.gz", "15min", "ETTm",
                    "Electricity transformer temperature, station 1, 15-minute, 7 channels (OT last)"),
        DatasetInfo("ETTm2", "ETTm2.csv.gz", "15min", "ETTm",
                    "Electricity transformer temperature, station 2, 15-minute, 7 channels (OT last)"),
        DatasetInfo("Weather", "weather.csv.gz", "10min", "ratio",
                    "Jena weather station 2020, 10-minute, 21 channels (OT last)",
                    note=("the original file has one duplicated timestamp (2020-05-12 06:00) and one 100-minute gap "
                          "(2020-05-29 09:30 -> 11:10); the rows are kept as-is so the protocol's row-based splits hold. "
                          "Fit it with freq='10min' (rows taken as consecutive steps).")),
    ]
}


def list_datasets() -> list[str]:
    return list(DATASETS)


def data_dir() -> Path:
    """Where the bundled files live: $TSFORECAST_DATA_DIR, the installed wheel, or the source checkout."""
    candidates = []
    if os.environ.get("TSFORECAST_DATA_DIR"):
        candidates.append(Path(os.environ["TSFORECAST_DATA_DIR"]))
    package_dir = Path(__file__).resolve().parent.parent
    candidates += [package_dir / "_bundled_datasets", package_dir.parent / "datasets"]
    for path in candidates:
        if (path / "published_results.csv").is_file():
            return path
    raise FileNotFoundError(
        "tsforecast's bundled datasets were not found (looked in: "
        + ", ".join(str(p) for p in candidates)
        + "). Reinstall the package or set TSFORECAST_DATA_DIR to the folder holding the CSV files."
    )


def _resolve(name: str) -> DatasetInfo:
    lookup = {key.lower(): info for key, info in DATASETS.items()}
    info = lookup.get(str(name).lower())
    if info is None:
        raise ValueError(f"unknown dataset {name!r}; known datasets: {', '.join(DATASETS)}")
    return info


def load_dataset(name: str) -> pd.DataFrame:
    """Return a bundled dataset as a DataFrame: DatetimeIndex named ``date``, one float column per channel.

    The rows are exactly those of the standard LTSF files, so the protocol's row-based splits hold
    (see :func:`tsforecast.data.protocol_split`).
    """
    info = _resolve(name)
    frame = pd.read_csv(data_dir() / info.file, index_col="date", parse_dates=["date"])
    frame = frame.astype("float64")
    if infer_freq(frame.index) is not None:
        frame.index.freq = info.freq
    frame.attrs["dataset"] = info.name
    return frame


def dataset_info(name: str) -> DatasetInfo:
    return _resolve(name)


def published_results() -> pd.DataFrame:
    """Published MSE/MAE per model, dataset, horizon and lookback, with the source of each figure."""
    return pd.read_csv(data_dir() / "published_results.csv", dtype={"horizon": str})


# ---------------------------------------------------------------------- a user's CSV
_QUARTER = re.compile(r"^\s*(\d{4})\s*-?\s*Q([1-4])\s*$", re.IGNORECASE)
_NAME_HINT = "name the date column with --date-column (date_column= in Python)"
_DATE_HINT = _NAME_HINT + ", or pass --dayfirst (dayfirst=True) for dd/mm/yyyy dates"


def read_csv_series(path, date_column: str | None = None, dayfirst: bool = False) -> pd.DataFrame:
    """Read a CSV of one series: a timestamp column (the index) and one numeric column per channel.

    ``date_column``: None finds it (a column named ``date``, ``ds``, ``Month``, ``timestamp``, ...,
    see :func:`tsforecast.data.calendar.find_date_column`; else the first column if it holds dates).
    ``dayfirst``: read ``01/02/2020`` as 1 February. Timestamps with differing UTC offsets (local time
    across a DST change) are read in UTC. Every problem is a ``ValueError`` (or ``FileNotFoundError`` /
    ``PermissionError``) with a one-line message naming the file, the column and the fix.
    """
    path = Path(path)
    frame = _read_table(path)
    column = _date_column(frame, path, date_column, dayfirst)
    index = _parse_dates(frame[column], column, path, dayfirst)
    values = frame.drop(columns=[column])
    if values.columns.empty:
        raise ValueError(f"{path} has only the date column {column!r}; add one numeric column per channel")
    _check_numeric(values, path, "every column but the date is a channel")
    return values.set_index(index)


def read_csv_panel(path, id_column: str, date_column: str | None = None, dayfirst: bool = False) -> pd.DataFrame:
    """Read a long CSV of many series (one row per series and time step): returns a frame with the
    columns ``id_column``, the date column (found or named as by :func:`read_csv_series`; parsed to
    timestamps), then the numeric value columns in the file's order."""
    path = Path(path)
    frame = _read_table(path)
    if id_column not in frame.columns:
        raise ValueError(f"--id-column {id_column!r} is not a column of {path}; columns: {list(frame.columns)}")
    rest = frame.drop(columns=[id_column])
    column = _date_column(rest, path, date_column, dayfirst)
    if frame[id_column].isna().any():
        line = int(frame.index[frame[id_column].isna()][0]) + 2
        raise ValueError(f"id column {id_column!r} of {path} has an empty value on line {line}; fill or drop that row")
    values = rest.drop(columns=[column])
    if values.columns.empty:
        raise ValueError(f"{path} has only the id and date columns; add one numeric column per target or covariate")
    _check_numeric(values, path, "every column but the id and the date is a target or covariate")
    frame[column] = _parse_dates(frame[column], column, path, dayfirst)
    return frame[[id_column, column, *values.columns]]


def _check_numeric(values: pd.DataFrame, path: Path, rule: str) -> None:
    text = [c for c in values.columns if not pd.api.types.is_numeric_dtype(values[c])]
    if text:
        first = values[text[0]].dropna()
        example = f" (e.g. {first.iloc[0]!r} on line {first.index[0] + 2})" if len(first) else ""
        raise ValueError(f"column{'s' if len(text) > 1 else ''} {', '.join(repr(c) for c in text)} of {path} "
                         f"{'are' if len(text) > 1 else 'is'} not numeric{example}; drop "
                         f"{'them' if len(text) > 1 else 'it'} from the file, {rule}")


def _read_table(path: Path) -> pd.DataFrame:
    _check_readable_text(path)
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError as err:
        raise ValueError(f"{path} is empty (no header, no rows)") from err
    except pd.errors.ParserError as err:
        raise ValueError(f"{path} is not a well-formed CSV: {' '.join(str(err).split())}") from err
    except UnicodeDecodeError as err:
        raise ValueError(f"{path} is not UTF-8 text ({err.reason}); save it as a UTF-8 CSV") from err
    if len(frame.columns) == 1:
        # Spreadsheets in many locales export ';' (or tab) separated files: read those as they are.
        header = str(frame.columns[0])
        sep = ";" if ";" in header else "\t" if "\t" in header else None
        if sep:
            frame = pd.read_csv(path, sep=sep)
    if frame.empty:
        raise ValueError(f"{path} has a header ({', '.join(map(str, frame.columns))}) but no data rows")
    return frame


def _check_readable_text(path: Path) -> None:
    """Fail with a clear message on a missing, unreadable or binary file before pandas sees it."""
    if not path.exists():
        raise FileNotFoundError(f"no such CSV file: {path}")
    if path.is_dir():
        raise IsADirectoryError(f"{path} is a folder; give the path of a CSV file")
    try:
        with (gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")) as handle:
            head = handle.read(8192)
    except PermissionError as err:
        raise PermissionError(f"cannot read {path}: permission denied") from err
    except (gzip.BadGzipFile, EOFError) as err:
        raise ValueError(f"{path} is not a gzip-compressed CSV ({err}); rename it without .gz if it is plain text") from err
    if b"\0" in head:
        raise ValueError(f"{path} is not a text CSV file (it holds binary data)")


def _date_column(frame: pd.DataFrame, path: Path, date_column, dayfirst: bool):
    if date_column is not None:
        if date_column not in frame.columns:
            raise ValueError(f"--date-column {date_column!r} is not a column of {path}; columns: {list(frame.columns)}")
        return date_column
    column = find_date_column(frame)
    if column is not None:
        return column
    first = frame.columns[0]
    if not pd.api.types.is_numeric_dtype(frame[first]):  # numbers in the first column are values, not dates
        try:
            _parse_dates(frame[first], first, path, dayfirst)
            return first
        except ValueError:
            pass
    raise ValueError(f"found no date column in {path} (columns: {list(frame.columns)}); {_NAME_HINT}")


def _parse_dates(values: pd.Series, column, path: Path, dayfirst: bool) -> pd.DatetimeIndex:
    if values.isna().any():
        line = int(values.index[values.isna()][0]) + 2
        raise ValueError(f"date column {column!r} of {path} has an empty value on line {line}; fill or drop that row")
    if pd.api.types.is_integer_dtype(values):
        # years (1990) or yyyymmdd (20200131); pandas would read any other integer as nanoseconds since 1970
        for low, high, fmt in ((1000, 9999, "%Y"), (10000101, 99991231, "%Y%m%d")):
            if values.between(low, high).all():
                try:
                    return pd.DatetimeIndex(pd.to_datetime(values.astype(str), format=fmt), name=column)
                except ValueError:
                    break
        raise ValueError(f"date column {column!r} of {path} holds integers that are neither years nor yyyymmdd "
                         f"dates (e.g. {values.iloc[0]!r}); {_DATE_HINT}")
    if not pd.api.types.is_datetime64_any_dtype(values):
        values = values.astype(str)
        quarters = values.str.extract(_QUARTER)
        if quarters.notna().all(axis=None):  # 1990Q1, 1990-Q1: the quarter's first day
            return pd.DatetimeIndex(pd.to_datetime(quarters[0] + "-" + (quarters[1].astype(int) * 3 - 2).astype(str)
                                                   + "-01"), name=column)
    try:
        with warnings.catch_warnings():
            # pandas falling back to per-element parsing is no news to the user; a failure is reported below
            warnings.filterwarnings("ignore", message="Could not infer format", category=UserWarning)
            index = pd.to_datetime(values, dayfirst=dayfirst)
    except ValueError as err:
        if "mixed timezones" not in str(err).lower():
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", UserWarning)
                bad = pd.to_datetime(values, dayfirst=dayfirst, errors="coerce").isna()
            example = f": {values[bad].iloc[0]!r} on line {int(values.index[bad][0]) + 2}" if bad.any() else ""
            raise ValueError(f"date column {column!r} of {path} does not parse as dates{example}; {_DATE_HINT}") from err
        # differing UTC offsets (local time across a DST change): the same instants, in UTC
        index = pd.to_datetime(values, dayfirst=dayfirst, utc=True)
    return pd.DatetimeIndex(index, name=column)
