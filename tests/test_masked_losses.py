"""Training losses over observed values only (Forecaster(missing="mask")): the shared masked_mse and the
networks' own training_loss (AutoTimes, SpaceTime) with an ``observed`` mask."""
import pytest
import torch
import torch.nn.functional as F

from tsforecast.losses import masked_mse, masked_rmse
from tsforecast.models import AutoTimes, Dims, SpaceTime


# ---------------------------------------------------------------------- masked_mse / masked_rmse
def test_masked_mse_without_mask_is_mse_loss_and_an_all_true_mask_changes_no_bit():
    torch.manual_seed(0)
    pred, target = torch.randn(8, 24, 3), torch.randn(8, 24, 3)
    assert torch.equal(masked_mse(pred, target), F.mse_loss(pred, target))
    assert torch.equal(masked_mse(pred, target, torch.ones(8, 24, 3, dtype=torch.bool)), F.mse_loss(pred, target))
    assert torch.equal(masked_rmse(pred, target, torch.ones(8, 24, 3, dtype=torch.bool)),
                       torch.sqrt(F.mse_loss(pred, target)))


def test_masked_mse_averages_the_observed_positions_and_ignores_nan_targets():
    torch.manual_seed(0)
    pred = torch.randn(4, 10, 2, requires_grad=True)
    target = torch.randn(4, 10, 2)
    mask = torch.rand(4, 10, 2) > 0.4
    expected = ((pred - target)[mask] ** 2).mean()
    target[~mask] = float("nan")  # what an unobserved target holds does not matter
    loss = masked_mse(pred, target, mask)
    torch.testing.assert_close(loss, expected)
    loss.backward()
    assert torch.isfinite(pred.grad).all()
    assert (pred.grad[~mask] == 0).all() and (pred.grad[mask] != 0).all()


def test_masked_mse_broadcasts_the_mask_and_counts_every_covered_value():
    torch.manual_seed(0)
    pred, target = torch.randn(3, 5, 4), torch.randn(3, 5, 4)
    step_mask = torch.tensor([True, False, True, True, False]).reshape(1, 5, 1)
    expected = ((pred - target)[:, step_mask.flatten()] ** 2).mean()
    torch.testing.assert_close(masked_mse(pred, target, step_mask), expected)


def test_nothing_observed_gives_zero_loss_and_zero_finite_gradients():
    pred = torch.randn(2, 3, requires_grad=True)
    target = torch.full((2, 3), float("nan"))
    nothing = torch.zeros(2, 3, dtype=torch.bool)
    for loss_fn in (masked_mse, masked_rmse):
        pred.grad = None
        loss = loss_fn(pred, target, nothing)
        assert loss.item() == 0.0
        loss.backward()
        assert torch.equal(pred.grad, torch.zeros(2, 3)), loss_fn.__name__


def test_masked_rmse_is_the_root_of_the_observed_mse():
    torch.manual_seed(0)
    pred, target = torch.randn(6, 7), torch.randn(6, 7)
    mask = torch.rand(6, 7) > 0.5
    torch.testing.assert_close(masked_rmse(pred, target, mask), torch.sqrt(((pred - target)[mask] ** 2).mean()))


# ---------------------------------------------------------------------- AutoTimes
LOOKBACK, TOKEN = 16, AutoTimes.test_params()["token_len"]


@pytest.fixture(scope="module")
def autotimes():
    torch.manual_seed(0)
    return AutoTimes(**AutoTimes.test_params()).build(Dims(n_channels=2, lookback=LOOKBACK, horizon=4,
                                                           n_time_features=0)).eval()


def _autotimes_batch():
    generator = torch.Generator().manual_seed(1)
    x, y = torch.randn(3, LOOKBACK, 2, generator=generator), torch.randn(3, TOKEN, 2, generator=generator)
    observed = torch.rand(3, LOOKBACK + TOKEN, 2, generator=generator) > 0.3
    return x, y, observed


def test_autotimes_loss_with_everything_observed_is_the_unmasked_loss(autotimes):
    x, y, _ = _autotimes_batch()
    assert autotimes.output_len == TOKEN  # observed covers lookback + output_len = lookback + token_len
    everything = torch.ones(3, LOOKBACK + TOKEN, 2, dtype=torch.bool)
    assert torch.equal(autotimes.training_loss(x, None, y, None, everything), autotimes.training_loss(x, None, y, None))


def test_autotimes_loss_is_the_next_token_mse_over_the_observed_targets(autotimes):
    x, y, observed = _autotimes_batch()
    # the targets are steps token_len .. lookback + token_len of cat(x, y); the first token is input only
    target = torch.cat([x, y], dim=1)[:, TOKEN:]
    target_observed = observed[:, TOKEN:]
    expected = ((autotimes.predict_tokens(x, None) - target)[target_observed] ** 2).mean()
    torch.testing.assert_close(autotimes.training_loss(x, None, y, None, observed), expected)
    # garbage in unobserved forecast targets (y is never an input) changes nothing, gradients stay finite
    garbage = y.clone()
    garbage[~observed[:, LOOKBACK:]] = float("nan")
    loss = autotimes.training_loss(x, None, garbage, None, observed)
    torch.testing.assert_close(loss, expected)
    autotimes.zero_grad()
    loss.backward()
    grads = [p.grad for p in autotimes.parameters() if p.grad is not None]
    assert grads and all(torch.isfinite(g).all() for g in grads)
    # the mask of the first token (never a target) is not read
    first_token_hidden = observed.clone()
    first_token_hidden[:, :TOKEN] = False
    torch.testing.assert_close(autotimes.training_loss(x, None, y, None, first_token_hidden), expected)


