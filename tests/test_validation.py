"""Bad inputs fail early with a clear ValueError/TypeError naming the problem (never a deep traceback).

Every check asserts three things: the exception type, meaningful words in the message, and that the
exception was raised by tsforecast's own code (not from inside torch, pandas or numpy).
Tiny synthetic data, CPU only, no gradient training (the errors all come before it).
"""
from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError

import tsforecast
from tsforecast import AR, ARNet, Forecaster, load_dataset

PACKAGE_DIR = Path(tsforecast.__file__).resolve().parent
LOOKBACK, HORIZON, N_ROWS = 24, 12, 300
COLUMNS = ["a", "b", "c"]


# ---------------------------------------------------------------------- helpers
def make_frame(n=N_ROWS, freq="h", seed=0, columns=COLUMNS) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    index = pd.date_range("2020-01-01", periods=n, freq=freq)
    return pd.DataFrame(rng.normal(size=(n, len(columns))).cumsum(axis=0), index=index, columns=list(columns))


def make_forecaster(**params) -> Forecaster:
    kwargs = {"model": "ar", "lookback": LOOKBACK, "horizon": HORIZON, "device": "cpu", "random_state": 0}
    kwargs.update(params)
    return Forecaster(**kwargs)


def assert_raises(exc_type, match, func, *args, **kwargs) -> pytest.ExceptionInfo:
    """``func(*args, **kwargs)`` raises ``exc_type`` matching ``match``, from tsforecast's own code."""
    with pytest.raises(exc_type, match=match) as info:
        func(*args, **kwargs)
    origin = Path(str(info.traceback[-1].path)).resolve()
    assert PACKAGE_DIR in origin.parents, (
        f"{exc_type.__name__} was raised from {origin}, not by tsforecast's own checks: {info.value}"
    )
    return info


@pytest.fixture(scope="module")
def frame() -> pd.DataFrame:
    return make_frame()


@pytest.fixture(scope="module")
def fitted(frame) -> Forecaster:
    # predict / evaluate / score never mutate the fitted state, so one forecaster serves the module
    return make_forecaster().fit(frame)


def call(method: str, data, fitted: Forecaster):
    """Run ``method`` on ``data``: fit on a fresh forecaster, the others on the fitted one."""
    if method == "fit":
        return make_forecaster().fit(data)
    return getattr(fitted, method)(data)


METHODS = ["fit", "predict", "evaluate", "score"]


# ---------------------------------------------------------------------- bad data, every entry point
def _with_value(value, row, column):
    def build(df):
        df = df.copy()
        df.iloc[row, df.columns.get_loc(column)] = value
        return df
    return build


def _duplicate_timestamp(df):
    index = df.index.to_list()
    index[250] = index[249]
    return df.set_axis(pd.DatetimeIndex(index), axis=0)


def _unsorted(df):
    order = list(range(len(df)))
    order[250], order[251] = order[251], order[250]
    return df.iloc[order]


def _gap(df):
    return df.drop(df.index[250])


def _string_column(df):
    return df.assign(b=[f"v{i}" for i in range(len(df))])


BAD_DATA = {
    # name: (builder, exception, pattern)
    "nan": (_with_value(np.nan, 250, "b"), ValueError, r"NaN.*\['b'\]"),
    "+inf": (_with_value(np.inf, 260, "c"), ValueError, r"inf.*\['c'\]"),
    "-inf": (_with_value(-np.inf, 260, "a"), ValueError, r"inf.*\['a'\]"),
    "duplicate timestamps": (_duplicate_timestamp, ValueError, r"duplicate timestamps.*2020-01-11 09:00"),
    "unsorted timestamps": (_unsorted, ValueError, r"not sorted.*sort_index"),
    "gap in hourly index": (_gap, ValueError, r"timestamps are irregular.*asfreq\('h'\).*freq="),
    "too short": (lambda df: df.iloc[:20], ValueError, r"has 20 rows; it needs at least"),
    "string column": (_string_column, ValueError, r"non-numeric columns \['b'\]"),
    "numpy array": (lambda df: df.to_numpy(), TypeError, r"must be a pandas DataFrame.*got ndarray"),
    "list": (lambda df: df.to_numpy().tolist(), TypeError, r"must be a pandas DataFrame.*got list"),
    "RangeIndex": (lambda df: df.reset_index(drop=True), TypeError, r"DatetimeIndex.*RangeIndex"),
    "date column not index": (lambda df: df.rename_axis("date").reset_index(), TypeError,
                              r"DatetimeIndex.*'date' column.*set_index"),
}


