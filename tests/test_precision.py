"""Compute precision: bf16-unit detection, the Forecaster's ``precision`` setting, what runs record."""
import json
import warnings

import numpy as np
import pandas as pd
import pytest
import torch

from tsforecast import Forecaster
from tsforecast import precision as precision_module
from tsforecast.bench import read_results, run_settings, resolve_dataset
from tsforecast.llm.backbone import llm_autocast
from tsforecast.models import AutoTimes, ITransformer
from tsforecast.precision import cpu_bf16_support, llm_precision, parse_bf16_flag, precision_label, resolve_precision
from tsforecast.testing import synthetic_frame

CPUINFO = """processor\t: 0
vendor_id\t: {vendor}
model name\t: Some CPU
flags\t\t: fpu vme sse sse2 avx2 {extra} avx512f
bugs\t\t: spectre_v1

processor\t: 1
flags\t\t: fpu vme
"""


@pytest.fixture
def bf16_cpu(monkeypatch):
    """Pretend this CPU has (True) or lacks (False) bf16 matrix units, whatever the machine has."""
    def set_units(present: bool):
        monkeypatch.setattr(precision_module, "cpu_bf16_support", lambda: "avx512_bf16" if present else None)
    return set_units


def tiny_itransformer():
    return ITransformer(**ITransformer.test_params())


def fit(precision="fp32", model=None, **params):
    data = synthetic_frame(n_rows=240, n_channels=2)
    f = Forecaster(model=model or tiny_itransformer(), lookback=16, horizon=4, max_epochs=2, batch_size=16,
                   random_state=0, device="cpu", precision=precision, **params)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # bf16 on a CPU without units warns (tested below)
        return f.fit(data), data


# ---------------------------------------------------------------------- detection
def test_cpuinfo_flags_are_parsed(tmp_path):
    cases = {"amx_bf16 amx_tile avx512_bf16": "amx_bf16", "avx512_bf16": "avx512_bf16", "avx512_vnni": None}
    for i, (extra, expected) in enumerate(cases.items()):
        text = CPUINFO.format(vendor="GenuineIntel", extra=extra)
        assert parse_bf16_flag(text) == expected
        path = tmp_path / f"cpuinfo{i}"
        path.write_text(text)
        assert cpu_bf16_support(str(path)) == expected
    assert cpu_bf16_support(str(tmp_path / "absent")) is None  # unreadable: no units assumed
    assert parse_bf16_flag("processor : 0\n") is None


def test_detection_is_none_off_linux(tmp_path, monkeypatch):
    path = tmp_path / "cpuinfo"
    path.write_text(CPUINFO.format(vendor="AuthenticAMD", extra="avx512_bf16"))
    monkeypatch.setattr(precision_module.sys, "platform", "darwin")
    assert precision_module.cpu_bf16_support.__wrapped__(str(path)) is None


def test_auto_resolves_by_device(bf16_cpu):
    bf16_cpu(True)
    assert resolve_precision("auto", "cpu") == "bf16"
    assert llm_precision(torch.device("cpu"), "auto") == "bf16"
    bf16_cpu(False)
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("bf16", "cpu") == "bf16"  # forced: it works, emulated
    assert resolve_precision("auto", "cuda") == "bf16"
    # an LLM's "auto" without units, and "float32", follow the surrounding precision; explicit dtypes win
    assert llm_precision(torch.device("cpu"), "auto") == "fp32"
    assert llm_precision(torch.device("cpu"), "auto", outer="bf16") == "bf16"
    assert llm_precision(torch.device("cpu"), "float32", outer="bf16") == "bf16"
    assert llm_precision(torch.device("cpu"), "float16") == "fp16"
    assert isinstance(llm_autocast(torch.device("cpu"), "auto"), type(precision_module.autocast("cpu", "fp32")))


# ---------------------------------------------------------------------- the Forecaster's setting
def test_fp32_runs_no_autocast_and_bf16_autocasts_every_forward_pass(monkeypatch):
    """Every Linear of fit (training and validation), predict and evaluate: autocast state and output dtype."""
    seen = []
    forward = torch.nn.Linear.forward

    def recording(module, x):
        out = forward(module, x)
        seen.append((torch.is_autocast_enabled("cpu"), out.dtype))
        return out
    monkeypatch.setattr(torch.nn.Linear, "forward", recording)
    for precision, expected in (("fp32", (False, torch.float32)), ("bf16", (True, torch.bfloat16))):
        seen.clear()
        f, data = fit(precision)
        n_fit = len(seen)
        forecast = f.predict()
        n_predict = len(seen)
        f.evaluate(data.iloc[-40:])
        assert 0 < n_fit < n_predict < len(seen)
        assert set(seen) == {expected}, precision
        assert forecast.dtypes.eq(np.float64).all()
        assert f.training_.precision == precision


