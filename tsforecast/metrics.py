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

Panels and gaps: every accumulator takes an optional observed ``mask`` ``(windows, horizon, channels)``
(True = observed) and then averages over observed targets only (a masked target may be NaN; it never
enters a sum). Windows of a batch may come from different series, each with its own scale: the
per-window ``mean``/``scale`` (inverse scaling), ``mase_scale`` (MASE's denominator) and interval
``scale`` arguments carry them, shaped ``(windows, 1, channels)``. Without a mask and per-window
arguments every figure is computed exactly as before (bit for bit), and an all-True mask gives the
same bits as no mask.
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

    def update(self, y_true: torch.Tensor, y_pred: torch.Tensor, mask: torch.Tensor | None = None) -> None:
        """``mask`` ``(B, H, C)`` bool, True = observed: only observed errors count (``n_windows`` still
        counts every window)."""
        err = y_pred.detach().double() - y_true.detach().double()
        count = err.numel()
        if mask is not None:
            mask = _as_mask(mask, err)
            # zeros, not a selection: same shape, same reduction, so an all-True mask gives the same bits
            err, count = torch.where(mask, err, 0.0), mask.sum()
        squared, absolute = err.square().sum(), err.abs().sum()
        self.squared = squared if self.squared is None else self.squared + squared
        self.absolute = absolute if self.absolute is None else self.absolute + absolute
        self.count += count  # a device tensor once masked: read in result(), no per-batch sync
        self.windows += err.shape[0]

    def result(self) -> dict:
        count = int(self.count)
        if count == 0:
            raise ValueError("no forecast windows to score" if self.windows == 0 else
                             f"no observed targets to score: every target of the {self.windows} windows is masked")
        return {"mse": float(self.squared) / count, "mae": float(self.absolute) / count, "n_windows": self.windows}


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
    errors = np.abs(values[used:] - values[:-used])
    if np.isnan(errors).any():  # missing values (missing="mask"): the pairs where both are observed
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # a channel without one pair: NaN, reported by MASE
            return np.nanmean(errors, axis=0), used
    return np.mean(errors, axis=0), used


# ---------------------------------------------------------------------------- metrics in the data's units
class HorizonAccumulator:
    """Streams ``(windows, horizon, channels)`` batches into float64 sums per horizon step and channel,
    from which ``result()`` gives MSE, MAE, RMSE, MAPE, sMAPE and MASE, overall and per step.

    Memory is ``horizon x channels`` numbers whatever the number of windows; sums stay on the
    forecasts' device until ``result()`` (no per-batch synchronization).

    ``mase_scale``: per channel, the seasonal-naive MAE of the training rows (None: MASE unknown unless
    ``update`` gets one per window). ``columns``: channel names for warnings.
    """

    def __init__(self, mase_scale=None, columns=None):
        self.mase_scale = None if mase_scale is None else np.asarray(mase_scale, dtype=np.float64)
        self.columns = columns
        self.sums: dict[str, torch.Tensor] = {}
        self.windows = 0
        self.observed = None  # (horizon, channels) observed counts; None while every target was observed
        self.per_window = False  # whether some update gave MASE's scale per window
        self.ctor_windows = 0  # windows scored with the constructor's MASE scale

    def update(self, y_true: torch.Tensor, y_pred: torch.Tensor, mask: torch.Tensor | None = None,
               mase_scale=None) -> None:
        """``mask`` ``(B, H, C)`` bool, True = observed (None: all observed). ``mase_scale`` ``(B, 1, C)``
        or ``(B, C)``: each window's series' seasonal-naive MAE (None: the constructor's, per channel)."""
        y_true, y_pred = torch.as_tensor(y_true).detach().double(), torch.as_tensor(y_pred).detach().double()
        if y_true.shape != y_pred.shape or y_true.ndim != 3:
            raise ValueError(f"forecasts {tuple(y_pred.shape)} and targets {tuple(y_true.shape)} must both be "
                             "(windows, horizon, channels)")
        err = (y_pred - y_true).abs()
        nonzero = y_true != 0
        total = y_true.abs() + y_pred.abs()
        positive = total > 0
        if mask is not None:
            # masked terms become 0 (a masked target may be NaN); an all-True mask changes no bit
            mask = _as_mask(mask, y_true)
            err, nonzero, positive = torch.where(mask, err, 0.0), nonzero & mask, positive & mask
        # where() on safe denominators: the skipped terms never compute inf or NaN
        ape = torch.where(nonzero, err / torch.where(nonzero, y_true.abs(), 1.0), 0.0)
        sape = torch.where(positive, 2.0 * err / torch.where(positive, total, 1.0), 0.0)
        terms = {"absolute": err, "squared": err.square(), "ape": ape, "ape_count": nonzero.double(), "sape": sape}
        if mase_scale is not None:
            terms.update(self._window_mase_terms(err, mask, mase_scale))
        batch_sums = {name: term.sum(0) for name, term in terms.items()}
        if mase_scale is None:
            # the constructor's per-channel scale applies at result(): MASE needs only these windows' sums
            batch_sums["ctor_absolute"] = batch_sums["absolute"]
            batch_sums["ctor_observed"] = mask.sum(0, dtype=torch.float64) if mask is not None else \
                torch.full(y_true.shape[1:], float(len(y_true)), dtype=torch.float64, device=y_true.device)
            self.ctor_windows += len(y_true)
        for name, batch_sum in batch_sums.items():
            self.sums[name] = batch_sum if name not in self.sums else self.sums[name] + batch_sum
        if mask is not None or self.observed is not None:
            batch_observed = mask.sum(0, dtype=torch.float64) if mask is not None else float(len(y_true))
            before = self.observed if self.observed is not None else \
                torch.full(y_true.shape[1:], float(self.windows), dtype=torch.float64, device=y_true.device)
            self.observed = before + batch_observed
        self.windows += y_true.shape[0]

    def _window_mase_terms(self, err: torch.Tensor, mask, mase_scale) -> dict:
        """For per-window scales: ``|err| / scale`` over observed targets with a usable scale, their
        count, and per channel the windows whose series' scale is unknown or 0."""
        self.per_window = True
        n_windows, _, n_channels = err.shape
        scale = _per_window(_float64(mase_scale, err.device), n_windows, n_channels, "mase_scale")
        finite = torch.isfinite(scale)
        usable = finite & (scale > 0)
        counted = usable.expand_as(err) if mask is None else usable & mask
        return {"scaled": torch.where(counted, err / torch.where(usable, scale, 1.0), 0.0),
                "scaled_count": counted.double(), "mase_unknown": (~finite).double(),
                "mase_constant": (finite & ~usable).double()}

    def result(self, metrics=("mae", "rmse", "mape", "smape", "mase"), per_step: bool = False) -> dict:
        """``{metric: float, ..., "n_windows": int}`` for ``metrics`` (any of mse, mae, rmse, mape, smape,
        mase), plus with ``per_step`` a ``"per_step"`` DataFrame indexed by horizon step 1..H (named
        ``step``), one column per metric. Every metric is a mean over the observed targets (per step: of
        that step; NaN for a step with none): MSE, MAE, sMAPE over all of them, RMSE the root of MSE,
        MAPE over the non-zero ones, MASE over those whose series has a positive seasonal-naive scale.
        With every target observed and a per-channel MASE scale this is computed as the mean of the
        per-step values (MASE: of the per-channel MAE / scale), which is the same number."""
        if self.windows == 0:
            raise ValueError("no forecast windows to score")
        sums = {name: s.cpu().numpy() for name, s in self.sums.items()}  # each (horizon, channels)
        n_channels = sums["absolute"].shape[1]
        observed = None if self.observed is None else self.observed.cpu().numpy()
        all_observed = observed is None or bool((observed == self.windows).all())
        step, overall = {}, {}
        if all_observed:  # the exact pre-panel arithmetic: committed figures keep every bit
            step_channel_mae = sums["absolute"] / self.windows
            step["mse"] = (sums["squared"] / self.windows).mean(axis=1)
            step["mae"] = step_channel_mae.mean(axis=1)
            step["smape"] = 100.0 * sums["sape"].sum(axis=1) / (self.windows * n_channels)
            for name in ("mse", "mae", "smape"):
                overall[name] = step[name].mean()
        else:
            if observed.sum() == 0:
                raise ValueError(f"no observed targets to score: every target of the {self.windows} windows is masked")
            step_count, count = observed.sum(axis=1), observed.sum()
            for name, key in (("mse", "squared"), ("mae", "absolute"), ("smape", "sape")):
                step[name], overall[name] = _ratio(sums[key].sum(axis=1), step_count), sums[key].sum() / count
            step["smape"], overall["smape"] = 100.0 * step["smape"], 100.0 * overall["smape"]
        step["rmse"] = np.sqrt(step["mse"])
        overall["rmse"] = np.sqrt(overall["mse"])
        if "mape" in metrics:
            step["mape"] = _percent(sums["ape"].sum(axis=1), sums["ape_count"].sum(axis=1))
            overall["mape"] = _percent(sums["ape"].sum(), sums["ape_count"].sum())
            if np.isnan(overall["mape"]):
                _warn("MAPE is undefined: every target is 0; it is NaN (use MAE, RMSE or sMAPE)")
        if "mase" in metrics:
            if all_observed and not self.per_window:
                scale, usable = self._mase_channels(n_channels)
                step["mase"] = (step_channel_mae[:, usable] / scale[usable]).mean(axis=1) if usable.any() \
                    else np.full(len(step_channel_mae), np.nan)
                overall["mase"] = step["mase"].mean()
            else:  # a mean of |err| / scale over the observed targets with a usable scale
                zeros = np.zeros_like(sums["absolute"])
                scale, usable = self._mase_channels(n_channels, warn=not self.per_window) if self.ctor_windows else \
                    (np.full(n_channels, np.nan), np.zeros(n_channels, dtype=bool))
                if self.per_window:
                    self._warn_window_scales(sums, ~np.isfinite(scale), np.isfinite(scale) & ~usable)
                by_ctor = sums.get("ctor_absolute", zeros)[:, usable] / scale[usable]
                scaled = sums.get("scaled", zeros).sum(axis=1) + by_ctor.sum(axis=1)
                scaled_count = sums.get("scaled_count", zeros).sum(axis=1) + \
                    sums.get("ctor_observed", zeros)[:, usable].sum(axis=1)
                step["mase"], overall["mase"] = _ratio(scaled, scaled_count), _ratio(scaled.sum(), scaled_count.sum())
        result = {name: float(overall[name]) for name in metrics}
        result["n_windows"] = self.windows
        if per_step:
            result["per_step"] = pd.DataFrame({name: step[name] for name in metrics},
                                              index=pd.RangeIndex(1, len(step["mse"]) + 1, name="step"))
        return result

    def _names(self, n_channels: int) -> list:
        return list(self.columns) if self.columns is not None else list(range(n_channels))

    def _mase_channels(self, n_channels: int, warn: bool = True) -> tuple[np.ndarray, np.ndarray]:
        """The per-channel scale and the channels MASE can average over (a finite, positive scale),
        warning about the others."""
        scale = np.full(n_channels, np.nan) if self.mase_scale is None else self.mase_scale
        if scale.shape != (n_channels,):
            raise ValueError(f"MASE needs one scale per channel: got {scale.shape[0]} scales for {n_channels} channels")
        names = self._names(n_channels)
        unknown, constant = ~np.isfinite(scale), np.isfinite(scale) & (scale <= 0)
        if not warn:
            pass
        elif unknown.all():
            _warn("MASE is unavailable (NaN): the training data's seasonal-naive error is unknown (a model saved by "
                  "an older tsforecast); refit the model to get it")
        elif unknown.any():
            _warn(f"MASE leaves out channels {[names[i] for i in np.flatnonzero(unknown)]}: their training "
                  "seasonal-naive error is unknown")
        if warn and constant.any():
            _warn(f"MASE leaves out channels {[names[i] for i in np.flatnonzero(constant)]}: their training rows have "
                  "a seasonal-naive error of 0 (constant), so MASE is undefined for them"
                  + ("; it is NaN" if constant.all() else ""))
        return scale, np.isfinite(scale) & (scale > 0)

    def _warn_window_scales(self, sums: dict, ctor_unknown: np.ndarray, ctor_constant: np.ndarray) -> None:
        """``_mase_channels``'s warnings when scales came per window: how many windows each channel left
        out, and why (``ctor_*``: the constructor's channels, for the windows scored with it)."""
        names = self._names(len(ctor_unknown))
        unknown = sums["mase_unknown"].reshape(-1) + self.ctor_windows * ctor_unknown
        constant = sums["mase_constant"].reshape(-1) + self.ctor_windows * ctor_constant

        def which(counts):
            return ", ".join(f"{names[i]!r}: {int(counts[i])}" for i in np.flatnonzero(counts))

        if (unknown == self.windows).all():
            _warn("MASE is unavailable (NaN): no window's series has a known training seasonal-naive error; pass "
                  "each series' seasonal_naive_scale as mase_scale")
        elif unknown.any():
            _warn(f"MASE leaves out windows whose series' training seasonal-naive error is unknown (of "
                  f"{self.windows} windows, per channel: {{{which(unknown)}}})")
        if constant.any():
            _warn(f"MASE leaves out windows whose series' training rows have a seasonal-naive error of 0 (constant), "
                  f"so MASE is undefined for them (of {self.windows} windows, per channel: {{{which(constant)}}})"
                  + ("; it is NaN" if (unknown + constant == self.windows).all() else ""))


def _warn(message: str) -> None:
    """A RuntimeWarning pointing at the caller's line outside tsforecast and torch (whichever way in)."""
    frame, level = sys._getframe(1), 2
    while frame is not None and any(part in frame.f_code.co_filename for part in _INTERNAL):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, RuntimeWarning, stacklevel=level)