@pytest.mark.parametrize("method", METHODS)
@pytest.mark.parametrize("case", list(BAD_DATA))
def test_bad_data_is_rejected_clearly(case, method, frame, fitted):
    build, exc_type, pattern = BAD_DATA[case]
    assert_raises(exc_type, pattern, call, method, build(frame), fitted)


def test_nan_and_inf_message_names_every_bad_column(frame):
    bad = frame.copy()
    bad.iloc[5, 0] = np.nan
    bad.iloc[7, 2] = np.inf
    info = assert_raises(ValueError, r"2 NaN/inf values", make_forecaster().fit, bad)
    assert "['a', 'c']" in str(info.value)


def test_nan_inf_message_does_not_misattribute_the_first_bad_value(frame):
    # an inf at 07:00 and a NaN only at 09:00: the message must not say the first NaN is at 07:00
    bad = frame.copy()
    bad.iloc[7, 2] = np.inf
    bad.iloc[9, 0] = np.nan
    info = assert_raises(ValueError, r"NaN/inf", make_forecaster().fit, bad)
    assert "NaN first at 2020-01-01 07:00" not in str(info.value), str(info.value)


def test_irregular_index_message_reports_the_real_step(frame):
    # the common step of an hourly index is one hour (not "0 days 00:00:03.6", a ns/us unit mix-up)
    info = assert_raises(ValueError, r"timestamps are irregular", make_forecaster().fit, _gap(frame))
    message = str(info.value)
    assert "2020-01-11 09:00:00 -> 2020-01-11 11:00:00" in message
    assert "most steps are 'h' (hour)" in message, message


def test_bad_data_reports_which_call_it_came_from(frame, fitted):
    bad = _with_value(np.nan, 250, "b")(frame)
    assert_raises(ValueError, r"^fit data", make_forecaster().fit, bad)
    assert_raises(ValueError, r"^predict data", fitted.predict, bad)
    assert_raises(ValueError, r"^evaluation data", fitted.evaluate, bad)


def test_explicit_freq_takes_rows_as_consecutive_steps(frame):
    for data in (_gap(frame), _duplicate_timestamp(frame)):
        forecaster = make_forecaster(freq="h").fit(data)
        assert forecaster.freq_ == "h"
        forecast = forecaster.predict()
        assert len(forecast) == HORIZON
        assert forecast.index[0] == data.index[-1] + pd.Timedelta("1h")
        assert np.isfinite(forecast.to_numpy()).all()
        # predict / evaluate tolerate the same irregularities
        assert len(forecaster.predict(data)) == HORIZON
        assert np.isfinite(forecaster.evaluate(data)["mse"])
    # ... but rows out of order are still rejected
    assert_raises(ValueError, r"not sorted", make_forecaster(freq="h").fit, _unsorted(frame))


def test_invalid_freq_string(frame):
    assert_raises(ValueError, r"freq='bogus' is not a pandas frequency", make_forecaster(freq="bogus").fit, frame)


def test_min_rows_is_lookback_plus_horizon(frame):
    assert_raises(ValueError, r"35 rows; it needs at least 36", make_forecaster().fit, frame.iloc[:35])
    make_forecaster().fit(frame.iloc[:60])  # enough rows for AR(24) to fit is accepted


