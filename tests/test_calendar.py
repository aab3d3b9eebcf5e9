"""Users' calendars: forecasts continue the data's own dates (anchors, time zones, periods), and every
index a user is likely to have either works or fails with a message whose suggested code works.

Each test fits the closed-form AR (or the naive model) on a short synthetic series: fast and exact.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from tsforecast import Forecaster
from tsforecast.data.calendar import Calendar, dominant_freq, find_date_column, read_calendar, seasonal_period
from tsforecast.data.timefeatures import time_features


def walk(index, columns=("y",), seed=0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    values = 100 + rng.normal(size=(len(index), len(columns))).cumsum(axis=0)
    return pd.DataFrame(values, index=index, columns=list(columns))


def ar(lookback=8, horizon=3, **params) -> Forecaster:
    return Forecaster(model="ar", lookback=lookback, horizon=horizon, device="cpu", **params)


def stamps(*texts, tz=None) -> list[pd.Timestamp]:
    return [pd.Timestamp(t, tz=tz) for t in texts]


# ---------------------------------------------------------------------- anchored calendars
@pytest.mark.parametrize("freq, last, expected", [
    ("ME", "2014-12-31", ["2015-01-31", "2015-02-28", "2015-03-31"]),
    ("MS", "2014-12-01", ["2015-01-01", "2015-02-01", "2015-03-01"]),
    ("W-SAT", "2014-12-27", ["2015-01-03", "2015-01-10", "2015-01-17"]),
    ("QS-OCT", "2014-10-01", ["2015-01-01", "2015-04-01", "2015-07-01"]),
    ("QE-NOV", "2014-11-30", ["2015-02-28", "2015-05-31", "2015-08-31"]),
    ("YS", "2014-01-01", ["2015-01-01", "2016-01-01", "2017-01-01"]),
    ("B", "2014-12-26", ["2014-12-29", "2014-12-30", "2014-12-31"]),  # a Friday: Monday comes next
])
def test_forecast_dates_continue_the_data_calendar(freq, last, expected):
    index = pd.date_range(end=last, periods=40, freq=freq)
    forecast = ar().fit(walk(index)).predict()
    assert list(forecast.index) == stamps(*expected)
    # the index carries its step (QS-OCT and QS-JAN are the same quarter starts)
    assert all(forecast.index.freq.is_on_offset(t) for t in pd.date_range(end=last, periods=8, freq=freq))


def test_month_end_data_with_freq_month_start_is_an_error_naming_both():
    month_end = walk(pd.date_range("2010-01-31", periods=60, freq="ME"))
    with pytest.raises(ValueError, match=r"freq='MS' \(month start\).*'ME' \(month end\).*pass freq='ME'"):
        ar(freq="MS").fit(month_end)
    # following the message works, and the dates stay month ends
    assert list(ar(freq="ME").fit(month_end).predict().index[:2]) == stamps("2015-01-31", "2015-02-28")


def test_saturday_weeks_with_freq_w_is_an_error_and_w_sat_works():
    weeks = walk(pd.date_range("2010-01-02", periods=100, freq="W-SAT"))
    with pytest.raises(ValueError, match=r"freq='W' \(week ending on Sunday\).*'W-SAT'.*pass freq='W-SAT'"):
        ar(freq="W").fit(weeks)
    forecast = ar(freq="W-SAT").fit(weeks).predict()
    assert forecast.index[0] == weeks.index[-1] + pd.Timedelta(days=7)
    assert (forecast.index.day_name() == "Saturday").all()


def test_monthly_data_with_freq_daily_is_an_error():
    with pytest.raises(ValueError, match=r"freq='D' \(day\) does not match.*'MS' \(month start\)"):
        ar(freq="D").fit(walk(pd.date_range("2000-01-01", periods=60, freq="MS")))


def test_equivalent_quarter_anchors_are_accepted_at_predict():
    data = walk(pd.date_range("2000-01-01", periods=60, freq="QS-JAN"))
    fitted = ar(freq="QS-OCT").fit(data.iloc[:40])
    assert list(fitted.predict(data.iloc[:50]).index) == list(data.index[50:53])


def test_explicit_freq_keeps_rows_as_steps_over_duplicates_and_gaps():
    # the Weather file's case: one duplicated timestamp and one gap, taken as consecutive 10-minute steps
    index = pd.date_range("2020-01-01", periods=300, freq="10min")
    index = index.delete(150).insert(100, index[100])
    forecast = ar(freq="10min").fit(walk(index)).predict()
    assert forecast.index[0] == index[-1] + pd.Timedelta(minutes=10)
    assert (np.diff(forecast.index) == pd.Timedelta(minutes=10)).all()


# ---------------------------------------------------------------------- time zones
def test_time_zone_is_kept():
    data = walk(pd.date_range("2021-06-01", periods=200, freq="h", tz="Asia/Tokyo"))
    forecast = ar().fit(data).predict()
    assert str(forecast.index.tz) == "Asia/Tokyo"
    assert forecast.index[0] == data.index[-1] + pd.Timedelta(hours=1)


@pytest.mark.parametrize("start", ["2021-03-20", "2021-10-22"])  # spring forward (23-hour day), fall back (25 h)
def test_local_hourly_data_across_dst_fits_and_forecasts_in_absolute_time(start):
    data = walk(pd.date_range(start, periods=24 * 5, freq="h", tz="Europe/Berlin"))
    fitted = ar(lookback=24, horizon=72).fit(data)
    forecast = fitted.predict()
    assert str(forecast.index.tz) == "Europe/Berlin"
    steps = np.diff(forecast.index.tz_convert("UTC"))
    assert (steps == pd.Timedelta(hours=1)).all()
    assert forecast.index[0] == data.index[-1] + pd.Timedelta(hours=1)
    # the window that straddles the DST change is used like any other: evaluation covers every window
    assert fitted.evaluate(data)["n_windows"] == len(data) - 24 - 72 + 1


def test_daily_local_data_across_dst_stays_at_local_midnight():
    data = walk(pd.date_range("2021-02-01", periods=90, freq="D", tz="America/New_York"))
    forecast = ar(horizon=10).fit(data).predict()
    assert str(forecast.index.tz) == "America/New_York"
    assert (forecast.index.hour == 0).all()
    assert list(forecast.index.normalize().tz_localize(None)) == \
        list(pd.date_range(data.index[-1].tz_localize(None) + pd.Timedelta(days=1), periods=10, freq="D"))


def test_calendar_features_follow_local_time():
    index = pd.date_range("2021-03-27", periods=72, freq="h", tz="Europe/Berlin")
    calendar, internal = read_calendar(index)
    assert calendar.utc_steps and internal.tz is None
    local = calendar.wall_clock(internal)
    np.testing.assert_array_equal(time_features(local, "h"), time_features(index.tz_localize(None), "h"))


def test_naive_data_after_a_tz_aware_fit_is_an_error_whose_fix_works():
    data = walk(pd.date_range("2021-01-01", periods=100, freq="h", tz="UTC"))
    fitted = ar().fit(data)
    naive = data.tz_localize(None)
    with pytest.raises(ValueError, match=r"X.tz_localize\('UTC'\)"):
        fitted.predict(naive)
    assert fitted.predict(naive.tz_localize("UTC")).index[0] == data.index[-1] + pd.Timedelta(hours=1)


# ---------------------------------------------------------------------- other inputs
@pytest.mark.parametrize("freq", ["M", "Q", "Y", "W", "D"])
def test_period_index_in_period_index_out(freq):
    periods = pd.period_range("2000-01-01", periods=60, freq=freq)
    forecast = ar().fit(walk(periods)).predict()
    assert isinstance(forecast.index, pd.PeriodIndex)
    assert list(forecast.index) == list(pd.period_range(periods[-1] + 1, periods=3, freq=freq))


@pytest.mark.parametrize("name, column", [("sales", "sales"), (None, "y")])
def test_series_gives_a_one_column_frame(name, column):
    series = pd.Series(walk(pd.date_range("2000-01-01", periods=60, freq="MS"))["y"].to_numpy(),
                       index=pd.date_range("2000-01-01", periods=60, freq="MS"), name=name)
    fitted = ar().fit(series)
    forecast = fitted.predict()
    assert isinstance(forecast, pd.DataFrame) and list(forecast.columns) == [column]
    pd.testing.assert_frame_equal(fitted.predict(series), forecast)


def test_integer_column_names_stay_integers(tmp_path):
    data = walk(pd.date_range("2000-01-01", periods=80, freq="D"), columns=(0, 1))
    fitted = ar().fit(data)
    assert list(fitted.predict().columns) == [0, 1]
    fitted.save(tmp_path / "m")
    assert list(Forecaster.load(tmp_path / "m").predict().columns) == [0, 1]


@pytest.mark.parametrize("column", ["date", "ds", "Month", "timestamp", "Period End"])
def test_date_column_message_names_it_and_its_fix_works(column):
    data = walk(pd.date_range("2000-01-01", periods=60, freq="MS")).reset_index(names=column)
    with pytest.raises(TypeError, match=rf"'{column}' column.*set_index") as info:
        ar().fit(data)
    fix = str(info.value).split("use ", 1)[1]
    fixed = eval(fix.replace("df = ", ""), {"pd": pd, "df": data})  # the exact code the message suggests
    assert ar().fit(fixed).predict().index[0] == pd.Timestamp("2005-01-01")


def test_find_date_column_prefers_a_datetime_column_then_common_names():
    frame = pd.DataFrame({"value": [1.0], "when": pd.to_datetime(["2020-01-01"]), "Date": ["x"]})
    assert find_date_column(frame) == "when"
    assert find_date_column(pd.DataFrame({"y": [1.0], "DS": ["2020-01-01"]})) == "DS"
    assert find_date_column(pd.DataFrame({"y": [1.0]})) is None


def test_irregular_monthly_index_names_the_gaps_and_the_data_step_and_the_fix_works():
    data = walk(pd.date_range("2000-01-01", periods=60, freq="MS"))
    gappy = data.drop(index=stamps("2001-03-01", "2002-07-01"))
    with pytest.raises(ValueError, match=r"most steps are 'MS' \(month start\), but 2 are not") as info:
        ar().fit(gappy)
    message = str(info.value)
    assert "2001-02-01 00:00:00 -> 2001-04-01 00:00:00" in message
    assert "df.asfreq('MS').interpolate()" in message
    assert list(ar().fit(gappy.asfreq("MS").interpolate()).predict().index[:1]) == stamps("2005-01-01")


def test_irregular_tz_aware_hourly_index_fix_works():
    data = walk(pd.date_range("2021-03-25", periods=24 * 5, freq="h", tz="Europe/Berlin"))
    gappy = data.drop(index=data.index[[30, 70]])
    with pytest.raises(ValueError, match=r"df.asfreq\('h'\).interpolate\(\)"):
        ar().fit(gappy)
    assert ar().fit(gappy.asfreq("h").interpolate()).predict().index[0] == data.index[-1] + pd.Timedelta(hours=1)


def test_irregular_period_index_fix_works():
    data = walk(pd.period_range("2000-01", periods=60, freq="M")).drop(index=[pd.Period("2001-05", "M")])
    with pytest.raises(ValueError, match=r"df.reindex\(pd.period_range") as info:
        ar().fit(data)
    fix = str(info.value).split("with ", 1)[1].split(", or pass")[0]
    fixed = eval(fix, {"pd": pd, "df": data})
    assert isinstance(ar().fit(fixed).predict().index, pd.PeriodIndex)


def test_dominant_freq_of_an_index_with_missing_weeks():
    index = pd.date_range("2020-01-04", periods=80, freq="W-SAT").delete([5, 6, 40])
    assert dominant_freq(index) == "W-SAT"


@pytest.mark.parametrize("index", [
    pd.date_range("2021-03-20", periods=200, freq="h", tz="Europe/Berlin"),
    pd.date_range("2021-03-01", periods=60, freq="D", tz="America/New_York"),
    pd.period_range("2000Q1", periods=40, freq="Q"),
    pd.date_range("2000-01-31", periods=40, freq="ME", name="month"),
])
def test_save_load_round_trips_the_calendar(index, tmp_path):
    fitted = ar().fit(walk(index))
    fitted.save(tmp_path / "m")
    loaded = Forecaster.load(tmp_path / "m")
    pd.testing.assert_frame_equal(loaded.predict(), fitted.predict(), check_exact=True)
    pd.testing.assert_frame_equal(loaded.history_, fitted.history_, check_exact=True)


def test_calendar_state_round_trips():
    calendar = Calendar(freq="h", tz="Europe/Berlin", utc_steps=True, name="ts")
    assert Calendar.from_state(calendar.state()) == calendar


@pytest.mark.parametrize("freq, period", [("h", 24), ("15min", 96), ("D", 7), ("B", 5), ("W-SAT", 52),
                                          ("MS", 12), ("ME", 12), ("QS-OCT", 4), ("YE", 1), ("2MS", 6)])
def test_seasonal_period_from_the_step(freq, period):
    assert seasonal_period(freq) == period


# ---------------------------------------------------------------------- every suggested fix works
def _monthly(n=60):
    return walk(pd.date_range("2000-01-01", periods=n, freq="MS"), columns=("a", "b"))


def _string_index():
    data = _monthly()
    data.index = data.index.strftime("%Y-%m-%d")
    return data


def _duplicated():
    data = _monthly()
    return pd.concat([data.iloc[:30], data.iloc[29:30], data.iloc[30:]])


def _unsorted():
    data = _monthly()
    return data.iloc[np.r_[0:20, 21, 20, 22:60]]


def _with_nan():
    data = _monthly().copy()
    data.iloc[[5, 6], 0] = np.nan
    data.iloc[0, 1] = np.inf
    return data


def _with_text_column():
    return _monthly().assign(note="x")


def _tuple_labels():
    data = _monthly()
    data.columns = [("a", 1), ("b", 2)]
    return data


# (bad frame, error type, the suggested code as it appears in the message)
FIXES = {
    "string index": (_string_index, TypeError, "df.index = pd.to_datetime(df.index)"),
    "duplicate row": (_duplicated, ValueError, "df[~df.index.duplicated()]"),
    "duplicate aggregated": (_duplicated, ValueError, "df.groupby(level=0).mean()"),
    "unsorted": (_unsorted, ValueError, "df.sort_index()"),
    "nan and inf": (_with_nan, ValueError, "df.replace([np.inf, -np.inf], np.nan).interpolate().ffill().bfill()"),
    "nan": (lambda: _with_nan().replace(np.inf, 1.0), ValueError, "df.interpolate().ffill().bfill()"),
    "text column": (_with_text_column, ValueError, "df.drop(columns=['note'])"),
    "tuple labels": (_tuple_labels, ValueError, "df.columns = df.columns.map(str)"),
}


def _apply(code: str, df: pd.DataFrame) -> pd.DataFrame:
    scope = {"pd": pd, "np": np, "df": df.copy()}
    if code.startswith("df.index = ") or code.startswith("df.columns = "):
        exec(code, scope)
        return scope["df"]
    return eval(code, scope)


@pytest.mark.parametrize("case", list(FIXES))
def test_every_suggested_fix_leads_to_a_working_fit(case):
    build, error, code = FIXES[case]
    bad = build()
    with pytest.raises(error) as info:
        ar().fit(bad)
    assert code in str(info.value), str(info.value)
    forecast = ar().fit(_apply(code, bad)).predict()
    assert forecast.index[0] == pd.Timestamp("2005-01-01")
    assert np.isfinite(forecast.to_numpy()).all()


def test_frequency_mismatch_at_predict_fix_works():
    hourly = walk(pd.date_range("2021-01-01", periods=300, freq="h"))
    fitted = ar().fit(walk(pd.date_range("2021-01-01", periods=300, freq="2h")))
    with pytest.raises(ValueError, match=r"X.resample\('2h'\).mean\(\).interpolate\(\)") as info:
        fitted.predict(hourly)
    assert "'h' (hour)" in str(info.value)
    resampled = hourly.resample("2h").mean().interpolate()
    assert fitted.predict(resampled).index[0] == resampled.index[-1] + pd.Timedelta(hours=2)


def test_freq_as_a_pandas_offset_fits_saves_and_loads(tmp_path):
    data = walk(pd.date_range("2000-01-31", periods=60, freq="ME"))
    fitted = ar(freq=pd.offsets.MonthEnd()).fit(data)
    fitted.save(tmp_path / "m")
    loaded = Forecaster.load(tmp_path / "m")
    assert loaded.freq == pd.offsets.MonthEnd()
    pd.testing.assert_frame_equal(loaded.predict(), fitted.predict(), check_exact=True)
    assert loaded.predict().index[0] == pd.Timestamp("2005-01-31")
