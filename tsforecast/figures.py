"""The benchmark report's figures, drawn from ``results.csv`` and the side files of a results folder.

matplotlib's object API on the Agg canvas only (no pyplot, no display, no backend switch, no
network), small PNGs beside ``report.md``:

* ``fig_ratio.png``: our MSE over the published one per model, dataset and horizon (hatched: the
  published figure is at another look-back);
* ``fig_forecasts_<dataset>.png``: forecast against truth of the last channel for the test windows
  each run saved (``forecasts/<run_id>.csv``), first seed of each run;
* ``fig_training.png``: per-epoch training and validation loss (``loss_curve``), first seed.

A folder whose runs predate the side files gets the figures it can have, and the report says which
were skipped and why.
"""
from __future__ import annotations

import io
import json
import os
import re
import tempfile
import textwrap
from pathlib import Path

import numpy as np
import pandas as pd

PREFIX = "fig_"
DPI = 72


def _canvas(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=DPI)
    FigureCanvasAgg(figure)
    return figure


def _save(figure, path: Path) -> None:
    """PNG via a temporary file and an atomic rename (a killed report never leaves half an image)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, bbox_inches="tight", metadata={"Software": None})
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(buffer.getvalue())
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _label(model: str, params: str, width: int = 60) -> str:
    text = model if params in ("{}", "") else f"{model} {params}"
    return "\n".join(textwrap.wrap(text, width)) or text


def _variants(rows: pd.DataFrame) -> list[tuple[str, str]]:
    return list(dict.fromkeys(zip(rows["model"], rows["params"])))


def write_figures(results: pd.DataFrame, out: Path) -> tuple[list[tuple[str, str]], list[str]]:
    """Draw every figure ``results`` (one row per run) and ``out``'s side files allow; remove the
    ``fig_*.png`` of an earlier drawing that no longer apply. Returns ``([(file, caption)], [notes])``."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    drawn, notes = [], []
    if results.empty:
        return drawn, notes
    for draw in (_ratio_figure, _forecast_figures, _training_figure):
        files, note = draw(results, out)
        drawn += files
        if note:
            notes.append(note)
    keep = {file for file, _ in drawn}
    for old in out.glob(f"{PREFIX}*.png"):
        if old.name not in keep:
            old.unlink()
    return drawn, notes


