"""The sklearn estimator: validation -> scaling -> windows -> training -> rollout -> DataFrame."""
from __future__ import annotations

import time
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.base import BaseEstimator, clone
from sklearn.exceptions import NotFittedError

from .data.calendar import Calendar, check_same_calendar
from .data.scaling import fit_scaler
from .data.splits import check_window_rows, holdout_split
from .data.timefeatures import feature_names
from .data.timefeatures import time_features as calendar_features
from .data.windows import Windows
from .intervals import ConformalCalibration, calibration_start, check_levels, check_method, interval_frame
from .metrics import IntervalAccumulator, WindowScorer, resolve_season, seasonal_naive_scale
from .models.base import Dims, ModelSpec
from .models.registry import get_model_class, resolve_model
from .params import PARAMETER_CONSTRAINTS, check_training_settings, validate_params
from .rollout import autoregressive_forecast, padded_length
from .training import TrainingConfig, TrainingResult, default_eval_batch_size, train
from .validation import CheckedFrame, check_frame, check_positive_int

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


@dataclass
class _Series:
    """One validated, scaled series on the device, with its calendar features (extended into the future)."""

    values: torch.Tensor  # (T, C) scaled, float32
    marks: torch.Tensor | None  # (T + extra, F)


class Forecaster(BaseEstimator):
    """Forecast a multivariate time series (a DataFrame with a DatetimeIndex, one column per channel).

    Input: a DataFrame (or a Series: one channel, named after the Series or ``"y"``) indexed by a
    DatetimeIndex, tz-naive or tz-aware, or a PeriodIndex; column labels are strings or integers and are
    kept as they are. ``predict`` always returns a DataFrame whose index is of the input's kind: the same
    time zone (sub-daily steps run in UTC inside, so DST days of 23 or 25 hours are regular; daily and
    longer steps keep local midnight) or a PeriodIndex of the same frequency.

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
        channel; ``"adaptive"`` quantile tracking that keeps updating from forecasts whose targets have
        since been observed, so coverage holds under drift.
    random_state : int or None
        Seed (0 to 2**32 - 1) for weight initialization and shuffling; the global RNGs are left
        untouched. None draws a fresh seed per fit. A numpy RandomState or Generator is not accepted.
    device : str
        ``"auto"`` (CUDA when present), ``"cpu"``, ``"cuda"``, ...
    verbose : int
        0 silent, 1 a progress bar per fit, 2 also keep the bars.

    Attributes (after ``fit``)
    --------------------------
    network_ : the trained torch module;  scaler_ : the StandardScaler fitted on the training rows;
    columns_, freq_ : the input's columns and step;  history_ : the last ``lookback`` rows seen;
    training_ : losses and timings per epoch;  n_epochs_ : epochs run;  fit_seconds_ : wall time of fit;
    coef_, intercept_ : AR coefficients (channels x lags, lag 1 first) and intercepts, in the data's
    units, for linear AR models;  mase_scale_, mase_season_ : MASE's denominator per channel (the
    in-sample seasonal-naive MAE of the training rows, data units) and the season it used (lag 1 when
    the training rows are too few for one seasonal difference);  intervals_ : the conformal
    calibration (calibration rows and their windows' scaled absolute errors per horizon step and channel).
    """

    # What each parameter accepts, checked at the start of fit (sklearn's declarative validation).
    _parameter_constraints = PARAMETER_CONSTRAINTS

    def __init__(self, model="ar", lookback=96, horizon=96, *, max_epochs=None, batch_size=None,
                 learning_rate=None, patience=None, lr_schedule=None, validation_fraction=0.1, freq=None,
                 time_features="auto", season_length=None, interval_method="split", random_state=None, device="auto",
                 verbose=0):
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
        self.random_state = random_state
        self.device = device
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
        return TrainingConfig(**merged, verbose=self.verbose, cap_batch=self.batch_size is None)

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

    # ------------------------------------------------------------------ data preparation
    def _prepare(self, values: np.ndarray, index: pd.DatetimeIndex, future_steps: int = 0, network=None,
                 calendar: Calendar | None = None) -> _Series:
        """Scale values and compute the marks over ``index`` (internal, see :class:`Calendar`) plus
        ``future_steps`` steps after it: calendar features of the local wall-clock times, or the
        network's own ``time_marks(index, freq)`` when it has that hook."""
        scaled = torch.as_tensor(self.scaler_.transform(values), dtype=torch.float32, device=self.device_)
        marks = None
        if self.time_feature_freq_ is not None:
            calendar = self.calendar_ if calendar is None else calendar
            full_index = index.append(calendar.future(index[-1], future_steps)) if future_steps else index
            local = calendar.wall_clock(full_index)
            custom_marks = getattr(self.network_ if network is None else network, "time_marks", None)
            if custom_marks is not None:
                marks = custom_marks(local, self.freq_).to(self.device_)
            else:
                marks = torch.as_tensor(calendar_features(local, self.time_feature_freq_), device=self.device_)
        return _Series(scaled, marks)

    def _check_input(self, X, min_rows: int, what: str, rows_needed_for: str) -> CheckedFrame:
        """Check data given after fit: the fitted columns, and the fitted step and kind of timestamps."""
        frame = check_frame(X, min_rows=min_rows, freq=self.freq_given_, columns=self.columns_, what=what,
                            rows_needed_for=rows_needed_for)
        check_same_calendar(frame.calendar, self.calendar_, frame.index[-1], what)
        return frame

    def _context(self, X, what: str = "predict data") -> tuple[np.ndarray, pd.DatetimeIndex, Calendar,
                                                              CheckedFrame | None]:
        """The last ``lookback`` rows to forecast from: of ``X``, or of the data seen by fit when X is None;
        and ``X`` as checked (None without ``X``)."""
        if X is None:
            return self.history_.to_numpy(), self.calendar_.internal(self.history_.index), self.calendar_, None
        frame = self._check_input(X, min_rows=self.lookback, what=what, rows_needed_for=f"lookback={self.lookback}")
        return frame.values[-self.lookback:], frame.index[-self.lookback:], frame.calendar, frame

    # ------------------------------------------------------------------ fit
    def fit(self, X, y=None, val_df=None):
        """Fit on ``X`` (DataFrame or Series with a DatetimeIndex or PeriodIndex, one column per channel).

        ``val_df``: validation data for early stopping, starting ``lookback`` rows before its first
        target (as the protocol's split does). Without it, the last ``validation_fraction`` of ``X``
        is held out (gradient-trained models only).
        """
        started = time.perf_counter()
        # A refit that fails part-way must not leave the previous fit's network behind new columns or scaler.
        self.__dict__.pop("network_", None)
        spec = self._check_params()
        config = self._training_config(spec)  # checked for every model: a bad setting is never silently ignored
        frame = check_frame(X, min_rows=self.lookback + self.horizon, freq=self.freq, what="fit data",
                            rows_needed_for=f"lookback={self.lookback} + horizon={self.horizon}; lower lookback "
                                            "or horizon, or give more rows")
        self.freq_given_ = None if self.freq is None else frame.freq  # as a string, whatever form it came in
        self.freq_ = frame.freq
        self.calendar_ = frame.calendar
        self.columns_ = frame.columns
        self.feature_names_in_ = np.asarray(frame.columns, dtype=object)
        self.n_features_in_ = len(frame.columns)
        self.device_ = resolve_device(self.device)
        self.time_feature_freq_ = self._mark_freq(frame.freq, spec)
        n_marks = 0 if self.time_feature_freq_ is None else len(feature_names(self.time_feature_freq_))
        season = resolve_season(self.season_length, frame.freq)  # for seasonal models (snaive) and MASE
        dims = Dims(n_channels=len(frame.columns), lookback=self.lookback, horizon=self.horizon, n_time_features=n_marks,
                    season_length=season)
        spec.check(dims)

        train_values, train_index = frame.values, frame.index
        val_values = val_index = None
        if val_df is not None:
            val = self._check_input(val_df, min_rows=self.lookback + 1, what="val_df",
                                    rows_needed_for="lookback + 1: one validation window")
            val_values, val_index = val.values, val.index

        seed = int(self.random_state) if self.random_state is not None else int(np.random.SeedSequence().entropy % 2**31)
        cuda_devices = [self.device_] if self.device_.type == "cuda" else []
        with torch.random.fork_rng(devices=cuda_devices):
            torch.manual_seed(seed)
            # Built before the hold-out, which depends on its output length; the scaler draws no random numbers,
            # so the weights are the same as when it was built after the scaler.
            network = spec.build(dims).to(self.device_)
            if val_df is None and spec.fit_mode == "gradient" and self.validation_fraction > 0:
                cut = holdout_split(len(frame.values), self.validation_fraction, self.lookback, network.output_len)
                train_values, train_index = frame.values[:cut], frame.index[:cut]
                val_values, val_index = frame.values[cut - self.lookback:], frame.index[cut - self.lookback:]
            self.scaler_ = fit_scaler(train_values, self.columns_)
            self.mase_scale_, self.mase_season_ = seasonal_naive_scale(train_values, season)
            self.training_ = TrainingResult()
            if spec.fit_mode == "closed_form":
                spec.fit_closed_form(network, self.scaler_.transform(train_values))
            elif spec.fit_mode == "gradient":
                check_window_rows(len(train_values), self.lookback, network.output_len, "the training data")
                if val_values is not None:
                    check_window_rows(len(val_values), self.lookback, network.output_len, "val_df")
                train_series = self._prepare(train_values, train_index, network=network)
                # An optional network attribute thins the training windows (a compute budget knob).
                train_windows = Windows(train_series.values, train_series.marks, self.lookback, network.output_len,
                                        stride=getattr(network, "train_stride", 1))
                val_windows = None
                if val_values is not None:
                    val_series = self._prepare(val_values, val_index, network=network)
                    val_windows = Windows(val_series.values, val_series.marks, self.lookback, network.output_len)
                generator = torch.Generator().manual_seed(seed)
                self.training_ = train(network, train_windows, val_windows, config, generator)
            network.eval()
        self.network_ = network
        self.model_ = clone(spec)  # the spec as fitted, safe from later set_params on self.model
        self.dims_ = dims
        self.n_epochs_ = self.training_.epochs
        last_values, last_index = (val_values, val_index) if val_values is not None and val_index[-1] > train_index[-1] \
            else (frame.values, frame.index)
        self.history_ = pd.DataFrame(last_values[-self.lookback:], columns=self.columns_,
                                     index=self.calendar_.external(last_index[-self.lookback:]))
        self._calibrate(val_values, val_index, frame)
        self.fit_seconds_ = time.perf_counter() - started
        return self

    # ------------------------------------------------------------------ conformal intervals
    def _calibrate(self, val_values, val_index, frame: CheckedFrame) -> None:
        """Score the calibration windows (the validation rows; else the last ``validation_fraction`` of
        the fit rows, see :mod:`tsforecast.intervals`) at the fitted horizon: one no-grad pass."""
        if val_values is None or len(val_values) < self.lookback + self.horizon:
            start = calibration_start(len(frame.values), self.validation_fraction, self.lookback, self.horizon)
            val_values, val_index = frame.values[start:], frame.index[start:]
        self.intervals_ = ConformalCalibration(val_values, val_index, self.horizon)
        self.intervals_.scores_for(self.horizon, self._calibration_scores)

    def _calibration_scores(self, horizon: int) -> np.ndarray:
        """Absolute scaled errors ``(windows, horizon, C)`` of the calibration rows' windows."""
        cal = self.intervals_
        if len(cal.values) < self.lookback + horizon:
            return np.zeros((0, horizon, len(self.columns_)), dtype=np.float32)
        return np.concatenate([(forecast - y).abs().cpu().numpy() for y, forecast in
                               self._window_forecasts(cal.values, cal.index, self.calendar_, horizon)])

    def _interval_rule(self, levels, horizon: int):
        """For the windows of some data in time order: a function from their scores ``(B, H, C)`` to their
        radii (``(L, H, C)`` for split, ``(B, L, H, C)`` for adaptive), and the tracker (None for split)."""
        if getattr(self, "intervals_", None) is None:
            raise ValueError("this Forecaster has no conformal calibration (it was saved by an older tsforecast); "
                             "refit it to get intervals")
        if check_method(self.interval_method) == "split":
            radii = self.intervals_.split_radii(levels, horizon, self._calibration_scores)
            return (lambda scores: radii), None
        tracker = self.intervals_.tracker(levels, horizon, self._calibration_scores)
        return tracker.radii, tracker

    # ------------------------------------------------------------------ predict
    def predict(self, X=None, horizon=None, level=None) -> pd.DataFrame:
        """Forecast the ``horizon`` steps (default: the fitted horizon) after the end of ``X``.

        ``X=None`` continues the data seen by ``fit``. Returns a DataFrame in the original units with
        the fitted columns and the future timestamps as index, continuing ``X``'s calendar in ``X``'s
        kind of index (time zone, PeriodIndex).

        ``level`` (percent, e.g. ``[80, 95]``): conformal prediction intervals (:mod:`tsforecast.intervals`).
        Each channel's column is followed by its bounds ordered by quantile, as neuralforecast does:
        ``OT, OT-lo-95, OT-lo-80, OT-hi-80, OT-hi-95``. ``interval_method="adaptive"`` with an ``X``
        first walks the windows of ``X`` whose targets are all in ``X`` (one forward pass over them; pass
        the rows since fit to keep it short), from the state fit left, without changing the Forecaster.
        A horizon beyond the calibrated ones scores the calibration rows' windows at that horizon once
        (fewer windows: ``rows - lookback - horizon + 1``) and caches them.
        """
        self._check_fitted()
        levels = check_levels(level)
        horizon = self.horizon if horizon is None else horizon
        check_positive_int("horizon", horizon)
        values, index, calendar, frame = self._context(X)
        n_future = padded_length(horizon, self.network_.output_len)
        series = self._prepare(values, index, future_steps=n_future, calendar=calendar)
        x_mark = future_mark = None
        if series.marks is not None:
            x_mark, future_mark = series.marks[None, :self.lookback], series.marks[None, self.lookback:]
        scaled = autoregressive_forecast(self.network_, series.values[None], x_mark, future_mark, horizon)[0]
        scaled = scaled.double().cpu().numpy()
        future = calendar.external(calendar.future(index[-1], horizon), set_freq=True)
        if not levels:
            return pd.DataFrame(self.scaler_.inverse_transform(scaled), index=future, columns=self.columns_)
        rule, tracker = self._interval_rule(levels, horizon)
        if tracker is None:
            radii = rule(None)
        else:
            if frame is not None:
                if len(frame.values) >= self.lookback + horizon:
                    for y, forecast in self._window_forecasts(frame.values, frame.index, frame.calendar, horizon):
                        tracker.radii((forecast - y).abs().cpu().numpy(), record=False)
                tracker.flush()  # every window of X has its targets in X
            radii = tracker.current()
        return interval_frame(scaled, radii, levels, self.scaler_, self.columns_, future)

    # ------------------------------------------------------------------ evaluation
    def _window_forecasts(self, values, index, calendar: Calendar, horizon: int, batch_size: int | None = None):
        """Scaled ``(targets, forecasts)`` of every stride-1 window of ``values``, batch by batch in time
        order: the one batched no-grad pass behind ``evaluate`` and the conformal calibration."""
        batch_size = default_eval_batch_size(self.device_) if batch_size is None else batch_size
        n_future = padded_length(horizon, self.network_.output_len)
        series = self._prepare(values, index, future_steps=n_future - horizon, calendar=calendar)
        windows = Windows(series.values, series.marks, self.lookback, horizon, mark_horizon=n_future)
        with torch.no_grad():
            for batch in windows.batches(batch_size):
                yield batch.y, autoregressive_forecast(self.network_, batch.x, batch.x_mark, batch.y_mark, horizon)

    @torch.no_grad()
    def evaluate(self, X, horizon=None, batch_size=None, units="scaled", per_step=False, level=None) -> dict:
        """Score the forecasts from every stride-1 window of ``X`` (look-back + horizon rows; all windows,
        none dropped). Every metric is one mean over windows x horizon steps x channels.

        ``units="scaled"`` (default): the LTSF protocol's MSE and MAE on the training-scaled data, as
        benchmarks report them: ``{"mse", "mae", "n_windows"}``.
        ``units="original"``: forecasts and targets in the data's units: ``{"mae", "rmse", "mape",
        "smape", "mase", "n_windows"}``. MAPE and sMAPE are in percent; MAPE leaves out targets that are
        exactly 0 (NaN, with a warning, if all are); MASE divides each channel's MAE by its in-sample
        seasonal-naive MAE on the training rows (``mase_scale_``, season ``mase_season_``) and averages
        over channels, leaving out (with a warning) channels that were constant in training.
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
        scorer = WindowScorer(units, per_step, self.scaler_, getattr(self, "mase_scale_", None), self.columns_)
        horizon = self.horizon if horizon is None else horizon
        check_positive_int("horizon", horizon)
        batch_size = default_eval_batch_size(self.device_) if batch_size is None else batch_size
        check_positive_int("batch_size", batch_size)
        frame = self._check_input(X, min_rows=self.lookback + horizon, what="evaluation data",
                                  rows_needed_for="lookback + horizon: one window")
        rule = interval_scores = None
        if levels:
            rule, _ = self._interval_rule(levels, horizon)
            interval_scores = IntervalAccumulator(levels, self.scaler_.scale_)
        originals = scorer.original_targets(frame.values, self.lookback, horizon, batch_size, self.device_)
        pairs = self._window_forecasts(frame.values, frame.index, frame.calendar, horizon, batch_size)
        for (y, forecast), original in zip(pairs, originals):
            scorer.update(y, forecast, original)
            if rule is not None:
                radii = rule((forecast - y).abs().cpu().numpy())  # the scores as calibration computes them
                point = forecast.double().cpu().numpy()[:, None]
                interval_scores.update(y.double().cpu().numpy(), point - radii, point + radii)
        result = scorer.result()
        if interval_scores is not None:
            result.update(interval_scores.result())
        return result

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
        """AR intercepts in the data's units: ``y_t = intercept + sum_k coef_k y_{t-k}``."""
        coef, bias = self._ar_coefficients()
        mean, scale = self.scaler_.mean_, self.scaler_.scale_
        return scale * bias + mean * (1.0 - coef.sum(axis=1))

    # ------------------------------------------------------------------ persistence
    def save(self, path) -> None:
        """Write ``path/`` (config.json + model.safetensors) atomically; see :mod:`tsforecast.io`."""
        from .io import save_forecaster

        save_forecaster(self, path)

    @classmethod
    def load(cls, path, device: str | None = None) -> "Forecaster":
        from .io import load_forecaster

        return load_forecaster(path, device=device)
