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
