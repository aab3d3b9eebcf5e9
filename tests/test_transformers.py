"""iTransformer, Autoformer, Informer: their building blocks against direct computations, no leakage
across windows, and a tiny end-to-end fit on ETTh1."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from tsforecast import Forecaster, protocol_split
from tsforecast.data.windows import Windows
from tsforecast.layers.attention import ProbSparseAttention
from tsforecast.layers.autocorrelation import AutoCorrelation, delay_aggregate
from tsforecast.layers.decomposition import SeriesDecomposition
from tsforecast.layers.encoder import DistillingLayer
from tsforecast.models.autoformer import Autoformer
from tsforecast.models.base import Dims
from tsforecast.models.informer import Informer
from tsforecast.models.itransformer import ITransformer
from tsforecast.rollout import autoregressive_forecast

TRANSFORMERS = ["itransformer", "autoformer", "informer"]


def test_series_decomposition_equals_direct_moving_average():
    x = torch.randn(2, 40, 3, dtype=torch.float64)
    seasonal, trend = SeriesDecomposition(7)(x)
    padded = np.concatenate([np.repeat(x[:, :1].numpy(), 3, 1), x.numpy(), np.repeat(x[:, -1:].numpy(), 3, 1)], axis=1)
    expected = np.stack([padded[:, t:t + 7].mean(axis=1) for t in range(40)], axis=1)
    np.testing.assert_allclose(trend.numpy(), expected, rtol=1e-12)
    np.testing.assert_allclose((seasonal + trend).numpy(), x.numpy(), rtol=1e-12)


def test_delay_aggregation_equals_rolled_sum():
    values = torch.randn(3, 2, 4, 24, dtype=torch.float64)
    weights = torch.zeros(3, 24, dtype=torch.float64)
    delays = torch.tensor([[0, 5, 11], [3, 4, 23], [1, 2, 7]])
    weights.scatter_(1, delays, torch.rand(3, 3, dtype=torch.float64))
    expected = torch.stack([sum(torch.roll(values[b], -int(tau), dims=-1) * weights[b, tau] for tau in delays[b])
                            for b in range(3)])
    torch.testing.assert_close(delay_aggregate(values, weights), expected, rtol=1e-10, atol=1e-10)


def _auto_correlation_direct(q, k, v, factor, shared):
    """The paper's definition, step by step: R(tau) = sum_t q[t + tau] k[t] (circular), top-k delays,
    softmax weights, sum of the values rolled by each delay."""
    batch, length, heads, channels = q.shape
    corr = torch.stack([(torch.roll(q, -tau, dims=1) * k).sum(dim=1) for tau in range(length)], dim=-1)  # B,H,E,L
    mean_corr = corr.mean(dim=(1, 2))  # (B, L)
    top_k = int(factor * math.log(length))
    out = torch.zeros_like(v)
    for b in range(batch):
        delays = (mean_corr.mean(0) if shared else mean_corr[b]).topk(top_k).indices
        weights = torch.softmax(mean_corr[b, delays], dim=0)
        for w, tau in zip(weights, delays):
            out[b] += w * torch.roll(v[b], -int(tau), dims=0)
    return out


@pytest.mark.parametrize("training", [False, True])
def test_auto_correlation_equals_direct_computation(training):
    torch.manual_seed(0)
    q, k, v = (torch.randn(3, 24, 2, 4, dtype=torch.float64) for _ in range(3))
    layer = AutoCorrelation(factor=2).train(training)
    expected = _auto_correlation_direct(q, k, v, factor=2, shared=training)
    torch.testing.assert_close(layer(q, k, v), expected, rtol=1e-9, atol=1e-9)


def test_auto_correlation_pads_short_keys_and_truncates_long_ones():
    torch.manual_seed(0)
    q = torch.randn(2, 24, 2, 4, dtype=torch.float64)
    k, v = torch.randn(2, 16, 2, 4, dtype=torch.float64), torch.randn(2, 16, 2, 4, dtype=torch.float64)
    layer = AutoCorrelation(factor=1).eval()
    padded = [torch.cat([t, torch.zeros(2, 8, 2, 4, dtype=torch.float64)], dim=1) for t in (k, v)]
    torch.testing.assert_close(layer(q, k, v), layer(q, *padded))
    longer = [torch.randn(2, 30, 2, 4, dtype=torch.float64) for _ in range(2)]
    torch.testing.assert_close(layer(q, *longer), layer(q, longer[0][:, :24], longer[1][:, :24]))


def _prob_sparse_direct(q, k, v, factor, sample, causal):
    """Informer's ProbSparse attention written out per batch, head and query."""
    batch, n_q, heads, dim = q.shape
    n_k = k.shape[1]
    n_top = min(n_q, factor * math.ceil(math.log(n_q)))
    out = torch.zeros(batch, n_q, heads, v.shape[-1], dtype=q.dtype)
    for b in range(batch):
        for h in range(heads):
            qs, ks, vs = q[b, :, h], k[b, :, h], v[b, :, h]
            # M = max of the sampled scores - their sum / L_K (the reference divides the sampled sum by L_K)
            sampled = [torch.stack([qs[i] @ ks[j] for j in sample[i]]) for i in range(n_q)]
            sparsity = torch.stack([scores.max() - scores.sum() / n_k for scores in sampled])
            top = set(sparsity.topk(n_top).indices.tolist())
            for i in range(n_q):
                if i in top:
                    scores = qs[i] @ ks.T / math.sqrt(dim)
                    if causal:
                        scores[i + 1:] = float("-inf")
                    out[b, i, h] = torch.softmax(scores, dim=0) @ vs
                else:
                    out[b, i, h] = vs[: i + 1].sum(0) if causal else vs.mean(0)
    return out


