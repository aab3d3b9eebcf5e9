"""A fast conformance suite every model must pass: ``check_forecaster(model)``.

It fits a tiny configuration on a small synthetic series and checks the contract the rest of the
package relies on: sklearn cloning, output shape / index / units, rollout consistency, determinism,
causality (a forecast reads only its look-back window), batched evaluation equal to one-by-one
prediction, the input left untouched, and an exact save/load round trip. The test suite runs it for
every registered model with the spec's ``test_params()``, so a new model is checked by being registered.
"""
from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.base import clone

from .data.calendar import infer_freq
from .forecaster import Forecaster
from .models.registry import resolve_model


def synthetic_frame(n_rows: int = 400, n_channels: int = 3, freq: str = "h", seed: int = 0) -> pd.DataFrame:
    """Daily-seasonal channels with noise and different levels/scales (so unit handling shows)."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_rows)[:, None]
    levels, scales = 10.0 * np.arange(1, n_channels + 1), np.arange(1, n_channels + 1)
    values = levels + scales * (np.sin(2 * np.pi * t / 24 + np.arange(n_channels)) + 0.3 * rng.normal(size=(n_rows, n_channels)))
    index = pd.date_range("2022-01-01", periods=n_rows, freq=freq)
    return pd.DataFrame(values, index=index, columns=[f"ch{i}" for i in range(n_channels)])


def check_prefix_causal(fn, inputs, what: str = "network", seed: int = 0) -> None:
    """Raise AssertionError unless output position ``i`` of ``fn`` depends on input positions ``<= i`` only.

    ``fn`` maps a ``(B, N, ...)`` tensor to a ``(B, N, ...)`` tensor, positions on axis 1 in the same
    units (a step, a token). For every cut ``1 <= c < N`` the inputs at positions ``>= c`` are replaced
    by unrelated values; the outputs at positions ``< c`` must stay bitwise equal. This is the contract
    of teacher-forced next-step training (the prediction at ``i`` is scored against input ``i + 1``):
    a network that reads later positions sees the targets it is trained on, and this check fails for
    it. Run ``fn`` in evaluation mode (dropout off).
    """
    import torch

    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        base = fn(inputs)
        _check(base.shape[:2] == inputs.shape[:2], f"{what}: output positions {tuple(base.shape[:2])} do not match "
                                                   f"input positions {tuple(inputs.shape[:2])}")
        for cut in range(1, inputs.shape[1]):
            altered = inputs.clone()
            noise = torch.randn(altered[:, cut:].shape, generator=generator, dtype=inputs.dtype)
            altered[:, cut:] = noise.to(inputs.device) * 3.0 + 1.0
            out = fn(altered)
            if not torch.equal(out[:, :cut], base[:, :cut]):
                first = int((out[:, :cut] != base[:, :cut]).flatten(2).any(-1).any(0).nonzero()[0])
                raise AssertionError(f"check_prefix_causal: {what}: output position {first} changed when input "
                                     f"positions >= {cut} changed (it reads the future)")


def check_forecast_ignores_future_targets(spec, lookback: int = 16, horizon: int = 8, n_channels: int = 2,
                                          n_time_features: int = 4, seed: int = 0) -> None:
    """Raise AssertionError if a network's forecast for a window changes when the target values after its
    look-back change, with the look-back and every calendar mark fixed.

    The windows are built by the package's own :class:`tsforecast.data.windows.Windows` (the path
    training, ``evaluate`` and ``predict`` use), so the check covers what reaches ``forward`` as
    ``x``, ``x_mark`` and ``y_mark``, including the decoder inputs a network builds from them
    (Informer's and Autoformer's start token must come from the look-back, never from the horizon).
    Future marks are known in advance and may be read.
    """
    import torch

    from .data.windows import Windows
    from .models.base import Dims

    spec = resolve_model(spec)
    dims = Dims(n_channels=n_channels, lookback=lookback, horizon=horizon,
                n_time_features=n_time_features if getattr(spec, "uses_time_features", False) else 0)
    torch.manual_seed(seed)
    network = spec.build(dims).eval()
    output_len = getattr(network, "output_len", horizon)
    generator = torch.Generator().manual_seed(seed)
    n_rows = lookback + output_len + 3
    values = torch.randn(n_rows, n_channels, generator=generator)
    marks = torch.rand(n_rows, n_time_features, generator=generator) - 0.5 if dims.n_time_features else None
    altered = values.clone()
    altered[lookback:] = torch.randn(n_rows - lookback, n_channels, generator=generator) * 5.0
    with torch.no_grad():
        outputs = []
        for series in (values, altered):
            batch = Windows(series, marks, lookback, output_len).gather(torch.tensor([0]))
            outputs.append(network(batch.x, batch.x_mark, batch.y_mark))
    _check(torch.equal(outputs[0], outputs[1]),
           f"{spec.name}: the forecast changed when only the target values after the look-back changed")


def _check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(f"check_forecaster: {what}")


def check_forecaster(model, lookback: int = 16, horizon: int = 8, data: pd.DataFrame | None = None,
                     **forecaster_params) -> None:
    """Raise AssertionError naming the first broken part of the contract.

    ``model``: a registry name or spec (a name uses the spec's ``test_params()``, a tiny configuration).
    ``forecaster_params``: extra Forecaster params (default: 2 epochs, seed 0).
    """
    spec = resolve_model(model)
    if isinstance(model, str):
        spec.set_params(**type(spec).test_params())
    params = {"max_epochs": 2, "random_state": 0, "device": "cpu", **forecaster_params}
    data = synthetic_frame() if data is None else data
    original = data.copy()
    n_channels = data.shape[1]

    forecaster = Forecaster(model=spec, lookback=lookback, horizon=horizon, **params)
    twin = clone(forecaster)
    _check(twin.model is not forecaster.model and
           twin.get_params(deep=True).keys() == forecaster.get_params(deep=True).keys() and
           all(repr(v) == repr(forecaster.get_params(deep=True)[k]) for k, v in twin.get_params(deep=True).items()),
           "clone() does not reproduce get_params()")

    forecaster.fit(data)
    pd.testing.assert_frame_equal(data, original, obj="fit must not modify its input")

    forecast = forecaster.predict()
    _check(forecast.shape == (horizon, n_channels), f"predict() has shape {forecast.shape}, expected {(horizon, n_channels)}")
    _check(list(forecast.columns) == list(data.columns), "predict() columns differ from the input's")
    expected_index = pd.date_range(data.index[-1], periods=horizon + 1, freq=data.index.freq or infer_freq(data.index))[1:]
    _check(forecast.index.equals(expected_index), "predict() index does not continue the input's timestamps")
    _check(bool(np.isfinite(forecast.to_numpy()).all()), "predict() returned NaN/inf")
    spread = (forecast.mean() - data.iloc[-lookback:].mean()).abs() / data.std()
    _check(bool((spread < 10).all()), "predict() is not in the input's units (far from the data's level)")

    longer = forecaster.predict(horizon=2 * horizon + 3)
    _check(longer.shape == (2 * horizon + 3, n_channels), "a longer-horizon predict() has the wrong shape")
    np.testing.assert_allclose(longer.iloc[:horizon].to_numpy(), forecast.to_numpy(), rtol=1e-5, atol=1e-6,
                               err_msg="the first `horizon` steps of a rollout differ from predict()")

    again = Forecaster(model=clone(spec), lookback=lookback, horizon=horizon, **params).fit(data).predict()
    np.testing.assert_array_equal(again.to_numpy(), forecast.to_numpy(),
                                  err_msg="two fits with the same random_state differ")
    np.testing.assert_array_equal(forecaster.predict().to_numpy(), forecast.to_numpy(),
                                  err_msg="repeated predict() differs")

    # The forecast after a frame depends on its last `lookback` rows only. (This holds by construction,
    # since predict slices the look-back; causality inside the network is checked by
    # check_forecast_ignores_future_targets and check_prefix_causal.)
    tail = data.iloc[-(lookback + 20):]
    altered = tail.copy()
    altered.iloc[:20] = altered.iloc[:20] * 3.0 + 7.0
    np.testing.assert_allclose(forecaster.predict(altered).to_numpy(), forecaster.predict(tail).to_numpy(),
                               rtol=1e-5, atol=1e-6, err_msg="the forecast reads rows before its look-back window")

    # Batched evaluation equals window-by-window prediction (no leakage of targets, no batch effects).
    segment = data.iloc[-(lookback + horizon + 4):]
    scores = forecaster.evaluate(segment)
    _check(scores["n_windows"] == 5, f"evaluate() scored {scores['n_windows']} windows, expected 5")
    scaled_errors = []
    for start in range(5):
        window = segment.iloc[start:start + lookback]
        truth = segment.iloc[start + lookback:start + lookback + horizon]
        prediction = forecaster.predict(window)
        scaled_errors.append(forecaster.scaler_.transform(prediction.to_numpy()) - forecaster.scaler_.transform(truth.to_numpy()))
    manual = float(np.mean(np.square(scaled_errors)))
    _check(abs(scores["mse"] - manual) <= 1e-4 * max(1.0, manual),
           f"evaluate() MSE {scores['mse']:.6f} differs from one-by-one predict() {manual:.6f}")
    _check(abs(forecaster.score(segment) + scores["mse"]) < 1e-12, "score() is not -evaluate()['mse']")

    with tempfile.TemporaryDirectory() as tmp:
        forecaster.save(Path(tmp) / "model")
        loaded = Forecaster.load(Path(tmp) / "model")
    pd.testing.assert_frame_equal(loaded.predict(), forecast, check_exact=True, obj="save/load changed the forecast")
    pd.testing.assert_frame_equal(loaded.predict(tail, horizon=horizon + 5), forecaster.predict(tail, horizon=horizon + 5),
                                  check_exact=True, obj="save/load changed a rollout")


# ---------------------------------------------------------------------------- panels with covariates
PANEL_LENGTHS = (96, 80, 112)
#: rows (position in the series' regular calendar) made missing by synthetic_panel(missing=True):
#: NaN targets, and one timestamp dropped (a gap that missing="mask" turns into a NaN row)
PANEL_NAN_TARGETS = {0: (20, 41), 1: (30,)}
PANEL_DROPPED_ROWS = {2: (50,)}


def _panel_covariate(name: str, number: int, steps: np.ndarray) -> np.ndarray:
    """A covariate's values for series ``number`` at absolute step numbers ``steps``: a deterministic
    function of time, so its values at future steps are known (future covariates) and reproducible."""
    phase = 0.7 * number + (sum(map(ord, name)) % 7)
    return 1.0 + number + np.sin(2 * np.pi * steps / 11.0 + phase) + 0.5 * np.cos(2 * np.pi * steps / 5.0 + phase)


def synthetic_panel(n_series: int = 3, lengths=PANEL_LENGTHS, freq: str = "h", seed: int = 0,
                    future=("price",), past=("visits",), missing: bool = False, id_col: str = "unique_id",
                    time_col: str = "ds") -> pd.DataFrame:
    """A small ragged long panel: columns ``id_col, time_col, y``, then the ``past`` and ``future``
    covariate columns. Series ``i`` (id ``"s{i}"``) starts ``3 * i`` steps after the first and has
    ``lengths[i % len(lengths)]`` rows, so both start and end dates differ. ``y`` is a daily cycle at
    the series' own level and scale, driven by the future covariates (``0.8 * price``) and by the last
    step's past covariates. ``missing=True`` puts NaN targets at :data:`PANEL_NAN_TARGETS` and drops
    the rows :data:`PANEL_DROPPED_ROWS` (a timestamp gap) for ``Forecaster(missing="mask")``.
    Future covariate values at any later date: :func:`synthetic_panel_future`.
    """
    rng = np.random.default_rng(seed)
    start = pd.Timestamp("2022-01-01")
    offset = pd.tseries.frequencies.to_offset(freq)
    frames = []
    for i in range(n_series):
        n = lengths[i % len(lengths)]
        steps = np.arange(3 * i, 3 * i + n)
        drivers = {name: _panel_covariate(name, i, steps) for name in future}
        observed = {name: 2.0 + rng.normal(size=n) for name in past}
        y = (10.0 * (i + 1) + (i + 1) * (np.sin(2 * np.pi * steps / 24) + 0.3 * rng.normal(size=n))
             + sum(0.8 * v for v in drivers.values()) + sum(0.5 * np.roll(v, 1) for v in observed.values()))
        frame = pd.DataFrame({id_col: f"s{i}", time_col: pd.date_range(start + 3 * i * offset, periods=n, freq=freq),
                              "y": y, **observed, **drivers})
        if missing:
            frame.loc[list(PANEL_NAN_TARGETS.get(i, ())), "y"] = np.nan
            frame = frame.drop(index=list(PANEL_DROPPED_ROWS.get(i, ())))
        frames.append(frame)
    return pd.concat(frames, ignore_index=True)


def synthetic_panel_future(panel: pd.DataFrame, steps: int, future=("price",), freq: str = "h",
                           id_col: str = "unique_id", time_col: str = "ds") -> pd.DataFrame:
    """The future covariates of :func:`synthetic_panel`'s series for the ``steps`` dates after each
    series' last date: a long frame ``id_col, time_col, *future`` (what ``predict(future_covariates=)``
    takes)."""
    offset = pd.tseries.frequencies.to_offset(freq)
    origin = pd.Timestamp("2022-01-01")
    frames = []
    for sid, rows in panel.groupby(id_col, sort=False):
        number = int(str(sid)[1:])  # synthetic_panel's ids are "s{number}"
        dates = pd.date_range(rows[time_col].max() + offset, periods=steps, freq=freq)
        absolute = np.array([(d - origin) // pd.Timedelta(offset) for d in dates])
        frames.append(pd.DataFrame({id_col: sid, time_col: dates,
                                    **{name: _panel_covariate(name, number, absolute) for name in future}}))
    return pd.concat(frames, ignore_index=True)


def _panel_check(condition: bool, what: str) -> None:
    if not condition:
        raise AssertionError(f"check_panel: {what}")


def check_panel(model, lookback: int = 16, horizon: int = 4, **forecaster_params) -> None:
    """Raise AssertionError naming the first broken part of the panel contract.

    Fits ``model`` (a registry name uses the spec's ``test_params()``) on :func:`synthetic_panel`: three
    ragged hourly series with NaN targets and a timestamp gap (``missing="mask"``), and the covariate
    roles the family supports (``price`` future-known, ``visits`` past-only; none for the others, and
    a role it does not support must be an error at fit). Then checks: the long forecast (one block per
    series, each continuing its own last date, finite); a rollout to ``2 * horizon`` equal to the direct
    forecast on the first ``horizon`` steps; batched ``evaluate`` over the panel equal to one series at
    a time, pooled (scaled MSE and data-unit MAE), and to ``predict()`` on each series' last window; an
    exact save/load round trip; interval bounds around the forecast. Also: the fitted rows given as
    ``X``, or a subset by ``ids``, forecast what ``predict()`` does, and a supported covariate is read
    (changing it changes the forecast).
    ``forecaster_params``: extra Forecaster params (default: 1 epoch, seed 0).
    """
    spec = resolve_model(model)
    if isinstance(model, str):
        spec.set_params(**type(spec).test_params())
    future = ["price"] if spec.supports_future_covariates else []
    past = ["visits"] if spec.supports_past_covariates else []
    params = {"max_epochs": 1, "random_state": 0, "device": "cpu", "missing": "mask", "validation_fraction": 0.25,
              **forecaster_params}
    panel = synthetic_panel(future=future, past=past, missing=True)
    original = panel.copy()
    freq = pd.tseries.frequencies.to_offset("h")
    ids = list(pd.unique(panel["unique_id"]))

    for role, supported in (("future_covariates", bool(future)), ("past_covariates", bool(past))):
        if not supported:  # never silently ignored: an error at fit that names the role
            other = synthetic_panel(future=("price",), past=("visits",), missing=True)
            column = "price" if role == "future_covariates" else "visits"
            try:
                Forecaster(model=clone(spec), lookback=lookback, horizon=horizon, **{**params, role: [column]}).fit(other)
            except ValueError as error:
                _panel_check(role in str(error), f"fit with unsupported {role} raised an error not naming them: {error}")
            else:
                raise AssertionError(f"check_panel: {spec.name} does not support {role}, yet fit accepted them")

    forecaster = Forecaster(model=spec, lookback=lookback, horizon=horizon, future_covariates=future or None,
                            past_covariates=past or None, **params).fit(panel)
    pd.testing.assert_frame_equal(panel, original, obj="fit must not modify its input")
    _panel_check(list(forecaster.series_ids_) == ids, f"fitted series {forecaster.series_ids_}, expected {ids}")

    future_frame = synthetic_panel_future(panel, 2 * horizon, future) if future else None
    forecast = forecaster.predict(future_covariates=future_frame)
    _panel_check(list(forecast.columns) == ["unique_id", "ds", "y"],
                 f"a long predict() has columns {list(forecast.columns)}, expected ['unique_id', 'ds', 'y']")
    _panel_check(list(forecast["unique_id"]) == [sid for sid in ids for _ in range(horizon)],
                 "a long predict() is not one block of `horizon` rows per series, in the series' order")
    for sid in ids:
        last = panel.loc[panel["unique_id"] == sid, "ds"].max()
        got = list(forecast.loc[forecast["unique_id"] == sid, "ds"])
        expected = [last + k * freq for k in range(1, horizon + 1)]
        _panel_check(got == expected, f"series {sid!r}: forecast dates {got[:2]}... do not continue its last date "
                                      f"{last} hourly")
    _panel_check(bool(np.isfinite(forecast["y"].to_numpy(dtype=np.float64)).all()), "a panel predict() returned NaN/inf")
    for sid in ids:  # in each series' own units (series levels differ by 10x)
        history = panel.loc[panel["unique_id"] == sid, "y"]
        gap = abs(forecast.loc[forecast["unique_id"] == sid, "y"].mean() - history.iloc[-lookback:].mean())
        _panel_check(gap < 10 * history.std(), f"series {sid!r}: the forecast is not in the series' own units")

    # X=None continues the fitted series; the same rows given as X, or a subset by ids, forecast the same.
    np.testing.assert_allclose(forecaster.predict(panel, future_covariates=future_frame)["y"].to_numpy(dtype=np.float64),
                               forecast["y"].to_numpy(dtype=np.float64), rtol=1e-5, atol=1e-5,
                               err_msg="predict(fit data) differs from predict() (which continues the fit data)")
    subset = forecaster.predict(ids=[ids[1]], future_covariates=future_frame)
    block = forecast[forecast["unique_id"] == ids[1]].reset_index(drop=True)
    pd.testing.assert_frame_equal(subset, block, check_exact=False, rtol=1e-5, atol=1e-5,
                                  obj=f"predict(ids=[{ids[1]!r}]) vs that series' block of predict()")

    # A supported covariate is read, never silently dropped: changing it changes the forecast.
    if future:
        shifted = future_frame.assign(price=future_frame["price"] + 3.0)
        moved = forecaster.predict(future_covariates=shifted)["y"].to_numpy(dtype=np.float64)
        _panel_check(not np.allclose(moved, forecast["y"].to_numpy(dtype=np.float64), rtol=0, atol=1e-6),
                     "the forecast ignores the future covariates' values at the forecast steps")
    if past:
        # a shape, not a constant shift: instance-normalizing networks (iTransformer's, S-Mamba's use_norm)
        # and Autoformer's decomposition are rightly blind to a shift of a whole look-back
        recent = (panel.groupby("unique_id", sort=False).cumcount(ascending=False) < lookback).to_numpy()
        noise = np.random.default_rng(1).normal(scale=3.0, size=int(recent.sum()))
        changed = panel.copy()
        changed.loc[recent, "visits"] += noise
        moved = forecaster.predict(changed, future_covariates=future_frame)["y"].to_numpy(dtype=np.float64)
        _panel_check(not np.allclose(moved, forecast["y"].to_numpy(dtype=np.float64), rtol=0, atol=1e-6),
                     "the forecast ignores the past covariates in its look-back")

    longer = forecaster.predict(horizon=2 * horizon, future_covariates=future_frame)
    _panel_check(len(longer) == 2 * horizon * len(ids), "a panel rollout has the wrong number of rows")
    first = longer.groupby("unique_id", sort=False).head(horizon).reset_index(drop=True)
    pd.testing.assert_frame_equal(first[["unique_id", "ds"]], forecast[["unique_id", "ds"]],
                                  obj="the rollout's first `horizon` dates")
    np.testing.assert_allclose(first["y"].to_numpy(dtype=np.float64), forecast["y"].to_numpy(dtype=np.float64),
                               rtol=1e-5, atol=1e-5, err_msg="a panel rollout's first `horizon` steps differ from predict()")

    # Batched evaluation over the panel = one series at a time, pooled: windows add up and the MSE is
    # their average weighted by observed target values (missing targets are never scored).
    # In data units too (each window unscaled by its own series' scaler): MAE pooled the same way.
    scores, original_scores = forecaster.evaluate(panel), forecaster.evaluate(panel, units="original")
    pooled_windows, pooled_error, pooled_abs, pooled_count = 0, 0.0, 0.0, 0
    for sid in ids:
        rows = panel[panel["unique_id"] == sid]
        alone, alone_original = forecaster.evaluate(rows), forecaster.evaluate(rows, units="original")
        y = rows.set_index("ds")["y"].reindex(pd.date_range(rows["ds"].min(), rows["ds"].max(), freq=freq))
        observed = y.notna().to_numpy()
        n_windows = len(y) - lookback - horizon + 1
        _panel_check(alone["n_windows"] == n_windows, f"series {sid!r}: evaluate() scored {alone['n_windows']} "
                                                      f"windows, expected {n_windows} (its regular calendar)")
        count = sum(int(observed[s + lookback:s + lookback + horizon].sum()) for s in range(n_windows))
        pooled_windows += alone["n_windows"]
        pooled_error += alone["mse"] * count
        pooled_abs += alone_original["mae"] * count
        pooled_count += count
    _panel_check(scores["n_windows"] == pooled_windows,
                 f"evaluate() over the panel scored {scores['n_windows']} windows, the series alone {pooled_windows}")
    manual = pooled_error / pooled_count
    _panel_check(bool(np.isfinite(scores["mse"])), "evaluate() over a panel with missing targets is not finite")
    _panel_check(abs(scores["mse"] - manual) <= 1e-6 * max(1.0, manual),
                 f"evaluate() MSE over the panel {scores['mse']:.8f} differs from the series' pooled MSE {manual:.8f}")
    manual = pooled_abs / pooled_count
    _panel_check(abs(original_scores["mae"] - manual) <= 1e-6 * max(1.0, manual),
                 f"evaluate(units='original') MAE over the panel {original_scores['mae']:.8f} differs from the "
                 f"series' pooled MAE {manual:.8f}")

    # ...and against predict(): each series' last window (look-back + horizon rows, all observed) scored by
    # evaluate equals predict() from its look-back with the same rows' covariates, in data units and scaled
    # by the series' own scaler (a series paired with another's scaler or covariates shows here).
    ends = panel.groupby("unique_id", sort=False).tail(lookback + horizon)
    context, truth = ends.groupby("unique_id", sort=False).head(lookback), ends.groupby("unique_id", sort=False).tail(horizon)
    prediction = forecaster.predict(context, future_covariates=truth if future else None)
    pd.testing.assert_frame_equal(prediction[["unique_id", "ds"]], truth[["unique_id", "ds"]].reset_index(drop=True),
                                  obj="predict() dates of each series' last window")
    errors = prediction["y"].to_numpy(dtype=np.float64) - truth["y"].to_numpy(dtype=np.float64)
    target_scales = np.repeat([forecaster.scalers_[k].scale_[0] for k in range(len(ids))], horizon)
    for units, got, manual in (("original", forecaster.evaluate(ends, units="original")["mae"], np.mean(np.abs(errors))),
                               ("scaled", forecaster.evaluate(ends)["mse"], np.mean(np.square(errors / target_scales)))):
        _panel_check(abs(got - manual) <= 1e-4 * max(1.0, manual),
                     f"evaluate() ({units}) on each series' last window {got:.6f} differs from predict() {manual:.6f}")

    with tempfile.TemporaryDirectory() as tmp:
        forecaster.save(Path(tmp) / "model")
        loaded = Forecaster.load(Path(tmp) / "model")
    pd.testing.assert_frame_equal(loaded.predict(future_covariates=future_frame), forecast, check_exact=True,
                                  obj="save/load changed the panel forecast")

    bounds = forecaster.predict(level=[80], future_covariates=future_frame)
    _panel_check(list(bounds.columns) == ["unique_id", "ds", "y", "y-lo-80", "y-hi-80"],
                 f"predict(level=[80]) has columns {list(bounds.columns)}")
    low, point, high = (bounds[c].to_numpy(dtype=np.float64) for c in ("y-lo-80", "y", "y-hi-80"))
    _panel_check(bool(np.isfinite(low).all() and np.isfinite(high).all()), "predict(level=[80]) bounds are not finite")
    _panel_check(bool((low <= point).all() and (point <= high).all()), "predict(level=[80]) bounds do not enclose y")
    np.testing.assert_array_equal(point, forecast["y"].to_numpy(dtype=np.float64),
                                  err_msg="predict(level=...) changed the point forecast")