# ---------------------------------------------------------------------- constructor params (raised at fit)
def test_unknown_model_name_lists_known_models(frame):
    info = assert_raises(ValueError, r"unknown model 'nope'", make_forecaster(model="nope").fit, frame)
    message = str(info.value)
    assert all(name in message for name in ("ar", "arnet", "naive"))


@pytest.mark.parametrize("model", [3, 1.5, dict, {"name": "ar"}, None])
def test_model_of_wrong_type(model, frame):
    info = assert_raises(TypeError, r"'model' parameter of Forecaster must be a registry name \(ar, arnet, .*\), "
                                    r"a ModelSpec such as ARNet\(ar_reg=1.0\)", make_forecaster(model=model).fit, frame)
    assert f"Got {model!r} instead" in str(info.value)


@pytest.mark.parametrize(
    "param, value",
    [
        ("horizon", 0), ("horizon", -3), ("horizon", 2.0), ("horizon", True),
        ("lookback", 0), ("lookback", -1), ("lookback", 2.5), ("lookback", "24"), ("lookback", None),
    ],
)
def test_non_positive_or_non_integer_lookback_horizon(param, value, frame):
    assert_raises(ValueError, rf"'{param}' parameter of Forecaster must be an int in the range \[1, inf\)\. "
                              rf"Got {re.escape(repr(value))} instead", make_forecaster(**{param: value}).fit, frame)


def test_numpy_integer_lookback_is_accepted(frame):
    forecaster = make_forecaster(lookback=np.int64(LOOKBACK), horizon=np.int32(HORIZON)).fit(frame)
    assert len(forecaster.predict()) == HORIZON


@pytest.mark.parametrize("horizon", [0, -1, 1.5, "3"])
def test_predict_and_evaluate_with_bad_horizon(horizon, fitted, frame):
    assert_raises(ValueError, r"horizon must be a positive integer", fitted.predict, horizon=horizon)
    assert_raises(ValueError, r"horizon must be a positive integer", fitted.predict, frame, horizon=horizon)
    assert_raises(ValueError, r"horizon must be a positive integer", fitted.evaluate, frame, horizon=horizon)


@pytest.mark.parametrize("model", [AR(order=48), ARNet(order=48)])
def test_ar_order_larger_than_lookback(model, frame):
    assert_raises(ValueError, r"order 48 exceeds lookback 24", make_forecaster(model=model).fit, frame)


@pytest.mark.parametrize("model", [AR(order=0), ARNet(order=-2), AR(order=2.5)])
def test_ar_order_not_positive_integer(model, frame):
    assert_raises(ValueError, r"order must be a positive integer", make_forecaster(model=model).fit, frame)


def test_arnet_negative_ar_reg(frame):
    assert_raises(ValueError, r"ar_reg must be a number >= 0, got -1.0", make_forecaster(model=ARNet(ar_reg=-1.0)).fit, frame)
    # the same through sklearn nested params on a registry name
    forecaster = make_forecaster(model="arnet").set_params(model__ar_reg=-0.5)
    assert_raises(ValueError, r"ar_reg must be a number >= 0", forecaster.fit, frame)


def test_unknown_lr_schedule(frame):
    info = assert_raises(ValueError, r"'lr_schedule' parameter of Forecaster must be a str among .* or None\. "
                                     r"Got 'step' instead", make_forecaster(model="arnet", lr_schedule="step").fit, frame)
    assert all(f"'{name}'" in str(info.value) for name in ("halving", "constant", "cosine"))


@pytest.mark.parametrize("param, value, pattern", [
    ("max_epochs", 0, r"'max_epochs' parameter of Forecaster must be an int in the range \[1, inf\) or None\. Got 0"),
    ("batch_size", -4, r"'batch_size' parameter of Forecaster must be an int in the range \[1, inf\) or None\. Got -4"),
    ("patience", 1.5, r"'patience' parameter of Forecaster must be an int in the range \[1, inf\) or None\. Got 1.5"),
    ("learning_rate", 0.0, r"'learning_rate' parameter of Forecaster must be a float in the range \(0.0, inf\) or "
                           r"None\. Got 0.0"),
])
def test_bad_training_settings(param, value, pattern, frame):
    assert_raises(ValueError, pattern, make_forecaster(model="arnet", **{param: value}).fit, frame)


