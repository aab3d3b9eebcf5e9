"""Save and load fitted forecasters: a folder with ``config.json`` and ``model.safetensors``.

* ``config.json``: format version, library versions, the Forecaster's params (the model as its
  registry name plus its own params), the fitted state (columns, step, calendar features, scaler
  statistics, training summary) and the index of the stored history.
* ``model.safetensors``: the network's weights (``network.*``), the last ``lookback`` rows seen
  by ``fit`` (``history``, float64, so ``predict()`` continues exactly where it did) and the conformal
  calibration (``calibration.values``: its rows, float64; ``calibration.scores.H``: its windows' scaled
  absolute errors at each horizon H computed so far, float32; their timestamps are in config.json), so
  intervals after loading are exactly those before. A network with
  ``trainable_state_dict()`` (the LLM models) stores only those weights: its frozen backbone is
  rebuilt from the spec's reference to it (``llm``, ``llm_layers`` in the params; ``backbone`` in the state)
  and checked against the fingerprint of its weights saved there (``tsforecast.llm.check_backbone``).

No pickle, so loading runs no code from the file; tensors load on CPU unless a device is asked for.
Writes go to a temporary folder that replaces ``path`` only once complete, so an interrupted save
never leaves a half-written model behind, and a failed replace puts the previous model back.
Loading checks both files against each other: a missing one raises FileNotFoundError; a damaged or
edited one (truncated weights, broken JSON, another model or shape) one ValueError naming the file.
"""
from __future__ import annotations

import json
import os
import shutil
import tempfile
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file

from .data.calendar import Calendar
from .data.panel import Roles, SeriesData
from .data.scaling import scaler_from_state, scaler_state
from .intervals import ConformalCalibration
from .llm.backbone import BackboneMismatchError, check_backbone
from .models.base import Dims
from .models.registry import build_spec
from .training import TrainingResult

FORMAT_VERSION = 1
CONFIG_FILE = "config.json"
WEIGHTS_FILE = "model.safetensors"


def _jsonable(value):
    if isinstance(value, tuple):
        return {"__tuple__": [_jsonable(v) for v in value]}
    if isinstance(value, list):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, pd.offsets.BaseOffset):  # freq=pd.offsets.MonthEnd(): saved by name, loaded as an offset
        return {"__offset__": value.freqstr}
    return value


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"__tuple__"}:
        return tuple(_from_json(v) for v in value["__tuple__"])
    if isinstance(value, dict) and set(value) == {"__offset__"}:
        return pd.tseries.frequencies.to_offset(value["__offset__"])
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    return value


