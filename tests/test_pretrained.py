"""The shipped pretrained forecaster (tsforecast.pretrained): zero-shot predict/evaluate, fine-tuning, errors.

Every test uses a pretrained folder written here from a tiny random AutoTimes (random-llama:16x2, tokens of
4 steps, contexts up to 32 rows = 8 tokens, at least 2 tokens), so they run in seconds.
"""
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file, save_file
from sklearn.base import clone

import tsforecast
from tsforecast import Forecaster, list_pretrained, pretrained
from tsforecast.llm.backbone import BackboneMismatchError
from tsforecast.models import AutoTimes
from tsforecast.models.base import Dims
from tsforecast.pretrained import DEFAULT_NAME, SHIPPED_ROOT, PretrainedForecaster, read_shipped, write_pretrained
from tsforecast.rollout import sliding_forecast
from tsforecast.testing import synthetic_frame

ROOT = Path(__file__).resolve().parents[1]
TOKEN, LOOKBACK, HORIZON = 4, 32, 6
FINE_TUNE = {"max_epochs": 1, "batch_size": 8, "learning_rate": 1e-3, "patience": 1, "train_stride": 2}


def tiny_spec():
    return AutoTimes(llm="random-llama:16x2", token_len=TOKEN, mlp_hidden_dim=8)


def write_tiny(folder, seed=1, context=None):
    spec = tiny_spec()
    torch.manual_seed(seed)
    network = spec.build(Dims(1, LOOKBACK, HORIZON, 0))
    return write_pretrained(folder, network, spec, LOOKBACK, HORIZON, min_context_tokens=2, context=context,
                            fine_tune=FINE_TUNE, training={"note": "random test adapter"})


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tiny(tmp_path_factory.mktemp("pretrained") / "tiny")


@pytest.fixture
def zero(folder):
    return pretrained(path=folder, device="cpu")


def monthly(n=40, level=100.0, seed=0, name="y"):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = level + t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)
    return pd.DataFrame({name: values}, index=pd.date_range("2015-01-31", periods=n, freq="ME"))


def by_hand(folder, context: np.ndarray, horizon: int) -> np.ndarray:
    """The forecast of one channel's context, computed directly from the adapter file."""
    network = tiny_spec().build(Dims(1, LOOKBACK, HORIZON, 0)).eval()
    network.load_state_dict(load_file(str(Path(folder) / "adapter.safetensors")), strict=False)
    mean, std = context.mean(), context.std()
    x = torch.tensor((context - mean) / std, dtype=torch.float32)[None, :, None]
    return sliding_forecast(network, x, None, None, horizon)[0, :, 0].double().numpy() * std + mean


# ---------------------------------------------------------------------- zero-shot predict
def test_zero_shot_wide_hourly_is_the_adapter_network_on_each_channel(folder, zero):
    df = synthetic_frame(n_rows=100, n_channels=2)
    out = zero.predict(df, horizon=10)
    assert zero.zero_shot_ and not hasattr(zero, "columns_")  # a zero-shot predict keeps nothing of X
    assert list(out.columns) == ["ch0", "ch1"]
    assert out.index.equals(pd.date_range(df.index[-1] + pd.Timedelta(hours=1), periods=10, freq="h"))
    assert out.index.freq == "h"
    for column in df:  # the last lookback rows of each channel, alone
        expected = by_hand(folder, df[column].to_numpy()[-LOOKBACK:], 10)
        np.testing.assert_allclose(out[column].to_numpy(), expected, rtol=1e-4, atol=1e-4)
    # channels are independent: one column alone gets the same forecast
    np.testing.assert_allclose(zero.predict(df[["ch1"]], horizon=10)["ch1"], out["ch1"], rtol=1e-5)


def test_zero_shot_forecast_is_affine_equivariant(zero):
    """Per-series normalization: the forecast of a * y + b is a * forecast(y) + b (float32 rounding aside)."""
    df = monthly()
    shifted = df * 1e4 + 3e6
    np.testing.assert_allclose(zero.predict(shifted, horizon=5).to_numpy(), zero.predict(df, horizon=5).to_numpy()
                               * 1e4 + 3e6, rtol=1e-6)


