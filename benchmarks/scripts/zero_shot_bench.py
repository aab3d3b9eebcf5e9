"""Zero-shot benchmark of the shipped pretrained LLM forecaster against seasonal naive, ETS and AR by MASE.

Real series from outside the pretraining data (which is the ETT and Weather training splits plus synthetic
series), all bundled with statsmodels, so the run is offline:

- monthly (season 12, horizon 12): ``co2`` (Mauna Loa, weekly averaged to month starts, gaps interpolated),
  ``elnino`` (sea surface temperature, 12 month columns x 61 years stacked into one series);
- quarterly (season 4, horizon 8): ``macrodata`` (12 US macro series, 1959Q1-2009Q3; tsforecast ships the same
  data as ``datasets/us_macro_quarterly.csv``, never used in pretraining), ``danish_data`` (5 series,
  1974Q1-1987Q3), ``interest_inflation`` (2 series, 1972Q2-1998Q4);
- yearly (season 1, horizon 6): ``sunspots`` (1700-2008), ``nile`` (1871-1970), ``fertility`` (World Bank
  total fertility rate 1960-2011 of 6 populous countries).

``strikes`` is left out: it is 62 individual strikes (durations) grouped by year, not a regular series.

Protocol: rolling origin over the end of each series, the last 3 origins spaced by the horizon (``n - 3H``,
``n - 2H``, ``n - H``), so the 3 test windows tile the last ``3H`` rows. Each model is fitted on (the LLM:
conditioned on) every row before the origin. MASE = MAE / the in-sample seasonal-naive MAE of the rows before
the origin (``tsforecast.metrics``; lag 1 for yearly data). Per series the mean over its origins; overall the
geometric and arithmetic means over series, and wins.

Models:

- ``snaive``: ``y[T + h] = y[T + h - m * ceil(h / m)]`` (the last season repeated; the last value when m = 1);
- ``ets``: statsmodels ``ETSModel`` fitted by maximum likelihood, chosen by AICc (as R's ``forecast::ets``)
  among error {add, mul}, trend {none, add, add damped}, season {none, add, mul} (season only when m > 1 and
  there are at least 2 full seasons + 2 rows; multiplicative parts only for strictly positive data; additive
  error with multiplicative season excluded as numerically unstable, as in ``forecast::ets``); point forecast =
  the fitted model's mean forecast;
- ``ar``: ``Forecaster(model="ar", lookback=p, horizon=H)`` (OLS AR(p) with intercept, recursive), with
  ``p = min(2m if m > 1 else 10, n_train // 4)``: two seasons of lags, 10 lags for yearly data, at most a
  quarter of the training rows;
- ``llm``: ``tsforecast.pretrained("autotimes-smollm2").predict(train_df, horizon=H)``, no fit; added only
  when ``tsforecast.pretrained`` imports and the shipped adapter exists (otherwise skipped with a note).

Results: ``results.csv`` (one row per series x origin x model, with seconds; rewritten atomically after each
row; a rerun skips rows already there with the same ``config``: the LLM's config includes the adapter's hash,
so a retrained adapter re-runs its column), and ``README.md`` (protocol, command, machine, tables; the text
of ``reading.md`` in the same folder, if present, is included as the reading).

    nice -n 19 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scripts/zero_shot_bench.py \\
        --out benchmarks/results/zero_shot_pretrained
"""
from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")  # shared 2-core machine: stay on one core unless told otherwise

import argparse
import hashlib
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import statsmodels
import statsmodels.api as sm

import tsforecast
from tsforecast import Forecaster
from tsforecast.io import write_atomic
from tsforecast.metrics import mase, seasonal_naive_scale

ORIGINS = 3
HORIZON = {1: 6, 4: 8, 12: 12}  # season -> horizon (yearly, quarterly, monthly)
FREQ_NAME = {1: "yearly", 4: "quarterly", 12: "monthly"}
MODELS = ("snaive", "ets", "ar", "llm")
LLM_NAME = "autotimes-smollm2"
CONFIG = {"snaive": "snaive-v1", "ets": "ets-aicc-v1", "ar": "ar-p=min(2m|10,n//4)-v1"}
COLUMNS = ["series", "source", "freq", "season", "horizon", "origin", "origin_date", "n_train", "model", "config",
           "mase", "mae", "scale", "seconds", "detail"]