@pytest.mark.parametrize("model", ["arnet", "ar"])
@pytest.mark.parametrize("fraction", [1.0, -0.1, 1.5])
def test_validation_fraction_out_of_range(fraction, model, frame):
    assert_raises(ValueError, rf"'validation_fraction' parameter of Forecaster must be a float in the range "
                              rf"\[0.0, 1.0\)\. Got {fraction}",
                  make_forecaster(model=model, validation_fraction=fraction).fit, frame)


@pytest.mark.parametrize("fraction", ["0.1", None])
def test_validation_fraction_not_a_number(fraction, frame):
    # must name the parameter, not surface "'<=' not supported between instances of 'int' and 'str'"
    assert_raises((ValueError, TypeError), r"validation_fraction",
                  make_forecaster(model="arnet", validation_fraction=fraction).fit, frame)


def test_validation_fraction_leaving_no_room(frame):
    # 40 rows, 10% held out = 4 rows: too few for a lookback-24 validation window before the cut
    assert_raises(ValueError, r"validation_fraction=0.9 of 40 rows leaves no room",
                  make_forecaster(model="arnet", validation_fraction=0.9).fit, frame.iloc[:40])


def test_bad_device(frame):
    assert_raises(ValueError, r"device='tpu9' is not a torch device", make_forecaster(device="tpu9").fit, frame)


# ---------------------------------------------------------------------- fitted vs later data
@pytest.mark.parametrize("method", ["predict", "evaluate", "score"])
@pytest.mark.parametrize("variant, select, pattern", [
    ("missing", lambda df: df[["a", "b"]], r"missing \['c'\]"),
    ("extra", lambda df: df.assign(d=1.0), r"unexpected \['d'\]"),
    ("reordered", lambda df: df[["c", "a", "b"]], r"same names in another order"),
    ("renamed", lambda df: df.set_axis(["a", "b", "x"], axis=1), r"missing \['c'\].*unexpected \['x'\]"),
])
def test_columns_must_match_fit(method, variant, select, pattern, frame, fitted):
    info = assert_raises(ValueError, r"columns the forecaster was fitted on", getattr(fitted, method), select(frame))
    assert re.search(pattern, str(info.value)), str(info.value)


@pytest.mark.parametrize("method", ["predict", "evaluate", "score"])
def test_different_frequency_than_fit(method, frame, fitted):
    two_hourly = frame.resample("2h").mean()
    assert_raises(ValueError, r"frequency '2h' \(2 x hour\) but the forecaster was fitted on 'h' \(hour\)", getattr(fitted, method), two_hourly)


def test_same_frequency_spelled_differently_is_accepted(fitted):
    data = make_frame(n=60, seed=1)
    data.index = pd.DatetimeIndex(data.index.to_list())  # no freq attribute, inferred again: 'h'
    assert len(fitted.predict(data)) == HORIZON


