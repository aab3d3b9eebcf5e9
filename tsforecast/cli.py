"""The ``tsforecast`` command: bench, report, forecast, datasets, models. Argument parsing only."""
from __future__ import annotations

import argparse
import json
import os
import shlex
import sys
from pathlib import Path


def _csv_list(text: str) -> list[str]:
    return [item.strip() for item in text.split(",") if item.strip()]


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
"""


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
    bench.add_argument("--horizons", type=_int_list, default="96,192,336,720", help="comma-separated horizons")
    bench.add_argument("--lookback", type=int, default=96, help="look-back window in steps")
    bench.add_argument("--seeds", type=_int_list, default="0", help="comma-separated random seeds")
    bench.add_argument("--params", type=_json_object, default="{}",
                       help='model hyperparameters as JSON, e.g. \'{"ar_reg": 1}\'')
    bench.add_argument("--out", required=True,
                       help="results folder (results.csv, report.md, fig_*.png, forecasts/); reruns skip runs "
                            "finished with the same settings and code")
    _add_csv_args(bench)
    _add_training_args(bench)

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


def cmd_bench(args) -> int:
    from .bench import run_sweep

    command = "tsforecast " + " ".join(shlex.quote(a) for a in args.argv)
    run_sweep(args.models, args.datasets, args.horizons, args.lookback, args.seeds, args.out,
              model_params=args.params, training=_training_overrides(args), device=args.device,
              verbose=args.verbose, command=command, date_column=args.date_column, dayfirst=args.dayfirst)
    print(f"results: {Path(args.out) / 'results.csv'}\nreport:  {Path(args.out) / 'report.md'}")
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


COMMANDS = {"bench": cmd_bench, "report": cmd_report, "forecast": cmd_forecast, "datasets": cmd_datasets,
            "models": cmd_models}

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
