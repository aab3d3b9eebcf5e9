"""Metrics for panels and gaps (issue 12): observed masks, per-window scales (windows of one batch from
different series), and the guarantee that without them every figure keeps today's arithmetic."""
import warnings
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from tsforecast.metrics import ErrorAccumulator, HorizonAccumulator, IntervalAccumulator, WindowScorer

ALL = ("mse", "mae", "rmse", "mape", "smape", "mase")


def panel_batch(seed=0, windows=12, horizon=5, channels=3, missing=0.3):
    """Targets with exact zeros, forecasts, and an observed mask; masked targets are NaN, as a gap is."""
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(windows, horizon, channels)) * 5
    y[rng.random(y.shape) < 0.1] = 0.0
    pred = y + rng.normal(size=y.shape)
    mask = rng.random(y.shape) >= missing
    mask[0, 0, 0] = True  # at least one observed target
    return np.where(mask, y, np.nan), pred, mask


def t(a):
    return torch.from_numpy(np.asarray(a))


def numpy_metrics(y, pred, mask, scale=None):
    """The metrics over the observed subset, directly; ``scale`` broadcast to y's shape (MASE)."""
    yo, po = y[mask], pred[mask]
    err = np.abs(po - yo)
    nonzero = yo != 0
    out = {"mse": np.mean(err ** 2), "mae": err.mean(), "rmse": np.sqrt(np.mean(err ** 2)),
           "mape": 100 * np.mean(err[nonzero] / np.abs(yo[nonzero])),
           "smape": 100 * np.mean(2 * err / (np.abs(yo) + np.abs(po)))}
    if scale is not None:
        s = np.broadcast_to(scale, y.shape)[mask]
        usable = np.isfinite(s) & (s > 0)
        out["mase"] = np.mean(err[usable] / s[usable])
    return out


# ---------------------------------------------------------------------------- observed masks
def test_masked_protocol_mse_mae_are_the_observed_subsets():
    y, pred, mask = panel_batch()
    acc = ErrorAccumulator()
    for chunk in (slice(0, 5), slice(5, 12)):
        acc.update(t(y[chunk]), t(pred[chunk]), mask=t(mask[chunk]))
    result = acc.result()
    err = (pred - y)[mask]
    assert result["mse"] == pytest.approx(np.mean(err ** 2), rel=1e-12)
    assert result["mae"] == pytest.approx(np.mean(np.abs(err)), rel=1e-12)
    assert result["n_windows"] == 12  # windows, not observed targets


def test_masked_horizon_metrics_are_the_observed_subsets_overall_and_per_step():
    y, pred, _ = panel_batch(seed=1, missing=0.0)
    mask = np.random.default_rng(10).random(y.shape) > 0.3
    mask[:4] = True  # the first, unmasked chunk: a mask arriving later must still count it
    mask[4:, 2] = False  # step 3 observed in the first chunk only
    y = np.where(mask, y, np.nan)
    scale = np.array([0.5, 2.0, 1.5])
    acc = HorizonAccumulator(scale)
    acc.update(t(y[:4]), t(pred[:4]))
    acc.update(t(y[4:]), t(pred[4:]), mask=t(mask[4:]))
    result = acc.result(metrics=ALL, per_step=True)
    expected = numpy_metrics(y, pred, mask, scale)
    for name in ALL:
        assert result[name] == pytest.approx(expected[name], rel=1e-12), name
    table = result["per_step"]
    for step in range(1, 6):
        by_step = numpy_metrics(y[:, step - 1], pred[:, step - 1], mask[:, step - 1], scale)
        for name in ALL:
            assert table.loc[step, name] == pytest.approx(by_step[name], rel=1e-12), (step, name)
    # a step with no observed target: NaN in the per-step table, left out of the overall figures
    masked = HorizonAccumulator(scale)
    mask[:, 2] = False
    masked.update(t(y), t(pred), mask=t(mask))
    result = masked.result(metrics=ALL, per_step=True)
    assert result["per_step"].loc[3].isna().all() and result["per_step"].drop(index=3).notna().all().all()
    assert result["mae"] == pytest.approx(numpy_metrics(y, pred, mask, scale)["mae"], rel=1e-12)


def test_every_target_masked_is_a_clear_error():
    y, pred, mask = panel_batch()
    for acc in (ErrorAccumulator(), HorizonAccumulator([1.0, 1.0, 1.0])):
        acc.update(t(y), t(pred), mask=t(np.zeros_like(mask)))
        with pytest.raises(ValueError, match="every target of the 12 windows is masked"):
            acc.result()