@pytest.mark.parametrize("causal", [False, True])
@pytest.mark.parametrize("head_dim", [8, 2])  # 8: scores gathered from Q K^T; 2: from the gathered keys
def test_prob_sparse_attention_equals_direct_computation(causal, head_dim):
    torch.manual_seed(0)
    n = 30
    q, k, v = (torch.randn(2, n, 2, head_dim, dtype=torch.float64) for _ in range(3))
    layer = ProbSparseAttention(causal=causal, factor=2, eval_seed=7).eval()
    n_samples = min(n, 2 * math.ceil(math.log(n)))
    sample = torch.randint(n, (n, n_samples), generator=torch.Generator().manual_seed(7))
    torch.testing.assert_close(layer(q, k, v), _prob_sparse_direct(q, k, v, 2, sample.tolist(), causal),
                               rtol=1e-9, atol=1e-9)


def test_prob_sparse_sizes_match_the_reference():
    # u = factor * ceil(ln L): 15 active queries for L = 96 or 144 with factor 3 (transformers.md §4)
    from tsforecast.layers.attention import _log_count

    assert _log_count(3, 96) == 15 and _log_count(3, 144) == 15


def test_informer_distilling_halves_96_to_49():
    assert DistillingLayer(8).eval()(torch.randn(2, 96, 8)).shape == (2, 49, 8)


def test_itransformer_default_size_follows_the_reference_script():
    spec = ITransformer()
    assert spec.resolved_d_model(96) == spec.resolved_d_model(192) == 256
    assert spec.resolved_d_model(336) == spec.resolved_d_model(720) == 512
    assert ITransformer.reference_config("Weather", 96)["params"] == {"d_model": 512, "d_ff": 512, "e_layers": 3}
    assert Autoformer.reference_config("ETTm2", 96)["params"] == {"factor": 1}


