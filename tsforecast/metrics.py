"""Forecast metrics, one home for their math.

* The LTSF protocol's MSE and MAE on training-scaled data: one global mean over windows x horizon x
  channels (``mse``, ``mae``, ``ErrorAccumulator``). Benchmarks report these.
* Metrics in the data's own units for users (``HorizonAccumulator``, ``rmse``, ``mape``, ``smape``,
  ``mase``): also means over windows x horizon steps x channels, kept per horizon step so per-step
  values come for free. MAPE and sMAPE are in percent.

Rules for the cases where a metric is undefined (never a silent inf, never a crash):

* MAPE leaves out targets that are exactly 0 (their percentage error is infinite); if every target
  is 0 it is NaN, with a ``RuntimeWarning``.
* sMAPE's term ``2 |y - yhat| / (|y| + |yhat|)`` is 0 where both are 0 (a perfect forecast of zero),
  but 200% for any non-zero forecast of a zero target, however small; forecasts come from float32
  networks, so a "zero" forecast is rarely exactly 0: prefer MAE or MASE on intermittent series.
* MASE divides each channel's MAE by that channel's in-sample seasonal-naive MAE on the training rows
  (the M4 definition) and averages over channels. Channels whose scale is 0 (constant training rows:
  the naive forecast is perfect) or unknown (NaN: a model saved before the scale was recorded) are
  left out of the average, with a ``RuntimeWarning`` naming them; with none left MASE is NaN.
"""
from __future__ import annotations

import os
import sys
import warnings
from itertools import repeat
from typing import Iterator

import numpy as np
import pandas as pd
import torch

from .data.calendar import seasonal_period
from .data.windows import Windows
from .intervals import level_name
from .validation import check_positive_int

UNITS = ("scaled", "original")


def mse(y_true, y_pred) -> float:
    return float(np.mean((np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)) ** 2))


def mae(y_true, y_pred) -> float:
    return float(np.mean(np.abs(np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64))))