def test_zero_shot_long_monthly_panel_mixed_context_lengths(folder, zero):
    """Series of 9, 14 and 50 rows read 8 (2 tokens), 12 and 32 rows; each continues its own calendar."""
    frames = {"a": monthly(9, seed=1), "b": monthly(14, level=5.0, seed=2), "c": monthly(50, level=-40.0, seed=3)}
    frames["b"].index = pd.date_range("2019-06-30", periods=14, freq="ME")
    long = pd.concat([f.rename_axis("ds").reset_index().assign(unique_id=k) for k, f in frames.items()])
    long = long[["unique_id", "ds", "y"]].sample(frac=1.0, random_state=0)  # row order must not matter
    out = zero.predict(long, horizon=3)
    assert list(out.columns) == ["unique_id", "ds", "y"]
    assert list(out["unique_id"]) == ["a"] * 3 + ["b"] * 3 + ["c"] * 3
    for key, frame in frames.items():
        part = out[out["unique_id"] == key]
        expected_dates = pd.date_range(frame.index[-1], periods=4, freq="ME")[1:]
        assert list(part["ds"]) == list(expected_dates)
        rows = min(len(frame), LOOKBACK) // TOKEN * TOKEN
        np.testing.assert_allclose(part["y"].to_numpy(), by_hand(folder, frame["y"].to_numpy()[-rows:], 3),
                                   rtol=1e-4, atol=1e-4)
    only = zero.predict(long, horizon=3, ids=["b"])
    np.testing.assert_allclose(only["y"].to_numpy(), out[out["unique_id"] == "b"]["y"].to_numpy(), rtol=1e-6)


def test_zero_shot_two_token_context_and_period_index(zero):
    quarterly = pd.DataFrame({"gdp": np.linspace(1.0, 2.0, 8) ** 2},
                             index=pd.period_range("2020Q1", periods=8, freq="Q"))
    out = zero.predict(quarterly, horizon=4)
    assert isinstance(out.index, pd.PeriodIndex)
    assert list(out.index) == list(pd.period_range("2022Q1", periods=4, freq="Q"))
    assert np.isfinite(out["gdp"]).all()


def test_too_short_context_names_the_rows_needed(zero):
    long = pd.DataFrame({"unique_id": ["a"] * 7 + ["b"] * 20,
                         "ds": list(pd.date_range("2020-01-01", periods=7, freq="D")) +
                               list(pd.date_range("2020-01-01", periods=20, freq="D")),
                         "y": np.arange(27.0)})
    with pytest.raises(ValueError, match=r"at least 8 rows.*2 tokens of 4 steps.*'a': 7"):
        zero.predict(long)
    with pytest.raises(ValueError, match="8"):
        zero.predict(monthly(6))


def test_zero_shot_errors_say_what_to_do(zero):
    df = monthly()
    with pytest.raises(ValueError, match="no prediction intervals.*fit"):
        zero.predict(df, level=[80])
    with pytest.raises(ValueError, match="no prediction intervals.*fit"):
        zero.evaluate(df, level=[80])
    with pytest.raises(ValueError, match=r"pass the series.*predict\(df"):
        zero.predict()
    with pytest.raises(ValueError, match="reads no covariates"):
        zero.predict(df, future_covariates=df)
    with pytest.raises(ValueError, match="nothing of its own to save"):
        zero.save("unused")


# ---------------------------------------------------------------------- the zero-shot context
@pytest.fixture(scope="module")
def short_folder(folder, tmp_path_factory):
    """The same adapter as ``folder``, its config's default context 16 rows (4 tokens) of the 32 look-back."""
    target = tmp_path_factory.mktemp("pretrained") / "short"
    target.mkdir()
    config = json.loads((Path(folder) / "config.json").read_text())
    assert config["context"] == LOOKBACK  # write_pretrained's default: the look-back
    (target / "config.json").write_text(json.dumps({**config, "context": 16}))
    (target / "adapter.safetensors").write_bytes((Path(folder) / "adapter.safetensors").read_bytes())
    return target