@pytest.mark.parametrize("name", [*TRANSFORMERS, "informer-probsparse-cross"])
def test_forecast_of_a_window_ignores_every_other_window(name):
    """No leakage across windows: changing everything after window 0's look-back changes the other
    windows of the batch but not window 0's forecast (e.g. batch-shared delays must stay in training)."""
    spec_class = {"itransformer": ITransformer, "autoformer": Autoformer, "informer": Informer}[name.split("-")[0]]
    spec = spec_class(**spec_class.test_params())
    if name == "informer-probsparse-cross":
        spec.set_params(cross_attention="probsparse")
    torch.manual_seed(0)
    network = spec.build(Dims(n_channels=3, lookback=24, horizon=8, n_time_features=4)).eval()
    values, marks = torch.randn(80, 3), torch.rand(80, 4) - 0.5
    forecast = _batch_forecast(network, values, marks)
    altered = values.clone()
    altered[24:] = altered[24:] * 5 + 3
    changed = _batch_forecast(network, altered, marks)
    torch.testing.assert_close(changed[0], forecast[0])
    assert not torch.allclose(changed[1:], forecast[1:])


def _batch_forecast(network, values, marks):
    batch = next(Windows(values, marks, 24, 8).batches(1000))
    return autoregressive_forecast(network, batch.x, batch.x_mark, batch.y_mark, 8)


@pytest.mark.parametrize("name", TRANSFORMERS)
def test_tiny_fit_on_etth1_beats_the_mean(name):
    """End to end on a slice of ETTh1 (protocol scaler, calendar features): training lowers the loss
    and the forecasts beat both the training mean (MSE ~1 on scaled data) and the naive forecast (MSE 0.92
    on this slice) over the next month."""
    split = protocol_split("ETTh1", lookback=48)
    train, val = split.train.iloc[:1500], split.train.iloc[1500 - 48:2200]
    f = Forecaster(model=name, lookback=48, horizon=24, max_epochs=3, batch_size=64, learning_rate=1e-3,
                   random_state=0, device="cpu", time_features="h")
    f.set_params(**{f"model__{k}": v for k, v in {**f._spec().test_params(), "d_model": 32}.items()})
    f.fit(train, val_df=val)
    assert f.training_.train_loss[-1] < f.training_.train_loss[0]
    assert f.evaluate(val)["mse"] < 0.9


@pytest.mark.parametrize("spec, message", [
    (Autoformer(label_len=48), "label_len=48 must be between 0 and lookback=16"),
    (Informer(cross_attention="nope", label_len=8), "cross_attention must be one of"),
    (ITransformer(d_model=30, n_heads=8), "d_model=30 is not divisible by n_heads=8"),
])
def test_bad_hyperparameters_fail_before_training(spec, message):
    from tsforecast.testing import synthetic_frame

    with pytest.raises(ValueError, match=message):
        Forecaster(model=spec, lookback=16, horizon=8, device="cpu").fit(synthetic_frame())


def test_mix_heads_reads_the_heads_time_major_block_row_by_row():
    """Informer's reference ``mix``: attention output (B, H, L, D) reshaped with view(B, L, -1). Built by
    hand from the flat (H, L, D) index: row l, feature j holds element l * H * D + j of that block."""
    from tsforecast.layers.attention import mix_heads

    batch, length, heads, depth = 2, 5, 3, 2
    out = torch.arange(batch * length * heads * depth, dtype=torch.float64).view(batch, length, heads, depth)
    expected = torch.empty(batch, length, heads * depth, dtype=torch.float64)
    for b in range(batch):
        for row in range(length):
            for j in range(heads * depth):
                flat = row * heads * depth + j
                h, rest = divmod(flat, length * depth)
                t, d = divmod(rest, depth)
                expected[b, row, j] = out[b, t, h, d]
    assert torch.equal(mix_heads(out), expected)
    assert not torch.equal(mix_heads(out), out.reshape(batch, length, -1))  # not the plain concatenation