# ----------------------------------------------------------------------------------------------- the series
def _frame(values, index, name) -> pd.DataFrame:
    return pd.DataFrame({name: np.asarray(values, dtype=np.float64)}, index=index)


def load_series() -> list[dict]:
    """Every benchmark series: {"name", "source", "season", "df"} (one float column, regular DatetimeIndex)."""
    ds = sm.datasets
    out = []

    def add(source, name, season, df):
        out.append({"name": name, "source": source, "season": season, "df": df})

    co2 = ds.co2.load_pandas().data["co2"].resample("MS").mean().interpolate()
    add("co2", "co2", 12, _frame(co2.to_numpy(), pd.date_range(co2.index[0], periods=len(co2), freq="MS"), "co2"))

    nino = ds.elnino.load_pandas().data
    months = nino.drop(columns="YEAR").to_numpy().ravel()  # row = year, columns JAN..DEC
    start = f"{int(nino['YEAR'].iloc[0])}-01-01"
    add("elnino", "elnino", 12, _frame(months, pd.date_range(start, periods=len(months), freq="MS"), "elnino"))

    macro = ds.macrodata.load_pandas().data
    index = pd.date_range(f"{int(macro['year'].iloc[0])}-01-01", periods=len(macro), freq="QS-JAN")
    for col in ["realgdp", "realcons", "realinv", "realgovt", "realdpi", "cpi", "m1", "tbilrate", "unemp", "pop",
                "infl", "realint"]:
        add("macrodata", f"macrodata.{col}", 4, _frame(macro[col], index, col))

    danish = ds.danish_data.load_pandas().data
    index = pd.date_range(danish.index[0], periods=len(danish), freq="QS-JAN")
    for col in danish.columns:
        add("danish_data", f"danish.{col}", 4, _frame(danish[col], index, col))

    ii = ds.interest_inflation.load_pandas().data
    start = pd.Timestamp(year=int(ii["year"].iloc[0]), month=3 * int(ii["quarter"].iloc[0]) - 2, day=1)
    index = pd.date_range(start, periods=len(ii), freq="QS-JAN")
    for col in ["Dp", "R"]:
        add("interest_inflation", f"interest_inflation.{col}", 4, _frame(ii[col], index, col))

    sun = ds.sunspots.load_pandas().data
    add("sunspots", "sunspots", 1, _frame(sun["SUNACTIVITY"], pd.date_range(
        f"{int(sun['YEAR'].iloc[0])}-01-01", periods=len(sun), freq="YS"), "sunspots"))

    nile = ds.nile.load_pandas().data
    add("nile", "nile", 1, _frame(nile["volume"], pd.date_range(
        f"{int(nile['year'].iloc[0])}-01-01", periods=len(nile), freq="YS"), "nile"))

    fert = ds.fertility.load_pandas().data.set_index("Country Code")
    years = [c for c in fert.columns if c.isdigit()]
    for code in ["USA", "CHN", "IND", "BRA", "NGA", "JPN"]:
        values = fert.loc[code, years].astype(float).dropna()  # the last years are missing: leading run kept
        values = values.loc[:str(int(values.index[0]) + len(values) - 1)]
        if not (np.diff(values.index.astype(int)) == 1).all():
            raise ValueError(f"fertility {code}: years not consecutive")
        add("fertility", f"fertility.{code}", 1, _frame(values.to_numpy(), pd.date_range(
            f"{values.index[0]}-01-01", periods=len(values), freq="YS"), code))

    for s in out:
        if s["df"].isna().any().any():
            raise ValueError(f"{s['name']} has missing values")
    return out


# ---------------------------------------------------------------------------------------------- the models
def snaive_forecast(train: np.ndarray, season: int, horizon: int) -> np.ndarray:
    last = train[-season:]
    return np.array([last[h % season] for h in range(horizon)])