class ErrorAccumulator:
    """Streams batches of forecasts into the global MSE / MAE without keeping them.

    Sums are float64 tensors on the forecasts' device, read once in ``result()``: no per-batch
    device synchronization.
    """

    def __init__(self):
        self.squared = None
        self.absolute = None
        self.count = 0
        self.windows = 0

    def update(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> None:
        err = y_pred.detach().double() - y_true.detach().double()
        squared, absolute = err.square().sum(), err.abs().sum()
        self.squared = squared if self.squared is None else self.squared + squared
        self.absolute = absolute if self.absolute is None else self.absolute + absolute
        self.count += err.numel()
        self.windows += err.shape[0]

    def result(self) -> dict:
        if self.count == 0:
            raise ValueError("no forecast windows to score")
        return {"mse": float(self.squared) / self.count, "mae": float(self.absolute) / self.count,
                "n_windows": self.windows}


# ---------------------------------------------------------------------------- MASE's scale
def resolve_season(season_length, freq: str) -> int:
    """MASE's seasonal period: ``season_length``, or from the data's step when it is None."""
    check_positive_int("season_length", season_length, allow_none=True)
    return seasonal_period(freq) if season_length is None else int(season_length)


def seasonal_naive_scale(train_values, season: int) -> tuple[np.ndarray, int]:
    """Per channel, the in-sample MAE of the seasonal-naive forecast ``y[t - season]`` over the
    training rows (MASE's denominator, in the data's units), and the season actually used: lag 1 when
    the rows are too few for one seasonal difference (``len <= season``). A constant channel gets 0."""
    values = np.asarray(train_values, dtype=np.float64)
    if values.ndim == 1:
        values = values[:, None]
    used = season if len(values) > season else 1
    if len(values) <= used:  # a single row: no naive error to measure
        return np.full(values.shape[1], np.nan), used
    return np.mean(np.abs(values[used:] - values[:-used]), axis=0), used


# ---------------------------------------------------------------------------- metrics in the data's units
class HorizonAccumulator:
    """Streams ``(windows, horizon, channels)`` batches into float64 sums per horizon step and channel,
    from which ``result()`` gives MSE, MAE, RMSE, MAPE, sMAPE and MASE, overall and per step.

    Memory is ``horizon x channels`` numbers whatever the number of windows; sums stay on the
    forecasts' device until ``result()`` (no per-batch synchronization).

    ``mase_scale``: per channel, the seasonal-naive MAE of the training rows (None: MASE unknown).
    ``columns``: channel names for warnings.
    """

    def __init__(self, mase_scale=None, columns=None):
        self.mase_scale = None if mase_scale is None else np.asarray(mase_scale, dtype=np.float64)
        self.columns = columns
        self.sums: dict[str, torch.Tensor] = {}
        self.windows = 0

    def update(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> None:
        y_true, y_pred = torch.as_tensor(y_true).detach().double(), torch.as_tensor(y_pred).detach().double()
        if y_true.shape != y_pred.shape or y_true.ndim != 3:
            raise ValueError(f"forecasts {tuple(y_pred.shape)} and targets {tuple(y_true.shape)} must both be "
                             "(windows, horizon, channels)")
        err = (y_pred - y_true).abs()
        nonzero = y_true != 0
        # where() on safe denominators: the skipped terms never compute inf or NaN
        ape = torch.where(nonzero, err / torch.where(nonzero, y_true.abs(), 1.0), 0.0)
        total = y_true.abs() + y_pred.abs()
        sape = torch.where(total > 0, 2.0 * err / torch.where(total > 0, total, 1.0), 0.0)
        terms = {"absolute": err, "squared": err.square(), "ape": ape, "ape_count": nonzero.double(), "sape": sape}
        for name, term in terms.items():
            batch_sum = term.sum(0)
            self.sums[name] = batch_sum if name not in self.sums else self.sums[name] + batch_sum
        self.windows += y_true.shape[0]

    def result(self, metrics=("mae", "rmse", "mape", "smape", "mase"), per_step: bool = False) -> dict:
        """``{metric: float, ..., "n_windows": int}`` for ``metrics`` (any of mse, mae, rmse, mape, smape,
        mase), plus with ``per_step`` a ``"per_step"`` DataFrame indexed by horizon step 1..H (named
        ``step``), one column per metric. The overall MSE, MAE, sMAPE and MASE are the means of their
        per-step values, RMSE the root of the mean squared per-step RMSE, and MAPE the mean of the
        per-step values weighted by each step's count of non-zero targets."""
        if self.windows == 0:
            raise ValueError("no forecast windows to score")
        sums = {name: s.cpu().numpy() for name, s in self.sums.items()}  # each (horizon, channels)
        n_channels = sums["absolute"].shape[1]
        step_channel_mae = sums["absolute"] / self.windows
        step, overall = {}, {}
        step["mse"] = (sums["squared"] / self.windows).mean(axis=1)
        step["mae"] = step_channel_mae.mean(axis=1)
        step["rmse"] = np.sqrt(step["mse"])
        step["smape"] = 100.0 * sums["sape"].sum(axis=1) / (self.windows * n_channels)
        for name in ("mse", "mae", "smape"):
            overall[name] = step[name].mean()
        overall["rmse"] = np.sqrt(overall["mse"])
        if "mape" in metrics:
            step["mape"] = _percent(sums["ape"].sum(axis=1), sums["ape_count"].sum(axis=1))
            overall["mape"] = _percent(sums["ape"].sum(), sums["ape_count"].sum())
            if np.isnan(overall["mape"]):
                _warn("MAPE is undefined: every target is 0; it is NaN (use MAE, RMSE or sMAPE)")
        if "mase" in metrics:
            scale, usable = self._mase_channels(n_channels)
            step["mase"] = (step_channel_mae[:, usable] / scale[usable]).mean(axis=1) if usable.any() \
                else np.full(len(step_channel_mae), np.nan)
            overall["mase"] = step["mase"].mean()
        result = {name: float(overall[name]) for name in metrics}
        result["n_windows"] = self.windows
        if per_step:
            result["per_step"] = pd.DataFrame({name: step[name] for name in metrics},
                                              index=pd.RangeIndex(1, len(step_channel_mae) + 1, name="step"))
        return result

    def _mase_channels(self, n_channels: int) -> tuple[np.ndarray, np.ndarray]:
        """The per-channel scale and the channels MASE can average over (a finite, positive scale),
        warning about the others."""
        scale = np.full(n_channels, np.nan) if self.mase_scale is None else self.mase_scale
        if scale.shape != (n_channels,):
            raise ValueError(f"MASE needs one scale per channel: got {scale.shape[0]} scales for {n_channels} channels")
        names = list(self.columns) if self.columns is not None else list(range(n_channels))
        unknown, constant = ~np.isfinite(scale), np.isfinite(scale) & (scale <= 0)
        if unknown.all():
            _warn("MASE is unavailable (NaN): the training data's seasonal-naive error is unknown (a model saved by "
                  "an older tsforecast); refit the model to get it")
        elif unknown.any():
            _warn(f"MASE leaves out channels {[names[i] for i in np.flatnonzero(unknown)]}: their training "
                  "seasonal-naive error is unknown")
        if constant.any():
            _warn(f"MASE leaves out channels {[names[i] for i in np.flatnonzero(constant)]}: their training rows have "
                  "a seasonal-naive error of 0 (constant), so MASE is undefined for them"
                  + ("; it is NaN" if constant.all() else ""))
        return scale, np.isfinite(scale) & (scale > 0)


def _warn(message: str) -> None:
    """A RuntimeWarning pointing at the caller's line outside tsforecast and torch (whichever way in)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and any(part in frame.f_code.co_filename for part in _INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


_INTERNAL = (os.path.dirname(os.path.abspath(__file__)) + os.sep, os.sep + "torch" + os.sep)


def _percent(numerator, count):
    """100 * numerator / count, NaN where count is 0 (MAPE with only zero targets)."""
    numerator, count = np.asarray(numerator, dtype=np.float64), np.asarray(count, dtype=np.float64)
    return np.where(count > 0, 100.0 * numerator / np.where(count > 0, count, 1.0), np.nan)


def _one_shot(y_true, y_pred, mase_scale=None, metric="mae") -> float:
    """A metric over whole arrays (any shape; channels last for MASE) through the streaming code."""
    y_true, y_pred = np.asarray(y_true, dtype=np.float64), np.asarray(y_pred, dtype=np.float64)
    if y_true.shape != y_pred.shape:
        raise ValueError(f"y_true {y_true.shape} and y_pred {y_pred.shape} must have the same shape")
    channels = 1 if mase_scale is None or y_true.ndim == 0 else y_true.shape[-1]
    acc = HorizonAccumulator(mase_scale)
    acc.update(torch.from_numpy(y_true.reshape(1, -1, channels)), torch.from_numpy(y_pred.reshape(1, -1, channels)))
    return acc.result(metrics=(metric,))[metric]


def rmse(y_true, y_pred) -> float:
    return _one_shot(y_true, y_pred, metric="rmse")


def mape(y_true, y_pred) -> float:
    """Mean absolute percentage error, in percent, over the non-zero targets (NaN if all are 0)."""
    return _one_shot(y_true, y_pred, metric="mape")


def smape(y_true, y_pred) -> float:
    """Symmetric MAPE, in percent (0-200): mean of ``2 |y - yhat| / (|y| + |yhat|)``, 0 where both are 0."""
    return _one_shot(y_true, y_pred, metric="smape")


def mase(y_true, y_pred, scale) -> float:
    """Mean absolute scaled error: per channel (last axis) MAE / ``scale`` (its in-sample seasonal-naive
    MAE, see ``seasonal_naive_scale``), averaged over channels with a positive scale."""
    return _one_shot(y_true, y_pred, mase_scale=np.atleast_1d(np.asarray(scale, dtype=np.float64)), metric="mase")


# ---------------------------------------------------------------------------- what Forecaster.evaluate reports
def check_units(units) -> None:
    if units not in UNITS:
        raise ValueError(f"units must be one of {UNITS}, got {units!r}: 'scaled' for the LTSF protocol's MSE/MAE on "
                         "training-scaled data, 'original' for MAE, RMSE, MAPE, sMAPE and MASE in the data's units")


class WindowScorer:
    """Streams batches of (scaled targets, scaled forecasts, original-unit targets) into what
    ``Forecaster.evaluate`` returns for ``units`` and ``per_step``.

    ``units="scaled"``: the protocol's ``{"mse", "mae", "n_windows"}`` (``ErrorAccumulator``, exactly as
    benchmarks score), plus a per-step MSE/MAE table on request. ``units="original"``: forecasts are
    unscaled with the training scaler and compared with the original targets (float64, so a target
    that is exactly 0 stays 0 for MAPE).
    """

    def __init__(self, units: str, per_step: bool, scaler, mase_scale=None, columns=None):
        check_units(units)
        self.units, self.per_step = units, bool(per_step)
        self.protocol = ErrorAccumulator() if units == "scaled" else None
        self.steps = HorizonAccumulator(mase_scale, columns) if units == "original" or self.per_step else None
        self.mean, self.scale = scaler.mean_, scaler.scale_

    def original_targets(self, values, lookback: int, horizon: int, batch_size: int, device) -> Iterator:
        """The targets of the windows of ``values`` (T, C) in the data's units, float64, batch for batch
        as ``Windows.batches`` gives them (unscaling the float32 scaled targets would blur exact zeros);
        Nones when the units are scaled."""
        if self.units == "scaled":
            return repeat(None)
        series = torch.tensor(np.asarray(values), dtype=torch.float64, device=device)  # a copy: values may be read-only
        return (batch.y for batch in Windows(series, None, lookback, horizon).batches(batch_size))

    def update(self, y_true: torch.Tensor, y_pred: torch.Tensor, y_true_original: torch.Tensor | None = None) -> None:
        if self.units == "scaled":
            self.protocol.update(y_true, y_pred)
            if self.steps is not None:
                self.steps.update(y_true, y_pred)
            return
        if not isinstance(self.scale, torch.Tensor):  # once, on the forecasts' device
            self.scale = torch.as_tensor(self.scale, dtype=torch.float64, device=y_pred.device)
            self.mean = torch.as_tensor(self.mean, dtype=torch.float64, device=y_pred.device)
        # the same float64 operations as StandardScaler.inverse_transform, so these are predict()'s numbers
        self.steps.update(y_true_original, y_pred.detach().double() * self.scale + self.mean)

    def result(self) -> dict:
        if self.units == "scaled":
            result = self.protocol.result()
            if self.per_step:
                result["per_step"] = self.steps.result(metrics=("mse", "mae"), per_step=True)["per_step"]
            return result
        return self.steps.result(per_step=self.per_step)


# ---------------------------------------------------------------------------- prediction intervals
class IntervalAccumulator:
    """Streams batches of targets and interval bounds into, per level, the coverage (percent of targets
    inside ``[lower, upper]``), the mean width and the mean Winkler interval score (Gneiting & Raftery
    2007: ``width + (2 / alpha) * distance from the interval`` for a target outside it, ``alpha = 1 -
    level/100``; lower is better), each a mean over windows x steps x channels.

    Inputs are on the training-scaled data; width and Winkler score are linear in each channel's scale,
    so they are reported in the data's units by multiplying each channel's sums by ``scale`` (the
    scaler's ``scale_``), whatever units the point metrics use. Memory: levels x channels numbers.
    """

    def __init__(self, levels, scale):
        self.levels = tuple(levels)
        self.alpha = 1.0 - np.asarray(self.levels, dtype=np.float64) / 100.0
        self.scale = np.asarray(scale, dtype=np.float64)
        self.sums: dict[str, np.ndarray] = {}
        self.count = 0  # windows x steps

    def update(self, y_true, lower, upper) -> None:
        """``y_true`` ``(B, H, C)``; ``lower``, ``upper`` ``(B, L, H, C)`` (or broadcastable to it)."""
        y = np.asarray(y_true, dtype=np.float64)[:, None]
        lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
        below, above = np.maximum(lower - y, 0.0), np.maximum(y - upper, 0.0)
        width = np.broadcast_to(upper - lower, np.broadcast_shapes(y.shape, lower.shape))
        penalty = (2.0 / self.alpha)[:, None, None] * (below + above)
        terms = {"hits": (below == 0) & (above == 0), "width": width, "winkler": width + penalty}
        for name, term in terms.items():
            batch_sum = term.sum(axis=(0, 2), dtype=np.float64)  # (L, C)
            self.sums[name] = batch_sum if name not in self.sums else self.sums[name] + batch_sum
        self.count += y.shape[0] * y.shape[2]

    def result(self) -> dict:
        """``{"coverage_80": percent, "width_80": data units, "winkler_80": data units, ...}``."""
        if self.count == 0:
            raise ValueError("no forecast windows to score")
        out = {}
        for i, level in enumerate(self.levels):
            name = level_name(level)
            out[f"coverage_{name}"] = float(100.0 * self.sums["hits"][i].mean() / self.count)
            with np.errstate(invalid="ignore"):  # an infinite width times a scale stays infinite
                out[f"width_{name}"] = float((self.sums["width"][i] * self.scale).mean() / self.count)
                out[f"winkler_{name}"] = float((self.sums["winkler"][i] * self.scale).mean() / self.count)
        return out