def test_bad_masks_and_scales_are_rejected_with_the_expected_shape():
    y, pred, mask = panel_batch()
    with pytest.raises(TypeError, match="mask must be boolean"):
        ErrorAccumulator().update(t(y), t(pred), mask=t(mask.astype(float)))
    with pytest.raises(ValueError, match=r"mask \(12, 5\) must have the targets' shape \(12, 5, 3\)"):
        HorizonAccumulator().update(t(y), t(pred), mask=t(mask[..., 0]))
    with pytest.raises(ValueError, match=r"mase_scale must hold one value per window and channel, shape \(12, 1, 3\)"):
        HorizonAccumulator().update(t(y), t(pred), mase_scale=torch.ones(3))
    scorer = WindowScorer("original", False)
    with pytest.raises(ValueError, match="pass scaler= to WindowScorer or mean= and scale= per window"):
        scorer.update(t(y), t(pred), t(y))
    with pytest.raises(ValueError, match="pass original="):
        scorer.update(t(y), t(pred), mean=torch.zeros(12, 1, 3), scale=torch.ones(12, 1, 3))


# ---------------------------------------------------------------------------- today's numbers without masks
def test_without_a_mask_the_figures_keep_todays_arithmetic():
    rng = np.random.default_rng(2)
    y, pred = rng.normal(size=(20, 6, 4)), rng.normal(size=(20, 6, 4))
    scale = np.array([0.5, 1.0, 2.0, 3.0])
    plain, all_true = HorizonAccumulator(scale), HorizonAccumulator(scale)
    plain.update(t(y), t(pred))
    all_true.update(t(y), t(pred), mask=torch.ones(y.shape, dtype=torch.bool))
    a, b = plain.result(metrics=ALL, per_step=True), all_true.result(metrics=ALL, per_step=True)
    assert {k: a[k] for k in ALL} == {k: b[k] for k in ALL}  # exactly: an all-True mask changes no bit
    assert a["per_step"].equals(b["per_step"])
    # today's order of operations: per (step, channel) sums over windows, per-step means, their mean
    err = (t(pred) - t(y)).abs()
    step_channel_mae = err.sum(0).numpy() / 20
    assert a["mae"] == float(step_channel_mae.mean(axis=1).mean())
    assert a["mse"] == float((err.square().sum(0).numpy() / 20).mean(axis=1).mean())
    assert a["mase"] == float((step_channel_mae / scale).mean(axis=1).mean())
    expected = numpy_metrics(y, pred, np.ones(y.shape, dtype=bool), scale)
    for name in ALL:
        assert a[name] == pytest.approx(expected[name], rel=1e-12), name
    # per-window scales equal to the per-channel ones: the same MASE (the per-element formula)
    per_window = HorizonAccumulator()
    per_window.update(t(y), t(pred), mase_scale=np.broadcast_to(scale, (20, 1, 4)))
    assert per_window.result()["mase"] == pytest.approx(a["mase"], rel=1e-12)
    protocol, protocol_masked = ErrorAccumulator(), ErrorAccumulator()
    protocol.update(t(y), t(pred))
    protocol_masked.update(t(y), t(pred), torch.ones(y.shape, dtype=torch.bool))
    assert protocol.result() == protocol_masked.result()
    assert protocol.result()["mse"] == float((t(pred) - t(y)).square().sum()) / y.size


def test_window_scorer_per_window_scaler_equal_to_the_constructor_scaler_gives_the_same_bits():
    rng = np.random.default_rng(3)
    original = rng.normal(size=(8, 4, 2)) * 10 + 50
    scaler = SimpleNamespace(mean_=np.array([50.0, 40.0]), scale_=np.array([10.0, 5.0]))
    scaled_y = (original - scaler.mean_) / scaler.scale_
    forecast = scaled_y + rng.normal(size=scaled_y.shape) * 0.1
    ctor = WindowScorer("original", True, scaler, mase_scale=[3.0, 2.0])
    ctor.update(t(scaled_y), t(forecast), t(original))
    window = WindowScorer("original", True, None, mase_scale=[3.0, 2.0])
    window.update(t(scaled_y), t(forecast), t(original), mean=np.broadcast_to(scaler.mean_, (8, 1, 2)),
                  scale=np.broadcast_to(scaler.scale_, (8, 1, 2)), mask=torch.ones(original.shape, dtype=torch.bool))
    a, b = ctor.result(), window.result()
    assert {k: a[k] for k in ALL[1:]} == {k: b[k] for k in ALL[1:]} and a["per_step"].equals(b["per_step"])


