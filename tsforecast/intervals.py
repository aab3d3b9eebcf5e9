"""Conformal prediction intervals for any fitted model: one home for their math.

Scores. A calibration window's score at horizon step h and channel c is the absolute error
``|y - yhat|`` of the model's forecast on the training-scaled data. ``Forecaster.fit`` computes them
for every stride-1 window of the calibration rows in one batched no-grad pass (the same windowed
rollout ``evaluate`` uses; no refit). The calibration rows are the validation rows: ``val_df``, or
the hold-out that gradient-trained models keep for early stopping; models without one (``naive``,
``snaive``, ``ar``) use the windows of the last ``validation_fraction`` of the fit rows (for ``ar``
these are in-sample: AR is fitted on every row), and when those hold no window, all fit rows.

Split conformal (``interval_method="split"``). The interval of level ``l`` (percent, ``alpha = 1 -
l/100``) is ``forecast +- q``, one ``q`` per step and channel: the ``k``-th smallest of the ``n``
calibration scores with ``k = ceil((n + 1)(1 - alpha))``, the finite-sample correction that makes
coverage at least ``l`` for exchangeable scores. When ``k > n`` (``n < 1/alpha - 1``: 19 windows for
95%, 4 for 80%) no finite ``q`` has that guarantee: the interval is infinite and a RuntimeWarning
says how many windows the level needs. In the data's units the bounds are ``forecast +- q x`` the
channel's training standard deviation (the scaler's inverse). Stride-1 windows overlap and a series
drifts, so the scores are not exactly exchangeable: the guarantee is a guide, which the benchmark
measures (benchmarks/README.md, ``results/intervals``).

Adaptive (``interval_method="adaptive"``): conformal quantile tracking (the "P" part of conformal
PID control, Angelopoulos, Barber & Bates 2023; online gradient descent on the pinball loss), run at
several step sizes at once and combined by how well each has done lately (the expert aggregation of
Gibbs & Candes 2024, "Conformal inference for online prediction with arbitrary distribution shifts",
applied to quantile trackers rather than to the level). Per level, step and channel, each tracker
``k`` updates ``q_k <- q_k + eta_k * (miss_k - alpha)``, where ``miss_k`` is whether a forecast whose
target has since been observed missed the radius tracker ``k`` gave it (so each tracker's long-run
miss rate is alpha); ``eta_k = ADAPTIVE_STEPS[k] x`` the mean calibration score of that step and
channel. The radius issued is the weighted mean of the trackers' radii, with weights proportional to
``exp(-ADAPTIVE_RATE x`` each tracker's past pinball losses in units of that mean score), mixed with
``ADAPTIVE_MIX`` of the uniform weights after every update so that a tracker that was poor in one
regime can take over in the next. Small steps give steady, narrow radii when the errors are stable;
large steps follow a shift quickly; the weights pick between them as the data go. Feedback is
delayed as the data arrive: step ``h`` of the forecast made at origin ``s`` updates the trackers at
origin ``s + h``, when its target is known (``ADAPTIVE_FEEDBACK = "step"``; ``"window"`` waits for the
whole window, ``s + H``), so a forecast only ever uses targets observed by its origin. Every ``q_k``
starts from the split quantile, walks the calibration windows in time order, and then walks the
windows of the data being scored (``evaluate``) or, in ``predict(X)``, the windows of ``X`` whose
targets are all in ``X``. Radii are ``max(q_k, 0)``, made non-decreasing in the level so that
intervals nest. The steps, rate and feedback were chosen on validation data only (see
``ADAPTIVE_STEPS``).

Horizons beyond the calibrated one (a rollout): the calibration rows are kept (original units, with
their timestamps), and the scores of a longer horizon are computed from them on first request and
cached; a longer horizon has fewer calibration windows (``rows - lookback - h + 1``). A saved model
keeps the rows, not the scores (windows x horizon x channels: 30 MB for ETTm1's validation split),
and recomputes the scores with one batched pass on first use after loading.
"""
from __future__ import annotations

import math
import warnings
from fractions import Fraction
from numbers import Real
from typing import Callable

import numpy as np
import pandas as pd

INTERVAL_METHODS = ("split", "adaptive")

