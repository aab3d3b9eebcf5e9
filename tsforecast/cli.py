"""The ``tsforecast`` command: bench, report, forecast, datasets, models. Argument parsing only."""
from __future__ import annotations

import argparse
import json
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


def _add_training_args(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("training (default: the model family's settings)")
    group.add_argument("--max-epochs", type=int)
    group.add_argument("--batch-size", type=int)
    group.add_argument("--learning-rate", type=float)
    group.add_argument("--patience", type=int)
    group.add_argument("--lr-schedule", choices=["halving", "constant", "cosine"])
    group.add_argument("--device", default="auto", help="auto (CUDA when present), cpu, cuda")
    group.add_argument("--verbose", type=int, default=0, help="1: a progress bar per fit")


def _training_overrides(args) -> dict:
    keys = ["max_epochs", "batch_size", "learning_rate", "patience", "lr_schedule"]
    return {k: getattr(args, k) for k in keys if getattr(args, k) is not None}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="tsforecast", description="Long-horizon time series forecasting.")
    sub = parser.add_subparsers(dest="command", required=True)

    bench = sub.add_parser("bench", help="benchmark sweep on the LTSF protocol (resumable)")
    bench.add_argument("--models", type=_csv_list, required=True, help="comma-separated model names")
    bench.add_argument("--datasets", type=_csv_list, default=["ETTh1", "ETTh2", "ETTm1", "ETTm2", "Weather"])
    bench.add_argument("--horizons", type=_int_list, default=[96, 192, 336, 720])
    bench.add_argument("--lookback", type=int, default=96)
    bench.add_argument("--seeds", type=_int_list, default=[0])
    bench.add_argument("--params", type=_json_object, default={}, help='model hyperparameters as JSON, e.g. \'{"ar_reg": 1}\'')
    bench.add_argument("--out", required=True, help="results folder (results.csv, report.md); reruns skip finished runs")
    _add_training_args(bench)

    report = sub.add_parser("report", help="rewrite report.md from a results folder")
    report.add_argument("--out", required=True)
    report.add_argument("--merge", nargs="+", metavar="DIR",
                        help="first merge these results folders (e.g. parallel parts of a sweep) into --out")

    forecast = sub.add_parser("forecast", help="fit on a CSV (or a bundled dataset) and write the forecast")
    source = forecast.add_mutually_exclusive_group(required=True)
    source.add_argument("--csv", help="CSV with a timestamp column and one numeric column per channel")
    source.add_argument("--dataset", help="a bundled dataset name (see `tsforecast datasets`)")
    forecast.add_argument("--model", default="ar")
    forecast.add_argument("--params", type=_json_object, default={}, help="model hyperparameters as JSON")
    forecast.add_argument("--horizon", type=int, required=True)
    forecast.add_argument("--lookback", type=int, default=96)
    forecast.add_argument("--date-column", help="timestamp column (default: 'date' if present, else the first column)")
    forecast.add_argument("--freq", help="step between rows, e.g. h or 10min (default: inferred from the timestamps)")
    forecast.add_argument("--seed", type=int, default=0)
    forecast.add_argument("--out", required=True, help="where to write the forecast CSV")
    _add_training_args(forecast)

    sub.add_parser("datasets", help="list the bundled datasets")
    sub.add_parser("models", help="list the available models")
    return parser


def _read_csv(path: str, date_column: str | None):
    import pandas as pd

    if not Path(path).is_file():
        raise FileNotFoundError(f"no such CSV file: {path}")
    frame = pd.read_csv(path)
    column = date_column or ("date" if "date" in frame.columns else frame.columns[0])
    if column not in frame.columns:
        raise ValueError(f"--date-column {column!r} is not a column of {path}; columns: {list(frame.columns)}")
    try:
        index = pd.to_datetime(frame[column])
    except (ValueError, TypeError) as err:
        raise ValueError(f"column {column!r} of {path} does not hold timestamps ({err}); pass --date-column") from err
    return frame.drop(columns=[column]).set_index(pd.DatetimeIndex(index, name=column))


def cmd_bench(args) -> int:
    from .bench import run_sweep

    command = "tsforecast " + " ".join(shlex.quote(a) for a in args.argv)
    run_sweep(args.models, args.datasets, args.horizons, args.lookback, args.seeds, args.out,
              model_params=args.params, training=_training_overrides(args), device=args.device,
              verbose=args.verbose, command=command)
    print(f"results: {Path(args.out) / 'results.csv'}\nreport:  {Path(args.out) / 'report.md'}")
    return 0


def cmd_report(args) -> int:
    from .bench import REPORT_FILE, RESULTS_FILE, merge_results, read_results, render_report
    from .io import write_atomic

    out = Path(args.out)
    if args.merge:
        merged = merge_results(args.merge, out)
        print(f"{len(merged)} runs in {out / RESULTS_FILE}")
    if not (out / RESULTS_FILE).is_file():
        raise FileNotFoundError(f"no {RESULTS_FILE} in {out}; run `tsforecast bench --out {out}` first")
    write_atomic(out / REPORT_FILE, render_report(read_results(out), out))
    print(out / REPORT_FILE)
    return 0


def cmd_forecast(args) -> int:
    from .io import write_atomic
    from .data.datasets import dataset_info, load_dataset
    from .forecaster import Forecaster
    from .models.registry import build_spec

    if args.csv:
        frame, freq = _read_csv(args.csv, args.date_column), args.freq
    else:
        frame, freq = load_dataset(args.dataset), args.freq or dataset_info(args.dataset).freq
    spec = build_spec(args.model, args.params)
    forecaster = Forecaster(model=spec, lookback=args.lookback, horizon=args.horizon, freq=freq,
                            random_state=args.seed, device=args.device, verbose=args.verbose,
                            **_training_overrides(args))
    forecast = forecaster.fit(frame).predict()
    write_atomic(Path(args.out), forecast.to_csv(index_label=frame.index.name or "date"))
    print(f"{args.model}: {len(forecast)} steps x {forecast.shape[1]} channels after {frame.index[-1]} -> {args.out}")
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


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else list(argv)
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        return COMMANDS[args.command](args)
    except (ValueError, TypeError, FileNotFoundError, FileExistsError) as err:
        print(f"tsforecast {args.command}: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted; finished runs are saved", file=sys.stderr)
        return 130