# ---------------------------------------------------------------------------- windows from different series
def test_two_series_with_their_own_scales_in_one_batch_by_hand():
    # windows 0-2 from a series around 1000 (std 100), windows 3-5 from one around 1 (std 0.5)
    rng = np.random.default_rng(4)
    mean = np.array([1000.0] * 3 + [1.0] * 3).reshape(6, 1, 1)
    scale = np.array([100.0] * 3 + [0.5] * 3).reshape(6, 1, 1)
    mase_scale = np.array([40.0] * 3 + [0.2] * 3).reshape(6, 1, 1)
    original = mean + scale * rng.normal(size=(6, 4, 1))
    forecast = (original - mean) / scale + rng.normal(size=(6, 4, 1)) * 0.3  # scaled units
    mask = rng.random(original.shape) > 0.25
    scorer = WindowScorer("original", False)
    scorer.update(t((original - mean) / scale), t(forecast), t(np.where(mask, original, np.nan)), mean=mean,
                  scale=scale, mase_scale=mase_scale, mask=t(mask))
    result = scorer.result()
    err = np.abs(forecast * scale + mean - original)[mask]
    assert result["mae"] == pytest.approx(err.mean(), rel=1e-12)
    assert result["rmse"] == pytest.approx(np.sqrt(np.mean(err ** 2)), rel=1e-12)
    assert result["mase"] == pytest.approx(np.mean(err / np.broadcast_to(mase_scale, original.shape)[mask]), rel=1e-12)
    # the big series dominates MAE; MASE weighs both series by their own naive error
    assert result["mae"] > 10 and result["mase"] < 10


def test_per_window_mase_leaves_out_constant_series_with_a_warning():
    y, pred, _ = panel_batch(seed=5, windows=4, channels=2, missing=0.0)
    mase_scale = np.array([[1.0, 2.0], [0.0, 2.0], [np.nan, 2.0], [0.0, 2.0]])  # (B, C)
    acc = HorizonAccumulator(columns=["sales", "visits"])
    acc.update(t(y), t(pred), mase_scale=t(mase_scale))
    with pytest.warns(RuntimeWarning) as caught:
        result = acc.result()
    messages = " | ".join(str(w.message) for w in caught)
    assert "unknown (of 4 windows, per channel: {'sales': 1})" in messages
    assert "of 0 (constant)" in messages and "{'sales': 2}" in messages and "it is NaN" not in messages
    usable = np.isfinite(mase_scale) & (mase_scale > 0)
    err = np.abs(pred - y)
    expected = np.concatenate([(err[:, :, c][usable[:, c]] / mase_scale[usable[:, c], c][:, None]).ravel()
                               for c in range(2)])
    assert result["mase"] == pytest.approx(expected.mean(), rel=1e-12)
    constant = HorizonAccumulator()
    constant.update(t(y), t(pred), mase_scale=np.zeros((4, 1, 2)))
    with pytest.warns(RuntimeWarning, match="constant.*it is NaN"):
        assert np.isnan(constant.result()["mase"])


def test_constructor_and_per_window_mase_scales_mix_in_one_accumulator():
    y, pred, mask = panel_batch(seed=11, windows=6, channels=2)
    ctor = np.array([2.0, 0.0])  # channel 1 constant in the constructor's series
    per_window = np.full((3, 1, 2), 4.0)
    acc = HorizonAccumulator(ctor, columns=["a", "b"])
    acc.update(t(y[:3]), t(pred[:3]), mask=t(mask[:3]))
    acc.update(t(y[3:]), t(pred[3:]), mask=t(mask[3:]), mase_scale=per_window)
    with pytest.warns(RuntimeWarning, match=r"of 0 \(constant\).*of 6 windows, per channel: \{'b': 3\}"):
        result = acc.result()
    scale = np.concatenate([np.broadcast_to(ctor, (3, 1, 2)), per_window])
    assert result["mase"] == pytest.approx(numpy_metrics(y, pred, mask, scale)["mase"], rel=1e-12)