def ets_forecast(train: np.ndarray, season: int, horizon: int) -> tuple[np.ndarray, str]:
    from statsmodels.tsa.exponential_smoothing.ets import ETSModel

    positive = bool((train > 0).all())
    seasons = [None]
    if season > 1 and len(train) >= 2 * season + 2:
        seasons += ["add"] + (["mul"] if positive else [])
    best = None
    for error in ["add"] + (["mul"] if positive else []):
        for trend, damped in [(None, False), ("add", False), ("add", True)]:
            for seas in seasons:
                if error == "add" and seas == "mul":
                    continue
                try:
                    with warnings.catch_warnings():
                        warnings.simplefilter("ignore")
                        model = ETSModel(train, error=error, trend=trend, damped_trend=damped, seasonal=seas,
                                         seasonal_periods=season if seas else None)
                        fit = model.fit(disp=False, maxiter=2000)
                        fc = np.asarray(fit.forecast(horizon), dtype=np.float64)
                except Exception:  # a combination that does not fit (e.g. a singular start): not a candidate
                    continue
                if not np.isfinite(fit.aicc) or not np.isfinite(fc).all():
                    continue
                if best is None or fit.aicc < best[0]:
                    tag = f"{error[0].upper()},{'N' if trend is None else ('Ad' if damped else 'A')}," \
                          f"{'N' if seas is None else seas[0].upper()}"
                    best = (fit.aicc, fc, tag)
    if best is None:
        raise RuntimeError("no ETS model could be fitted")
    return best[1], f"ETS({best[2]}) aicc={best[0]:.1f}"