# ---------------------------------------------------------------------- ours against published
def _ratio_figure(results: pd.DataFrame, out: Path):
    from .bench import _published_average, _published_for, _published_lookup, group_runs
    from .models.registry import get_model_class

    lookup = _published_lookup()
    grouped = group_runs(results)
    records = []
    for r in grouped.itertuples():
        pub = _published_for(lookup, get_model_class(r.model).published_name, r.dataset, r.horizon, r.lookback)
        if pub:
            records.append((r.dataset, r.model, r.params, str(r.horizon), r.mse / pub[0], int(pub[2]) != int(r.lookback)))
    for (model, params, dataset), rows in grouped.groupby(["model", "params", "dataset"], sort=False):
        if not any(record[:3] == (dataset, model, params) for record in records):
            average, mark = _published_average(lookup, model, rows)  # only the average over horizons is published
            if average:
                records.append((dataset, model, params, "avg", rows["mse"].mean() / average, bool(mark)))
    if not records:
        return [], "Ours against published: no run has a published figure to compare with."
    table = pd.DataFrame(records, columns=["dataset", "model", "params", "horizon", "ratio", "other_lookback"])
    datasets = list(dict.fromkeys(table["dataset"]))
    variants = _variants(table)
    ncols = min(len(datasets), 3)
    nrows = -(-len(datasets) // ncols)
    spare = nrows * ncols > len(datasets)  # an empty panel holds the legend, else it goes to the right
    figure = _canvas(4.2 * ncols, 2.8 * nrows)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    colors = {variant: f"C{i % 10}" for i, variant in enumerate(variants)}
    for ax, dataset in zip(axes.flat, datasets):
        rows = table[table["dataset"] == dataset]
        horizons = sorted(rows["horizon"].unique(), key=lambda h: (h == "avg", int(h) if h != "avg" else 0))
        present = _variants(rows)
        width = min(0.8 / len(present), 0.3)
        for v, (model, params) in enumerate(present):
            mine = rows[(rows["model"] == model) & (rows["params"] == params)].set_index("horizon")
            for h_index, horizon in enumerate(horizons):
                if horizon in mine.index:
                    ax.bar(h_index + (v - (len(present) - 1) / 2) * width, mine.loc[horizon, "ratio"], width,
                           color=colors[(model, params)], hatch="//" if mine.loc[horizon, "other_lookback"] else None,
                           edgecolor="white")
        ax.axhline(1.0, color="black", linewidth=0.8)
        ax.set_xticks(range(len(horizons)), [h if h != "avg" else "average" for h in horizons])
        ax.set_title(dataset, fontsize=10)
        ax.set_xlabel("horizon", fontsize=8)
        ax.set_ylabel("MSE ours / published", fontsize=8)
        ax.tick_params(labelsize=8)
    for ax in list(axes.flat)[len(datasets):]:
        ax.axis("off")
    from matplotlib.patches import Patch

    handles = [Patch(color=colors[(m, p)], label=_label(m, p)) for m, p in variants]
    if table["other_lookback"].any():
        handles.append(Patch(facecolor="white", edgecolor="grey", hatch="//", label="published at another look-back"))
    if spare:
        axes.flat[len(datasets)].legend(handles=handles, loc="center", fontsize=7, frameon=False)
        figure.tight_layout()
    else:
        figure.tight_layout()
        figure.legend(handles=handles, loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, frameon=False)
    _save(figure, out / f"{PREFIX}ratio.png")
    return [(f"{PREFIX}ratio.png", "MSE ours / published per dataset and horizon (below 1: ours lower; "
                                   "hatched: published at another look-back)")], None


# ---------------------------------------------------------------------- forecast against truth
def _first_seed(results: pd.DataFrame) -> pd.DataFrame:
    return results.sort_values("seed", kind="stable").drop_duplicates(
        subset=["dataset", "model", "params", "horizon", "lookback"], keep="first")


def _forecast_file(out: Path, run_id) -> Path | None:
    if not isinstance(run_id, str) or not run_id:
        return None
    from .bench import FORECASTS_DIR

    path = out / FORECASTS_DIR / f"{run_id}.csv"
    return path if path.is_file() else None


def _forecast_figures(results: pd.DataFrame, out: Path):
    rows = _first_seed(results).copy()
    rows["file"] = [_forecast_file(out, run) for run in rows.get("run_id", pd.Series([None] * len(rows)))]
    missing = rows["file"].isna().sum()
    rows = rows[rows["file"].notna()]
    drawn = []
    for dataset, table in rows.groupby("dataset", sort=True):
        variants = _variants(table)
        horizons = sorted(table["horizon"].unique())
        figure = _canvas(3.6 * len(horizons), 1.9 * len(variants) + 0.3)
        axes = figure.subplots(len(variants), len(horizons), squeeze=False)
        for r in table.itertuples():
            ax = axes[variants.index((r.model, r.params)), horizons.index(r.horizon)]
            frame = pd.read_csv(r.file)
            offset = 0
            for _, window in frame.groupby("window", sort=True):
                x = offset + window["step"].to_numpy() - window["step"].min()
                past = window["step"].to_numpy() <= 0
                ax.plot(x[past], window["truth"].to_numpy()[past], color="0.6", linewidth=0.7)
                ax.plot(x[~past], window["truth"].to_numpy()[~past], color="black", linewidth=0.7)
                ax.plot(x[~past], window["forecast"].to_numpy()[~past], color="C3", linewidth=0.9)
                offset = x[-1] + max(4, len(x) // 20)
                ax.axvline(offset - max(2, len(x) // 40), color="0.85", linewidth=0.6)
            ax.set_title(f"{_label(r.model, r.params, 45)}  H={r.horizon}", fontsize=7)
            ax.set_xticks([])
            ax.tick_params(labelsize=6)
            if horizons.index(r.horizon) == 0:
                ax.set_ylabel(str(frame["channel"].iloc[0]), fontsize=7)
        for ax in axes.flat:
            if not ax.has_data():
                ax.set_visible(False)
        figure.tight_layout()
        name = f"{PREFIX}forecasts_{re.sub(r'[^A-Za-z0-9._-]+', '_', str(dataset))}.png"
        _save(figure, out / name)
        drawn.append((name, f"{dataset}: forecast (red) against truth (black) after the look-back (grey), "
                            "a few test windows side by side, last channel, data units, first seed"))
    note = None
    if missing:
        note = (f"Forecast figures: {missing} run(s) have no saved forecasts (recorded before `tsforecast bench` "
                "saved them, or their `forecasts/` files are missing): not drawn.")
    return drawn, note


# ---------------------------------------------------------------------- training curves
def _training_figure(results: pd.DataFrame, out: Path):
    rows = _first_seed(results)
    curves = rows.get("loss_curve", pd.Series([None] * len(rows), index=rows.index))
    has_curve = curves.map(lambda text: isinstance(text, str) and bool(text))
    trained = rows["epochs"].fillna(0) > 0
    missing = int((trained & ~has_curve).sum())
    rows = rows[has_curve]
    if rows.empty:
        note = None
        if missing:
            note = (f"Training curves: {missing} trained run(s) have no recorded loss curve (recorded before "
                    "`tsforecast bench` kept them): not drawn.")
        return [], note
    from matplotlib.ticker import MaxNLocator

    panels = list(dict.fromkeys(zip(rows["model"], rows["params"], rows["dataset"])))
    ncols = min(len(panels), 4)
    nrows = -(-len(panels) // ncols)
    figure = _canvas(3.3 * ncols, 2.3 * nrows)
    axes = figure.subplots(nrows, ncols, squeeze=False)
    for ax, (model, params, dataset) in zip(axes.flat, panels):
        table = rows[(rows["model"] == model) & (rows["params"] == params) & (rows["dataset"] == dataset)]
        seen, handles = {}, []
        for color, r in enumerate(table.sort_values("horizon").itertuples()):
            curve = json.loads(r.loss_curve)
            fit = json.dumps(curve)  # one fit shared by several horizons is drawn once
            if fit in seen:
                seen[fit].append(r.horizon)
                continue
            seen[fit] = [r.horizon]
            epochs = np.arange(1, len(curve["train"]) + 1)
            handles += ax.plot(epochs, curve["train"], color=f"C{color % 10}", linewidth=1.0)
            val = np.array([np.nan if v is None else v for v in curve.get("val", [])], dtype=float)
            if len(val) and np.isfinite(val).any():
                ax.plot(epochs[:len(val)], val, color=f"C{color % 10}", linewidth=1.0, linestyle="--")
        labels = [f"H={','.join(map(str, hs))}" for hs in seen.values()]
        ax.legend(handles, labels, fontsize=6, frameon=False)
        ax.set_title(f"{_label(model, params, 40)}  {dataset}", fontsize=7)
        ax.set_xlabel("epoch", fontsize=7)
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        ax.tick_params(labelsize=6)
    for ax in list(axes.flat)[len(panels):]:
        ax.set_visible(False)
    figure.tight_layout()
    _save(figure, out / f"{PREFIX}training.png")
    note = None
    if missing:
        note = f"Training curves: {missing} trained run(s) recorded before loss curves were kept are not drawn."
    return [(f"{PREFIX}training.png", "Training (solid) and validation (dashed) loss per epoch, scaled MSE "
                                      "(or the model's own objective), first seed")], note
