"""The ``tsforecast`` command: bench, tune, report, forecast, datasets, models. Argument parsing only."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path


def _csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


def _float_list(text: str) -> list[float]:
    try:
        return [float(item) for item in _csv_list(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from err


def _int_list(text: str) -> list[int]:
    try:
        return [int(item) for item in _csv_list(text)]
    except ValueError as err:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from err


def _json_object(text: str) -> dict:
    try:
        value = json.loads(text)
    except json.JSONDecodeError as err:
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}: {err}") from err
    if not isinstance(value, dict):
        raise argparse.ArgumentTypeError(f"expected a JSON object, got {text!r}")
    return value


class _HelpFormatter(argparse.ArgumentDefaultsHelpFormatter, argparse.RawDescriptionHelpFormatter):
    """Shows each option's default (unless its help already says it) and keeps the epilog examples as written."""

    def _get_help_string(self, action):
        text = action.help or ""
        if action.required or action.default is None or "default" in text.lower():
            return text
        return super()._get_help_string(action)


def _add_training_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (default: the model family's settings)")
    group.add_argument("--max-epochs", type=int, help="maximum training epochs (default: the model family's, e.g. 10)")
    group.add_argument("--batch-size", type=int, help="training batch size (default: the model family's, e.g. 32)")
    group.add_argument("--learning-rate", type=float, help="Adam learning rate (default: the model family's, e.g. 1e-4)")
    group.add_argument("--patience", type=int, help="early-stopping patience in epochs (default: the model family's, e.g. 3)")
    group.add_argument("--lr-schedule", choices=["halving", "constant", "cosine"],
                       help="learning-rate schedule (default: the model family's, e.g. halving)")
    group.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    group.add_argument("--verbose", type=int, default=0, help="1: a progress bar per fit")


def _add_csv_args(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--date-column", "--time-column", dest="date_column", metavar="NAME",
                        help="the CSV's timestamp column (default: found by type or name: date, ds, Month, "
                             "timestamp, ...; else the first column if it holds dates)")
    parser.add_argument("--dayfirst", action="store_true", help="read 01/02/2020 as 1 February, for dd/mm/yyyy dates (default: off, month first)")


def _training_overrides(args) -> dict:
    keys = ["max_epochs", "batch_size", "learning_rate", "patience", "lr_schedule"]
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


FORECAST_EXAMPLE = """\
example:
  tsforecast forecast --csv sales.csv --date-column Month --model ar --lookback 24 --horizon 12 --out forecast.csv
  tsforecast forecast --csv stores.csv --id-column unique_id --time-column ds --target-columns y \\
      --future-covariates price,holiday --future-csv future.csv --past-covariates visits --missing mask \\
      --model itransformer --lookback 48 --horizon 12 --out forecast.csv

A wide CSV holds one timestamp column and one numeric column per channel; the forecast CSV has the same
columns and continues the data's own calendar (month starts stay month starts, time zones are kept).
A long CSV (--id-column) holds one row per series and step: the id, the timestamp, the targets and the
covariates. One global model is fitted on every series; the forecast CSV is long too (id, timestamp,
targets), each series continuing from its own last date. Future-known covariates (--future-covariates)
need their values for the forecast steps in --future-csv (same id and timestamp columns); past
covariates (--past-covariates) are read up to each series' end only.
"""

BENCH_EXAMPLE = """\
example:
  tsforecast bench --models naive,ar,arnet --datasets ETTh1,my_data.csv --horizons 24,48 --lookback 96 --out results/mine

Bundled datasets use the LTSF protocol's split. A CSV of your own (a name ending in .csv or .csv.gz, or
any existing file) is split chronologically 70/10/20 (train/validation/test, the validation and test
windows taking their look-back from the rows before), scaled on the train split, with calendar
features from the data's own step; its results are recorded under the file's name.

--channels-as-series fits one global channel-independent model on each dataset's channels as a panel of
univariate series (same splits and scaling as the multivariate protocol; rows record layout
channels_as_series). --id-column reads your CSVs as long panels (id, timestamp, values), each series
split 70/10/20:
  tsforecast bench --models ar --datasets ETTh1,Weather --channels-as-series --out results/panel
  tsforecast bench --models ar --datasets stores.csv --id-column unique_id --horizons 12 --lookback 48 --out results/stores

--backend ray runs every run as a Ray task (pip install "tsforecast[distributed]"): on this machine's
cores, or on a cluster with --address auto (or ray://head:10001). Same rows, same resume key; failed
runs go to failures.csv and are retried by the next invocation.
"""

TUNE_EXAMPLE = """\
example:
  tsforecast tune --model itransformer --dataset ETTh1 --horizon 96 --space space.json --trials 20

space.json maps a model parameter (model__<name>) or a training setting (learning_rate, batch_size,
max_epochs, patience, lr_schedule) to a distribution or a fixed value:
  {"model__d_model": {"choice": [64, 128, 256]}, "learning_rate": {"loguniform": [1e-4, 1e-2]}}
Distributions: choice [values], uniform / loguniform / randint / lograndint [low, high],
quniform / qloguniform / qrandint [low, high, q]. Trials are scored on the validation split's MSE
(never the test split), ASHA stops poor ones by epoch; the best configuration is refitted and
scored on the test split. Writes OUT/trials.csv (every trial) and OUT/best.json. Needs
pip install "tsforecast[distributed]".
"""


def _add_ray_args(parser: argparse.ArgumentParser, what: str) -> None:
    group = parser.add_argument_group("Ray")
    group.add_argument("--address", help="a running Ray cluster: auto (the one this machine belongs to) or "
                                         "ray://head:10001 (default: start Ray on this machine's cores, stop it after)")
    group.add_argument(f"--cpus-per-{what}", type=float, default=1,
                       help=f"CPUs each {what} reserves; torch uses as many threads")
    group.add_argument(f"--gpus-per-{what}", type=float,
                       help=f"GPUs each {what} reserves, a fraction shares one (default: 1 where the cluster has "
                            "GPUs and --device allows, else 0)")


def build_parser() -> argparse.ArgumentParser:
    from . import __version__

    parser = argparse.ArgumentParser(
        prog="tsforecast", description="Long-horizon time series forecasting.", formatter_class=_HelpFormatter,
        epilog="example:\n  tsforecast forecast --csv my.csv --horizon 24 --out forecast.csv\n\n"
               "`tsforecast COMMAND --help` shows each command's options and an example.")
    parser.add_argument("--version", action="version", version=f"tsforecast {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)

    def add_command(name: str, summary: str, example: str) -> argparse.ArgumentParser:
        return sub.add_parser(name, help=summary, description=summary[0].upper() + summary[1:] + ".",
                              epilog=example, formatter_class=_HelpFormatter)

    bench = add_command("bench", "benchmark sweep on the LTSF protocol or on your own CSV (resumable)", BENCH_EXAMPLE)
    bench.add_argument("--models", type=_csv_list, required=True, help="comma-separated model names")
    # string defaults go through `type` like typed values, and read well in --help
    bench.add_argument("--datasets", type=_csv_list, default="ETTh1,ETTh2,ETTm1,ETTm2,Weather",
                       help="comma-separated bundled dataset names and/or CSV files of your own")
    bench.add_argument("--train-on", metavar="DATASET",
                       help="zero-shot transfer: fit on this dataset's training split (a bundled name or a CSV file) "
                            "and score each --datasets dataset's test split, scaled by its own training split; "
                            "channel counts must match (default: none, each dataset is fitted on its own training split)")
    bench.add_argument("--channels-as-series", action="store_true",
                       help="treat each dataset's channels as a panel of univariate series and fit one global "
                            "channel-independent model (same splits, each series scaled on its own training rows; "
                            "rows record layout channels_as_series) (default: off, one multivariate frame)")
    bench.add_argument("--id-column", metavar="NAME",
                       help="read CSV files of your own as long panels (one row per series and step) with this "
                            "series id column; each series is split 70/10/20 (default: none, a CSV is one wide frame)")
    bench.add_argument("--horizons", type=_int_list, default="96,192,336,720", help="comma-separated horizons")
    bench.add_argument("--levels", type=_float_list, default=None,
                       help="also score conformal prediction intervals at these levels, e.g. 80,95: coverage, mean "
                            "width and Winkler score per run (default: none)")
    bench.add_argument("--interval-method", choices=["split", "adaptive"], default="split",
                       help="conformal intervals for --levels: static split or adaptive (updated as targets arrive)")
    bench.add_argument("--lookback", type=int, default=96, help="look-back window in steps")
    bench.add_argument("--seeds", type=_int_list, default="0", help="comma-separated random seeds")
    bench.add_argument("--params", type=_json_object, default="{}",
                       help='model hyperparameters as JSON, e.g. \'{"ar_reg": 1}\'')
    bench.add_argument("--out", required=True,
                       help="results folder (results.csv, report.md, fig_*.png, forecasts/); reruns skip runs "
                            "finished with the same settings and code")
    bench.add_argument("--backend", choices=["sequential", "ray"], default="sequential",
                       help="sequential: one run after another here; ray: runs as Ray tasks, here or on a cluster")
    _add_csv_args(bench)
    _add_training_args(bench)
    _add_ray_args(bench, "run")

    tune = add_command("tune", "hyperparameter search on Ray Tune: validation MSE, ASHA, best refitted and tested",
                       TUNE_EXAMPLE)
    tune.add_argument("--model", required=True, help="model name (see `tsforecast models`)")
    tune.add_argument("--dataset", required=True, help="a bundled dataset name or a CSV file of your own")
    tune.add_argument("--horizon", type=int, required=True, help="forecast horizon")
    tune.add_argument("--space", required=True, help="search space: a JSON file or JSON text (format below)")
    tune.add_argument("--trials", type=int, default=20, help="number of trials (random search)")
    tune.add_argument("--lookback", type=int, default=96, help="look-back window in steps")
    tune.add_argument("--seed", type=int, default=0, help="random seed of every fit and of the search")
    tune.add_argument("--params", type=_json_object, default="{}",
                      help="fixed model hyperparameters as JSON (the space's keys override them)")
    tune.add_argument("--grace-period", type=int, default=1, help="ASHA: epochs every trial trains before a cut")
    tune.add_argument("--reduction-factor", type=float, default=2, help="ASHA: keep 1/this of the trials per rung")
    tune.add_argument("--out", help="results folder (default: tune/<model>_<dataset>_H<horizon>)")
    _add_csv_args(tune)
    _add_training_args(tune)
    _add_ray_args(tune, "trial")

    report = add_command("report", "rewrite report.md and its figures (fig_*.png) from a results folder",
                         "example:\n  tsforecast report --out all --merge part1 part2")
    report.add_argument("--out", required=True, help="results folder holding results.csv")
    report.add_argument("--merge", nargs="+", metavar="DIR",
                        help="first merge these results folders (e.g. parallel parts of a sweep) into --out "
                             "(default: merge nothing)")

    forecast = add_command("forecast", "fit on a CSV (or a bundled dataset) and write the forecast", FORECAST_EXAMPLE)
    source = forecast.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", help="CSV (or .csv.gz) with a timestamp column and one numeric column per channel "
                                      "(required unless --dataset is given)")
    source.add_argument("--dataset", help="a bundled dataset name, see `tsforecast datasets` (required unless --csv "
                                          "is given)")
    forecast.add_argument("--model", default="ar", help="model name (see `tsforecast models`), or a pretrained "
                          "forecaster, which forecasts zero-shot with no fit: autotimes-smollm2")
    forecast.add_argument("--params", type=_json_object, default="{}", help="model hyperparameters as JSON")
    forecast.add_argument("--horizon", type=int, required=True, help="steps to forecast after the last row")
    forecast.add_argument("--lookback", type=int, default=96, help="look-back window in steps")
    _add_csv_args(forecast)
    panel = forecast.add_argument_group("panels, covariates and gaps")
    panel.add_argument("--id-column", metavar="NAME",
                       help="read --csv as a long panel (one row per series and step) with this series id column "
                            "(default: none, the CSV is one wide frame)")
    panel.add_argument("--target-columns", type=_csv_list, metavar="A,B",
                       help="the columns to forecast (default: every numeric column that is not a covariate)")
    panel.add_argument("--future-covariates", type=_csv_list, metavar="A,B",
                       help="columns known for the forecast steps too (prices, holidays); their future values come "
                            "from --future-csv (default: none)")
    panel.add_argument("--past-covariates", type=_csv_list, metavar="A,B",
                       help="columns observed up to the forecast origin only; inputs, never forecast (default: none)")
    panel.add_argument("--future-csv", metavar="FILE",
                       help="the future covariates' values for the forecast steps, in the layout of --csv (same id "
                            "and timestamp columns) (default: none)")
    panel.add_argument("--missing", choices=["raise", "mask"], default="raise",
                       help="raise: a missing value or timestamp is an error; mask: allowed, never scored, inputs "
                            "carried forward")
    forecast.add_argument("--freq", help="step between rows, e.g. h or 10min, taking the rows as consecutive steps "
                                         "(default: inferred from the timestamps)")
    forecast.add_argument("--seed", type=int, default=0, help="random seed")
    forecast.add_argument("--out", required=True, help="where to write the forecast CSV")
    _add_training_args(forecast)

    add_command("datasets", "list the bundled datasets", "example:\n  tsforecast datasets")
    add_command("models", "list the available models", "example:\n  tsforecast models")
    return parser


def _check_out_file(out: Path, source: str | None) -> None:
    """Fail before fitting when the forecast could not be written: a folder, the input itself, no write access."""
    if out.is_dir():
        raise IsADirectoryError(f"--out {out} is a folder; give a file path such as {out / 'forecast.csv'}")
    if source is not None and out.exists() and out.resolve() == Path(source).resolve():
        raise ValueError(f"--out {out} is the input CSV; write the forecast to another file")
    folder = out.absolute().parent
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent  # write_atomic creates the missing folders under the nearest existing one
    if not folder.is_dir():
        raise NotADirectoryError(f"--out {out}: {folder} is a file, not a folder")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise PermissionError(f"--out {out}: cannot write to the folder {folder}")


def _missing_ray(err: ImportError, command: str) -> int:
    print(f"tsforecast {command}: error: {' '.join(str(err).split())}", file=sys.stderr)
    return 2


def cmd_bench(args) -> int:
    command = "tsforecast " + " ".join(shlex.quote(a) for a in args.argv)
    common = dict(model_params=args.params, training=_training_overrides(args), device=args.device,
                  verbose=args.verbose, command=command, date_column=args.date_column, dayfirst=args.dayfirst,
                  levels=args.levels, interval_method=args.interval_method)
    failed = 0
    if args.train_on and args.backend != "sequential":
        raise ValueError("--train-on runs on the sequential back-end only (one fit shared by every target); "
                         "drop --backend ray")
    panel = {"--channels-as-series": args.channels_as_series, "--id-column": args.id_column}
    if args.backend != "sequential" and any(panel.values()):
        raise ValueError(f"{' and '.join(k for k, v in panel.items() if v)} run on the sequential back-end only; "
                         "drop --backend ray")
    if args.backend == "ray":
        from .distributed import FAILURES_FILE, require_ray, run_sweep

        try:
            require_ray()
        except ImportError as err:
            return _missing_ray(err, "bench")
        run_sweep(args.models, args.datasets, args.horizons, args.lookback, args.seeds, args.out, address=args.address,
                  cpus_per_run=args.cpus_per_run, gpus_per_run=args.gpus_per_run, **common)
        failed = (Path(args.out) / FAILURES_FILE).is_file()
    else:
        from .bench import run_sweep

        run_sweep(args.models, args.datasets, args.horizons, args.lookback, args.seeds, args.out,
                  train_on=args.train_on, id_column=args.id_column, channels_as_series=args.channels_as_series,
                  **common)
    print(f"results: {Path(args.out) / 'results.csv'}\nreport:  {Path(args.out) / 'report.md'}")
    if failed:
        print(f"failed:  {Path(args.out) / FAILURES_FILE} (rerun the command to retry)")
    return 1 if failed else 0


def cmd_tune(args) -> int:
    from .distributed import require_ray, tune

    try:
        require_ray()
    except ImportError as err:
        return _missing_ray(err, "tune")
    tune(args.model, args.dataset, args.horizon, args.space, trials=args.trials, lookback=args.lookback,
         seed=args.seed, out=args.out, model_params=args.params, training=_training_overrides(args),
         device=args.device, address=args.address, cpus_per_trial=args.cpus_per_trial,
         gpus_per_trial=args.gpus_per_trial, grace_period=args.grace_period, reduction_factor=args.reduction_factor,
         date_column=args.date_column, dayfirst=args.dayfirst)
    return 0


def cmd_report(args) -> int:
    from .bench import RESULTS_FILE, merge_results, read_results, write_report

    out = Path(args.out)
    if args.merge:
        merged = merge_results(args.merge, out)
        print(f"{len(merged)} runs in {out / RESULTS_FILE}")
    if not (out / RESULTS_FILE).is_file():
        raise FileNotFoundError(f"no {RESULTS_FILE} in {out}; run `tsforecast bench --out {out}` first")
    print(write_report(read_results(out), out, figures=True))
    return 0


def _read_forecast_csv(path, args) -> tuple:
    """A forecast's input CSV, wide or long (``--id-column``), and its time column's name (long only)."""
    from .data.datasets import read_csv_panel, read_csv_series

    if args.id_column is None:
        return read_csv_series(path, args.date_column, args.dayfirst), None
    frame = read_csv_panel(path, args.id_column, args.date_column, args.dayfirst)
    return frame, frame.columns[1]  # read_csv_panel puts the id, then the timestamps first


def _check_forecast_args(args) -> None:
    """Options that cannot work together fail before anything is read or fitted."""
    if args.id_column and not args.csv:
        raise ValueError("--id-column reads a long --csv; a bundled --dataset is one wide frame: drop --id-column, "
                         "or give your long file with --csv")
    if args.future_covariates and not args.future_csv:
        raise ValueError(f"--future-covariates {','.join(args.future_covariates)} need their values for the forecast "
                         "steps: give them with --future-csv FILE (the id and timestamp columns of --csv, one row per "
                         f"series and step, {args.horizon} steps after each series' end)")
    if args.future_csv and not args.future_covariates:
        raise ValueError("--future-csv holds future covariates' values, but no --future-covariates name them; add "
                         "--future-covariates with its columns, or drop --future-csv")


def cmd_forecast(args) -> int:
    from .io import write_atomic
    from .data.datasets import dataset_info, load_dataset
    from .forecaster import Forecaster
    from .models.registry import build_spec
    from .pretrained import list_pretrained, pretrained

    out = Path(args.out)
    _check_forecast_args(args)
    _check_out_file(out, args.csv)
    time_col = None
    if args.csv:
        (frame, time_col), freq = _read_forecast_csv(args.csv, args), args.freq
    else:
        frame, freq = load_dataset(args.dataset), args.freq or dataset_info(args.dataset).freq
    future = None
    if args.future_csv:
        future, future_time = _read_forecast_csv(args.future_csv, args)
        if time_col is not None and future_time != time_col:
            future = future.rename(columns={future_time: time_col})  # found by type or name: the fit's name
    panel = {} if time_col is None else {"id_col": args.id_column, "time_col": time_col}
    label = args.model
    if args.model in list_pretrained():  # a shipped pretrained forecaster: zero-shot, no fit
        forecaster = pretrained(args.model, device=args.device).set_params(
            freq=freq, target_cols=args.target_columns, future_covariates=args.future_covariates,
            past_covariates=args.past_covariates, missing=args.missing, **panel)
        forecast = forecaster.predict(frame, horizon=args.horizon, future_covariates=future)
        label += " (zero-shot)"
    else:
        spec = build_spec(args.model, args.params)
        forecaster = Forecaster(model=spec, lookback=args.lookback, horizon=args.horizon, freq=freq,
                                random_state=args.seed, device=args.device, verbose=args.verbose,
                                target_cols=args.target_columns, future_covariates=args.future_covariates,
                                past_covariates=args.past_covariates, missing=args.missing,
                                **panel, **_training_overrides(args))
        forecast = forecaster.fit(frame).predict(future_covariates=future)
    if time_col is not None:  # long in, long out: id, timestamp, targets
        write_atomic(out, forecast.to_csv(index=False))
        n_series = forecast[args.id_column].nunique()
        print(f"{label}: {args.horizon} steps x {n_series} series x {forecast.shape[1] - 2} targets after each "
              f"series' last date -> {out}")
        return 0
    # the index exactly as predict() returns it (its calendar, time zone or periods), written in one go
    write_atomic(out, forecast.to_csv(index_label=frame.index.name or "date"))
    print(f"{label}: {len(forecast)} steps x {forecast.shape[1]} channels after {frame.index[-1]} -> {out}")
    return 0


def cmd_datasets(args) -> int:
    from .data.datasets import DATASETS

    for info in DATASETS.values():
        print(f"{info.name:8s} step {info.freq:6s} split {info.split_scheme:5s} {info.description}")
        if info.note:
            print(f"{'':8s} note: {info.note}")
    return 0


def cmd_models(args) -> int:
    from .models.registry import MODELS

    width = max(map(len, MODELS)) + 1
    for name, spec in sorted(MODELS.items()):
        paragraph = " ".join((spec.__doc__ or "").strip().split("\n\n")[0].split())
        summary = paragraph.split(". ")[0].rstrip(".") + "."
        print(f"{name:{width}s} {summary}")
    return 0


COMMANDS = {"bench": cmd_bench, "tune": cmd_tune, "report": cmd_report, "forecast": cmd_forecast,
            "datasets": cmd_datasets, "models": cmd_models}

#: errors that mean bad input or a bad path: one line on stderr, exit 2. pandas' EmptyDataError and ParserError,
#: and UnicodeDecodeError, are ValueErrors; IsADirectoryError, NotADirectoryError and PermissionError are OSErrors.
USER_ERRORS = (ValueError, TypeError, FileNotFoundError, FileExistsError, PermissionError, IsADirectoryError,
               NotADirectoryError, UnicodeDecodeError)


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return COMMANDS[args.command](args)
    except USER_ERRORS as err:
        message = " ".join(str(err).split())  # pandas' messages span lines; the error stays one line
        print(f"tsforecast {args.command}: error: {message}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished runs are saved", file=sys.stderr)
        return 130