def test_context_is_the_same_as_giving_only_the_last_rows(folder, short_folder, zero):
    df = synthetic_frame(n_rows=60, n_channels=2)
    short = pretrained(path=short_folder, device="cpu")
    assert short.context == 16 and short.get_params()["context"] == 16 and short.lookback == LOOKBACK
    out = short.predict(df, horizon=7)
    pd.testing.assert_frame_equal(out, zero.predict(df.iloc[-16:], horizon=7), check_exact=True)
    np.testing.assert_allclose(out["ch0"].to_numpy(), by_hand(folder, df["ch0"].to_numpy()[-16:], 7), rtol=1e-4,
                               atol=1e-4)
    assert not np.allclose(out.to_numpy(), zero.predict(df, horizon=7).to_numpy(), rtol=1e-3)
    # a series shorter than the context reads all its rows floored to whole tokens, as before
    pd.testing.assert_frame_equal(short.predict(df.iloc[:14], horizon=3), zero.predict(df.iloc[2:14], horizon=3),
                                  check_exact=True)
    # evaluate: every window reads the context (16 rows), so 60 - 16 - 4 + 1 windows; lookback is kept
    result = short.evaluate(df, horizon=4, units="original")
    errors = [np.abs(short.predict(df.iloc[:t], horizon=4).to_numpy() - df.iloc[t:t + 4].to_numpy())
              for t in range(16, len(df) - 4 + 1)]
    assert result["n_windows"] == len(errors) == 41 and short.lookback == LOOKBACK
    np.testing.assert_allclose(result["mae"], np.mean(errors), rtol=1e-5)


def test_context_override_and_its_checks(folder, short_folder):
    df = monthly(40)
    wider = pretrained(path=short_folder, device="cpu", context=24)  # the user's choice beats the config's
    assert wider.context == 24
    np.testing.assert_allclose(wider.predict(df, horizon=5)["y"].to_numpy(),
                               by_hand(folder, df["y"].to_numpy()[-24:], 5), rtol=1e-4, atol=1e-4)
    wider.set_params(context=8)  # takes effect on the loaded forecaster
    np.testing.assert_allclose(wider.predict(df, horizon=5)["y"].to_numpy(),
                               by_hand(folder, df["y"].to_numpy()[-8:], 5), rtol=1e-4, atol=1e-4)
    assert clone(wider).get_params()["context"] == 8
    with pytest.raises(ValueError, match=r"context=10 rows must be a multiple of token_len=4 from min_context_tokens"
                                         r"=2 tokens \(8 rows\) to lookback=32; pass e\.g\. context=8"):
        pretrained(path=short_folder, context=10)
    with pytest.raises(ValueError, match=r"context=4 rows.*pass e\.g\. context=8"):
        pretrained(path=short_folder, context=4)
    with pytest.raises(ValueError, match=r"context=40 rows.*lookback=32; pass e\.g\. context=32"):
        pretrained(path=short_folder, context=40)
    with pytest.raises(ValueError, match="context"):
        pretrained(path=short_folder, context="16")
    with pytest.raises(ValueError, match="context"):
        pretrained(path=short_folder, context=True)
    wider.set_params(context=12)
    wider.set_params(lookback=8)  # a fine-tune's look-back below the context: the zero-shot read says so
    with pytest.raises(ValueError, match=r"context=12 rows.*lookback=8; pass e\.g\. context=8"):
        wider.predict(df)


def test_context_in_the_config_round_trips_and_is_checked(folder, tmp_path):
    written = write_tiny(tmp_path / "written", context=20)
    assert json.loads((written / "config.json").read_text())["context"] == 20
    assert read_shipped(path=written).context == 20 and pretrained(path=written, device="cpu").context == 20
    with pytest.raises(ValueError, match=r"context=18 rows must be a multiple of token_len=4"):
        write_tiny(tmp_path / "bad", context=18)
    config = json.loads((written / "config.json").read_text())
    (written / "config.json").write_text(json.dumps({**config, "context": 36}))
    with pytest.raises(ValueError, match=r"config\.json is damaged or was edited \(context=36 rows"):
        read_shipped(path=written)