def test_fp32_default_is_bit_identical_to_a_plain_forward_pass():
    f, data = fit()
    assert f.get_params()["precision"] == "fp32"
    calls = []
    hook = f.network_.register_forward_hook(lambda module, args, out: calls.append((args, out)))
    f.predict()
    f.evaluate(data.iloc[-40:])
    hook.remove()
    assert len(calls) == 2
    with torch.no_grad():
        for args, out in calls:  # the same inputs outside any context give the very same output
            torch.testing.assert_close(f.network_(*args), out, rtol=0, atol=0)


def test_bf16_forecasts_close_to_fp32():
    f32, data = fit("fp32")
    f16, _ = fit("bf16")
    a, b = f32.predict().to_numpy(), f16.predict().to_numpy()
    assert not np.array_equal(a, b)  # bf16 did run
    scale = data.to_numpy().std(axis=0)
    assert np.max(np.abs(a - b) / scale) < 0.05
    val32, val16 = f32.training_.val_loss[-1], f16.training_.val_loss[-1]
    assert abs(val32 - val16) < 0.05 * val32
    assert abs(f32.evaluate(data.iloc[-60:])["mse"] - f16.evaluate(data.iloc[-60:])["mse"]) < 0.05


def test_bf16_without_units_warns_and_auto_falls_back(bf16_cpu):
    bf16_cpu(False)
    with pytest.warns(UserWarning, match="precision='bf16' on cpu without bf16 matrix units.*precision='auto'"):
        Forecaster(model="ar", lookback=8, horizon=2, precision="bf16").fit(synthetic_frame(n_rows=80, n_channels=1))
    f, _ = fit("auto")
    assert f.training_.precision == "fp32"
    bf16_cpu(True)
    f, _ = fit("auto")
    assert f.training_.precision == "bf16"


def test_llm_precision_is_recorded(bf16_cpu):
    tiny = {"llm": "random-llama:16x2", "token_len": 4, "mlp_hidden_dim": 8}
    bf16_cpu(True)
    f, _ = fit(model=AutoTimes(**tiny))  # llm_dtype="auto": a bf16 LLM inside fp32 adapters
    assert f.training_.precision == "fp32+llm-bf16"
    f, _ = fit("bf16", model=AutoTimes(llm_dtype="float32", **tiny))  # the loop's autocast reaches the LLM
    assert f.training_.precision == "bf16"
    assert np.isfinite(f.predict().to_numpy()).all()
    bf16_cpu(False)
    f, _ = fit(model=AutoTimes(**tiny))
    assert f.training_.precision == "fp32"
    assert precision_label(torch.nn.Linear(2, 2), "cpu", "auto") == "fp32"  # no LLM: the loop's precision only


def test_bad_precision_is_a_clear_error():
    with pytest.raises(ValueError, match="'precision' parameter.*'auto'.*Got 'fp16'.*'auto' takes bf16"):
        Forecaster(model="ar", lookback=8, horizon=2, precision="fp16").fit(synthetic_frame(n_rows=80, n_channels=1))
    with pytest.raises(ValueError, match="precision must be one of"):
        resolve_precision("half", "cpu")
    with pytest.raises(ValueError, match="llm_dtype must be"):
        llm_precision(torch.device("cpu"), "fp32")


# ---------------------------------------------------------------------- benchmark rows
def test_bench_records_precision_and_keeps_old_keys(tmp_path):
    data = resolve_dataset("ETTh1", 96, 96)
    default = json.loads(run_settings("ar", data, 96, {}, {})[2])
    assert "precision" not in default["training"]  # fp32 rows keep the keys they had before the setting
    forced = json.loads(run_settings("ar", data, 96, {}, {"precision": "bf16"})[2])
    assert forced["training"]["precision"] == "bf16"
    old = pd.DataFrame({"model": ["ar"], "dataset": ["ETTh1"], "horizon": [96], "lookback": [96], "seed": [0],
                        "params": ["{}"], "mse": [0.4], "device": ["cpu"], "settings": ["{}"]})
    old.to_csv(tmp_path / "results.csv", index=False)
    results = read_results(tmp_path)
    assert results["precision"].tolist() == ["fp32"]
    assert list(results.columns).index("precision") == list(results.columns).index("device") + 1