#: The adaptive trackers' step sizes, as fractions of each step and channel's mean calibration score,
#: the rate of their weights and the share of uniform weight mixed in after each update. Chosen on the
#: protocol's VALIDATION periods (AR(96), H=96, the 5 benchmark datasets: calibrate on the end of the
#: training split, walk the validation windows), never on test figures: the rule "lowest mean Winkler
#: score relative to split among the settings within +-3 points of nominal on every dataset and level"
#: (benchmarks/scripts/interval_coverage.py --tune; benchmarks/README.md). One step (e.g. ``(0.02,)``)
#: is plain quantile tracking.
ADAPTIVE_STEPS = (0.0025, 0.005, 0.01, 0.02, 0.04, 0.08)
ADAPTIVE_RATE = 0.3
ADAPTIVE_MIX = 0.01
#: When a forecast's errors update the trackers: "step" (step h at origin + h) or "window" (at origin + H).
ADAPTIVE_FEEDBACK = "step"


# ---------------------------------------------------------------------------- levels
def check_levels(level) -> tuple[float, ...]:
    """Levels in percent, strictly between 0 and 100, sorted and unique; ``None`` gives ``()``."""
    if level is None:
        return ()
    hint = "pass coverage levels in percent, e.g. level=[80, 95] (or level=90)"
    if isinstance(level, (str, bytes)) or isinstance(level, (bool, np.bool_)):
        raise ValueError(f"level={level!r} is not a number; {hint}")
    values = [level] if isinstance(level, Real) else level
    try:
        values = list(values)
    except TypeError:
        raise ValueError(f"level={level!r} is neither a number nor a list of numbers; {hint}") from None
    if not values:
        raise ValueError(f"level is an empty list; {hint}, or leave level=None for no intervals")
    for value in values:
        if isinstance(value, (bool, np.bool_, str, bytes)) or not isinstance(value, Real):
            raise ValueError(f"level {value!r} is not a number; {hint}")
        if not (math.isfinite(value) and 0 < value < 100):
            raise ValueError(f"level {value!r} is outside (0, 100): a level is the coverage in percent; {hint}")
    return tuple(sorted({float(v) for v in values}))


def level_name(level: float) -> str:
    """``80.0 -> "80"``, ``97.5 -> "97.5"``: the suffix of column and metric names."""
    return f"{level:g}"


def check_method(method) -> str:
    if method not in INTERVAL_METHODS:
        raise ValueError(f"interval_method must be one of {INTERVAL_METHODS}, got {method!r}")
    return method


# ---------------------------------------------------------------------------- split conformal
def conformal_rank(n: int, level: float) -> int:
    """``ceil((n + 1) * level / 100)``, exactly (fractions: (n + 1) * 0.8 must not round up to 5.0000001)."""
    return math.ceil(Fraction(n + 1) * Fraction(str(level)) / 100)


def windows_needed(level: float) -> int:
    """Fewest calibration windows for which the level has a finite conformal quantile."""
    n = 1
    while conformal_rank(n, level) > n:
        n += 1
    return n


def conformal_quantile(scores: np.ndarray, level: float) -> np.ndarray:
    """Per step and channel, the ``ceil((n+1) level/100)``-th smallest of ``n`` scores ``(n, H, C)``;
    ``inf`` (with a RuntimeWarning) when that rank exceeds ``n``. NaN scores (missing targets,
    ``missing="mask"``) are left out: ``n`` counts each step and channel's observed scores."""
    scores = np.asarray(scores)
    if np.isnan(scores).any():
        return _observed_quantile(scores, level)
    n = len(scores)
    k = conformal_rank(n, level)
    if k > n:
        warnings.warn(f"the {level_name(level)}% interval is infinite: split conformal needs at least "
                      f"{windows_needed(level)} calibration windows for it and has {n}; give more validation "
                      "rows (val_df or a larger validation_fraction), a shorter horizon, or a lower level",
                      RuntimeWarning, stacklevel=3)
        return np.full(scores.shape[1:], np.inf)
    return np.partition(scores, k - 1, axis=0)[k - 1].astype(np.float64)


def _observed_quantile(scores: np.ndarray, level: float) -> np.ndarray:
    counts = (~np.isnan(scores)).sum(axis=0)
    ranks = np.vectorize(lambda n: conformal_rank(int(n), level))(counts)
    infinite = ranks > counts
    if infinite.any():
        warnings.warn(f"the {level_name(level)}% interval is infinite for {int(infinite.sum())} step(s) and channel(s): "
                      f"split conformal needs at least {windows_needed(level)} observed calibration scores and "
                      f"has {int(counts.min())}; give more validation rows, a shorter horizon, or a lower level",
                      RuntimeWarning, stacklevel=3)
    ordered = np.sort(scores, axis=0)  # NaN last
    picked = np.take_along_axis(ordered, np.clip(ranks - 1, 0, len(scores) - 1)[None], axis=0)[0]
    return np.where(infinite, np.inf, picked).astype(np.float64)


