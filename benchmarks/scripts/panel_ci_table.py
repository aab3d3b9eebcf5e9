"""The "channel-independent panel vs multivariate" table from benchmarks/results/panel_ci/*/results.csv.

One line per dataset, horizon and model: the multivariate (wide) arm's MSE/MAE next to the channels-as-series
panel arm's, both from the same results folder (same code, machine and budget), plus the committed
multivariate figures for reference (linear_l96 for AR; transformers_l96, full budget on a GPU, for
iTransformer). Writes <out>/table.md and prints it.

    .venv/bin/python benchmarks/scripts/panel_ci_table.py --out benchmarks/results/panel_ci
"""
from __future__ import annotations

import argparse
from pathlib import Path

import pandas as pd

from tsforecast.bench import current_rows, read_results

COMMITTED = {"ar": "benchmarks/results/linear_l96", "itransformer": "benchmarks/results/transformers_l96"}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--out", default="benchmarks/results/panel_ci")
    out = Path(parser.parse_args().out)
    rows = pd.concat([current_rows(read_results(folder)) for folder in sorted(out.iterdir())
                      if (folder / "results.csv").is_file()], ignore_index=True)
    key = ["dataset", "horizon", "model"]
    wide = rows[rows["layout"] == "wide"].set_index(key)
    panel = rows[rows["layout"] == "channels_as_series"].set_index(key)
    committed = pd.concat([current_rows(read_results(Path(folder))).query("model == @model and params == '{}'")
                           for model, folder in COMMITTED.items()]).set_index(key)
    lines = ["| dataset | H | model | multivariate MSE | MAE | panel MSE | MAE | panel / multivariate MSE "
             "| committed multivariate MSE / MAE | epochs (multivariate / panel) |",
             "|---|---|---|---|---|---|---|---|---|---|"]
    for index in sorted(set(wide.index) | set(panel.index)):
        w = wide.loc[index] if index in wide.index else None
        p = panel.loc[index] if index in panel.index else None
        c = committed.loc[index] if index in committed.index else None

        def cell(row, column):
            return "—" if row is None else f"{row[column]:.4f}"
        ratio = f"{p['mse'] / w['mse']:.3f}" if w is not None and p is not None else "—"
        ref = "—" if c is None else f"{c['mse']:.4f} / {c['mae']:.4f}"
        epochs = f"{'—' if w is None else int(w['epochs'])} / {'—' if p is None else int(p['epochs'])}"
        lines.append(f"| {index[0]} | {index[1]} | {index[2]} | {cell(w, 'mse')} | {cell(w, 'mae')} | {cell(p, 'mse')} "
                     f"| {cell(p, 'mae')} | {ratio} | {ref} | {epochs} |")
    text = "\n".join(lines) + "\n"
    (out / "table.md").write_text(text)
    print(text)


if __name__ == "__main__":
    main()