@pytest.mark.parametrize("call_it", [
    pytest.param(lambda f, df: f.predict(df), id="predict"),
    pytest.param(lambda f, df: f.predict(), id="predict-no-data"),
    pytest.param(lambda f, df: f.evaluate(df), id="evaluate"),
    pytest.param(lambda f, df: f.score(df), id="score"),
    pytest.param(lambda f, df: f.save("never-written"), id="save"),
    pytest.param(lambda f, df: f.coef_, id="coef_"),
])
def test_not_fitted(call_it, frame, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    info = assert_raises(NotFittedError, r"not fitted yet.*call fit", call_it, make_forecaster(), frame)
    assert isinstance(info.value, ValueError)
    assert list(tmp_path.iterdir()) == []  # save wrote nothing


# ---------------------------------------------------------------------- datasets and persistence
def test_load_dataset_unknown_name_lists_known():
    info = assert_raises(ValueError, r"unknown dataset 'nope'", load_dataset, "nope")
    assert all(name in str(info.value) for name in ("ETTh1", "ETTm2", "Weather"))


def test_load_dataset_small_slice_round_trip():
    data = load_dataset("ETTh1").iloc[:400]
    forecaster = make_forecaster().fit(data)
    assert list(forecaster.predict().columns) == list(data.columns)
    assert_raises(ValueError, r"missing \['OT'\]", forecaster.predict, data.drop(columns="OT"))


@pytest.mark.parametrize("setup", ["empty", "missing", "unrelated files", "config only", "a file"])
def test_load_not_a_saved_model(setup, tmp_path):
    path = tmp_path / "model"
    if setup == "empty":
        path.mkdir()
    elif setup == "unrelated files":
        path.mkdir()
        (path / "notes.txt").write_text("hello")
    elif setup == "config only":
        path.mkdir()
        (path / "config.json").write_text("{}")
    elif setup == "a file":
        path.write_text("not a folder")
    assert_raises(FileNotFoundError, r"is not a saved tsforecast model", Forecaster.load, path)


def _snapshot(folder: Path) -> dict:
    return {str(p.relative_to(folder)): (p.read_bytes() if p.is_file() else None) for p in sorted(folder.rglob("*"))}


def test_save_refuses_to_replace_an_unrelated_folder(fitted, tmp_path):
    target = tmp_path / "model"
    (target / "data").mkdir(parents=True)
    (target / "notes.txt").write_text("my notes")
    (target / "data" / "x.csv").write_text("1,2,3\n")
    before = _snapshot(target)

    assert_raises(FileExistsError, r"not a saved tsforecast model; refusing to replace it", fitted.save, target)
    assert _snapshot(target) == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]  # no temporary folders left behind


def test_save_refuses_to_replace_a_file(fitted, tmp_path):
    target = tmp_path / "model"
    target.write_text("precious")
    assert_raises(FileExistsError, r"refusing to replace it", fitted.save, target)
    assert target.read_text() == "precious"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]


def test_save_twice_replaces_cleanly(frame, tmp_path):
    target = tmp_path / "model"
    first = make_forecaster().fit(frame)
    first.save(target)
    second_data = make_frame(n=200, seed=7, columns=["x", "y"])
    second = make_forecaster(model="naive").fit(second_data)
    second.save(target)

    assert sorted(p.name for p in tmp_path.iterdir()) == ["model"]
    assert sorted(p.name for p in target.iterdir()) == ["config.json", "model.safetensors"]
    loaded = Forecaster.load(target, device="cpu")
    assert loaded.columns_ == ["x", "y"]
    pd.testing.assert_frame_equal(loaded.predict(), second.predict())
    # and the loaded model validates its inputs like the original
    assert_raises(ValueError, r"columns the forecaster was fitted on", loaded.predict, frame)
    assert not any(name.startswith(".") for name in os.listdir(tmp_path))


def test_saved_model_has_ordinary_permissions(fitted, tmp_path):
    # the model folder and its files should follow the user's umask like any saved file, not the private
    # 0700 / 0600 modes of tempfile.mkdtemp and safetensors (another account serving the model can't read it)
    target = tmp_path / "model"
    fitted.save(target)
    umask = os.umask(0)
    os.umask(umask)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in [target, *target.iterdir()]}
    expected = {"model": oct(0o777 & ~umask), "config.json": oct(0o666 & ~umask),
                "model.safetensors": oct(0o666 & ~umask)}
    assert modes == expected


# ---------------------------------------------------------------------- declarative parameter constraints
def test_every_init_parameter_has_a_constraint():
    # a parameter added to __init__ without a constraint would be accepted unchecked
    assert set(Forecaster._parameter_constraints) == set(Forecaster().get_params(deep=False))