def nest(radii: np.ndarray, axis: int) -> np.ndarray:
    """Make radii non-decreasing along the (ascending) level axis, so intervals nest."""
    return np.maximum.accumulate(np.maximum(radii, 0.0), axis=axis)


# ---------------------------------------------------------------------------- adaptive
class QuantileTracker:
    """Conformal quantile trackers at several step sizes, combined by exponential weights on their
    pinball losses, with delayed feedback, for levels x steps x channels.

    ``radii(scores)`` takes the scores ``(B, H, C)`` of consecutive forecast origins (time order) and
    returns the radius each forecast was given. Each update uses only targets observed by then:
    with ``feedback="step"`` step ``h`` of the forecast made at origin ``s`` is applied at origin
    ``s + h`` (when that target is known); with ``"window"`` all its steps at ``s + H`` (when its whole
    window is known). ``step`` is one step size per tracker, each ``(L, H, C)`` or broadcastable (one
    tracker: plain quantile tracking); ``unit`` scales the pinball losses of the weights (the mean
    calibration score; ones by default).
    """

    def __init__(self, q0: np.ndarray, step, levels: tuple[float, ...], feedback: str = "step",
                 rate: float = ADAPTIVE_RATE, mix: float = ADAPTIVE_MIX, unit: np.ndarray | None = None):
        q0 = np.asarray(q0, dtype=np.float64)  # (L, H, C)
        n_levels, horizon, n_channels = q0.shape
        steps = [np.broadcast_to(np.asarray(k, dtype=np.float64), q0.shape) for k in
                 (step if isinstance(step, (list, tuple)) else [step])]
        self.q = np.repeat(q0[None], len(steps), axis=0)  # (K, L, H, C)
        self.step = np.stack(steps)
        self.unit = np.ones(q0.shape) if unit is None else np.broadcast_to(np.asarray(unit, dtype=np.float64), q0.shape)
        self.log_weight = np.full(self.q.shape, -math.log(len(steps)))
        self.rate, self.mix = float(rate), float(mix)
        self.alpha = (1.0 - np.asarray(levels, dtype=np.float64) / 100.0)[:, None]  # (L, 1)
        self.delays = np.arange(1, horizon + 1) if feedback == "step" else np.full(horizon, horizon)
        # the forecasts of the last `horizon` origins (ring buffer): scores, each tracker's radii, origin (-1: none)
        self.scores = np.zeros((horizon, horizon, n_channels))
        # float32: with 6 trackers this buffer is horizon^2 x 12 x channels values (H=720, 21 channels: 0.5 GB)
        self.used = np.zeros((horizon, len(steps), n_levels, horizon, n_channels), dtype=np.float32)
        self.origin = np.full(horizon, -1)
        self.clock = 0  # the current origin

    def _observe(self) -> None:
        """Apply the targets observed at the current origin: step h of the origin ``clock - delay_h``."""
        horizon = len(self.delays)
        origins = self.clock - self.delays
        slots = origins % horizon
        known = np.flatnonzero(self.origin[slots] == origins)
        if not len(known):
            return
        slots = slots[known]
        # A miss is judged against the radius the forecast was given (not the current one): then the
        # long-run miss rate of each tracker's intervals is alpha up to (range of q) / (eta x windows).
        scores = self.scores[slots, known][:, None, None, :]  # (k, 1, 1, C)
        used = self.used[slots, :, :, known]  # (k, K, L, C)
        missed = scores > used
        observed = ~np.isnan(scores)  # a missing target (NaN score) says nothing: no update
        alpha = self.alpha[None, None]
        update = np.where(observed, self.step[:, :, known].transpose(2, 0, 1, 3) * (missed - alpha), 0.0)
        self.q[:, :, known] += update.transpose(1, 2, 0, 3)
        if len(self.q) == 1:
            return
        pinball = np.where(missed, (1 - alpha) * (scores - used), alpha * (used - scores))
        # an infinite radius (a level with too few calibration windows, the same for every tracker) tells the
        # trackers apart no more than a missing target does: no weight update, and the radius stays infinite
        pinball = np.where(observed & np.isfinite(used), pinball / self.unit[:, known].transpose(1, 0, 2)[:, None], 0.0)
        log_weight = self.log_weight[:, :, known] - self.rate * pinball.transpose(1, 2, 0, 3)
        weight = np.exp(log_weight - log_weight.max(axis=0, keepdims=True))
        weight = (1 - self.mix) * weight / weight.sum(axis=0, keepdims=True) + self.mix / len(self.q)
        self.log_weight[:, :, known] = np.log(weight)

    def _combined(self) -> np.ndarray:
        """``(L, H, C)``: the trackers' radii, weighted."""
        if len(self.q) == 1:
            return self.q[0]
        weight = np.exp(self.log_weight - self.log_weight.max(axis=0, keepdims=True))
        return (weight * np.maximum(self.q, 0.0)).sum(axis=0) / weight.sum(axis=0)

    def radii(self, scores: np.ndarray, record: bool = True) -> np.ndarray | None:
        """``(B, L, H, C)`` radii for ``(B, H, C)`` scores of consecutive origins (None unless ``record``)."""
        scores = np.asarray(scores, dtype=np.float64)
        out = np.empty((len(scores),) + self.q.shape[1:]) if record else None
        horizon = len(self.delays)
        for i, row in enumerate(scores):
            self._observe()
            if record:
                out[i] = self._combined()
            slot = self.clock % horizon
            self.scores[slot], self.used[slot], self.origin[slot] = row, self.q, self.clock
            self.clock += 1
        return nest(out, axis=1) if record else None

    def flush(self) -> None:
        """Apply every pending forecast (the end of data whose targets are all observed)."""
        for _ in range(len(self.delays)):
            self._observe()
            self.clock += 1
        self.origin[:] = -1

    def current(self) -> np.ndarray:
        """``(L, H, C)`` radii for a forecast made now."""
        return nest(self._combined(), axis=0)