def test_a_config_without_context_reads_the_whole_lookback(folder, tmp_path, zero):
    old = tmp_path / "old"
    old.mkdir()
    config = json.loads((Path(folder) / "config.json").read_text())
    del config["context"]  # written before the field existed
    (old / "config.json").write_text(json.dumps(config))
    (old / "adapter.safetensors").write_bytes((Path(folder) / "adapter.safetensors").read_bytes())
    assert read_shipped(path=old).context == LOOKBACK
    f = pretrained(path=old, device="cpu")
    assert f.context == LOOKBACK
    df = monthly(50)
    np.testing.assert_allclose(f.predict(df, horizon=4)["y"].to_numpy(), by_hand(folder, df["y"].to_numpy()[-32:], 4),
                               rtol=1e-4, atol=1e-4)
    # a forecaster built without pretrained() (context None) takes the config's, cut to a lower lookback
    bare = PretrainedForecaster(path=old, model=tiny_spec(), lookback=16, horizon=HORIZON, device="cpu")
    np.testing.assert_allclose(bare.predict(df, horizon=4)["y"].to_numpy(),
                               by_hand(folder, df["y"].to_numpy()[-16:], 4), rtol=1e-4, atol=1e-4)


def test_fine_tuning_reads_the_lookback_not_the_context(short_folder):
    df = synthetic_frame(n_rows=120, n_channels=1)
    tuned = pretrained(path=short_folder, device="cpu").set_params(random_state=0).fit(df)
    assert tuned.dims_.lookback == LOOKBACK and len(tuned.histories_[0]) == LOOKBACK


# ---------------------------------------------------------------------- loading
def test_the_adapter_is_loaded_and_checked(folder, tmp_path, zero):
    df = monthly()
    other = pretrained(path=write_tiny(tmp_path / "other", seed=2), device="cpu")
    assert not np.allclose(other.predict(df).to_numpy(), zero.predict(df).to_numpy(), rtol=1e-3)
    # a missing weight is an error naming it
    broken = tmp_path / "broken"
    broken.mkdir()
    config = json.loads((Path(folder) / "config.json").read_text())
    (broken / "config.json").write_text(json.dumps(config))
    weights = load_file(str(Path(folder) / "adapter.safetensors"))
    save_file({k: v for k, v in weights.items() if k != "decoder.net.3.bias"}, str(broken / "adapter.safetensors"))
    with pytest.raises(ValueError, match=r"1 missing: decoder\.net\.3\.bias"):
        pretrained(path=broken)
    # a mis-shaped one too (config.json edited to another MLP width)
    config["spec"]["params"]["mlp_hidden_dim"] = 12
    (broken / "config.json").write_text(json.dumps(config))
    save_file(weights, str(broken / "adapter.safetensors"))
    with pytest.raises(ValueError, match=r"mis-shaped: decoder\.net\.0\.bias \(saved \(8,\), expected \(12,\)\)"):
        pretrained(path=broken)
    # another LLM behind the same name: the fingerprint check refuses it
    config["spec"]["params"]["mlp_hidden_dim"] = 8
    config["backbone"]["fingerprint"]["digest"] = "0" * 16
    config["backbone"]["fingerprint"]["parts"]["block 0"] = "0" * 16
    (broken / "config.json").write_text(json.dumps(config))
    with pytest.raises(BackboneMismatchError, match="block 0"):
        pretrained(path=broken)


def test_unknown_name_and_missing_files(tmp_path, monkeypatch):
    assert DEFAULT_NAME in list_pretrained()
    with pytest.raises(ValueError, match=f"unknown pretrained forecaster 'chronos'; known: {DEFAULT_NAME}"):
        pretrained("chronos")
    module = sys.modules["tsforecast.pretrained"]
    monkeypatch.setattr(module, "SHIPPED_ROOT", tmp_path)  # an installation without the shipped folder
    with pytest.raises(FileNotFoundError, match=f"'{DEFAULT_NAME}' is not shipped in this installation.*"
                                                "adapter.safetensors.*path="):
        pretrained()
    with pytest.raises(FileNotFoundError, match="lacks config.json and adapter.safetensors"):
        pretrained(path=tmp_path)