_INTERNAL = (os.path.dirname(os.path.abspath(__file__)) + os.sep, os.sep + "torch" + os.sep)


def _as_mask(mask, like: torch.Tensor) -> torch.Tensor:
    """An observed-mask as a bool tensor on ``like``'s device, checked against its shape."""
    mask = torch.as_tensor(mask, device=like.device)
    if mask.dtype != torch.bool:
        raise TypeError(f"mask must be boolean (True = observed), got dtype {mask.dtype}; pass e.g. ~torch.isnan(y)")
    if mask.shape != like.shape:
        raise ValueError(f"mask {tuple(mask.shape)} must have the targets' shape {tuple(like.shape)} "
                         "(windows, horizon, channels)")
    return mask


def _per_window(value, n_windows: int, n_channels: int, what: str):
    """Per-window values (one per window and channel: ``(B, 1, C)`` or ``(B, C)``; a numpy array or a
    tensor) as ``(B, 1, C)``."""
    if value.ndim == 2:
        value = value.reshape(value.shape[0], 1, value.shape[1])
    if tuple(value.shape) != (n_windows, 1, n_channels):
        raise ValueError(f"{what} must hold one value per window and channel, shape ({n_windows}, 1, {n_channels}), "
                         f"got {tuple(value.shape)}")
    return value


