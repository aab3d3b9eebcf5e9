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
    parser.add_argument("--date-column", metavar="NAME",
                        help="the CSV's timestamp column (default: found by type or name: date, ds, Month, "
                             "timestamp, ...; else the first column if it holds dates)")
    parser.add_argument("--dayfirst", action="store_true", help="read 01/02/2020 as 1 February, for dd/mm/yyyy dates (default: off, month first)")


def _training_overrides(args) -> dict:
    keys = ["max_epochs", "batch_size", "learning_rate", "patience", "lr_schedule"]
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


FORECAST_EXAMPLE = """\
example:
  tsforecast forecast --csv sales.csv --date-column Month --model ar --lookback 24 --horizon 12 --out forecast.csv

The CSV holds one timestamp column and one numeric column per channel. The forecast CSV has the same
columns and continues the data's own calendar (month starts stay month starts, time zones are kept).
"""

BENCH_EXAMPLE = """\
example:
  tsforecast bench --models naive,ar,arnet --datasets ETTh1,my_data.csv --horizons 24,48 --lookback 96 --out results/mine

Bundled datasets use the LTSF protocol's split. A CSV of your own (a name ending in .csv or .csv.gz, or
any existing file) is split chronologically 70/10/20 (train/validation/test, the validation and test
windows taking their look-back from the rows before), scaled on the train split, with calendar
features from the data's own step; its results are recorded under the file's name.

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
    forecast.add_argument("--model", default="ar", help="model name (see `tsforecast models`)")
    forecast.add_argument("--params", type=_json_object, default="{}", help="model hyperparameters as JSON")
    forecast.add_argument("--horizon", type=int, required=True, help="steps to forecast after the last row")
    forecast.add_argument("--lookback", type=int, default=96, help="look-back window in steps")
    _add_csv_args(forecast)
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
                  train_on=args.train_on, **common)
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


def cmd_forecast(args) -> int:
    from .io import write_atomic
    from .data.datasets import dataset_info, load_dataset, read_csv_series
    from .forecaster import Forecaster
    from .models.registry import build_spec

    out = Path(args.out)
    _check_out_file(out, args.csv)
    if args.csv:
        frame, freq = read_csv_series(args.csv, args.date_column, args.dayfirst), args.freq
    else:
        frame, freq = load_dataset(args.dataset), args.freq or dataset_info(args.dataset).freq
    spec = build_spec(args.model, args.params)
    forecaster = Forecaster(model=spec, lookback=args.lookback, horizon=args.horizon, freq=freq,
                            random_state=args.seed, device=args.device, verbose=args.verbose,
                            **_training_overrides(args))
    forecast = forecaster.fit(frame).predict()
    # the index exactly as predict() returns it (its calendar, time zone or periods), written in one go
    write_atomic(out, forecast.to_csv(index_label=frame.index.name or "date"))
    print(f"{args.model}: {len(forecast)} steps x {forecast.shape[1]} channels after {frame.index[-1]} -> {out}")
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
