"""Save and load fitted forecasters: a folder with ``config.json`` and ``model.safetensors``.

* ``config.json``: format version, library versions, the Forecaster's params (the model as its
  registry name plus its own params), the fitted state (columns, step, calendar features, scaler
  statistics, training summary) and the index of the stored history.
* ``model.safetensors``: the network's weights (``network.*``) and the last ``lookback`` rows seen
  by ``fit`` (``history``, float64, so ``predict()`` continues exactly where it did). A network with
  ``trainable_state_dict()`` (the LLM models) stores only those weights: its frozen backbone is
  rebuilt from the spec's reference to it (``llm``, ``llm_layers`` in the params; ``backbone`` in the state).

No pickle, so loading runs no code from the file; tensors load on CPU unless a device is asked for.
Writes go to a temporary folder that replaces ``path`` only once complete, so an interrupted save
never leaves a half-written model behind.
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
from safetensors.torch import load_file, save_file

from .data.scaling import scaler_from_state, scaler_state
from .models.base import Dims
from .models.registry import get_model_class
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
    return value


def _from_json(value):
    if isinstance(value, dict) and set(value) == {"__tuple__"}:
        return tuple(_from_json(v) for v in value["__tuple__"])
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
    history = forecaster.history_
    config = {
        "format_version": FORMAT_VERSION,
        "tsforecast_version": __version__,
        "torch_version": torch.__version__,
        "params": {k: _jsonable(v) for k, v in params.items()},
        "state": {
            "columns": forecaster.columns_,
            "freq": forecaster.freq_,
            "freq_given": forecaster.freq_given_,
            "time_feature_freq": forecaster.time_feature_freq_,
            "n_time_features": forecaster.dims_.n_time_features,
            "scaler": scaler_state(forecaster.scaler_),
            "history_index": [str(t) for t in history.index],
            "training": asdict(forecaster.training_),
            "fit_seconds": forecaster.fit_seconds_,
            "backbone": getattr(forecaster.network_, "backbone_reference", None),
        },
    }
    trainable = getattr(forecaster.network_, "trainable_state_dict", None)
    weights = trainable() if trainable is not None else forecaster.network_.state_dict()
    tensors = {f"network.{k}": v.detach().cpu().contiguous() for k, v in weights.items()}
    tensors["history"] = torch.from_numpy(np.ascontiguousarray(history.to_numpy(dtype=np.float64)))

    path.parent.mkdir(parents=True, exist_ok=True)
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
            if not (path / CONFIG_FILE).is_file():
                raise FileExistsError(f"{path} exists and is not a saved tsforecast model; refusing to replace it")
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old.", dir=path.parent))
            os.replace(path, old / "model")
            os.replace(tmp, path)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, path)
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def load_forecaster(path, device: str | None = None):
    from .forecaster import Forecaster, resolve_device

    path = Path(path)
    config_path, weights_path = path / CONFIG_FILE, path / WEIGHTS_FILE
    if not config_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(f"{path} is not a saved tsforecast model (expected {CONFIG_FILE} and {WEIGHTS_FILE})")
    config = json.loads(config_path.read_text())
    if config.get("format_version") != FORMAT_VERSION:
        raise ValueError(f"{path} has format version {config.get('format_version')}; this tsforecast reads {FORMAT_VERSION}")
    params = {k: _from_json(v) for k, v in config["params"].items()}
    model = params.pop("model")
    spec = get_model_class(model["name"])(**{k: _from_json(v) for k, v in model["params"].items()})
    if device is not None:
        params["device"] = device
    forecaster = Forecaster(model=model["name"] if model.get("by_name") else spec, **params)
    state = config["state"]
    tensors = load_file(str(weights_path))

    forecaster.device_ = resolve_device(forecaster.device)
    forecaster.columns_ = state["columns"]
    forecaster.feature_names_in_ = np.asarray(state["columns"], dtype=object)
    forecaster.n_features_in_ = len(state["columns"])
    forecaster.freq_ = state["freq"]
    forecaster.freq_given_ = state["freq_given"]
    forecaster.time_feature_freq_ = state["time_feature_freq"]
    forecaster.scaler_ = scaler_from_state(state["scaler"])
    forecaster.dims_ = Dims(len(state["columns"]), forecaster.lookback, forecaster.horizon, state["n_time_features"])
    network = spec.build(forecaster.dims_)
    weights = {k[len("network."):]: v for k, v in tensors.items() if k.startswith("network.")}
    trainable = getattr(network, "trainable_state_dict", None)
    if trainable is not None:
        expected = set(trainable())
        if set(weights) != expected:
            raise ValueError(f"{path} does not match the model it names: weights {sorted(set(weights) ^ expected)[:5]} "
                             "are missing or unexpected")
        network.load_state_dict(weights, strict=False)
    else:
        network.load_state_dict(weights)
    forecaster.network_ = network.to(forecaster.device_).eval()
    forecaster.model_ = spec
    forecaster.training_ = TrainingResult(**state["training"])
    forecaster.n_epochs_ = forecaster.training_.epochs
    forecaster.fit_seconds_ = state["fit_seconds"]
    forecaster.history_ = pd.DataFrame(tensors["history"].numpy(), index=pd.DatetimeIndex(state["history_index"]),
                                       columns=state["columns"])
    return forecaster