@pytest.mark.parametrize("value", ["abc", -1, 2**32, 1.5, np.random.RandomState(0), np.random.default_rng(0)])
def test_bad_random_state_names_the_parameter(value, frame):
    info = assert_raises(ValueError, r"'random_state' parameter of Forecaster must be an int in the range "
                                     r"\[0, 4294967295\] or None\. Got .* instead\. Pass an int seed such as "
                                     r"random_state=0", make_forecaster(random_state=value).fit, frame)
    assert "not supported" in str(info.value)  # says a RandomState / Generator is no way round it


@pytest.mark.parametrize("value", [np.int64(3), 2**32 - 1, None])
def test_int_like_random_state_is_accepted(value, frame):
    assert len(make_forecaster(random_state=value).fit(frame).predict()) == HORIZON


@pytest.mark.parametrize("value", ["weird", "auto2", True, 1, "mo"])
def test_bad_time_features_lists_valid_examples(value, frame):
    info = assert_raises(ValueError, r"'time_features' parameter of Forecaster must be a str among \{'auto'\}, a "
                                     r"pandas frequency with calendar features \(e\.g\. 'h', '15min', 'D'",
                         make_forecaster(model="arnet", time_features=value).fit, frame)
    assert f"Got {value!r} instead" in str(info.value)


def test_bad_time_features_is_caught_before_any_work():
    # checked before the data: even fit(None) reports the parameter, not the data
    assert_raises(ValueError, r"'time_features' parameter", make_forecaster(time_features="weird").fit, None)


def test_time_features_examples_in_the_message_are_valid(frame):
    from tsforecast.data.timefeatures import feature_names
    from tsforecast.params import _FREQ_EXAMPLES

    for example in re.findall(r"'([^']+)'", _FREQ_EXAMPLES):
        feature_names(example)
        make_forecaster(time_features=example)._validate_params()


@pytest.mark.parametrize("param, value, pattern", [
    ("freq", 3, r"'freq' parameter of Forecaster must be an instance of 'str', a pandas offset .* or None"),
    ("device", None, r"'device' parameter of Forecaster must be an instance of 'str'"),
    ("verbose", -1, r"'verbose' parameter of Forecaster must be an int in the range \[0, inf\)"),
    ("season_length", 0, r"'season_length' parameter of Forecaster must be an int in the range \[1, inf\) or None"),
    ("max_epochs", True, r"'max_epochs' parameter of Forecaster must be an int"),  # a bool is not a count
    ("learning_rate", float("nan"), r"'learning_rate' parameter of Forecaster must be a float in the range \(0.0, inf\)"),
    ("learning_rate", float("inf"), r"'learning_rate' parameter"),
    ("validation_fraction", True, r"'validation_fraction' parameter"),
])
def test_other_bad_parameters_name_themselves(param, value, pattern, frame):
    assert_raises(ValueError, pattern, make_forecaster(**{param: value}).fit, frame)


def test_freq_may_be_a_pandas_offset(frame):
    forecaster = make_forecaster(freq=pd.offsets.Hour()).fit(frame)
    assert forecaster.predict().index[0] == frame.index[-1] + pd.Timedelta("1h")


def test_model_family_training_defaults_are_checked_too(frame):
    class BadDefaults(ARNet):
        training_defaults = {"batch_size": 0}

    assert_raises(ValueError, r"'batch_size' parameter of model 'arnet' \(its training_defaults merged with the "
                              r"Forecaster's\) must be an int in the range \[1, inf\)\. Got 0",
                  make_forecaster(model=BadDefaults()).fit, frame)
    # the Forecaster's own setting overrides the family's default
    assert make_forecaster(model=BadDefaults(), batch_size=16, max_epochs=1).fit(frame).training_.epochs == 1


