"""The "does the LLM help?" backbones (issue 14): none, one attention layer, one Transformer block and the
LLM's architecture with random weights, behind the one backbone interface of AutoTimes and Time-LLM;
and the best-epoch copy that leaves the frozen LLM out."""
import pandas as pd
import pytest
import torch
from torch import nn

from tsforecast import Forecaster
from tsforecast.llm import BackboneError, load_backbone, parameter_counts
from tsforecast.models import AutoTimes, Dims, TimeLLM
from tsforecast.testing import check_prefix_causal, synthetic_frame
from tsforecast.training import restorable_state

TINY = "random-llama:16x2"
ARMS = {"pretrained": TINY, "random": f"random:{TINY}", "none": f"none:{TINY}", "attention": f"attention:{TINY}",
        "transformer": f"transformer:{TINY}"}
DIMS = Dims(n_channels=2, lookback=16, horizon=4, n_time_features=0)


def autotimes(llm, **params):
    return AutoTimes(**{**AutoTimes.test_params(), "llm": llm, **params})


def timellm(llm, **params):
    return TimeLLM(**{**TimeLLM.test_params(), "llm": llm, **params})


def _nbytes(state):
    return sum(v.numel() * v.element_size() for v in state.values())


@pytest.mark.parametrize("arm", ARMS)
def test_every_arm_keeps_the_llm_width_so_the_rest_of_the_model_is_identical(arm):
    backbone = load_backbone(ARMS[arm])
    assert backbone.hidden_size == 16 and backbone.kind == arm
    trainable = {k for k, p in backbone.body.named_parameters() if p.requires_grad}
    assert bool(trainable) == (arm in ("attention", "transformer"))
    for make in (autotimes, timellm):
        network, reference = make(ARMS[arm]).build(DIMS), make(TINY).build(DIMS)
        ours = {k: tuple(v.shape) for k, v in network.state_dict().items() if not k.startswith("llm.")}
        assert ours == {k: tuple(v.shape) for k, v in reference.state_dict().items() if not k.startswith("llm.")}


def test_parameter_counts_per_arm():
    counts = {arm: parameter_counts(autotimes(llm).build(DIMS)) for arm, llm in ARMS.items()}
    adapter = counts["none"]["trainable"]  # segment embedding + projection: the same in every arm
    assert counts["pretrained"]["trainable"] == counts["random"]["trainable"] == adapter
    assert counts["pretrained"]["frozen_blocks"] == counts["random"]["frozen_blocks"] > 0
    assert counts["none"]["frozen_blocks"] == counts["attention"]["frozen_blocks"] == 0
    # one nn.MultiheadAttention of width 16: in- and out-projections with biases
    assert counts["attention"]["trainable"] - adapter == 4 * (16 * 16 + 16)
    # one block: attention, 2 LayerNorms, feed-forward 16 -> 32 (the LLM's width) -> 16
    assert counts["transformer"]["trainable"] - adapter == 4 * (16 * 16 + 16) + 2 * 32 + (16 * 32 + 32) + (32 * 16 + 16)
    assert {c["word_embeddings"] for c in counts.values()} == {counts["pretrained"]["word_embeddings"]} != {0}
    assert all(c["total"] == c["trainable"] + c["frozen_blocks"] + c["word_embeddings"] for c in counts.values())


def test_random_arm_is_the_architecture_with_other_weights_the_same_in_every_build():
    pretrained, random, again = (load_backbone(name).body.state_dict()
                                 for name in (TINY, ARMS["random"], ARMS["random"]))
    assert pretrained.keys() == random.keys()
    assert all(torch.equal(random[k], again[k]) for k in random)  # rebuilt identically on load (not saved)
    assert not torch.equal(random["layers.0.self_attn.q_proj.weight"], pretrained["layers.0.self_attn.q_proj.weight"])


@pytest.mark.parametrize("arm", ARMS)
def test_autotimes_is_causal_over_tokens_with_every_backbone(arm):
    torch.manual_seed(0)
    network = autotimes(ARMS[arm]).build(DIMS).eval()
    check_prefix_causal(lambda t: network.decoder(network._llm(network._embed(t, None, 1))[0]), torch.randn(3, 6, 4),
                        f"AutoTimes ({arm})")


