"""The sklearn estimator: validation -> scaling -> windows -> training -> rollout -> DataFrame."""
from __future__ import annotations

import time
import warnings
from types import SimpleNamespace

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from .data.calendar import Calendar, check_same_calendar
from .data.panel import (Panel, PanelLayout, Roles, SeriesData, as_label_tuple, covariate_times, ids_text, read_long,
                         resolve_roles, to_output, warn_skipped)
from .data.scaling import fit_scaler
from .data.splits import check_window_rows, holdout_split
from .data.tensors import encode
from .data.timefeatures import feature_names
from .data.timefeatures import time_features as calendar_features
from .data.windows import Windows
from .intervals import ConformalCalibration, calibration_start, check_levels, check_method, interval_frame
from .metrics import IntervalAccumulator, WindowScorer, resolve_season, seasonal_naive_scale
from .models.base import Dims, ModelSpec
from .models.registry import get_model_class, resolve_model
from .params import PARAMETER_CONSTRAINTS, check_training_settings, validate_params
from .precision import autocast, precision_label, warn_if_slow
from .rollout import autoregressive_forecast, padded_length
from .training import TrainingConfig, TrainingResult, default_eval_batch_size, train
from .validation import check_frame, check_positive_int

# Training settings used when neither the Forecaster nor the model family sets them: the LTSF
# reference scripts' defaults (Time-Series-Library run.py).
DEFAULT_TRAINING = {"max_epochs": 10, "batch_size": 32, "learning_rate": 1e-4, "patience": 3, "lr_schedule": "halving"}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        resolved = torch.device(device)
    except (RuntimeError, TypeError) as err:
        raise ValueError(f"device={device!r} is not a torch device; use 'auto', 'cpu' or 'cuda'") from err
    if resolved.type == "cuda" and not torch.cuda.is_available():
        raise ValueError(f"device={device!r} but CUDA is not available here; use device='auto' or 'cpu'")
    return resolved


