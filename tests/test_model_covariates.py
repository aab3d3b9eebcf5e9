"""Covariates in the channel-mixing networks (iTransformer, S-Mamba, Autoformer, Informer), at the network
level: without covariates each network is exactly the one behind the benchmark figures; with them, past
covariates (extra channels of x) and future-known covariates (the last mark columns) are read, and a
future covariate that drives the target is learnt."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from tsforecast.layers.embedding import InvertedEmbedding
from tsforecast.models.autoformer import Autoformer
from tsforecast.models.base import Dims
from tsforecast.models.informer import Informer
from tsforecast.models.itransformer import ITransformer
from tsforecast.models.smamba import SMamba

SPECS = {"itransformer": ITransformer, "smamba": SMamba, "autoformer": Autoformer, "informer": Informer}
INVERTED = ["itransformer", "smamba"]
LOOKBACK, HORIZON = 24, 12


def _build(name, dims, seed=0, **params):
    torch.manual_seed(seed)
    spec = SPECS[name](**{**SPECS[name].test_params(), **params})
    spec.check(dims)
    return spec.build(dims).eval()


def _inputs(n_channels, n_marks, batch=2, lookback=LOOKBACK, horizon=HORIZON, seed=1):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, lookback, n_channels, generator=g)
    x_mark = torch.randn(batch, lookback, n_marks, generator=g) if n_marks else None
    y_mark = torch.randn(batch, horizon, n_marks, generator=g) if n_marks else None
    return x, x_mark, y_mark


# Recorded from the code before covariates were added (git HEAD of issue 12's start): parameter count,
# sum |forecast| and forecast[0, 0, 0] of the seed-0 test_params() network on _inputs(3, F), F marks.
BEFORE_COVARIATES = {
    ("itransformer", 0): (2332, 41.71485149860382, -0.7717896699905396),
    ("itransformer", 4): (2332, 41.401358880102634, -0.8452110290527344),
    ("smamba", 0): (3196, 38.74519990384579, -0.2734810709953308),
    ("smamba", 4): (3196, 38.66813813894987, -0.2735254466533661),
    ("autoformer", 0): (6435, 41.742880545556545, 0.7966600656509399),
    ("autoformer", 4): (6563, 37.582603842020035, 0.21266289055347443),
    ("informer", 0): (7427, 30.00238798558712, 0.18498361110687256),
    ("informer", 4): (7555, 20.269065216183662, -0.5670671463012695),
}


@pytest.mark.parametrize("name, n_marks", list(BEFORE_COVARIATES))
def test_without_covariates_the_network_is_unchanged(name, n_marks):
    n_params, abs_sum, first = BEFORE_COVARIATES[name, n_marks]
    dims = Dims(n_channels=3, lookback=LOOKBACK, horizon=HORIZON, n_time_features=n_marks)
    net = _build(name, dims)
    # the explicit "no covariates" fields build the very same network (same parameters, same init)
    twin = _build(name, Dims(n_channels=3, lookback=LOOKBACK, horizon=HORIZON, n_time_features=n_marks,
                             n_targets=3, n_future_covariates=0))
    assert [(k, v.shape) for k, v in net.state_dict().items()] == [(k, v.shape) for k, v in twin.state_dict().items()]
    assert all(torch.equal(a, b) for a, b in zip(net.state_dict().values(), twin.state_dict().values()))
    assert sum(p.numel() for p in net.parameters()) == n_params
    with torch.no_grad():
        out = net(*_inputs(3, n_marks)).double()
    assert out.shape == (2, HORIZON, 3)
    np.testing.assert_allclose(out.abs().sum().item(), abs_sum, rtol=1e-5)
    np.testing.assert_allclose(out[0, 0, 0].item(), first, rtol=1e-4, atol=1e-6)


def test_inverted_embedding_without_future_covariates_is_one_linear_over_all_tokens():
    torch.manual_seed(0)
    emb = InvertedEmbedding(LOOKBACK, 8, dropout=0.0)
    assert [k for k, _ in emb.named_parameters()] == ["value.weight", "value.bias"]
    x, x_mark, y_mark = _inputs(3, 4)
    expected = torch.cat([x, x_mark], 2).transpose(1, 2) @ emb.value.weight.T + emb.value.bias
    torch.testing.assert_close(emb(x, x_mark, y_mark), expected)
    torch.testing.assert_close(emb(x, x_mark, None), expected)  # y_mark is not read


def test_inverted_embedding_future_covariate_token_is_its_whole_known_path():
    torch.manual_seed(0)
    emb = InvertedEmbedding(LOOKBACK, 8, dropout=0.0, n_future_covariates=2, output_len=HORIZON)
    assert emb.future.weight.shape == (8, LOOKBACK + HORIZON)
    x, x_mark, y_mark = _inputs(3, 5)
    tokens = emb(x, x_mark, y_mark)
    assert tokens.shape == (2, 3 + 5, 8)
    # variates and calendar features as before; the covariates from look-back + forecast-step values
    torch.testing.assert_close(tokens[:, :6], emb.value(torch.cat([x, x_mark[..., :3]], 2).transpose(1, 2)))
    path = torch.cat([x_mark[..., 3:], y_mark[..., 3:]], 1).transpose(1, 2)
    torch.testing.assert_close(tokens[:, 6:], emb.future(path))
    with pytest.raises(ValueError, match="y_mark of 12 steps"):
        emb(x, x_mark, None)
    with pytest.raises(ValueError, match="y_mark of 12 steps"):
        emb(x, x_mark, y_mark[:, :5])


def _covariate_dims(**kw):
    # 2 targets + 1 past covariate; marks: 2 calendar features, then 1 future covariate
    return Dims(**{"n_channels": 3, "n_targets": 2, "lookback": LOOKBACK, "horizon": HORIZON, "n_time_features": 3,
                   "n_future_covariates": 1, **kw})


@pytest.mark.parametrize("name", list(SPECS))
def test_covariates_are_read(name):
    assert SPECS[name].supports_future_covariates and SPECS[name].supports_past_covariates
    net = _build(name, _covariate_dims())
    x, x_mark, y_mark = _inputs(3, 3)
    with torch.no_grad():
        base = net(x, x_mark, y_mark)[..., :2]
        future = y_mark.clone()
        future[..., -1] += 1.0
        assert not torch.allclose(net(x, x_mark, future)[..., :2], base)  # future covariate values are read
        past = x.clone()
        past[..., 2] = torch.randn(2, LOOKBACK, generator=torch.Generator().manual_seed(5))
        assert not torch.allclose(net(past, x_mark, y_mark)[..., :2], base)  # the past covariate informs targets
        assert torch.equal(net(x, x_mark, y_mark)[..., :2], base)  # deterministic in eval: the changes did it


@pytest.mark.parametrize("name", INVERTED)
def test_without_future_covariates_y_mark_is_not_read(name):
    net = _build(name, _covariate_dims(n_future_covariates=0))
    x, x_mark, y_mark = _inputs(3, 3)
    with torch.no_grad():
        torch.testing.assert_close(net(x, x_mark, y_mark), net(x, x_mark, y_mark + 1.0), rtol=0, atol=0)
        torch.testing.assert_close(net(x, x_mark, y_mark), net(x, x_mark, None), rtol=0, atol=0)


@pytest.mark.parametrize("name", INVERTED)
def test_future_calendar_columns_stay_unread_and_every_forecast_step_sees_its_covariate(name):
    # horizon > lookback: a look-back-long window of the covariate could not reach the first forecast steps
    dims = _covariate_dims(lookback=8, horizon=20)
    net = _build(name, dims)
    x, x_mark, y_mark = _inputs(3, 3, lookback=8, horizon=20)
    with torch.no_grad():
        base = net(x, x_mark, y_mark)
        calendar = y_mark.clone()
        calendar[..., :2] += 1.0
        assert torch.equal(net(x, x_mark, calendar), base)  # calendar tokens are look-back only, as before
        first = y_mark.clone()
        first[:, 0, -1] += 1.0
        assert not torch.allclose(net(x, x_mark, first), base)


def _driven_windows(n, lookback, horizon, seed):
    """Windows of y_t = 2 f_t + 0.1 noise, f i.i.d. N(0, 1) and known ahead (the one mark column)."""
    g = torch.Generator().manual_seed(seed)
    f = torch.randn(n + lookback + horizon, generator=g)
    y = 2 * f + 0.1 * torch.randn(f.shape, generator=g)
    idx = torch.arange(n)[:, None]
    past, ahead = idx + torch.arange(lookback), idx + lookback + torch.arange(horizon)
    return y[past][..., None], f[past][..., None], y[ahead][..., None], f[ahead][..., None]


@pytest.mark.parametrize("name, steps", [("itransformer", 80), ("autoformer", 60)])
def test_a_driving_future_covariate_is_learnt(name, steps):
    lookback, horizon = 16, 8
    dims = Dims(n_channels=1, lookback=lookback, horizon=horizon, n_time_features=1, n_future_covariates=1)
    train = _driven_windows(512, lookback, horizon, seed=0)
    test = _driven_windows(128, lookback, horizon, seed=1)

    def held_out_mse(hide_covariate: bool) -> float:
        def marks(x_mark, y_mark):
            return (torch.zeros_like(x_mark), torch.zeros_like(y_mark)) if hide_covariate else (x_mark, y_mark)
        net = _build(name, dims, d_model=32, d_ff=32).train()
        opt = torch.optim.Adam(net.parameters(), lr=3e-3)
        g = torch.Generator().manual_seed(2)
        x, x_mark, y, y_mark = train
        for _ in range(steps):
            batch = torch.randint(0, len(x), (32,), generator=g)
            loss = torch.nn.functional.mse_loss(net(x[batch], *marks(x_mark[batch], y_mark[batch])), y[batch])
            opt.zero_grad()
            loss.backward()
            opt.step()
        net.eval()
        x, x_mark, y, y_mark = test
        with torch.no_grad():
            return torch.nn.functional.mse_loss(net(x, *marks(x_mark, y_mark)), y).item()

    with_covariate, without = held_out_mse(False), held_out_mse(True)
    assert without > 2.0  # the target is 2 f + noise: nothing else predicts it (variance ~4)
    assert with_covariate < 0.3 * without, (with_covariate, without)