def ar_lookback(season: int, n_train: int) -> int:
    return min(2 * season if season > 1 else 10, n_train // 4)


def ar_forecast(train_df: pd.DataFrame, season: int, horizon: int) -> tuple[np.ndarray, str]:
    p = ar_lookback(season, len(train_df))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # few conformal calibration windows on short series: intervals unused
        f = Forecaster(model="ar", lookback=p, horizon=horizon, random_state=0).fit(train_df)
        return f.predict().iloc[:, 0].to_numpy(dtype=np.float64), f"AR({p})"


def adapter_folder(path: Path | None) -> Path:
    from tsforecast.pretrained import SHIPPED_ROOT  # where the package keeps its shipped adapters

    return path if path is not None else SHIPPED_ROOT / LLM_NAME


def load_llm(path: Path | None = None):
    """(model, config tag, load seconds, why not) for the shipped pretrained forecaster (or the adapter
    folder ``path``), or Nones and the reason it is not available."""
    try:
        from tsforecast import pretrained  # noqa: F401
    except ImportError as err:
        return None, None, None, f"tsforecast.pretrained does not import ({err})"
    adapter = adapter_folder(path) / "adapter.safetensors"
    if not adapter.exists():
        return None, None, None, f"no adapter at {adapter}"
    digest = hashlib.sha256(adapter.read_bytes()).hexdigest()[:12]
    start = time.perf_counter()
    model = tsforecast.pretrained(LLM_NAME, path=path)
    return model, f"{LLM_NAME}@{digest}", time.perf_counter() - start, None


def probe(llm, out: Path) -> None:
    """Noise-free patterns any forecaster should continue (a diagnostic beside the real series): MAE / the
    context's std of the LLM, the seasonal naive and the last value, 192 rows of context, one period ahead."""
    t = np.arange(216.0)
    patterns = {"sine, period 12": np.sin(2 * np.pi * t / 12), "sine, period 24 (H=24)": np.sin(2 * np.pi * t / 24),
                "linear ramp": 0.05 * t, "ramp + sine, period 12": 0.05 * t + np.sin(2 * np.pi * t / 12)}
    rows = []
    for name, y in patterns.items():
        period = 24 if "24" in name else 12
        horizon = period
        y = y[:192 + horizon]
        df = _frame(y, pd.date_range("2000-01-01", periods=len(y), freq="MS"), "y")
        context, truth = y[:192], y[192:]
        pred = llm.predict(df.iloc[:192], horizon=horizon).iloc[:, 0].to_numpy(dtype=np.float64)
        scale = np.std(context)  # not MASE: a noise-free seasonal naive has (almost) zero in-sample error
        rows.append({"pattern": name, "llm": np.mean(np.abs(pred - truth)) / scale,
                     "snaive": np.mean(np.abs(snaive_forecast(context, period, horizon) - truth)) / scale,
                     "last value": np.mean(np.abs(context[-1] - truth)) / scale})
    write_atomic(out / "probe.csv", pd.DataFrame(rows).round(3).to_csv(index=False))


# ------------------------------------------------------------------------------------------------- the run
def run(out: Path, models: list[str], only: list[str] | None, llm_path: Path | None = None) -> pd.DataFrame:
    out.mkdir(parents=True, exist_ok=True)
    path = out / "results.csv"
    rows = pd.read_csv(path).to_dict("records") if path.exists() else []
    meta_path = out / "meta.json"
    meta = json.loads(meta_path.read_text()) if meta_path.exists() else {}
    config = dict(CONFIG)
    llm = None
    if "llm" in models:
        llm, config["llm"], load_s, why = load_llm(llm_path)
        if llm is None:
            print(f"LLM column skipped: {why}", file=sys.stderr)
            models = [m for m in models if m != "llm"]
        else:
            import torch
            context = llm._zero_shot_context()  # the rows it reads: a new default context re-runs the column
            if context != llm.lookback:
                config["llm"] += f"|context={context}"
            meta["llm"] = {"config": config["llm"], "load_seconds": round(load_s, 2),
                           "torch_threads": torch.get_num_threads(), "device": str(llm.device_),
                           "llm_dtype": str(getattr(llm.network_, "llm_dtype", "?")),
                           "adapter": str(adapter_folder(llm_path))}
            write_atomic(meta_path, json.dumps(meta, indent=1))
            probe(llm, out)
    done = {(r["series"], int(r["origin"]), r["model"], r["config"]) for r in rows}
    for s in load_series():
        if only and s["name"] not in only:
            continue
        df, m = s["df"], s["season"]
        n, horizon = len(df), HORIZON[m]
        values = df.iloc[:, 0].to_numpy(dtype=np.float64)
        for origin in [n - k * horizon for k in range(ORIGINS, 0, -1)]:
            train_df, train = df.iloc[:origin], values[:origin]
            truth = values[origin:origin + horizon]
            scale, _ = seasonal_naive_scale(train, m)
            for model in models:
                if (s["name"], origin, model, config[model]) in done:
                    continue
                start = time.perf_counter()
                detail = ""
                if model == "snaive":
                    pred = snaive_forecast(train, m, horizon)
                elif model == "ets":
                    pred, detail = ets_forecast(train, m, horizon)
                elif model == "ar":
                    pred, detail = ar_forecast(train_df, m, horizon)
                else:
                    with warnings.catch_warnings(record=True) as caught:
                        warnings.simplefilter("always")
                        pred = llm.predict(train_df, horizon=horizon).iloc[:, 0].to_numpy(dtype=np.float64)
                    detail = "; ".join(sorted({str(w.message)[:120] for w in caught}))
                seconds = time.perf_counter() - start
                if pred.shape != truth.shape:
                    raise RuntimeError(f"{model} on {s['name']}: forecast shape {pred.shape}, expected {truth.shape}")
                rows.append({"series": s["name"], "source": s["source"], "freq": FREQ_NAME[m], "season": m,
                             "horizon": horizon, "origin": origin, "origin_date": str(df.index[origin].date()),
                             "n_train": origin, "model": model, "config": config[model],
                             "mase": mase(truth[:, None].copy(), pred[:, None].copy(), scale),  # copies: pandas 3 arrays are read-only
                             "mae": float(np.mean(np.abs(truth - pred))), "scale": float(scale[0]),
                             "seconds": round(seconds, 4), "detail": detail})
                write_atomic(path, pd.DataFrame(rows, columns=COLUMNS).to_csv(index=False))
                print(f"{s['name']:28s} origin {origin:4d} {model:6s} MASE {rows[-1]['mase']:.3f} "
                      f"({seconds:.2f} s) {detail}", flush=True)
    return pd.DataFrame(rows, columns=COLUMNS)


# ---------------------------------------------------------------------------------------------- the tables
def gmean(x) -> float:
    x = np.asarray(x, dtype=np.float64)
    return float(np.exp(np.mean(np.log(x))))


def tables(results: pd.DataFrame, config: dict) -> tuple[str, dict]:
    """Markdown: per series (mean MASE over origins), per source (geometric mean over its series) and overall;
    only the newest config of each model (the current adapter for the LLM)."""
    keep = results[[config.get(m) == c for m, c in zip(results["model"], results["config"])]]
    models = [m for m in MODELS if m in set(keep["model"])]
    per = keep.pivot_table(index=["series", "source", "freq", "horizon"], columns="model", values="mase",
                           aggfunc="mean")
    counts = keep.groupby(["series", "model"])["origin"].nunique().unstack()
    complete = counts[models].eq(ORIGINS).all(axis=1)  # series every model has finished
    per = per[per.index.get_level_values("series").isin(complete[complete].index)][models]
    order = [s["name"] for s in load_series()]
    per = per.reindex(sorted(per.index, key=lambda i: order.index(i[0])))
    lines = ["| series | freq | H | " + " | ".join(models) + " | best |", "|---|---|---:|" + "---:|" * len(models) + "---|"]
    for (series, source, freq, horizon), row in per.iterrows():
        best = row.idxmin()
        cells = [f"**{row[m]:.3f}**" if m == best else f"{row[m]:.3f}" for m in models]
        lines.append(f"| {series} | {freq} | {horizon} | " + " | ".join(cells) + f" | {best} |")
    summary = {}
    lines += ["", "| over series | n | " + " | ".join(models) + " |", "|---|---:|" + "---:|" * len(models)]
    groups = [("all series: geometric mean", per)]
    groups += [(f"{freq}: geometric mean", per[per.index.get_level_values("freq") == freq])
               for freq in ["monthly", "quarterly", "yearly"]]
    groups += [(f"{src}: geometric mean", per[per.index.get_level_values("source") == src])
               for src in dict.fromkeys(per.index.get_level_values("source"))
               if (per.index.get_level_values("source") == src).sum() > 1]
    for label, part in groups:
        if len(part):
            lines.append(f"| {label} | {len(part)} | " + " | ".join(f"{gmean(part[m]):.3f}" for m in models) + " |")
    lines.append(f"| all series: arithmetic mean | {len(per)} | " + " | ".join(f"{per[m].mean():.3f}" for m in models)
                 + " |")
    wins = per.idxmin(axis=1).value_counts()
    lines.append(f"| all series: wins (lowest MASE) | {len(per)} | " + " | ".join(str(int(wins.get(m, 0)))
                                                                                for m in models) + " |")
    summary = {m: {"gmean": gmean(per[m]), "mean": float(per[m].mean()), "wins": int(wins.get(m, 0))} for m in models}
    if "llm" in models:
        lines += ["", "Head to head, series where the zero-shot LLM's MASE is lower / higher than the baseline's:", ""]
        for m in models:
            if m != "llm":
                lines.append(f"- vs {m}: {int((per['llm'] < per[m]).sum())} / {int((per['llm'] > per[m]).sum())}"
                             f" (geometric mean ratio llm/{m}: {gmean(per['llm'] / per[m]):.3f})")
    secs = keep.groupby("model")["seconds"].agg(["mean", "max", "sum"]).reindex(models)
    lines += ["", "| seconds per forecast (fit + predict; LLM: predict only) | mean | max | total |", "|---|---:|---:|---:|"]
    lines += [f"| {m} | {r['mean']:.3f} | {r['max']:.3f} | {r['sum']:.1f} |" for m, r in secs.iterrows()]
    if "llm" in models:
        llm_rows = keep[keep["model"] == "llm"]
        t = llm_rows.groupby("series").agg(n_train=("n_train", "max"), seconds=("seconds", "mean"))
        t = t.reindex([s for s in order if s in t.index])
        lines += ["", "Zero-shot LLM predict time per series (mean over its 3 origins; context = the rows before the "
                  "origin, of which it reads its zero-shot context: 24 rows by default, see meta.json):", "", "| series | rows before the last origin | seconds |",
                  "|---|---:|---:|"]
        lines += [f"| {s} | {int(r['n_train'])} | {r['seconds']:.3f} |" for s, r in t.iterrows()]
    return "\n".join(lines), summary


def machine() -> str:
    try:
        from tsforecast.bench import machine_description
        return machine_description()
    except Exception:  # noqa: BLE001 - the description is informative only
        import platform
        return f"{platform.processor()} ({os.cpu_count()} CPUs)"


def markdown(frame: pd.DataFrame) -> str:
    cells = [[f"{v:.3f}" if isinstance(v, float) else str(v) for v in row] for row in frame.itertuples(index=False)]
    return "\n".join(["| " + " | ".join(map(str, frame.columns)) + " |", "|---" + "|---:" * (frame.shape[1] - 1) + "|"]
                     + ["| " + " | ".join(c) + " |" for c in cells])


def write_readme(out: Path, results: pd.DataFrame, command: str) -> None:
    meta = json.loads((out / "meta.json").read_text()) if (out / "meta.json").exists() else {}
    config = dict(CONFIG)
    if "llm" in meta:
        config["llm"] = meta["llm"]["config"]
    table, summary = tables(results, config)
    doc = (__doc__.split("\n\n    nice")[0]).strip()
    reading = (out / "reading.md").read_text().strip() if (out / "reading.md").exists() else ""
    llm_note = (f"LLM: `{meta['llm']['config']}` (adapter sha256 prefix), loaded in {meta['llm']['load_seconds']} s "
                f"(`tsforecast.pretrained(...)`, LLM conversion included when not cached), torch threads "
                f"{meta['llm']['torch_threads']}, device {meta['llm'].get('device')}, llm_dtype "
                f"{meta['llm'].get('llm_dtype')}." if "llm" in meta else
                "LLM column: not run yet (the shipped adapter did not exist when this table was made); the same "
                "command adds it once `tsforecast/pretrained_weights/autotimes-smollm2/adapter.safetensors` exists.")
    text = "\n\n".join(part for part in [
        "# Zero-shot pretrained LLM forecaster vs seasonal naive, ETS and AR (MASE)",
        doc, "Command (resumable; `--models` and `--series` select a subset):\n\n```bash\n" + command + "\n```",
        f"Machine: {machine()}; OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}; statsmodels "
        f"{statsmodels.__version__}, pandas {pd.__version__}, numpy {np.__version__}. {llm_note}",
        "## MASE (mean over the 3 origins; bold: the lowest)", table,
        ("## Probe: noise-free patterns (`probe.csv`; 192 rows given, of which the LLM reads its zero-shot context; "
          "MAE / std of those 192 rows, one period ahead)\n\n"
         + markdown(pd.read_csv(out / "probe.csv"))) if (out / "probe.csv").exists()
        and "llm" in meta else "",
        ("## Reading\n\n" + reading) if reading else ""] if part)
    write_atomic(out / "README.md", text + "\n")
    write_atomic(out / "summary.json", json.dumps(summary, indent=1) + "\n")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--out", type=Path, default=Path("benchmarks/results/zero_shot_pretrained"))
    parser.add_argument("--models", default=",".join(MODELS), help="comma-separated subset of " + ",".join(MODELS))
    parser.add_argument("--series", default="", help="comma-separated series names (default: all)")
    parser.add_argument("--llm-path", type=Path, default=None,
                        help="an adapter folder (config.json + adapter.safetensors) instead of the shipped one")
    parser.add_argument("--report-only", action="store_true", help="rewrite README.md from results.csv")
    args = parser.parse_args(argv)
    models = [m for m in args.models.split(",") if m]
    unknown = set(models) - set(MODELS)
    if unknown:
        parser.error(f"unknown models {sorted(unknown)}; choose from {','.join(MODELS)}")
    if args.report_only:
        results = pd.read_csv(args.out / "results.csv")
    else:
        results = run(args.out, models, [s for s in args.series.split(",") if s] or None, args.llm_path)
    command = ("nice -n 19 env OMP_NUM_THREADS=1 .venv/bin/python benchmarks/scripts/zero_shot_bench.py --out "
               f"{args.out}" + (f" --llm-path {args.llm_path}" if args.llm_path else ""))
    write_readme(args.out, results, command)
    print((args.out / "README.md").read_text())


if __name__ == "__main__":
    main()