@pytest.mark.parametrize("arm", ["none", "attention", "transformer"])
def test_ablation_cache_rollout_equals_recomputing_the_context(arm):
    torch.manual_seed(0)
    # fp32: the cache logic is exact; under bf16 autocast (llm_dtype="auto" on a CPU with bf16 units) the
    # two paths round differently
    network = autotimes(ARMS[arm], llm_dtype="float32").build(DIMS).eval()
    x = torch.randn(3, 16, 2)
    cached = network.growing_forecast(x, None, None, 18, use_cache=True)
    torch.testing.assert_close(cached, network.growing_forecast(x, None, None, 18, use_cache=False))
    torch.testing.assert_close(cached[:, :4], network(x))


@pytest.mark.parametrize("arm", ["attention", "transformer"])
def test_timellm_ablation_masks_prompt_padding(arm):
    torch.manual_seed(0)
    network = timellm(ARMS[arm]).build(Dims(n_channels=1, lookback=16, horizon=4, n_time_features=0)).eval()
    x = torch.randn(3, 16, 1) * torch.tensor([1.0, 1000.0, 0.001])[:, None, None]  # prompts of different lengths
    with torch.no_grad():
        torch.testing.assert_close(network(x), torch.cat([network(x[i:i + 1]) for i in range(3)]), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("make", [autotimes, timellm], ids=["autotimes", "timellm"])
@pytest.mark.parametrize("arm", ARMS)
def test_every_arm_trains_and_round_trips_save_and_load(tmp_path, make, arm):
    fitted = Forecaster(model=make(ARMS[arm]), lookback=16, horizon=4, max_epochs=1, random_state=0,
                        device="cpu").fit(synthetic_frame(n_rows=200, n_channels=2))
    layer = {k: v for k, v in fitted.network_.llm.named_parameters() if v.requires_grad}
    if arm in ("attention", "transformer"):  # the one layer trains
        fresh = dict(make(ARMS[arm]).build(DIMS).llm.named_parameters())
        assert layer and any(not torch.equal(v, fresh[k]) for k, v in layer.items())
    else:
        assert not layer
    fitted.save(tmp_path / "m")
    loaded = Forecaster.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(horizon=6), fitted.predict(horizon=6), check_exact=True)


def test_ablation_settings_that_do_not_apply_are_errors():
    with pytest.raises(ValueError, match="llm_layers does not apply"):
        load_backbone(ARMS["attention"], llm_layers=2)
    with pytest.raises(ValueError, match="timestamps=True needs an LLM"):
        autotimes(ARMS["none"], timestamps=True).build(DIMS)
    with pytest.raises(BackboneError, match="could not load the LLM"):
        load_backbone("transformer:/no/such/llm")


# ---------------------------------------------------------------------- the best-epoch copy
def test_best_epoch_copy_leaves_the_frozen_llm_out():
    """Bytes copied per improvement, computed: tiny AutoTimes 28,304 -> 1,424 (the default LLM's
    AutoTimes: 540,819,328 -> 2,759,296; Time-LLM: 745,047,840 -> 206,987,808, its mapping layer)."""
    network = autotimes(TINY).build(DIMS)
    state = restorable_state(network)
    assert not any(k.startswith("llm.") for k in state)
    assert state.keys() == network.trainable_state_dict().keys()
    assert (_nbytes(network.state_dict()), _nbytes(state)) == (28_304, 1_424)
    # copies, not views: a later optimizer step does not change the saved best state
    assert all(state[k].data_ptr() != v.data_ptr() for k, v in network.state_dict().items() if k in state)
    # a network without trainable_state_dict: trainable parameters and buffers, not frozen parameters
    plain = nn.Sequential(nn.Linear(3, 3), nn.BatchNorm1d(3))
    plain[0].requires_grad_(False)
    assert set(restorable_state(plain)) == {"1.weight", "1.bias", "1.running_mean", "1.running_var",
                                            "1.num_batches_tracked"}


def test_training_restores_the_best_epoch_with_the_partial_copy():
    """The restored weights are the best epoch's (validation MSE of the result = the best recorded)
    and the frozen LLM is bitwise untouched."""
    data = synthetic_frame(n_rows=240, n_channels=2)
    fitted = Forecaster(model=autotimes(TINY), lookback=16, horizon=4, max_epochs=4, learning_rate=0.05, patience=4,
                        random_state=0, device="cpu").fit(data.iloc[:180], val_df=data.iloc[164:])
    training = fitted.training_
    assert training.best_epoch < training.epochs, "the test needs a best epoch before the last"
    assert fitted.evaluate(data.iloc[164:])["mse"] == pytest.approx(min(training.val_loss), rel=1e-5)
    pristine = load_backbone(TINY).body.state_dict()
    assert all(torch.equal(v, pristine[k]) for k, v in fitted.network_.llm.state_dict().items())