# ---------------------------------------------------------------------- extreme magnitudes: scaler and least squares
def test_scaler_matches_sklearn_bit_for_bit_on_ordinary_data():
    from sklearn.preprocessing import StandardScaler

    from tsforecast.data.scaling import fit_scaler

    rng = np.random.default_rng(0)
    for _ in range(50):
        x = rng.normal(size=(int(rng.integers(20, 300)), 3)) * 10.0 ** rng.uniform(-6, 6, 3) + rng.uniform(-1e4, 1e4, 3)
        ours, theirs = fit_scaler(x), StandardScaler().fit(x)
        for name in ("mean_", "scale_", "var_"):
            np.testing.assert_array_equal(getattr(ours, name), getattr(theirs, name))


@pytest.mark.parametrize("factor", [1e200, 1e160, 1e-200, 1e-300])
def test_ar_on_huge_or_tiny_values_equals_the_rescaled_fit(factor, frame):
    # sklearn's variance of 1e200 overflows (1e-200 underflows) and the column was taken as constant:
    # LAPACK failed, or the forecast was NaN or flat. Scale-free AR must give the same fit at any scale.
    reference = make_forecaster().fit(frame)
    scaled = make_forecaster().fit(frame * factor)
    np.testing.assert_allclose(scaled.coef_, reference.coef_, rtol=1e-6, atol=1e-9)
    np.testing.assert_allclose(scaled.predict().to_numpy() / factor, reference.predict().to_numpy(), rtol=1e-6)


def test_constant_columns_still_work_at_any_level(frame):
    data = frame.assign(b=5.0, c=1e200)
    forecaster = make_forecaster().fit(data)
    np.testing.assert_array_equal(forecaster.scaler_.scale_[1:], [1.0, 1.0])
    forecast = forecaster.predict()
    assert (forecast["b"] == 5.0).all() and (forecast["c"] == 1e200).all()


def test_values_near_the_float_limit_name_the_column_and_a_working_rescale(frame):
    # value - mean overflows: mostly -1.7e308 with a few +1.7e308
    data = frame.assign(b=np.where(np.arange(len(frame)) % 10 == 0, 1.7e308, -1.7e308))
    assert_raises(ValueError, r"column 'b' has values up to 1.7e\+308, too near float64's limit .* rescale "
                              r"it, e\.g\. df\['b'\] = df\['b'\] / 1e308", make_forecaster().fit, data)
    data["b"] = data["b"] / 1e308  # the fix the message gives
    assert np.isfinite(make_forecaster().fit(data).predict().to_numpy()).all()


def test_ar_least_squares_failure_is_our_error():
    # AR's own fit (the Forecaster standardizes first) on values with an inf, as an overflowed variance
    # gave before: LAPACK's SVD fails ("SVD did not converge")
    import torch

    from tsforecast.models.base import Dims

    spec = AR()
    network = spec.build(Dims(n_channels=2, lookback=4, horizon=1, n_time_features=0))
    values = np.random.default_rng(0).normal(size=(40, 2)).cumsum(axis=0)
    values[7, 1] = np.inf
    with pytest.raises(ValueError, match=r"AR least squares failed on channel 1 \(0-based\) \(.*\): it has 1 NaN/inf "
                                         r"values; fit on finite, standardized values") as info:
        spec.fit_closed_form(network, values)
    assert PACKAGE_DIR in Path(str(info.traceback[-1].path)).resolve().parents
    spec.fit_closed_form(network, np.nan_to_num(values, posinf=0.0))
    assert torch.isfinite(network.linear.weight).all()


def test_ar_with_too_few_rows_says_which_lookback_fits(frame):
    info = assert_raises(ValueError, r"AR\(24\) needs at least 49 training rows .* got 40; give more rows or lower "
                                     r"the order \(lookback, or AR\(order=\.\.\.\)\) to at most 19",
                         make_forecaster().fit, frame.iloc[:40])
    assert info.value
    assert len(make_forecaster(lookback=19).fit(frame.iloc[:40]).predict()) == HORIZON
