"""The panel scale benchmark's two arms train on the same number of windows (what its time-per-window
ratio rests on), at a tiny size."""
import importlib.util
import warnings
from pathlib import Path

import pandas as pd
import pytest

from tsforecast import Forecaster

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "scripts" / "panel_scale.py"


@pytest.fixture(scope="module")
def bench():
    spec = importlib.util.spec_from_file_location("panel_scale", SCRIPT)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_long_frame_layout(bench):
    n_series, steps = 4, 30
    values = bench.panel_values(n_series, steps).ravel()
    frame = bench.long_frame(values, n_series, steps)
    assert list(frame.columns) == ["unique_id", "ds", "y"]
    assert frame["unique_id"].nunique() == n_series and len(frame) == n_series * steps
    per_series = frame.groupby("unique_id")["ds"]
    assert (per_series.diff().dropna() == pd.Timedelta(hours=1)).all()
    assert per_series.min().nunique() > 1  # series start at different dates
    assert (frame["y"].to_numpy() == values).all()


@pytest.mark.parametrize("model", ["arnet", "itransformer"])
def test_wide_arm_has_the_panel_arms_windows(bench, model):
    n_series, steps = 3, 80
    values = bench.panel_values(n_series, steps).ravel()
    spec_kwargs = {"itransformer": {"d_model": 8, "e_layers": 1, "n_heads": 2}}.get(model, {})

    def fit(frame):
        f = Forecaster(model=model if not spec_kwargs else _spec(model, spec_kwargs), lookback=bench.LOOKBACK,
                       horizon=bench.HORIZON, max_epochs=1, batch_size=bench.BATCH,
                       validation_fraction=bench.FRACTION, random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # few optimizer steps at this size
            return f.fit(frame)

    panel = fit(bench.long_frame(values, n_series, steps))
    rows = bench.wide_rows(panel.training_.n_windows, panel.network_.output_len)
    wide = fit(bench.wide_frame(values[:rows]))
    assert wide.training_.n_windows == panel.training_.n_windows


def _spec(model, kwargs):
    from tsforecast.models.registry import get_model_class

    return get_model_class(model)(**kwargs)