# ---------------------------------------------------------------------- SpaceTime
SPACETIME_LOOKBACK, SPACETIME_HORIZON = 20, 5


def _spacetime():
    torch.manual_seed(0)
    return SpaceTime(**SpaceTime.test_params()).build(Dims(2, SPACETIME_LOOKBACK, SPACETIME_HORIZON, 0)).eval()


def _spacetime_batch():
    generator = torch.Generator().manual_seed(2)
    x = torch.randn(4, SPACETIME_LOOKBACK, 2, generator=generator)
    y = torch.randn(4, SPACETIME_HORIZON, 2, generator=generator)
    observed = torch.rand(4, SPACETIME_LOOKBACK + SPACETIME_HORIZON, 2, generator=generator) > 0.3
    return x, y, observed


def test_spacetime_loss_with_everything_observed_is_the_unmasked_loss():
    net, (x, y, _) = _spacetime(), _spacetime_batch()
    everything = torch.ones(4, SPACETIME_LOOKBACK + SPACETIME_HORIZON, 2, dtype=torch.bool)
    assert torch.equal(net.training_loss(x, None, y, None, everything), net.training_loss(x, None, y, None))


def test_spacetime_loss_on_observed_windows_and_channels_is_the_loss_on_that_subset():
    """Channel-independent and per-window: hiding channel 1 everywhere and window 0 entirely must give
    the unmasked loss of the rest. All three terms are on (a wrong row layout of the next-input mask
    would score the wrong rows)."""
    net, (x, y, _) = _spacetime(), _spacetime_batch()
    observed = torch.ones(4, SPACETIME_LOOKBACK + SPACETIME_HORIZON, 2, dtype=torch.bool)
    observed[:, :, 1] = False
    observed[0] = False
    subset = net.training_loss(x[1:, :, :1], None, y[1:, :, :1], None)
    torch.testing.assert_close(net.training_loss(x, None, y, None, observed), subset)


def test_spacetime_each_term_averages_over_its_observed_targets():
    net, (x, y, observed) = _spacetime(), _spacetime_batch()
    start = net.kernel_dim - 1
    z, mean = net._encode(x)
    outputs, _ = net.decoder.open_loop(z)
    one_step = net._to_channels(outputs[:, start:], x.shape[0], mean)
    series = torch.cat([x, y], dim=1)
    by_hand = {
        (1.0, 0.0, 0.0): ((net(x) - y)[observed[:, SPACETIME_LOOKBACK:]] ** 2).mean().sqrt(),
        (0.0, 1.0, 0.0): ((one_step - series[:, start + 1:SPACETIME_LOOKBACK + 1])
                          [observed[:, start + 1:SPACETIME_LOOKBACK + 1]] ** 2).mean().sqrt(),
    }
    for weights, expected in by_hand.items():
        net.loss_weights = weights
        torch.testing.assert_close(net.training_loss(x, None, y, None, observed), expected)
    # garbage in unobserved forecast targets (y[:, 1:] is never an input, y[:, 0] only a target) changes
    # nothing, and no gradient turns NaN
    net.loss_weights = (1.0, 1.0, 1.0)
    clean = net.training_loss(x, None, y, None, observed)
    garbage = y.clone()
    garbage[~observed[:, SPACETIME_LOOKBACK:]] = float("nan")
    loss = net.training_loss(x, None, garbage, None, observed)
    torch.testing.assert_close(loss, clean)
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in net.parameters() if p.grad is not None)


def test_spacetime_next_input_term_counts_the_steps_whose_value_is_observed():
    """Hiding look-back step t from the mask drops only the next-input residual at t (z's row layout)."""
    net, (x, y, _) = _spacetime(), _spacetime_batch()
    net.loss_weights = (1e-30, 0.0, 1.0)  # the forecast term must stay > 0 in a spec, not here: ~ off
    start, length = net.kernel_dim - 1, SPACETIME_LOOKBACK
    z, _ = net._encode(x)
    _, next_inputs = net.decoder.open_loop(z)
    residual = (next_inputs[:, start:-1] - z[:, start + 1:]) ** 2  # (B*C, steps start+1 .. L-1, model_dim)
    observed = torch.ones(4, length + SPACETIME_HORIZON, 2, dtype=torch.bool)
    observed[2, length - 3, 1] = False  # window 2, channel 1: row 2 * 2 + 1 of z
    keep = torch.ones(residual.shape[:2], dtype=torch.bool)
    keep[2 * 2 + 1, length - 3 - (start + 1)] = False
    expected = residual[keep].mean().sqrt()
    torch.testing.assert_close(net.training_loss(x, None, y, None, observed), expected, rtol=1e-5, atol=1e-6)