def test_shipped_adapter_config_reads_when_present():
    folder = SHIPPED_ROOT / DEFAULT_NAME
    if not (folder / "adapter.safetensors").is_file():
        pytest.skip("the shipped adapter is not in this checkout yet")
    shipped = read_shipped()
    assert shipped.spec.token_len * shipped.min_context_tokens <= 16  # monthly series of 2 years work
    assert shipped.lookback % shipped.spec.token_len == 0
    assert (folder / "adapter.safetensors").stat().st_size < 20e6  # a few MB, never the LLM


def test_wheel_includes_the_pretrained_folder():
    """hatch puts every file under the packages it is given into the wheel, unless git ignores it."""
    tomllib = pytest.importorskip("tomllib")
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    wheel = config["tool"]["hatch"]["build"]["targets"]["wheel"]
    assert "tsforecast" in wheel["packages"]
    assert not wheel.get("exclude") and not wheel.get("only-include")
    assert SHIPPED_ROOT == ROOT / "tsforecast" / "pretrained_weights"
    probe = [f"tsforecast/pretrained_weights/{DEFAULT_NAME}/{name}" for name in ("adapter.safetensors", "config.json")]
    ignored = subprocess.run(["git", "check-ignore", "--no-index", *probe], cwd=ROOT, capture_output=True, text=True)
    if ignored.returncode == 128:
        pytest.skip(f"git unavailable: {ignored.stderr.strip()}")
    assert ignored.stdout.strip() == "", f"git ignores {ignored.stdout.split()}: hatch would leave them out"


# ---------------------------------------------------------------------- evaluate
def test_zero_shot_evaluate_scores_the_same_forecasts_as_predict(zero):
    df = synthetic_frame(n_rows=44, n_channels=2)
    horizon = 4
    result = zero.evaluate(df, horizon=horizon, units="original")
    assert not hasattr(zero, "columns_") and not hasattr(zero, "scalers_")  # nothing of X kept
    errors = []
    for origin in range(LOOKBACK, len(df) - horizon + 1):
        forecast = zero.predict(df.iloc[:origin], horizon=horizon)
        errors.append(np.abs(forecast.to_numpy() - df.iloc[origin:origin + horizon].to_numpy()))
    assert result["n_windows"] == len(errors) == 9
    np.testing.assert_allclose(result["mae"], np.mean(errors), rtol=1e-5)
    scaled = zero.evaluate(df, horizon=horizon)
    assert set(scaled) == {"mse", "mae", "n_windows"} and scaled["n_windows"] == 9


# ---------------------------------------------------------------------- fine-tuning
def test_fine_tuning_starts_from_the_adapter_with_the_shipped_settings(folder, zero):
    df = synthetic_frame(n_rows=120, n_channels=2)
    zero_shot = zero.predict(df, horizon=8)
    assert zero.model.train_stride == FINE_TUNE["train_stride"]
    config = zero._training_config(zero.model_)
    assert (config.max_epochs, config.batch_size, config.patience) == (1, 8, 1)
    tuned = clone(zero).set_params(learning_rate=1e-12, random_state=0)  # the user's setting wins
    assert tuned._training_config(tuned.model).learning_rate == 1e-12
    tuned.fit(df)
    assert tuned.zero_shot_ is False and tuned.n_epochs_ == 1
    adapter = load_file(str(Path(folder) / "adapter.safetensors"))
    for key, value in tuned.network_.trainable_state_dict().items():
        torch.testing.assert_close(value, adapter[key], atol=1e-8, rtol=0)
    # the fine-tuned forecaster is an ordinary Forecaster: its fitted scaler, its X=None history; a
    # learning rate of 1e-12 leaves the adapter as shipped, so it forecasts as zero-shot did
    np.testing.assert_allclose(tuned.predict(df, horizon=8).to_numpy(), zero_shot.to_numpy(), rtol=1e-4, atol=1e-4)
    np.testing.assert_allclose(tuned.predict(horizon=8).to_numpy(), zero_shot.to_numpy(), rtol=1e-4, atol=1e-4)
    assert set(tuned.predict(level=[80]).columns) >= {"ch0-lo-80", "ch0-hi-80"}
    zero_score = zero.evaluate(df.iloc[-50:], horizon=4, units="original")["mae"]
    tuned_score = tuned.evaluate(df.iloc[-50:], horizon=4, units="original")["mae"]
    np.testing.assert_allclose(tuned_score, zero_score, rtol=1e-4)