# ---------------------------------------------------------------------------- calibration state
def calibration_start(n_rows: int, fraction: float, lookback: int, horizon: int) -> int:
    """First row of the calibration rows when there is no validation data: the windows of the last
    ``round(fraction * n_rows)`` rows (their look-backs reach back ``lookback`` rows); all rows when
    those hold no window of ``horizon`` targets."""
    n_targets = int(round(n_rows * fraction))
    if n_targets >= horizon and n_rows - n_targets >= lookback:
        return n_rows - n_targets - lookback
    return 0


class ConformalCalibration:
    """What a fitted Forecaster keeps for its intervals: the calibration rows of each series (original
    units, internal timestamps, :class:`tsforecast.data.panel.SeriesData`) and the scores ``(windows,
    horizon, channels)`` (float32, absolute scaled errors; windows of every series pooled: each series
    is scaled by its own scaler, so their scaled errors are comparable) per horizon computed so far.
    Intervals at any level are derived from these on request."""

    def __init__(self, series: list, base_horizon: int):
        self.series = list(series)
        self.base_horizon = int(base_horizon)
        self.scores: dict[int, np.ndarray] = {}

    @property
    def values(self) -> np.ndarray:
        """The rows of the first series (a wide fit has one)."""
        return self.series[0].values

    @property
    def index(self) -> pd.DatetimeIndex:
        return self.series[0].index

    def scores_for(self, horizon: int, compute: Callable[[int], np.ndarray]) -> np.ndarray:
        """``(n, horizon, C)`` scores. Up to the fitted horizon they are the first steps of the fitted
        horizon's windows; beyond it, the windows of exactly that horizon (``compute(horizon)``, one pass
        over the calibration rows, cached). So an interval never depends on which horizons were asked
        for before (or on whether the model was saved and loaded in between)."""
        key = max(horizon, self.base_horizon)
        if key not in self.scores:
            self.scores[key] = np.asarray(compute(key), dtype=np.float32)
        return self.scores[key][:, :horizon]

    def split_radii(self, levels, horizon, compute) -> np.ndarray:
        """``(L, H, C)`` split-conformal radii (scaled units)."""
        scores = self.scores_for(horizon, compute)
        return nest(np.stack([conformal_quantile(scores, level) for level in levels]), axis=0)

    def tracker(self, levels, horizon, compute) -> QuantileTracker:
        """A quantile tracker started at the split quantiles and walked over the calibration windows."""
        scores = self.scores_for(horizon, compute)
        q0 = np.stack([conformal_quantile(scores, level) for level in levels])
        with warnings.catch_warnings():  # a step and channel with no observed score: mean 0 (no updates)
            warnings.simplefilter("ignore", RuntimeWarning)
            scale = np.nan_to_num(np.nanmean(scores, axis=0, dtype=np.float64)) if len(scores) else \
                np.zeros(scores.shape[1:])
        # a step and channel whose calibration errors are all zero: losses in units of the smallest
        # positive mean, so the weights stay finite
        unit = np.where(scale > 0, scale, scale[scale > 0].min() if (scale > 0).any() else 1.0)
        tracker = QuantileTracker(q0, [k * scale for k in ADAPTIVE_STEPS], levels, ADAPTIVE_FEEDBACK,
                                  ADAPTIVE_RATE, ADAPTIVE_MIX, unit)
        for begin in range(0, len(scores), 1024):  # in chunks: float64 copies of a batch, not of all scores
            tracker.radii(scores[begin:begin + 1024], record=False)
        tracker.flush()
        return tracker

    # -- persistence (tsforecast.io): config entries and tensors
    def state(self) -> tuple[dict, dict[str, np.ndarray]]:
        # Scores are not saved: they are recomputed from the rows by the same deterministic pass.
        # One series keeps the original layout (older files load alike); a panel numbers its series.
        if len(self.series) == 1:
            config = {"index": [t.isoformat() for t in self.index], "base_horizon": self.base_horizon}
            return config, {"calibration.values": np.ascontiguousarray(self.values)}
        config = {"series": [[t.isoformat() for t in s.index] for s in self.series], "base_horizon": self.base_horizon}
        return config, {f"calibration.values.{i}": np.ascontiguousarray(s.values) for i, s in enumerate(self.series)}

    @classmethod
    def from_state(cls, config: dict, tensors: dict, ids: list | None = None) -> "ConformalCalibration":
        from .data.panel import SeriesData

        if "series" in config:
            indexes = [pd.DatetimeIndex(i) for i in config["series"]]
            values = [np.asarray(tensors[f"calibration.values.{i}"], dtype=np.float64) for i in range(len(indexes))]
        else:
            indexes = [pd.DatetimeIndex(config["index"])]
            values = [np.asarray(tensors["calibration.values"], dtype=np.float64)]
        ids = [None] * len(indexes) if ids is None else ids
        for index, rows in zip(indexes, values):
            if len(index) != len(rows):
                raise ValueError(f"the calibration rows have {len(rows)} values for {len(index)} timestamps")
        return cls([SeriesData(sid, index, rows) for sid, index, rows in zip(ids, indexes, values)],
                   int(config["base_horizon"]))