class Forecaster(BaseEstimator):
    """Forecast one multivariate time series or a panel of many, with optional covariates.

    Wide input: a DataFrame (or a Series: one channel, named after the Series or ``"y"``) indexed by a
    DatetimeIndex, tz-naive or tz-aware, or a PeriodIndex; column labels are strings or integers and are
    kept as they are. ``predict`` then returns a DataFrame whose index is of the input's kind: the same
    time zone (sub-daily steps run in UTC inside, so DST days of 23 or 25 hours are regular; daily and
    longer steps keep local midnight) or a PeriodIndex of the same frequency.

    Long input (a panel, neuralforecast's format): a DataFrame with the columns ``id_col``, ``time_col``,
    the targets and the covariates, one row per series and step; series may differ in length and start
    date and share one frequency. One global model is trained on the windows of every series, each series
    scaled on its own training rows; ``predict`` returns a long frame, each series forecast from its own
    last date (:mod:`tsforecast.data.panel`).

    Parameters
    ----------
    model : str or ModelSpec
        A registry name (``tsforecast.list_models()``) or a spec such as ``ARNet(ar_reg=1.0)``, whose
        hyperparameters are then nested params (``model__ar_reg``).
    lookback : int
        Number of past steps each forecast sees.
    horizon : int
        Number of steps to forecast (the model is trained for it; ``predict`` can roll out further).
    max_epochs, batch_size, learning_rate, patience, lr_schedule :
        Training settings; ``None`` takes the model family's defaults, then the LTSF reference
        defaults (10 epochs, batch 32, lr 1e-4, patience 3, lr halved every epoch from the third).
        On short series a default batch size is capped so an epoch has at least 16 optimizer steps
        (``windows // 16``; never on the benchmark datasets); an explicit ``batch_size`` is kept,
        with a warning when it gives fewer. ``training_.batch_size`` and ``training_.steps`` record
        what was used (:mod:`tsforecast.training`).
    validation_fraction : float
        Share of the rows ``fit`` holds out (from the end) for early stopping when no ``val_df`` is
        given. Models without gradient training (``naive``, ``ar``) fit on all rows; for them it is the
        share of rows whose windows calibrate the conformal intervals (:mod:`tsforecast.intervals`).
    freq : str or None
        ``None`` infers the step from the index (anchors included: ``"ME"``, ``"W-SAT"``, ``"QS-OCT"``, ``"B"``)
        and rejects irregular or duplicate timestamps, naming the gaps. A pandas frequency takes the rows as
        consecutive steps of that size (a few duplicates or gaps tolerated, as in the Weather file); it must
        agree with the timestamps (most steps exactly one ``freq`` apart), or fit raises naming both steps.
        Forecast dates always continue the data's own calendar.
    time_features : str or None
        Calendar features for models that use them: ``"auto"`` (from the data's step), a pandas
        frequency selecting the feature set (the LTSF reference uses ``"h"`` for every dataset), or None.
    season_length : int or None
        Seasonal period of MASE (``evaluate(X, units="original")``); None takes it from the data's step:
        ``tsforecast.data.calendar.seasonal_period(freq)`` (hourly 24, daily 7, weekly 52, monthly 12,
        quarterly 4, yearly 1).
    interval_method : {"split", "adaptive"}
        How ``predict(level=...)`` and ``evaluate(X, level=...)`` build conformal prediction intervals
        from the calibration windows that ``fit`` scores (the validation windows; see
        :mod:`tsforecast.intervals`): ``"split"`` a static quantile of their errors per step and
        channel; ``"adaptive"`` quantile trackers at several step sizes, weighted by their recent
        pinball losses, that keep updating from forecasts whose targets have since been observed, so
        coverage holds under drift.
    id_col, time_col : str
        The series id and time columns of a long frame (``"unique_id"``, ``"ds"``); a frame with an
        ``id_col`` column is read as long.
    target_cols : list or None
        The columns to forecast; None: every numeric column that is not id, time or a covariate.
    future_covariates : list or None
        Columns known in advance for the forecast steps (prices, promotions, holidays, weather
        forecasts): inputs over the look-back and the forecast steps, required at ``predict``
        (``future_covariates=``, a frame in the fit layout) and present in ``evaluate``'s data. They
        reach the network as extra mark columns (after the calendar features); models that use them:
        ``ar`` (ARX, as statsmodels ``AutoReg(exog=...)``), ``arnet``, ``itransformer``, ``smamba``,
        ``autoformer``, ``informer``.
    past_covariates : list or None
        Columns observed only up to the forecast origin (visits, sensor readings): extra input channels,
        never forecast or scored; a rollout beyond one network output holds their last value. Models that
        use them: ``itransformer``, ``smamba``, ``autoformer``, ``informer`` (they mix channels). A role the
        model does not use is an error at fit.
    missing : {"raise", "mask"}
        ``"raise"``: NaN values and gaps in the timestamps are errors naming the fix. ``"mask"``: NaN
        targets and gaps (inserted as NaN rows) are allowed; no missing target enters a loss or metric;
        missing inputs carry the last observation forward (the series' training mean before the first);
        a gap in the last look-back at ``predict`` is reported in a warning.
    random_state : int or None
        Seed (0 to 2**32 - 1) for weight initialization and shuffling; the global RNGs are left
        untouched. None draws a fresh seed per fit. A numpy RandomState or Generator is not accepted.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
    precision : {"fp32", "bf16", "auto"}
        Compute precision of every forward pass (training, validation, ``predict``, ``evaluate``):
        ``"fp32"`` (default, no autocast); ``"bf16"``: ``torch.autocast`` to bfloat16, parameters,
        gradients, losses and metrics staying fp32 (it works on any device, but without bf16 matrix units
        it is emulated and slow: a warning says so); ``"auto"``: bf16 where the device has bf16 units (CUDA,
        or a CPU with AMX or AVX512-BF16, detected at run time), else fp32. An LLM model's own ``llm_dtype``
        still applies inside the LLM. ``training_.precision`` records what was used
        (:mod:`tsforecast.precision`).
    verbose : int
        0 silent, 1 a progress bar per fit, 2 also keep the bars.

    Attributes (after ``fit``)
    --------------------------
    network_ : the trained torch module;  scalers_ : per series, the StandardScaler fitted on its training
    rows (targets, past covariates, future covariates; ``scaler_`` for a one-series fit);  series_ids_ :
    the series' ids (``[None]`` for a wide frame);  roles_ : the columns' roles;  columns_, freq_ : the
    target columns and the step;  history_ : the last ``lookback`` rows seen (``histories_`` per series);
    training_ : losses and timings per epoch;  n_epochs_ : epochs run;  fit_seconds_ : wall time of fit;
    coef_, intercept_ : AR coefficients (channels x lags, lag 1 first) and intercepts, in the data's
    units, for linear AR models (``exog_coef_`` for ARX's future covariates);  mase_scales_, mase_season_ : MASE's denominator per channel (the
    in-sample seasonal-naive MAE of the training rows, data units) and the season it used (lag 1 when
    the training rows are too few for one seasonal difference);  intervals_ : the conformal
    calibration (calibration rows and their windows' scaled absolute errors per horizon step and channel).
    """

    # What each parameter accepts, checked at the start of fit (sklearn's declarative validation).
    _parameter_constraints = PARAMETER_CONSTRAINTS

    def __init__(self, model="ar", lookback=96, horizon=96, *, max_epochs=None, batch_size=None,
                 learning_rate=None, patience=None, lr_schedule=None, validation_fraction=0.1, freq=None,
                 time_features="auto", season_length=None, interval_method="split", id_col="unique_id",
                 time_col="ds", target_cols=None, future_covariates=None, past_covariates=None, missing="raise",
                 random_state=None, device="auto", precision="fp32", verbose=0):
        self.model = model
        self.lookback = lookback
        self.horizon = horizon
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.patience = patience
        self.lr_schedule = lr_schedule
        self.validation_fraction = validation_fraction
        self.freq = freq
        self.time_features = time_features
        self.season_length = season_length
        self.interval_method = interval_method
        self.id_col = id_col
        self.time_col = time_col
        self.target_cols = target_cols
        self.future_covariates = future_covariates
        self.past_covariates = past_covariates
        self.missing = missing
        self.random_state = random_state
        self.device = device
        self.precision = precision
        self.verbose = verbose

    # ------------------------------------------------------------------ sklearn plumbing
    def set_params(self, **params):
        # `model__x` on a Forecaster whose model is a registry name: swap in the default spec first so
        # nested params work the same whichever way the model was given.
        if isinstance(self.model, str) and any(k.startswith("model__") for k in params) and "model" not in params:
            self.model = get_model_class(self.model)()
        return super().set_params(**params)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        tags.non_deterministic = self.random_state is None
        return tags

    def _check_fitted(self):
        if not hasattr(self, "network_"):
            raise NotFittedError("this Forecaster is not fitted yet; call fit(df) before predict, score or save")

    # ------------------------------------------------------------------ settings
    def _spec(self) -> ModelSpec:
        return resolve_model(self.model)

    def _training_config(self, spec: ModelSpec) -> TrainingConfig:
        merged = dict(DEFAULT_TRAINING)
        merged.update(spec.training_defaults)
        merged.update({key: getattr(self, key) for key in DEFAULT_TRAINING if getattr(self, key) is not None})
        # The Forecaster's own settings passed _validate_params; this also holds the family's defaults to them.
        check_training_settings(merged, f"model {spec.name!r} (its training_defaults merged with the Forecaster's)")
        return TrainingConfig(**merged, verbose=self.verbose, cap_batch=self.batch_size is None,
                              precision=self.precision)

    def _validate_params(self):
        """sklearn's check of ``_parameter_constraints`` (see :mod:`tsforecast.params`), plus a hint to fix."""
        validate_params(self)

    def _check_params(self) -> ModelSpec:
        self._validate_params()
        return self._spec()

    def _mark_freq(self, data_freq: str, spec: ModelSpec) -> str | None:
        if not spec.uses_time_features or self.time_features in (None, False):
            return None
        return data_freq if self.time_features == "auto" else self.time_features

    # ------------------------------------------------------------------ reading data
    def _layout(self) -> PanelLayout:
        target_cols = self.target_cols
        return PanelLayout(id_col=self.id_col, time_col=self.time_col,
                           target_cols=None if target_cols is None else as_label_tuple(target_cols, "target_cols"),
                           future_covariates=as_label_tuple(self.future_covariates, "future_covariates"),
                           past_covariates=as_label_tuple(self.past_covariates, "past_covariates"))

    def _read(self, X, what: str, fit: bool = False, min_rows: int = 1, rows_needed_for: str = "") -> Panel:
        """``X`` (wide or long) as a :class:`Panel`; after fit, checked against the fitted layout, columns
        and calendar."""
        layout = self._layout() if fit else self.layout_
        freq = self.freq if fit else self.freq_given_
        long = layout.is_long(X)
        if not fit and long != self.long_:
            if long:
                raise ValueError(f"{what} is a long frame (it has the id column {layout.id_col!r}) but the forecaster "
                                 "was fitted on a wide frame; pass a wide frame with a DatetimeIndex and the columns "
                                 f"{self.frame_columns_}")
            raise ValueError(f"{what} has no id column {layout.id_col!r}, but the forecaster was fitted on a long frame "
                             f"(columns {layout.id_col!r}, {layout.time_col!r}, {self.roles_.columns}); pass one like it")
        if long:
            roles, series, calendar = read_long(X, layout, freq, self.missing, what, None if fit else self.roles_)
        else:
            frame = check_frame(X, min_rows=min_rows, freq=freq, columns=None if fit else self.frame_columns_,
                                what=what, rows_needed_for=rows_needed_for, missing=self.missing)
            roles = resolve_roles(frame.columns, layout, what, dict.fromkeys(frame.columns, True)) if fit else self.roles_
            order = [frame.columns.index(c) for c in roles.columns]
            series, calendar = [SeriesData(None, frame.index, frame.values[:, order])], frame.calendar
            if fit:
                self.frame_columns_ = frame.columns
        if not fit:
            check_same_calendar(calendar, self.calendar_, series[-1].index[-1], what)
        return Panel(series, roles, calendar, long, layout)

    def _check_roles(self, spec: ModelSpec, roles: Roles) -> None:
        """A covariate role the model family does not use is an error, never silently ignored."""
        from .models.registry import MODELS

        for role, given, flag in (("future_covariates", roles.future, "supports_future_covariates"),
                                  ("past_covariates", roles.past, "supports_past_covariates")):
            if given and not getattr(spec, flag):
                able = sorted(name for name, cls in MODELS.items() if getattr(cls, flag))
                raise ValueError(f"model {spec.name!r} does not use {role} ({list(given)}); models that do: "
                                 f"{', '.join(able)}; or leave {role}=None")

    def _series_number(self, ids: list, what: str) -> list[int]:
        """Positions of ``ids`` among the fitted series; an unknown id is an error naming it."""
        known = self._series_position
        unknown = [i for i in ids if i not in known]
        if unknown:
            raise ValueError(f"{what} has series the forecaster was not fitted on: {ids_text(unknown)}; fit on them "
                             f"first (known series: {ids_text(self.series_ids_)})")
        return [known[i] for i in ids]

    @property
    def _series_position(self) -> dict:
        return {sid: i for i, sid in enumerate(self.series_ids_)}

    # ------------------------------------------------------------------ per-series state
    def _one_series_state(self, name: str, plural: str):
        """A per-series attribute's only entry: ``scaler_`` and ``mase_scale_`` exist for a one-series fit."""
        values = self.__dict__.get(plural)
        if values is None:
            raise AttributeError(f"{name}: not fitted")
        if len(values) != 1:
            raise AttributeError(f"{name} exists for one series; this forecaster has {len(values)} (see {plural})")
        return values[0]

    @property
    def scaler_(self):
        """The StandardScaler of the one series (a wide fit): its targets, past and future covariates."""
        return self._one_series_state("scaler_", "scalers_")

    @scaler_.setter
    def scaler_(self, scaler):
        self.scalers_ = [scaler]

    @property
    def mase_scale_(self) -> np.ndarray:
        return self._one_series_state("mase_scale_", "mase_scales_")

    @mase_scale_.setter
    def mase_scale_(self, scale):
        self.mase_scales_ = np.asarray(scale, dtype=np.float64)[None]

    @property
    def history_(self) -> pd.DataFrame:
        """The last ``lookback`` rows seen by fit, in the input's layout (targets, then covariates)."""
        self._check_fitted()
        blocks = [(h.id, self.calendar_.external(h.index),
                   pd.DataFrame(h.values, columns=self.roles_.columns, index=self.calendar_.external(h.index)))
                  for h in self.histories_]
        return to_output(blocks, self.long_, self.layout_.id_col, self.layout_.time_col)

    def _target_scaler(self, number: int):
        """Mean and scale of series ``number``'s targets (what unscales a forecast)."""
        scaler, n = self.scalers_[number], len(self.columns_)
        return SimpleNamespace(mean_=scaler.mean_[:n], scale_=scaler.scale_[:n])

    def _marks_fn(self, calendar: Calendar, network=None):
        """The calendar features of internal timestamps (local wall-clock times), or the network's own
        ``time_marks(index, freq)`` hook; None when the model reads none."""
        if self.time_feature_freq_ is None:
            return None
        custom = getattr(self.network_ if network is None else network, "time_marks", None)

        def marks(index):
            local = calendar.wall_clock(index)
            if custom is not None:
                return custom(local, self.freq_).to(self.device_)
            return torch.as_tensor(calendar_features(local, self.time_feature_freq_), device=self.device_)
        marks.elementwise = custom is None  # calendar features describe each timestamp on its own
        return marks

    def _encode(self, series: list[SeriesData], numbers: list[int], calendar: Calendar, extra: int = 0,
                future_values=None, network=None):
        return encode(series, [self.scalers_[n] for n in numbers], self.roles_, calendar,
                      self._marks_fn(calendar, network), self.device_, extra, future_values)

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, val_df=None):
        """Fit on ``X``: a wide frame (DataFrame or Series with a DatetimeIndex or PeriodIndex, one column
        per channel) or a long frame (columns ``id_col``, ``time_col``, targets, covariates; see
        :mod:`tsforecast.data.panel`). One global model is trained on the windows of every series.

        ``val_df``: validation data for early stopping in the same layout, starting ``lookback`` rows
        before its first target (as the protocol's split does). Without it, the last
        ``validation_fraction`` of each series is held out (gradient-trained models only).
        """
        started = time.perf_counter()
        # A refit that fails part-way must not leave the previous fit's network behind new columns or scaler.
        self.__dict__.pop("network_", None)
        spec = self._check_params()
        config = self._training_config(spec)  # checked for every model: a bad setting is never silently ignored
        panel = self._read(X, "fit data", fit=True, min_rows=self.lookback + self.horizon,
                           rows_needed_for=f"lookback={self.lookback} + horizon={self.horizon}; lower lookback "
                                           "or horizon, or give more rows")
        roles = panel.roles
        self._check_roles(spec, roles)
        if panel.long:
            short = [s.id for s in panel.series if len(s) < self.lookback + self.horizon]
            warn_skipped(short, f"fewer than lookback + horizon = {self.lookback + self.horizon} rows, too short for "
                                "one window; lower lookback or horizon to include them")
            panel.series = [s for s in panel.series if len(s) >= self.lookback + self.horizon]
            if not panel.series:
                raise ValueError(f"no series of the fit data has lookback + horizon = {self.lookback + self.horizon} "
                                 "rows; lower lookback or horizon, or give longer series")
        self.layout_, self.roles_, self.long_ = panel.layout, roles, panel.long
        if panel.long:
            self.frame_columns_ = roles.columns
        self.freq_given_ = None if self.freq is None else panel.freq  # as a string, whatever form it came in
        self.freq_ = panel.freq
        self.calendar_ = panel.calendar
        self.columns_ = list(roles.targets)
        self.series_ids_ = panel.ids
        self.feature_names_in_ = np.asarray(self.frame_columns_, dtype=object)
        self.n_features_in_ = len(self.frame_columns_)
        self.device_ = resolve_device(self.device)
        warn_if_slow(self.precision, self.device_)
        self.time_feature_freq_ = self._mark_freq(panel.freq, spec)
        n_marks = 0 if self.time_feature_freq_ is None else len(feature_names(self.time_feature_freq_))
        season = resolve_season(self.season_length, panel.freq)  # for seasonal models (snaive) and MASE
        dims = Dims(n_channels=roles.n_inputs, lookback=self.lookback, horizon=self.horizon,
                    n_time_features=n_marks + len(roles.future), season_length=season,
                    n_targets=len(roles.targets) if roles.past else None, n_future_covariates=len(roles.future))
        spec.check(dims)
        val_series = None
        if val_df is not None:
            val = self._read(val_df, "val_df", min_rows=self.lookback + 1,
                             rows_needed_for="lookback + 1: one validation window")
            val_series = {s.id: s for s in val.series}
            self._series_number(list(val_series), "val_df")

        seed = int(self.random_state) if self.random_state is not None else int(np.random.SeedSequence().entropy % 2**31)
        cuda_devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed)
            # Built before the hold-out, which depends on its output length; the scaler draws no random numbers,
            # so the weights are the same as when it was built after the scaler.
            network = spec.build(dims).to(self.device_)
            self._initialize_network(network)
            train_part, val_part = self._holdout(panel, spec, network.output_len, val_series)
            n_targets = len(roles.targets)
            self.scalers_ = []
            for item in train_part:
                try:
                    self.scalers_.append(fit_scaler(item.values, roles.columns))
                except ValueError as err:  # a panel's error must say which series
                    if item.id is None:
                        raise
                    raise ValueError(f"series {item.id!r}: {err}; or leave that series out "
                                     f"(df[df[{self.id_col!r}] != {item.id!r}])") from None
            scales = [seasonal_naive_scale(s.values[:, :n_targets], season) for s in train_part]
            self.mase_scales_ = np.stack([scale for scale, _ in scales])
            self.mase_season_ = scales[0][1]
            self.training_ = TrainingResult(precision=precision_label(network, self.device_, self.precision))
            numbers = list(range(len(train_part)))
            if spec.fit_mode == "closed_form":
                scaled = [self.scalers_[n].transform(s.values) for n, s in zip(numbers, train_part)]
                spec.fit_closed_form(network, [v[:, :roles.n_inputs] for v in scaled],
                                     [v[:, roles.n_inputs:] for v in scaled] if roles.future else None)
            elif spec.fit_mode == "gradient":
                if not panel.long:
                    check_window_rows(len(train_part[0]), self.lookback, network.output_len, "the training data")
                    if val_part:
                        check_window_rows(len(val_part[0][1]), self.lookback, network.output_len, "val_df")
                # An optional network attribute thins the training windows (a compute budget knob).
                train_windows = self._encode(train_part, numbers, self.calendar_, network=network).windows(
                    self.lookback, network.output_len, n_targets, stride=getattr(network, "train_stride", 1))
                if len(train_windows) == 0:
                    raise ValueError(f"no training window: every series is shorter than lookback + output length = "
                                     f"{self.lookback + network.output_len} rows, or its targets are all missing")
                val_windows = None
                if val_part:
                    val_windows = self._encode([s for _, s in val_part], [n for n, _ in val_part], self.calendar_,
                                               network=network).windows(self.lookback, network.output_len, n_targets)
                generator = torch.Generator().manual_seed(seed)
                self.training_ = train(network, train_windows, val_windows, config, generator)
            network.eval()
        self.network_ = network
        self.model_ = clone(spec)  # the spec as fitted, safe from later set_params on self.model
        self.dims_ = dims
        self.n_epochs_ = self.training_.epochs
        val_by_number = dict(val_part)
        self.histories_ = []
        for number, item in enumerate(panel.series):
            later = val_by_number.get(number)
            last = later if later is not None and later.index[-1] > item.index[-1] else item
            self.histories_.append(last.tail_from(len(last) - self.lookback))
        self._calibrate(panel, val_by_number)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    def _initialize_network(self, network) -> None:
        """Starting weights of the freshly built network, before training: the default keeps its random
        initialization; a pretrained forecaster loads its shipped adapter (:mod:`tsforecast.pretrained`)."""

    def _holdout(self, panel: Panel, spec: ModelSpec, output_len: int, val_series: dict | None):
        """Each series' training rows, and ``(series number, validation rows)`` of those that have some:
        from ``val_df``, else the last ``validation_fraction`` of each series (gradient-trained models).
        A series of a panel too short for a hold-out trains on all its rows; one wide series gets the
        error that says what fits."""
        train_part, val_part = [], []
        for number, item in enumerate(panel.series):
            if val_series is not None:
                train_part.append(item)
                if item.id in val_series:
                    val_part.append((number, val_series[item.id]))
            elif spec.fit_mode == "gradient" and self.validation_fraction > 0:
                try:
                    cut = holdout_split(len(item), self.validation_fraction, self.lookback, output_len)
                except ValueError:
                    if not panel.long:
                        raise
                    cut = len(item)
                train_part.append(item.head(cut))
                if cut < len(item):
                    val_part.append((number, item.tail_from(cut - self.lookback)))
            else:
                train_part.append(item)
        return train_part, val_part

    # ------------------------------------------------------------------ conformal intervals
    def _calibrate(self, panel: Panel, val_by_number: dict) -> None:
        """Score the calibration windows (each series' validation rows; else its last
        ``validation_fraction`` of the fit rows, see :mod:`tsforecast.intervals`) at the fitted horizon:
        one no-grad pass."""
        rows = []
        for number, item in enumerate(panel.series):
            val = val_by_number.get(number)
            if val is None or len(val) < self.lookback + self.horizon:
                start = calibration_start(len(item), self.validation_fraction, self.lookback, self.horizon)
                val = item.tail_from(start)
            rows.append(val)
        self.intervals_ = ConformalCalibration(rows, self.horizon)
        self.intervals_.scores_for(self.horizon, self._calibration_scores)

    def _calibration_scores(self, horizon: int) -> np.ndarray:
        """Absolute scaled errors ``(windows, horizon, C)`` of the calibration rows' windows (NaN where a
        target is missing)."""
        cal = self.intervals_
        numbers = self._series_number([s.id for s in cal.series], "the calibration rows")
        usable = [(n, s) for n, s in zip(numbers, cal.series) if len(s) >= self.lookback + horizon]
        if not usable:
            return np.zeros((0, horizon, len(self.columns_)), dtype=np.float32)
        return self._window_errors([s for _, s in usable], [n for n, _ in usable], self.calendar_, horizon)

    def _window_errors(self, series: list[SeriesData], numbers: list[int], calendar: Calendar,
                       horizon: int) -> np.ndarray:
        """Absolute scaled errors ``(windows, horizon, C)`` of every stride-1 window of ``series`` (NaN
        where a target is missing): the conformal scores of those windows."""
        scores = []
        for batch, forecast in self._window_forecasts(series, numbers, calendar, horizon):
            error = (forecast - batch.y).abs()
            if batch.y_observed is not None:
                error = error.masked_fill(~batch.y_observed, float("nan"))
            scores.append(error.cpu().numpy())
        return np.concatenate(scores)

    def _interval_rule(self, levels, horizon: int):
        """For the windows of some data in time order: a function from their scores ``(B, H, C)`` to their
        radii (``(L, H, C)`` for split, ``(B, L, H, C)`` for adaptive), and the tracker (None for split)."""
        if getattr(self, "intervals_", None) is None:
            raise ValueError("this Forecaster has no conformal calibration (it was saved by an older tsforecast); "
                             "refit it to get intervals")
        if check_method(self.interval_method) == "split":
            radii = self.intervals_.split_radii(levels, horizon, self._calibration_scores)
            return (lambda scores: radii), None
        if len(self.series_ids_) > 1:
            raise ValueError("interval_method='adaptive' follows one series in time; this forecaster was fitted on "
                             f"{len(self.series_ids_)} series: use interval_method='split' for a panel")
        tracker = self.intervals_.tracker(levels, horizon, self._calibration_scores)
        return tracker.radii, tracker

    # ------------------------------------------------------------------ predict
    def _contexts(self, X, ids) -> tuple[list[SeriesData], list[int], Calendar, Panel | None]:
        """The last ``lookback`` rows of each series to forecast (of ``X``, else of the data seen by fit),
        their fitted series numbers, their calendar, and ``X`` as read (None without ``X``)."""
        wanted = None
        if ids is not None:
            wanted = list(as_label_tuple(ids, "ids"))
            if not wanted:
                raise ValueError("ids is empty; pass the series to forecast, or ids=None for all of them")
            self._series_number(wanted, "ids")
        if X is None:
            numbers = list(range(len(self.series_ids_))) if wanted is None else self._series_number(wanted, "ids")
            return [self.histories_[n] for n in numbers], numbers, self.calendar_, None
        panel = self._read(X, "predict data", min_rows=self.lookback, rows_needed_for=f"lookback={self.lookback}")
        if wanted is not None:
            absent = [i for i in wanted if i not in panel.ids]
            if absent:
                raise ValueError(f"ids {ids_text(absent)} have no rows in the predict data; add their rows to X, or "
                                 "leave X=None to continue the data seen by fit")
            panel.series = [s for s in panel.series if s.id in wanted]
        numbers = self._series_number(panel.ids, "predict data")
        short = [s.id for s in panel.series if len(s) < self.lookback]
        if short:
            raise ValueError(f"predict data series {ids_text(short)} have fewer than lookback={self.lookback} rows; "
                             "give at least lookback rows per series")
        contexts = [s.tail_from(len(s) - self.lookback) for s in panel.series]
        return contexts, numbers, panel.calendar, panel

    def _warn_context_gaps(self, contexts: list[SeriesData]) -> None:
        n = len(self.columns_)
        gappy = [(c.id, int(np.isnan(c.values[:, :n]).sum())) for c in contexts if np.isnan(c.values[:, :n]).any()]
        if gappy:
            shown = ", ".join(f"{'' if sid is None else repr(sid) + ': '}{count}" for sid, count in gappy[:5])
            warnings.warn(f"{len(gappy)} series have missing target values in their last lookback={self.lookback} "
                          f"rows ({shown}); the forecast reads them filled as missing inputs always are: the last "
                          "observation carried forward (the series' training mean before its first)",
                          UserWarning, stacklevel=3)

    def _future_covariates(self, future_covariates, contexts: list[SeriesData], calendar: Calendar,
                           horizon: int) -> list[np.ndarray] | None:
        """Per series, the future covariates ``(horizon, Kf)`` of its forecast steps, from
        ``future_covariates`` (wide: indexed by time; long: ``id_col``, ``time_col``); an error names the
        missing columns, series or dates."""
        names = list(self.roles_.future)
        if not names:
            if future_covariates is not None:
                raise ValueError("future_covariates was given to predict, but the forecaster was fitted without "
                                 "future covariates; pass Forecaster(future_covariates=[...]) to fit with them")
            return None
        if future_covariates is None:
            raise ValueError(f"this forecaster was fitted with future covariates {names}: predict needs their values "
                             f"for the {horizon} forecast steps, e.g. predict(future_covariates=future_df)")
        if not isinstance(future_covariates, pd.DataFrame):
            raise TypeError(f"future_covariates must be a DataFrame, got {type(future_covariates).__name__}")
        absent = [c for c in names if c not in future_covariates.columns]
        if absent:
            raise ValueError(f"future_covariates lacks the column(s) {absent}; it needs {names}")
        out = []
        layout = self.layout_
        for context in contexts:
            steps = calendar.future(context.index[-1], horizon)
            if self.long_:
                if layout.id_col not in future_covariates.columns or layout.time_col not in future_covariates.columns:
                    raise ValueError(f"future_covariates must be a long frame with columns {layout.id_col!r}, "
                                     f"{layout.time_col!r} and {names}, as the fit data")
                rows = future_covariates[future_covariates[layout.id_col] == context.id]
                index = covariate_times(rows[layout.time_col], calendar, "future_covariates' timestamps",
                                        f"as in the fit data's {layout.time_col!r} column")
                where = f"series {context.id!r}"
            else:
                rows = future_covariates
                index = covariate_times(future_covariates.index, calendar, "future_covariates' index",
                                        "index the frame by the forecast steps' times, as the fit data")
                where = "the forecast"
            values = pd.DataFrame(rows[names].to_numpy(dtype=np.float64), index=index)
            values = values[~values.index.duplicated()].reindex(steps)
            lacking = values.isna().any(axis=1).to_numpy()
            if lacking.any():
                first = calendar.external(steps[lacking][:1])[0]
                raise ValueError(f"future_covariates lacks {int(lacking.sum())} of the {horizon} forecast steps of "
                                 f"{where} (first: {first}); give {names} for every forecast step")
            out.append(values.to_numpy())
        return out

    def predict(self, X=None, horizon=None, level=None, future_covariates=None, ids=None) -> pd.DataFrame:
        """Forecast the ``horizon`` steps (default: the fitted horizon) after the end of each series.

        ``X=None`` continues the data seen by ``fit``; else ``X`` (same layout as fit: wide, or long with
        any of the fitted series) gives the recent rows. ``ids``: forecast only these series. Returns the
        forecasts in the original units in the caller's layout: wide in, wide out (the future timestamps
        as index, continuing ``X``'s calendar in ``X``'s kind of index: time zone, PeriodIndex); long in,
        long out (``id_col``, ``time_col``, targets), each series from its own last date.

        ``future_covariates`` (a forecaster fitted with them): their values at the forecast steps, a frame
        in the fit layout (wide: indexed by time; long: ``id_col``, ``time_col``, covariates). A network
        whose output is longer than ``horizon`` reads the last given value carried forward beyond it.

        ``level`` (percent, e.g. ``[80, 95]``): conformal prediction intervals (:mod:`tsforecast.intervals`).
        Each target's column is followed by its bounds ordered by quantile, as neuralforecast does:
        ``OT, OT-lo-95, OT-lo-80, OT-hi-80, OT-hi-95`` (long layout: ``y-lo-80``...). ``interval_method=
        "adaptive"`` (one series) with an ``X`` first walks the windows of ``X`` whose targets are all in
        ``X`` (one forward pass over them; pass the rows since fit to keep it short), from the state fit
        left, without changing the Forecaster. A horizon beyond the calibrated ones scores the calibration
        rows' windows at that horizon once (fewer windows: ``rows - lookback - horizon + 1``) and caches them.
        """
        self._check_fitted()
        levels = check_levels(level)
        horizon = self.horizon if horizon is None else horizon
        check_positive_int("horizon", horizon)
        contexts, numbers, calendar, panel = self._contexts(X, ids)
        self._warn_context_gaps(contexts)
        n_future = padded_length(horizon, self.network_.output_len)
        future_values = self._future_covariates(future_covariates, contexts, calendar, horizon)
        encoded = self._encode(contexts, numbers, calendar, extra=n_future, future_values=future_values)
        rows = self.lookback + n_future
        x = encoded.values.view(len(contexts), rows, -1)[:, :self.lookback]
        x_mark = future_mark = None
        if encoded.marks is not None:
            marks = encoded.marks.view(len(contexts), rows, -1)
            x_mark, future_mark = marks[:, :self.lookback], marks[:, self.lookback:]
        with self._autocast():
            scaled = autoregressive_forecast(self.network_, x, x_mark, future_mark, horizon, len(self.columns_))
        scaled = scaled.double().cpu().numpy()
        radii = None
        if levels:
            radii = self._predict_radii(levels, horizon, panel)
        blocks = []
        for i, (context, number) in enumerate(zip(contexts, numbers)):
            future = calendar.external(calendar.future(context.index[-1], horizon), set_freq=not self.long_)
            target_scaler = self._target_scaler(number)
            if radii is None:
                frame = pd.DataFrame(scaled[i] * target_scaler.scale_ + target_scaler.mean_, index=future,
                                     columns=self.columns_)
            else:
                frame = interval_frame(scaled[i], radii, levels, target_scaler, self.columns_, future)
            blocks.append((context.id, future, frame))
        return to_output(blocks, self.long_, self.layout_.id_col, self.layout_.time_col)

    def _predict_radii(self, levels, horizon: int, panel: Panel | None) -> np.ndarray:
        rule, tracker = self._interval_rule(levels, horizon)
        if tracker is None:
            return rule(None)
        if panel is not None:
            item = panel.series[0]
            if len(item) >= self.lookback + horizon:
                for batch, forecast in self._window_forecasts([item], [0], panel.calendar, horizon):
                    tracker.radii((forecast - batch.y).abs().cpu().numpy(), record=False)
            tracker.flush()  # every window of X has its targets in X
        return tracker.current()

    # ------------------------------------------------------------------ evaluation
    def _window_forecasts(self, series: list[SeriesData], numbers: list[int], calendar: Calendar, horizon: int,
                          batch_size: int | None = None):
        """``(batch, scaled forecasts)`` of every stride-1 window of each series, batch by batch in time
        order (series after series): the one batched no-grad pass behind ``evaluate`` and the conformal
        calibration."""
        batch_size = default_eval_batch_size(self.device_) if batch_size is None else batch_size
        n_future = padded_length(horizon, self.network_.output_len)
        encoded = self._encode(series, numbers, calendar, extra=n_future - horizon)
        windows = encoded.windows(self.lookback, horizon, len(self.columns_), mark_horizon=n_future)
        with torch.no_grad():
            for batch in windows.batches(batch_size):
                with self._autocast():  # not around the yield: the caller's scoring stays outside autocast
                    forecast = autoregressive_forecast(self.network_, batch.x, batch.x_mark, batch.y_mark, horizon,
                                                       len(self.columns_))
                yield batch, forecast.float()

    def _autocast(self):
        """The forward passes' precision context (``precision``; :func:`tsforecast.precision.autocast`)."""
        return autocast(self.device_, self.precision)

    def _evaluation_series(self, X, horizon: int) -> tuple[list[SeriesData], list[int], Calendar]:
        panel = self._read(X, "evaluation data", min_rows=self.lookback + horizon,
                           rows_needed_for="lookback + horizon: one window")
        series = panel.series
        if panel.long:
            short = [s.id for s in series if len(s) < self.lookback + horizon]
            warn_skipped(short, f"fewer than lookback + horizon = {self.lookback + horizon} rows: no window to score")
            series = [s for s in series if len(s) >= self.lookback + horizon]
            if not series:
                raise ValueError(f"no series of the evaluation data has lookback + horizon = {self.lookback + horizon} "
                                 "rows: no window to score")
        return series, self._series_number([s.id for s in series], "evaluation data"), panel.calendar

    @torch.no_grad()
    def evaluate(self, X, horizon=None, batch_size=None, units="scaled", per_step=False, level=None) -> dict:
        """Score the forecasts from every stride-1 window of ``X`` (each series of a long frame; look-back +
        horizon rows; all windows, none dropped). Every metric is one mean over windows x horizon steps x
        channels (observed targets only, ``missing="mask"``).

        ``units="scaled"`` (default): the LTSF protocol's MSE and MAE on the training-scaled data, as
        benchmarks report them: ``{"mse", "mae", "n_windows"}``.
        ``units="original"``: forecasts and targets in the data's units: ``{"mae", "rmse", "mape",
        "smape", "mase", "n_windows"}``. MAPE and sMAPE are in percent; MAPE leaves out targets that are
        exactly 0 (NaN, with a warning, if all are); MASE divides each channel's MAE by its in-sample
        seasonal-naive MAE on the series' training rows (``mase_scales_``, season ``mase_season_``) and
        averages over channels, leaving out (with a warning) channels that were constant in training.
        ``per_step=True`` adds ``"per_step"``: a DataFrame indexed by horizon step 1..H, one column per
        metric (see :class:`tsforecast.metrics.HorizonAccumulator` for how they average back).
        ``level`` (percent, e.g. ``[80, 95]``): the conformal intervals of every window, scored: adds
        ``coverage_80`` (percent of targets inside), ``width_80`` (mean width) and ``winkler_80`` (mean
        interval score, :class:`tsforecast.metrics.IntervalAccumulator`), width and Winkler in the data's
        units whatever ``units`` is. With ``interval_method="adaptive"`` the windows are walked in time
        order from the state fit left (the end of the calibration rows, so ``X`` should follow them),
        each forecast's radius updated only from targets observed by its origin (no look-ahead).
        ``batch_size``: windows per forward pass (None: 1024 on a GPU, 256 on a CPU; the result does
        not depend on it).
        """
        self._check_fitted()
        levels = check_levels(level)
        horizon = self.horizon if horizon is None else horizon
        check_positive_int("horizon", horizon)
        batch_size = default_eval_batch_size(self.device_) if batch_size is None else batch_size
        check_positive_int("batch_size", batch_size)
        series, numbers, calendar = self._evaluation_series(X, horizon)
        n_targets = len(self.columns_)
        one = len(self.series_ids_) == 1
        # the fitted series' target mean, scale and MASE scale, looked up per window
        means = torch.as_tensor(np.stack([self.scalers_[n].mean_[:n_targets] for n in numbers]), dtype=torch.float64,
                                device=self.device_)
        scales = torch.as_tensor(np.stack([self.scalers_[n].scale_[:n_targets] for n in numbers]), dtype=torch.float64,
                                 device=self.device_)
        mase = torch.as_tensor(self.mase_scales_[numbers], dtype=torch.float64, device=self.device_)
        if one:
            scorer = WindowScorer(units, per_step, self._target_scaler(0), self.mase_scales_[0], self.columns_)
        else:
            scorer = WindowScorer(units, per_step, columns=self.columns_)
        rule = interval_scores = None
        if levels:
            rule, _ = self._interval_rule(levels, horizon)
            interval_scores = IntervalAccumulator(levels, self._target_scaler(0).scale_ if one else None)
        originals = self._original_targets(series, horizon, batch_size) if units == "original" else None
        for batch, forecast in self._window_forecasts(series, numbers, calendar, horizon, batch_size):
            original = None if originals is None else next(originals)
            owner = batch.series
            per_window = {} if one else {"mean": means[owner][:, None], "scale": scales[owner][:, None],
                                         "mase_scale": mase[owner][:, None]}
            scorer.update(batch.y, forecast, original, mask=batch.y_observed, **per_window)
            if rule is not None:
                errors = (forecast - batch.y).abs().cpu().numpy()  # the scores as calibration computes them
                radii = rule(errors)
                point = forecast.double().cpu().numpy()[:, None]
                mask = None if batch.y_observed is None else batch.y_observed.cpu().numpy()
                window_scale = None if one else scales[owner][:, None].cpu().numpy()
                interval_scores.update(batch.y.double().cpu().numpy(), point - radii, point + radii,
                                       scale=window_scale, mask=mask, hits=errors[:, None] <= radii)
        result = scorer.result()
        if interval_scores is not None:
            result.update(interval_scores.result())
        return result

    def _original_targets(self, series: list[SeriesData], horizon: int, batch_size: int):
        """The windows' targets in the data's units (float64, so an exact 0 stays 0 for MAPE), batch for
        batch as :meth:`_window_forecasts` gives them (the same windows: same segments and mask)."""
        n_targets = len(self.columns_)
        pad = padded_length(horizon, self.network_.output_len) - horizon  # the rows encode stacks after each series
        blocks, segments, first = [], [], 0
        for item in series:
            blocks.append(np.concatenate([item.values[:, :n_targets], np.full((pad, n_targets), np.nan)]))
            segments.append((first, len(item)))
            first += len(item) + pad
        stacked = np.concatenate(blocks)
        observed = ~np.isnan(stacked)  # the padding rows are never a target: no window reads them as one
        complete = all(observed[start:start + rows].all() for start, rows in segments)
        windows = Windows(torch.tensor(stacked, dtype=torch.float64, device=self.device_), None, self.lookback, horizon,
                          segments=segments, observed=None if complete else torch.as_tensor(observed, device=self.device_))
        return (batch.y for batch in windows.batches(batch_size))

    def score(self, X, y=None) -> float:
        """Negative MSE of the sliding-window forecasts over ``X`` on the training-scaled data (higher is
        better, for sklearn). Under ``GridSearchCV`` each fold refits, so each fold's score is scaled by
        that fold's own training scaler: scores compare candidate parameters within a fold, but are not
        in the data's units (use ``evaluate(X, units="original")`` for those)."""
        return -self.evaluate(X)["mse"]

    # ------------------------------------------------------------------ AR coefficients
    def _ar_coefficients(self):
        self._check_fitted()
        coefficients = getattr(self.network_, "coefficients", None)
        if coefficients is None:
            raise AttributeError(f"model {self.model_.name!r} is not a linear autoregression and has no coef_")
        return coefficients()

    @property
    def coef_(self) -> np.ndarray:
        """AR coefficients, shape (channels, lags), lag 1 first; scale-free, so equal in data units."""
        return self._ar_coefficients()[0]

    @property
    def intercept_(self) -> np.ndarray:
        """AR intercepts in the data's units: ``y_t = intercept + sum_k coef_k y_{t-k} (+ sum_j
        exog_coef_j f_{j,t})``. One series only: a panel's series each have their own scale."""
        coef, bias = self._ar_coefficients()
        n = len(self.columns_)
        mean, scale = self.scaler_.mean_, self.scaler_.scale_
        intercept = scale[:n] * bias + mean[:n] * (1.0 - coef.sum(axis=1))
        if self.roles_.future:
            intercept = intercept - self.exog_coef_ @ mean[self.roles_.n_inputs:]
        return intercept

    @property
    def exog_coef_(self) -> np.ndarray:
        """ARX coefficients of the future covariates in the data's units, shape (targets, covariates)
        (as statsmodels ``AutoReg(exog=...)`` reports them). One series only, as ``intercept_``."""
        self._check_fitted()
        exog = getattr(self.network_, "exog_coefficients", None)
        if exog is None or not self.roles_.future:
            raise AttributeError(f"model {self.model_.name!r} was fitted without future covariates: no exog_coef_")
        n, scale = len(self.columns_), self.scaler_.scale_
        return exog() * scale[:n, None] / scale[None, self.roles_.n_inputs:]

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write ``path/`` (config.json + model.safetensors) atomically; see :mod:`tsforecast.io`."""
        from .io import save_forecaster

        save_forecaster(self, path)

    @classmethod
    def load(cls, path, device: str | None = None) -> "Forecaster":
        from .io import load_forecaster

        return load_forecaster(path, device=device)
