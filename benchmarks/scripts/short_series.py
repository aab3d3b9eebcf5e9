"""Short series with each family's default training settings, before and after the short-series batch cap.

Two everyday series from statsmodels: quarterly US real GDP (``macrodata``, 203 rows, lookback 8,
horizon 4) and monthly Mauna Loa CO2 (``co2`` weekly data averaged to month starts, gaps interpolated,
the first 144 rows, lookback 24, horizon 12). The last ``horizon`` rows are held out; every model fits
the rest with its defaults and forecasts them once; MAPE in the data's units. "before" reproduces the
code before the cap (the family's default batch size passed explicitly, which the cap leaves alone);
"after" is the defaults as they are now. Seeds 0-2 for the trained models.

    OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scripts/short_series.py --out benchmarks/results/short_series
"""
from __future__ import annotations

import argparse
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels.api as sm

from tsforecast import Forecaster
from tsforecast.bench import machine_description
from tsforecast.forecaster import DEFAULT_TRAINING
from tsforecast.models.registry import get_model_class


def quarterly_gdp() -> pd.DataFrame:
    data = sm.datasets.macrodata.load_pandas().data
    return pd.DataFrame({"realgdp": data["realgdp"].to_numpy()},
                        index=pd.date_range("1959-01-01", periods=len(data), freq="QS-JAN"))


def monthly_co2() -> pd.DataFrame:
    co2 = sm.datasets.co2.load_pandas().data["co2"].resample("MS").mean().interpolate().iloc[:144]
    return pd.DataFrame({"co2": co2.to_numpy()}, index=pd.date_range(co2.index[0], periods=144, freq="MS"))


SERIES = {"quarterly_realgdp": (quarterly_gdp, 8, 4, 4), "monthly_co2": (monthly_co2, 24, 12, 12)}


def mape(actual: np.ndarray, forecast: np.ndarray) -> float:
    return float(np.mean(np.abs((actual - forecast) / actual)) * 100)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", required=True)
    parser.add_argument("--seeds", default="0,1,2")
    args = parser.parse_args()
    seeds = [int(s) for s in args.seeds.split(",")]
    rows = []
    for name, (load, lookback, horizon, season) in SERIES.items():
        data = load()
        train, actual = data.iloc[:-horizon], data.to_numpy()[-horizon:, 0]
        base = dict(series=name, rows=len(data), lookback=lookback, horizon=horizon)
        naive = np.resize(train.to_numpy()[-season:, 0], horizon)
        rows.append({**base, "model": "seasonal_naive", "variant": "", "mape": mape(actual, naive)})
        ols = Forecaster(model="ar", lookback=lookback, horizon=horizon).fit(train)
        rows.append({**base, "model": "ar", "variant": "", "mape": mape(actual, ols.predict().to_numpy()[:, 0]),
                     "coef_sum": float(ols.coef_.sum())})
        for model in ("arnet", "itransformer"):
            default_batch = {**DEFAULT_TRAINING, **get_model_class(model).training_defaults}["batch_size"]
            for variant, batch in (("before", default_batch), ("after", None)):
                for seed in seeds:
                    started = time.perf_counter()
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore", UserWarning)  # "before" warns about its batch, as it should
                        f = Forecaster(model=model, lookback=lookback, horizon=horizon, batch_size=batch,
                                       random_state=seed).fit(train)
                    result = f.training_
                    rows.append({**base, "model": model, "variant": variant, "seed": seed,
                                 "mape": mape(actual, f.predict().to_numpy()[:, 0]),
                                 "coef_sum": float(f.coef_.sum()) if model == "arnet" else np.nan,
                                 "train_windows": result.n_windows, "batch_size": result.batch_size,
                                 "steps_per_epoch": result.steps_per_epoch, "steps": result.steps,
                                 "epochs": result.epochs, "best_epoch": result.best_epoch,
                                 "fit_seconds": time.perf_counter() - started})
                    print({k: v for k, v in rows[-1].items() if k not in base}, flush=True)
    frame = pd.DataFrame(rows)
    frame["machine"] = machine_description()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out / "results.csv", index=False, float_format="%.6g")
    summary = frame.groupby(["series", "model", "variant"], sort=False)[["mape", "coef_sum", "batch_size", "steps"]].mean()
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
