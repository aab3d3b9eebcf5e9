"""The bundled LTSF datasets (ETTh1, ETTh2, ETTm1, ETTm2, Weather) and the published results table."""
from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from .timefeatures import infer_freq


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