def current_umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def write_atomic(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` via a temporary file in the same folder and an atomic rename."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.fchmod(fd, 0o666 & ~current_umask())  # mkstemp makes the file private; give it the usual mode
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def save_forecaster(forecaster, path) -> None:
    from . import __version__

    forecaster._check_fitted()
    path = Path(path)
    params = forecaster.get_params(deep=False)
    spec = forecaster.model_
    # A model given by name is saved as its name, so the loaded Forecaster has the very same params.
    params["model"] = {"name": spec.name, "by_name": isinstance(forecaster.model, str),
                       "params": {k: _jsonable(v) for k, v in spec.get_params(deep=False).items()}}
    histories = forecaster.histories_
    one = len(histories) == 1
    config = {
        "format_version": FORMAT_VERSION,
        "tsforecast_version": __version__,
        "torch_version": torch.__version__,
        "params": {k: _jsonable(v) for k, v in params.items()},
        "state": {
            "columns": forecaster.columns_,
            # panels and covariates: column roles, the caller's layout and the series' ids
            "roles": {"targets": list(forecaster.roles_.targets), "past": list(forecaster.roles_.past),
                      "future": list(forecaster.roles_.future)},
            "frame_columns": list(forecaster.frame_columns_),
            "long": forecaster.long_,
            "series_ids": [_jsonable(i) for i in forecaster.series_ids_],
            "n_targets": forecaster.dims_.n_targets,
            "n_future_covariates": forecaster.dims_.n_future_covariates,
            "freq": forecaster.freq_,
            "freq_given": forecaster.freq_given_,
            "time_feature_freq": forecaster.time_feature_freq_,
            "n_time_features": forecaster.dims_.n_time_features,
            "season_length": forecaster.dims_.season_length,
            "scalers": [scaler_state(scaler) for scaler in forecaster.scalers_],
            # the calendar maps these internal (tz-naive, regular) timestamps back to the caller's index
            "calendar": forecaster.calendar_.state(),
            "history_indexes": [[t.isoformat() for t in h.index] for h in histories],
            "training": asdict(forecaster.training_),
            "fit_seconds": forecaster.fit_seconds_,
            "backbone": getattr(forecaster.network_, "backbone_reference", None),
            "mase_scales": forecaster.mase_scales_.tolist(),
            "mase_season": forecaster.mase_season_,
        },
    }
    calibration = getattr(forecaster, "intervals_", None)
    calibration_tensors = {}
    if calibration is not None:  # the conformal calibration rows (and their timestamps) and scores
        config["state"]["intervals"], calibration_tensors = calibration.state()
    trainable = getattr(forecaster.network_, "trainable_state_dict", None)
    weights = trainable() if trainable is not None else forecaster.network_.state_dict()
    tensors = {f"network.{k}": v.detach().cpu().contiguous() for k, v in weights.items()}
    for i, h in enumerate(histories):
        tensors["history" if one else f"history.{i}"] = torch.from_numpy(np.ascontiguousarray(h.values, dtype=np.float64))
    tensors.update({k: torch.from_numpy(v) for k, v in calibration_tensors.items()})

    _check_save_target(path)
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.", dir=path.parent))
    try:
        save_file(tensors, str(tmp / WEIGHTS_FILE))
        (tmp / CONFIG_FILE).write_text(json.dumps(config, indent=2))
        # mkdtemp makes a private folder: give the saved model the modes a plain mkdir/open would.
        umask = current_umask()
        os.chmod(tmp, 0o777 & ~umask)
        for name in (WEIGHTS_FILE, CONFIG_FILE):
            os.chmod(tmp / name, 0o666 & ~umask)
        if path.exists():
            _check_save_target(path)  # still a saved model (it may have changed while we wrote)
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            try:
                os.replace(path, old / "model")
                try:
                    os.replace(tmp, path)
                except BaseException:
                    os.replace(old / "model", path)  # put the previous model back: nothing is lost
                    raise
            finally:
                shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _check_save_target(path: Path) -> None:
    """Fail before writing anything when ``path`` cannot receive a saved model: an existing file or folder
    that is not a saved model (never replaced), or a parent folder that is a file or not writable."""
    if path.exists() and not (path / CONFIG_FILE).is_file():
        kind = "a folder" if path.is_dir() else "a file"
        raise FileExistsError(f"{path} exists and is {kind}, not a saved tsforecast model; refusing to replace it "
                              "(choose another path, or remove it first)")
    parent = path.parent
    for folder in (parent, *parent.parents):  # the nearest existing ancestor must be a writable folder
        if folder.exists():
            if not folder.is_dir():
                raise NotADirectoryError(f"cannot save to {path}: {folder} is a file, not a folder")
            if not os.access(folder, os.W_OK | os.X_OK):
                raise PermissionError(f"cannot save to {path}: no permission to write in {folder}; "
                                      "choose a folder you can write to")
            break
    parent.mkdir(parents=True, exist_ok=True)


def _read_config(path: Path) -> dict:
    """config.json as a dict; a missing folder/file or unreadable JSON gets one error naming the file."""
    config_path, weights_path = path / CONFIG_FILE, path / WEIGHTS_FILE
    missing = [p.name for p in (config_path, weights_path) if not p.is_file()]
    if missing:
        what = "does not exist" if not path.exists() else "is not a folder" if not path.is_dir() else \
            f"lacks {' and '.join(missing)}"
        raise FileNotFoundError(f"{path} is not a saved tsforecast model: it {what} (a saved model is a folder "
                                f"with {CONFIG_FILE} and {WEIGHTS_FILE}, written by Forecaster.save)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except UnicodeDecodeError as err:
        raise ValueError(f"{config_path} is not text ({err.reason} at byte {err.start}): the file is corrupt; "
                         "re-save the model") from None
    except json.JSONDecodeError as err:
        raise ValueError(f"{config_path} is not valid JSON ({err.msg} at line {err.lineno} column {err.colno}): "
                         "the file is truncated or was edited; re-save the model") from None
    if not isinstance(config, dict):
        raise ValueError(f"{config_path} holds a JSON {type(config).__name__}, not a saved model's settings; "
                         "re-save the model")
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{config_path} has format version {config.get('format_version')!r}; this tsforecast "
                         f"reads {FORMAT_VERSION}")
    return config


def _read_weights(path: Path) -> dict[str, torch.Tensor]:
    weights_path = path / WEIGHTS_FILE
    try:
        return load_file(str(weights_path))
    except SafetensorError as err:
        raise ValueError(f"{weights_path} is truncated or not a safetensors file ({err}); re-save the model") from None


def _describe_mismatch(saved: dict, expected: dict, limit: int = 3) -> str:
    """A short account of how two state dicts differ: the first few missing, unexpected and mis-shaped keys."""
    missing = sorted(set(expected) - set(saved))
    unexpected = sorted(set(saved) - set(expected))
    misshaped = [f"{k} (saved {tuple(saved[k].shape)}, expected {tuple(expected[k].shape)})"
                 for k in sorted(set(saved) & set(expected)) if saved[k].shape != expected[k].shape]
    parts = [f"{len(keys)} {label}: {', '.join(keys[:limit])}{', ...' if len(keys) > limit else ''}"
             for label, keys in (("missing", missing), ("unexpected", unexpected), ("mis-shaped", misshaped)) if keys]
    return "; ".join(parts)


def load_forecaster(path, device: str | None = None):
    """The Forecaster saved in ``path``. A missing file raises FileNotFoundError; a corrupt or edited one
    (truncated weights, broken JSON, a config naming another model or shape) a ValueError naming the file."""
    from .forecaster import Forecaster, resolve_device

    path = Path(path)
    config_path, weights_path = path / CONFIG_FILE, path / WEIGHTS_FILE
    config = _read_config(path)
    tensors = _read_weights(path)

    # Everything read from config.json: a missing key or a wrong value means the file was damaged or edited.
    try:
        params = {k: _from_json(v) for k, v in config["params"].items()}
        model = params.pop("model")
        spec = build_spec(model["name"], {k: _from_json(v) for k, v in model["params"].items()})
        forecaster = Forecaster(model=model["name"] if model.get("by_name") else spec, **params)
        forecaster._validate_params()
        state = config["state"]
        forecaster.columns_ = state["columns"]
        # models saved before panels and covariates: one wide series, its columns all targets
        roles = state.get("roles") or {"targets": state["columns"], "past": [], "future": []}
        forecaster.roles_ = Roles(tuple(roles["targets"]), tuple(roles["past"]), tuple(roles["future"]))
        if list(forecaster.roles_.targets) != list(forecaster.columns_):
            raise ValueError(f"the columns {forecaster.columns_} are not the targets {list(forecaster.roles_.targets)}")
        forecaster.frame_columns_ = state.get("frame_columns", state["columns"])
        forecaster.long_ = bool(state.get("long", False))
        forecaster.layout_ = forecaster._layout()
        forecaster.series_ids_ = [_from_json(i) for i in state.get("series_ids", [None])]
        n_series = len(forecaster.series_ids_)
        forecaster.feature_names_in_ = np.asarray(forecaster.frame_columns_, dtype=object)
        forecaster.n_features_in_ = len(forecaster.frame_columns_)
        forecaster.freq_ = state["freq"]
        forecaster.freq_given_ = state["freq_given"]
        # models saved before calendars were recorded had tz-naive timestamps
        forecaster.calendar_ = Calendar.from_state(state.get("calendar") or {"freq": state["freq"]})
        forecaster.time_feature_freq_ = state["time_feature_freq"]
        forecaster.scalers_ = [scaler_from_state(s) for s in state["scalers"]] if "scalers" in state else \
            [scaler_from_state(state["scaler"])]
        # models saved before MASE's scale was recorded: unknown (NaN), evaluate says to refit
        mase = state.get("mase_scales") or [state.get("mase_scale", [np.nan] * len(state["columns"]))]
        forecaster.mase_scales_ = np.asarray(mase, dtype=np.float64)
        forecaster.mase_season_ = state.get("mase_season")
        # models saved before the season was recorded: no model of theirs read it, so the default does
        forecaster.dims_ = Dims(forecaster.roles_.n_inputs, forecaster.lookback, forecaster.horizon,
                                state["n_time_features"], state.get("season_length", Dims.season_length),
                                n_targets=state.get("n_targets"), n_future_covariates=state.get("n_future_covariates", 0))
        forecaster.training_ = TrainingResult(**state["training"])
        forecaster.n_epochs_ = forecaster.training_.epochs
        forecaster.fit_seconds_ = state["fit_seconds"]
        history_indexes = [pd.DatetimeIndex(i) for i in state["history_indexes"]] if "history_indexes" in state \
            else [forecaster.calendar_.internal(pd.DatetimeIndex(state["history_index"]))]
        n_columns = len(forecaster.roles_.columns)
        if len(forecaster.scalers_) != n_series or len(history_indexes) != n_series or len(forecaster.mase_scales_) != n_series:
            raise ValueError(f"{n_series} series but {len(forecaster.scalers_)} scalers, {len(history_indexes)} histories "
                             f"and {len(forecaster.mase_scales_)} MASE scales")
        for scaler in forecaster.scalers_:
            for name in ("mean_", "scale_"):
                if len(getattr(scaler, name)) != n_columns:
                    raise ValueError(f"the scaler has {len(getattr(scaler, name))} {name[:-1]} values for "
                                     f"{n_columns} columns")
        for history_index in history_indexes:
            if len(history_index) != forecaster.lookback:
                raise ValueError(f"history_index has {len(history_index)} timestamps for lookback {forecaster.lookback}")
        # models saved before intervals were calibrated: none (predict(level=...) says to refit)
        intervals = state.get("intervals")
        forecaster.intervals_ = None if intervals is None else \
            ConformalCalibration.from_state(intervals, tensors, forecaster.series_ids_)
        if forecaster.intervals_ is not None and any(s.values.shape[1] != n_columns for s in forecaster.intervals_.series):
            raise ValueError(f"the calibration rows do not have {n_columns} columns")
        spec.check(forecaster.dims_)
        network = spec.build(forecaster.dims_)
        # an LLM model's frozen backbone is rebuilt, not stored: it must be the one it was trained with
        check_backbone(state.get("backbone"), getattr(network, "backbone_reference", None))
    except BackboneMismatchError:
        raise  # its message says what differs and what to do; not "damaged, re-save"
    except (KeyError, TypeError, ValueError, AttributeError) as err:
        detail = f"missing key {err.args[0]!r}" if isinstance(err, KeyError) else str(err)
        raise ValueError(f"{config_path} is damaged or was edited ({detail}); re-save the model") from None

    # model.safetensors must hold exactly the weights of the network config.json describes, and the history.
    weights = {k[len("network."):]: v for k, v in tensors.items() if k.startswith("network.")}
    trainable = getattr(network, "trainable_state_dict", None)
    mismatch = _describe_mismatch(weights, trainable() if trainable is not None else network.state_dict())
    keys = ["history"] if n_series == 1 else [f"history.{i}" for i in range(n_series)]
    histories = [tensors.get(key) for key in keys]
    expected_history = (forecaster.lookback, n_columns)
    for key, history in zip(keys, histories):
        if history is None:
            mismatch = "; ".join(filter(None, [mismatch, f"no {key!r} tensor"]))
        elif tuple(history.shape) != expected_history:
            mismatch = "; ".join(filter(None, [mismatch, f"{key} of shape {tuple(history.shape)}, expected "
                                                        f"{expected_history} (lookback x columns)"]))
    if mismatch:
        raise ValueError(
            f"{weights_path} does not fit the model {config_path} describes ({spec.name!r}, lookback "
            f"{forecaster.lookback}, {n_columns} columns): {mismatch}. One of the files was edited or they "
            "come from different saves; re-save the model"
        )
    network.load_state_dict(weights, strict=trainable is None)

    if device is not None:
        forecaster.device = device
    forecaster.device_ = resolve_device(forecaster.device)
    forecaster.network_ = network.to(forecaster.device_).eval()
    forecaster.model_ = spec
    forecaster.histories_ = [SeriesData(sid, index, history.numpy().astype(np.float64))
                             for sid, index, history in zip(forecaster.series_ids_, history_indexes, histories)]
    return forecaster
