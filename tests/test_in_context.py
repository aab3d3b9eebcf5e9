"""In-context forecasting (tsforecast.llm.in_context) with the pretrained forecaster, zero-shot.

A pretrained folder is written here from a tiny random AutoTimes (random-llama:16x2, tokens of 4 steps,
contexts up to 32 rows, at least 2 tokens), so every test runs in well under a second.
"""
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from test_pretrained import LOOKBACK, TOKEN, by_hand, write_tiny

from tsforecast import pretrained
from tsforecast.llm.in_context import in_context_forecast


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return write_tiny(tmp_path_factory.mktemp("pretrained") / "tiny", seed=3)


@pytest.fixture
def zero(folder):
    return pretrained(path=folder, device="cpu")


def monthly(n=60, seed=0, name="y"):
    rng = np.random.default_rng(seed)
    t = np.arange(n)
    values = 100 + t + 10 * np.sin(2 * np.pi * t / 12) + rng.normal(0, 1, n)
    return pd.DataFrame({name: values}, index=pd.date_range("2015-01-01", periods=n, freq="MS"))


def test_without_a_prompt_it_is_predict(zero):
    df = monthly()
    for context in (df, df.iloc[-8:]):  # the look-back's 32 rows, and the 2-token minimum
        pd.testing.assert_frame_equal(in_context_forecast(zero, None, context, horizon=9),
                                      zero.predict(context, horizon=9), check_exact=True)


def test_the_prompt_goes_in_front_of_the_context_as_tokens(folder, zero):
    df = monthly()
    context, prompt = df.iloc[-8:], df.iloc[-32:-24]  # a prompt one token after a gap of 16 rows
    out = in_context_forecast(zero, prompt, context, horizon=9)
    plain = zero.predict(context, horizon=9)
    assert out.index.equals(plain.index) and list(out.columns) == ["y"] and out.index.freq == "MS"
    assert not np.allclose(out.to_numpy(), plain.to_numpy(), rtol=1e-3)  # the prompt changes the forecast
    rows = np.concatenate([prompt["y"].to_numpy(), context["y"].to_numpy()])
    np.testing.assert_allclose(out["y"].to_numpy(), by_hand(folder, rows, 9), rtol=1e-5)
    # a prompt right before the context is just a longer context: predict over both reads the same rows
    adjacent = in_context_forecast(zero, df.iloc[-16:-8], context, horizon=9)
    pd.testing.assert_frame_equal(adjacent, zero.predict(df.iloc[-16:], horizon=9), check_exact=True)


def test_the_prompt_extends_the_context_beyond_the_lookback(folder, zero):
    df = monthly(80)
    out = in_context_forecast(zero, df.iloc[:8], df, horizon=5)  # 8 prompt rows + the last 32 rows
    rows = np.concatenate([df["y"].to_numpy()[:8], df["y"].to_numpy()[-LOOKBACK:]])
    np.testing.assert_allclose(out["y"].to_numpy(), by_hand(folder, rows, 5), rtol=1e-5)


def test_a_one_token_context_is_enough_with_a_prompt(zero):
    df = monthly()
    out = in_context_forecast(zero, df.iloc[:8], df.iloc[-4:], horizon=4)  # as the reference's M3 setting
    assert out.shape == (4, 1) and np.isfinite(out.to_numpy()).all()
    with pytest.raises(ValueError, match="needs at least 8 .*or pass a prompt"):
        in_context_forecast(zero, None, df.iloc[-4:], horizon=4)


def test_long_frame_of_one_series(zero):
    df = monthly()
    long = df.rename_axis("ds").reset_index().assign(unique_id="a")
    out = in_context_forecast(zero, long.iloc[:8], long.iloc[-8:], horizon=3)
    wide = in_context_forecast(zero, df.iloc[:8], df.iloc[-8:], horizon=3)
    assert list(out.columns) == ["unique_id", "ds", "y"]
    np.testing.assert_allclose(out["y"].to_numpy(), wide["y"].to_numpy())