def test_window_scorer_scaled_units_score_observed_targets_only():
    y, pred, mask = panel_batch(seed=6)
    scorer = WindowScorer("scaled", True)
    scorer.update(t(y), t(pred), mask=t(mask))
    result = scorer.result()
    err = (pred - y)[mask]
    assert result["mse"] == pytest.approx(np.mean(err ** 2), rel=1e-12)
    assert result["per_step"]["mse"].to_numpy() == pytest.approx(
        [np.mean((pred - y)[:, h][mask[:, h]] ** 2) for h in range(5)], rel=1e-12)


def test_original_targets_come_from_the_callers_windows_as_float64():
    batches = [SimpleNamespace(y=torch.ones(2, 3, 1, dtype=torch.float32)), SimpleNamespace(y=torch.zeros(1, 3, 1))]
    windows = SimpleNamespace(batches=lambda batch_size: iter(batches[:batch_size]))
    got = list(WindowScorer("original", False).original_targets(windows, 2))
    assert [g.dtype for g in got] == [torch.float64] * 2 and got[0].shape == (2, 3, 1)
    assert next(WindowScorer("scaled", False).original_targets(windows, 2)) is None


# ---------------------------------------------------------------------------- intervals
def interval_batch(seed=7):
    rng = np.random.default_rng(seed)
    y = rng.normal(size=(6, 4, 2))
    point = y + rng.normal(size=y.shape) * 0.5
    radius = np.stack([np.full(y.shape, 0.5), np.full(y.shape, 1.0)], axis=1)  # (B, L, H, C)
    return y, point[:, None] - radius, point[:, None] + radius


def test_interval_per_window_scale_equals_the_per_channel_scale_when_shared():
    y, lower, upper = interval_batch()
    channel_scale = np.array([2.0, 7.0])
    per_channel, per_window, mixed = (IntervalAccumulator([50, 80], channel_scale), IntervalAccumulator([50, 80]),
                                      IntervalAccumulator([50, 80], channel_scale))
    per_channel.update(y, lower, upper)
    per_window.update(y, lower, upper, scale=np.broadcast_to(channel_scale, (6, 1, 2)))
    mixed.update(y[:2], lower[:2], upper[:2])  # unmasked batches folded in with masked ones
    mixed.update(y[2:], lower[2:], upper[2:], mask=np.ones(y[2:].shape, dtype=bool))
    expected = per_channel.result()
    for other in (per_window.result(), mixed.result()):
        assert other.keys() == expected.keys()
        for key in expected:
            assert other[key] == pytest.approx(expected[key], rel=1e-12), key
    assert expected["width_80"] == pytest.approx(2.0 * np.mean([2.0, 7.0]), rel=1e-12)


def test_interval_scores_over_observed_targets_with_per_window_scales():
    y, lower, upper = interval_batch(seed=8)
    scale = np.array([1.0, 1.0, 1.0, 10.0, 10.0, 10.0]).reshape(6, 1, 1) * np.array([1.0, 3.0])  # (B, 1, C)
    mask = np.random.default_rng(9).random(y.shape) > 0.3
    acc = IntervalAccumulator([50, 80])
    acc.update(np.where(mask, y, np.nan), lower, upper, scale=scale, mask=mask)
    result = acc.result()
    for i, level in enumerate((50, 80)):
        lo, hi = lower[:, i], upper[:, i]
        inside = (lo <= y) & (y <= hi)
        width = (hi - lo) * scale
        winkler = width + 2 / (1 - level / 100) * (np.maximum(lo - y, 0) + np.maximum(y - hi, 0)) * scale
        assert result[f"coverage_{level}"] == pytest.approx(100 * inside[mask].mean(), rel=1e-12)
        assert result[f"width_{level}"] == pytest.approx(width[mask].mean(), rel=1e-12)
        assert result[f"winkler_{level}"] == pytest.approx(winkler[mask].mean(), rel=1e-12)
    with pytest.raises(ValueError, match="pass scale= to IntervalAccumulator"):
        IntervalAccumulator([80]).update(y, lower, upper)


def test_masked_nan_targets_raise_no_numpy_warning():
    y, lower, upper = interval_batch()
    mask = np.ones(y.shape, dtype=bool)
    mask[0] = False
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        acc = IntervalAccumulator([80])
        acc.update(np.where(mask, y, np.nan), lower[:, :1], upper[:, :1], scale=np.ones((6, 1, 2)), mask=mask)
        assert np.isfinite(list(acc.result().values())).all()