def interval_columns(columns, levels) -> list:
    """neuralforecast's order, per channel: the point column, then its bounds by quantile
    (``lo`` of the highest level first ... ``hi`` of the highest level last)."""
    out = []
    for column in columns:
        out.append(column)
        out += [f"{column}-lo-{level_name(level)}" for level in reversed(levels)]
        out += [f"{column}-hi-{level_name(level)}" for level in levels]
    return out


def interval_frame(scaled: np.ndarray, radii: np.ndarray, levels, scaler, columns, index) -> pd.DataFrame:
    """The forecast ``(H, C)`` (scaled) with its bounds ``scaled +- radii`` ``(L, H, C)``, all in the data's
    units (the scaler's inverse: monotone, so ``lo <= point <= hi`` and the levels nest)."""
    # StandardScaler.inverse_transform's own operations (x * scale + mean), which it refuses on the
    # infinite bounds of a level with too few calibration windows
    def unscale(x):
        return x * scaler.scale_ + scaler.mean_
    point = unscale(scaled)
    data = {}
    lower, upper = [unscale(scaled - r) for r in radii], [unscale(scaled + r) for r in radii]
    for c, column in enumerate(columns):
        data[column] = point[:, c]
        for i in reversed(range(len(levels))):
            data[f"{column}-lo-{level_name(levels[i])}"] = lower[i][:, c]
        for i in range(len(levels)):
            data[f"{column}-hi-{level_name(levels[i])}"] = upper[i][:, c]
    return pd.DataFrame(data, index=index, columns=interval_columns(columns, levels))