@pytest.mark.parametrize("make_prompt, match", [
    (lambda df: df.iloc[:0], "no rows; pass prompt=None"),
    (lambda df: df.iloc[:6], r"multiple of token_len=4 rows, got 6; pass 8 rows or 4"),
    (lambda df: df.iloc[:8].rename(columns={"y": "z"}), r"the prompt has \['z'\].*prompt\[\['y'\]\]"),
    (lambda df: df.iloc[-12:-4], "not before the context"),  # overlaps the context's rows
    (lambda df: df.iloc[-4:], "not before the context"),  # the context itself
    (lambda df: df.iloc[:16:2], "a prompt is earlier rows of the same series"),  # every other month: 2MS
])
def test_bad_prompts_name_the_fix(zero, make_prompt, match):
    df = monthly()
    with pytest.raises(ValueError, match=match):
        in_context_forecast(zero, make_prompt(df), df.iloc[-8:], horizon=4)


def test_bad_contexts_name_the_fix(zero):
    df = monthly()
    with pytest.raises(ValueError, match="pass the series to forecast as X"):
        in_context_forecast(zero, df.iloc[:8])
    two = df.assign(z=df["y"] * 2)
    with pytest.raises(ValueError, match=r"one column at a time: pass X\[\['y'\]\]"):
        in_context_forecast(zero, two.iloc[:8], two.iloc[-8:])
    with pytest.raises(ValueError, match="one token of 4 steps"):
        in_context_forecast(zero, df.iloc[:8], df.iloc[-3:])
    long = pd.concat([df.rename_axis("ds").reset_index().assign(unique_id=i) for i in "ab"])
    with pytest.raises(ValueError, match="one series at a time"):
        in_context_forecast(zero, long.iloc[:8], long)


@pytest.mark.filterwarnings("ignore:batch_size=8 gives")
def test_after_fine_tuning_the_fitted_path_serves_it(folder):
    """A fine-tuned pretrained forecaster is an ordinary fitted AutoTimes: the prompt goes in front of its
    fitted look-back (growing rollout), with the same checks on the prompt."""
    df = monthly(80)
    tuned = pretrained(path=folder, device="cpu").set_params(max_epochs=1, batch_size=8, random_state=0)
    tuned.fit(df)
    assert not tuned.zero_shot_
    out = in_context_forecast(tuned, df.iloc[:8], horizon=5)
    assert out.index.equals(tuned.predict(horizon=5).index) and np.isfinite(out.to_numpy()).all()
    assert not np.allclose(out.to_numpy(), in_context_forecast(tuned, None, horizon=5).to_numpy(), rtol=1e-3)
    with pytest.raises(ValueError, match="not before the context"):
        in_context_forecast(tuned, df.iloc[-8:], horizon=5)
    with pytest.raises(ValueError, match="multiple of token_len=4"):
        in_context_forecast(tuned, df.iloc[:5], horizon=5)


def test_the_benchmark_prompts_sit_before_the_context_at_the_forecast_phase():
    """benchmarks/scripts/in_context_bench.py: the same-season prompt starts at the forecast's phase of the
    season, a row or more before the context; the first-rows prompt is the reference's."""
    import importlib.util

    script = Path(__file__).resolve().parents[1] / "benchmarks" / "scripts" / "in_context_bench.py"
    spec = importlib.util.spec_from_file_location("in_context_bench", script)
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    for season in (1, 4, 12):
        for origin in range(36, 80):
            prompt, context = bench.prompt_rows("season", origin, season), bench.context_rows("short", origin)
            assert (origin - prompt.start) % season == 0 and prompt.stop - prompt.start == bench.PROMPT
            assert prompt.stop < context.start and prompt.stop + season >= context.start  # the latest such window
            assert bench.prompt_rows("first", origin, season) == slice(0, bench.PROMPT)
    assert bench.context_rows("ctx4", 50) == slice(18, 50) and bench.prompt_rows("short", 50, 4) is None
    assert not bench.scorable(31, 4) and bench.scorable(36, 4) and bench.scorable(33, 1)