def test_attention_layer_mix_merges_heads_like_the_reference():
    from tsforecast.layers.attention import AttentionLayer

    class Stub(torch.nn.Module):  # returns its values: the merge is all that differs
        def forward(self, q, k, v):
            return v

    torch.manual_seed(0)
    x = torch.randn(2, 6, 8)
    plain, mixed = AttentionLayer(Stub(), 8, 4), AttentionLayer(Stub(), 8, 4, mix=True)
    mixed.load_state_dict(plain.state_dict())
    values = plain.value(x).view(2, 6, 4, 2)
    torch.testing.assert_close(plain(x, x, x), plain.out(values.reshape(2, 6, 8)), rtol=0, atol=0)
    torch.testing.assert_close(mixed(x, x, x), plain.out(values.permute(0, 2, 1, 3).reshape(2, 6, 8)), rtol=0, atol=0)


@pytest.mark.parametrize("cross", ["full", "probsparse"])
def test_informer_mix_applies_to_every_probsparse_layer(cross):
    """As the Autoformer/FEDformer/Time-Series-Library code: encoder and decoder self-attention and a
    ProbSparse cross-attention are mixed; full attention never is; the default mixes nothing."""
    from tsforecast.layers.attention import AttentionLayer, ProbSparseAttention

    dims = Dims(n_channels=2, lookback=24, horizon=8, n_time_features=4)
    params = {**Informer.test_params(), "cross_attention": cross}
    for mix in (False, True):
        layers = [m for m in Informer(**params, mix=mix).build(dims).modules() if isinstance(m, AttentionLayer)]
        assert len(layers) == 4  # 2 encoder self, 1 decoder self, 1 cross
        assert all(m.mix == (mix and isinstance(m.inner, ProbSparseAttention)) for m in layers)
        assert sum(isinstance(m.inner, ProbSparseAttention) for m in layers) == (4 if cross == "probsparse" else 3)


def test_informer_decoder_is_causal_without_mix_and_mixes_time_with_it():
    """The masked decoder self-attention with every query active (factor large enough that u = L): without
    mix, decoder position i reads decoder inputs <= i only (check_prefix_causal); the reference's mix
    moves other time steps' outputs into each row, so the same check fails. (With u < L, ProbSparse
    picks its active queries by a sparsity measure over keys sampled from every position, future ones
    included, as the reference does, so even the unmixed decoder is not strictly prefix-causal.)
    Either way the decoder's future positions hold zeros and marks, never targets
    (test_registered_network_ignores_future_targets)."""
    from tsforecast.testing import check_prefix_causal

    dims = Dims(n_channels=2, lookback=24, horizon=8, n_time_features=0)
    params = {**Informer.test_params(), "cross_attention": "full", "factor": 10}
    memory = torch.randn(2, 13, 16)
    for mix in (False, True):
        torch.manual_seed(0)
        network = Informer(**params, mix=mix).build(dims).eval()
        decoder = lambda h: network.decoder.layers[0](h, memory)  # noqa: E731  (the projection is position-wise)
        if mix:
            with pytest.raises(AssertionError, match="reads the future"):
                check_prefix_causal(decoder, torch.randn(2, 16, 16))
        else:
            check_prefix_causal(decoder, torch.randn(2, 16, 16))


def test_even_moving_average_pads_as_fedformer():
    """FEDformer's moving_avg=[24] (the code behind the published Autoformer ETTh1 figures) pads
    k - 1 - (k - 1) // 2 = 12 copies in front and 11 behind: trend[t] = mean(x[t-12 .. t+11])."""
    x = torch.randn(2, 40, 3, dtype=torch.float64)
    _, trend = SeriesDecomposition(24)(x)
    padded = torch.cat([x[:, :1].expand(-1, 12, -1), x, x[:, -1:].expand(-1, 11, -1)], dim=1)
    expected = torch.stack([padded[:, t:t + 24].mean(dim=1) for t in range(40)], dim=1)
    torch.testing.assert_close(trend, expected, rtol=1e-12, atol=1e-12)