def _float64(value, device) -> torch.Tensor:
    """A float64 tensor on ``device`` from a tensor or an array (copied: it may be read-only)."""
    if isinstance(value, torch.Tensor):
        return value.to(device=device, dtype=torch.float64)
    return torch.from_numpy(np.array(value, dtype=np.float64)).to(device)


def _ratio(numerator, count):
    """numerator / count, NaN where count is 0 (a horizon step with no observed target)."""
    numerator, count = np.asarray(numerator, dtype=np.float64), np.asarray(count, dtype=np.float64)
    return np.where(count > 0, numerator / np.where(count > 0, count, 1.0), np.nan)


def _percent(numerator, count):
    """100 * numerator / count, NaN where count is 0 (MAPE with only zero targets)."""
    numerator, count = np.asarray(numerator, dtype=np.float64), np.asarray(count, dtype=np.float64)
    return np.where(count > 0, 100.0 * numerator / np.where(count > 0, count, 1.0), np.nan)


def _one_shot(y_true, y_pred, mase_scale=None, metric="mae") -> float:
    """A metric over whole arrays (any shape; channels last for MASE) through the streaming code."""
    # copies: pandas 3 hands out read-only arrays, which torch.from_numpy warns about
    y_true, y_pred = np.array(y_true, dtype=np.float64), np.array(y_pred, dtype=np.float64)
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
    unscaled (with each window's series' ``mean``/``scale``, else the constructor's ``scaler``) and
    compared with the original targets (float64, so a target that is exactly 0 stays 0 for MAPE).
    """

    def __init__(self, units: str, per_step: bool, scaler=None, mase_scale=None, columns=None):
        check_units(units)
        self.units, self.per_step = units, bool(per_step)
        self.protocol = ErrorAccumulator() if units == "scaled" else None
        self.steps = HorizonAccumulator(mase_scale, columns) if units == "original" or self.per_step else None
        self.mean, self.scale = (None, None) if scaler is None else (scaler.mean_, scaler.scale_)

    def original_targets(self, windows, batch_size: int, *single_series) -> Iterator:
        """The targets of ``windows`` in the data's units, float64, batch for batch as
        ``windows.batches(batch_size)`` gives them: build ``windows`` on the unscaled float64 values
        (unscaling the float32 scaled targets would blur exact zeros). Nones when the units are scaled.

        Transitional: ``original_targets(values, lookback, horizon, batch_size, device)`` (one ``(T, C)``
        series) still works."""
        if self.units == "scaled":
            return repeat(None)
        if single_series:
            lookback, (horizon, batch_size, device) = batch_size, single_series
            values = torch.tensor(np.asarray(windows), dtype=torch.float64, device=device)  # a copy: may be read-only
            windows = Windows(values, None, lookback, horizon)
        return (batch.y.double() for batch in windows.batches(batch_size))

    def update(self, y: torch.Tensor, forecast: torch.Tensor, original: torch.Tensor | None = None, mean=None,
               scale=None, mase_scale=None, mask=None) -> None:
        """One batch: scaled targets ``y`` and ``forecast`` ``(B, H, C)``; ``original`` the float64 targets in
        the data's units (needed for ``units="original"``; NaN where masked is fine); ``mean``, ``scale``
        ``(B, 1, C)``: each window's series' scaler (None: the constructor's); ``mase_scale`` ``(B, 1, C)``:
        each window's series' MASE denominator (None: the constructor's); ``mask`` ``(B, H, C)`` bool,
        True = observed (None: all)."""
        if self.units == "scaled":
            self.protocol.update(y, forecast, mask)
            if self.steps is not None:
                self.steps.update(y, forecast, mask)
            return
        if original is None:
            raise ValueError("units='original' scores against the targets in the data's units: pass original= "
                             "(float64 (B, H, C), e.g. from WindowScorer.original_targets)")
        if (mean is None) != (scale is None):
            raise ValueError("pass both mean= and scale= (each window's series' scaler), or neither")
        if mean is None:
            if self.scale is None:
                raise ValueError("units='original' needs the scaler to unscale forecasts: pass scaler= to WindowScorer "
                                 "or mean= and scale= per window to update")
            if not isinstance(self.scale, torch.Tensor):  # once, on the forecasts' device
                self.scale = torch.as_tensor(self.scale, dtype=torch.float64, device=forecast.device)
                self.mean = torch.as_tensor(self.mean, dtype=torch.float64, device=forecast.device)
            mean, scale = self.mean, self.scale
        else:
            n_windows, _, n_channels = forecast.shape
            mean, scale = (_per_window(_float64(v, forecast.device), n_windows, n_channels, name)
                           for v, name in ((mean, "mean"), (scale, "scale")))
        # the same float64 operations as StandardScaler.inverse_transform, so these are predict()'s numbers
        self.steps.update(original, forecast.detach().double() * scale + mean, mask, mase_scale)

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
    level/100``; lower is better), each a mean over the observed targets (windows x steps x channels).

    Inputs are on the training-scaled data; width and Winkler score are linear in the scale, so they are
    reported in the data's units: with a per-channel ``scale`` at construction (the scaler's
    ``scale_``) each channel's sums are multiplied by it at ``result()``; with ``scale`` per window at
    ``update`` (panels: each window's series' ``scale_``) each window's terms are, before summing.
    Memory: levels x channels numbers.
    """

    def __init__(self, levels, scale=None):
        self.levels = tuple(levels)
        self.alpha = 1.0 - np.asarray(self.levels, dtype=np.float64) / 100.0
        self.scale = None if scale is None else np.asarray(scale, dtype=np.float64)
        self.sums: dict[str, np.ndarray] = {}  # (L, C), in scaled units: unmasked batches, constructor scale
        self.count = 0  # windows x steps of those
        self.scaled_sums: dict[str, np.ndarray] = {}  # (L,), in data units: per-window scale or masked batches
        self.observed = 0  # targets of those

    def update(self, y_true, lower, upper, scale=None, mask=None, hits=None) -> None:
        """``y_true`` ``(B, H, C)``; ``lower``, ``upper`` ``(B, L, H, C)`` (or broadcastable to it); ``scale``
        ``(B, 1, C)``: each window's series' scale (None: the constructor's per-channel scale); ``mask``
        ``(B, H, C)`` bool, True = observed (None: all); ``hits`` ``(B, L, H, C)`` bool: which targets are
        inside, when the caller judged that itself (conformal intervals: score <= radius, in the scores'
        own precision, so a target whose error ties the radius counts as the calibration counted it;
        bounds recomputed in float64 would put such ties on either side by rounding)."""
        y = np.asarray(y_true, dtype=np.float64)[:, None]
        lower, upper = np.asarray(lower, dtype=np.float64), np.asarray(upper, dtype=np.float64)
        if scale is None and self.scale is None:
            raise ValueError("interval widths need the data's scale: pass scale= to IntervalAccumulator (per channel) "
                             "or to update (per window)")
        with np.errstate(invalid="ignore"):  # a masked NaN target: its terms are dropped below
            below, above = np.maximum(lower - y, 0.0), np.maximum(y - upper, 0.0)
            width = np.broadcast_to(upper - lower, np.broadcast_shapes(y.shape, lower.shape))
            penalty = (2.0 / self.alpha)[:, None, None] * (below + above)
            inside = (below == 0) & (above == 0) if hits is None else np.asarray(hits, dtype=bool)
            terms = {"hits": inside, "width": width, "winkler": width + np.where(inside, 0.0, penalty)}
        if scale is None and mask is None:
            for name, term in terms.items():
                batch_sum = term.sum(axis=(0, 2), dtype=np.float64)  # (L, C)
                self.sums[name] = batch_sum if name not in self.sums else self.sums[name] + batch_sum
            self.count += y.shape[0] * y.shape[2]
            return
        n_windows, n_channels = y.shape[0], y.shape[-1]
        scale = self.scale.reshape(1, 1, -1) if scale is None else \
            _per_window(np.asarray(scale, dtype=np.float64), n_windows, n_channels, "scale")
        scale = scale[:, None]  # (B or 1, 1, 1, C) against (B, L, H, C)
        observed = np.ones(y.shape, dtype=bool) if mask is None else np.asarray(mask)[:, None]
        if observed.dtype != bool or observed.shape != y.shape:
            raise ValueError(f"mask must be boolean (True = observed) with the targets' shape {y_true.shape}, got "
                             f"{observed.dtype} {observed.shape[:1] + observed.shape[2:]}")
        with np.errstate(invalid="ignore"):  # an infinite width times a scale stays infinite
            scaled = {"hits": terms["hits"], "width": terms["width"] * scale, "winkler": terms["winkler"] * scale}
        for name, term in scaled.items():
            batch_sum = np.where(observed, term, 0.0).sum(axis=(0, 2, 3))  # (L,)
            self.scaled_sums[name] = batch_sum if name not in self.scaled_sums else self.scaled_sums[name] + batch_sum
        self.observed += int(observed.sum())

    def result(self) -> dict:
        """``{"coverage_80": percent, "width_80": data units, "winkler_80": data units, ...}``."""
        if self.count == 0 and not self.scaled_sums:
            raise ValueError("no forecast windows to score")
        out = {}
        if not self.scaled_sums:  # the per-channel arithmetic, bit for bit as before panels
            for i, level in enumerate(self.levels):
                name = level_name(level)
                out[f"coverage_{name}"] = float(100.0 * self.sums["hits"][i].mean() / self.count)
                with np.errstate(invalid="ignore"):  # an infinite width times a scale stays infinite
                    out[f"width_{name}"] = float((self.sums["width"][i] * self.scale).mean() / self.count)
                    out[f"winkler_{name}"] = float((self.sums["winkler"][i] * self.scale).mean() / self.count)
            return out
        totals, count = dict(self.scaled_sums), self.observed
        if self.sums:  # unmasked batches scored with the constructor's scale, folded in
            with np.errstate(invalid="ignore"):
                totals = {"hits": totals["hits"] + self.sums["hits"].sum(axis=1),
                          "width": totals["width"] + (self.sums["width"] * self.scale).sum(axis=1),
                          "winkler": totals["winkler"] + (self.sums["winkler"] * self.scale).sum(axis=1)}
            count += self.count * self.sums["hits"].shape[1]
        if count == 0:
            raise ValueError("no observed targets to score: every target is masked")
        for i, level in enumerate(self.levels):
            name = level_name(level)
            out[f"coverage_{name}"] = float(100.0 * totals["hits"][i] / count)
            out[f"width_{name}"] = float(totals["width"][i] / count)
            out[f"winkler_{name}"] = float(totals["winkler"][i] / count)
        return out