def test_fine_tuned_forecaster_saves_as_a_plain_forecaster(zero, tmp_path):
    df = synthetic_frame(n_rows=120, n_channels=2)
    tuned = clone(zero).set_params(random_state=0).fit(df)
    tuned.save(tmp_path / "tuned")
    loaded = Forecaster.load(tmp_path / "tuned")
    assert type(loaded) is Forecaster
    pd.testing.assert_frame_equal(loaded.predict(df), tuned.predict(df))
    assert tuned.predict(df).shape == (HORIZON, 2)


def test_a_failed_fine_tune_leaves_the_zero_shot_forecaster(zero):
    df = monthly(40)
    before = zero.predict(df)
    with pytest.raises(ValueError, match="lookback"):
        zero.fit(monthly(20))  # shorter than lookback + horizon
    assert zero.zero_shot_
    pd.testing.assert_frame_equal(zero.predict(df), before)


def test_clone_forecasts_zero_shot_without_fit(zero):
    df = monthly(30)
    copy = clone(zero)
    assert isinstance(copy, PretrainedForecaster) and copy.get_params()["path"] == zero.path
    pd.testing.assert_frame_equal(copy.predict(df), zero.predict(df))
    with pytest.raises(ValueError, match=re.escape("tsforecast.pretrained('autotimes-smollm2')")):
        PretrainedForecaster().predict(df)
    assert tsforecast.pretrained is pretrained


# ---------------------------------------------------------------------- CLI
def test_cli_forecasts_with_a_pretrained_model_without_fitting(folder, tmp_path, monkeypatch, capsys):
    import shutil

    from tsforecast.cli import main

    shipped = tmp_path / "shipped"
    shutil.copytree(folder, shipped / DEFAULT_NAME)
    monkeypatch.setattr(sys.modules["tsforecast.pretrained"], "SHIPPED_ROOT", shipped)
    df = monthly(30, name="sales")
    df.rename_axis("Month").to_csv(tmp_path / "in.csv")
    out = tmp_path / "f.csv"
    code = main(["forecast", "--model", DEFAULT_NAME, "--csv", str(tmp_path / "in.csv"), "--horizon", "12",
                 "--out", str(out), "--device", "cpu"])
    assert code == 0 and "zero-shot" in capsys.readouterr().out
    written = pd.read_csv(out, index_col=0, parse_dates=True)
    expected = pretrained(path=folder, device="cpu").predict(df, horizon=12)
    assert list(written.index) == list(expected.index)
    np.testing.assert_allclose(written["sales"].to_numpy(), expected["sales"].to_numpy(), rtol=1e-6)
    # a long CSV: each series from its own last date
    long = pd.concat([monthly(20, seed=1).assign(store="a"), monthly(26, seed=2).assign(store="b")])
    long.rename_axis("ds").reset_index()[["store", "ds", "y"]].to_csv(tmp_path / "long.csv", index=False)
    code = main(["forecast", "--model", DEFAULT_NAME, "--csv", str(tmp_path / "long.csv"), "--id-column", "store",
                 "--horizon", "3", "--out", str(out), "--device", "cpu"])
    written = pd.read_csv(out, parse_dates=["ds"])
    assert code == 0 and list(written.columns) == ["store", "ds", "y"] and len(written) == 6
    assert written.groupby("store")["ds"].min().tolist() == [pd.Timestamp("2016-09-30"), pd.Timestamp("2017-03-31")]
