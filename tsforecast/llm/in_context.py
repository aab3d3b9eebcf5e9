"""AutoTimes' in-context forecasting: time-series prompt tokens prepended to the look-back.

A *time series prompt* (Liu et al., AutoTimes, NeurIPS 2024) is earlier history placed in front of the
look-back as extra tokens; prompt and look-back are normalized together and the forecaster continues the
whole sequence. The reference's M3 experiment (``Dataset_TSF_ICL`` in thuml/AutoTimes) takes the first two
tokens of each series as the prompt, before a one-token look-back; its subway figure uses "in-period"
prompts: earlier windows at the same phase of the period as the forecast. Both are a choice of rows made by
the caller; this module forecasts with whatever earlier rows it is given.

* A fitted AutoTimes :class:`~tsforecast.Forecaster` (one series, any channels): the prompt's tokens go in
  front of the fitted look-back, carrying their own timestamps, and the forecast grows the context one
  token per step over the KV cache (``network.growing_forecast``).
* The shipped pretrained forecaster, zero-shot (``tsforecast.pretrained()`` before any fit): one series of
  one column at a time; the context is what ``predict`` would read (the last ``min(rows, context)`` rows of
  ``X``, floored to whole tokens) and the prompt is added in front of it, so the prompt extends the context
  beyond the look-back. The forecast is ``predict``'s own rollout over the prompt + context window
  (for the shipped ``rollout="sliding"``, the window slides one token per forecast token, so a long horizon
  pushes the earliest prompt tokens out, as it does the oldest context tokens in ``predict``). Without a
  prompt it is exactly ``predict(X, horizon)``.
"""
from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from ..data.calendar import describe_freq, next_steps
from ..data.panel import Panel, SeriesData
from ..validation import check_positive_int


@torch.no_grad()
def in_context_forecast(forecaster, prompt, X=None, horizon: int | None = None) -> pd.DataFrame:
    """Forecast ``horizon`` steps after ``X`` with ``prompt`` (earlier rows of the same series) as context.

    ``forecaster``: a fitted AutoTimes Forecaster (``X`` defaults to the fitted history), or the pretrained
    forecaster zero-shot (``tsforecast.pretrained()``; ``X`` required, one series of one column).
    ``prompt``: a frame like ``X`` (the same columns and step), a positive multiple of the model's
    ``token_len`` rows, ending before the context's first row (e.g. the same season a year before, or the
    first rows of the series as in AutoTimes' M3 experiment); None forecasts without one. Prompt and
    context are normalized together, as in the paper. See the module's docstring for the rollout.
    """
    from ..pretrained import PretrainedForecaster

    if isinstance(forecaster, PretrainedForecaster) and forecaster._zero_shot():
        return _zero_shot_forecast(forecaster, prompt, X, horizon)
    return _fitted_forecast(forecaster, prompt, X, horizon)


def _check_prompt_rows(n_rows: int, token_len: int) -> None:
    if n_rows == 0:
        raise ValueError("the prompt has no rows; pass prompt=None to forecast without one, or earlier rows of the "
                         f"series, a positive multiple of token_len={token_len}")
    if n_rows % token_len:
        low, high = n_rows // token_len * token_len, -(-n_rows // token_len) * token_len
        raise ValueError(f"the prompt must be a positive multiple of token_len={token_len} rows, got {n_rows}; pass "
                         f"{high} rows{f' or {low}' if low else ''} (e.g. prompt.iloc[-{low or high}:])")


def _check_before(prompt: SeriesData, context: SeriesData, calendar) -> None:
    """A prompt is earlier history: it must end before the context's first row (else it would repeat or
    come after the rows the model reads, e.g. the very period being forecast)."""
    if not prompt.index[-1] < context.index[0]:
        end, start = (calendar.external(index)[0] for index in (prompt.index[-1:], context.index[:1]))
        raise ValueError(f"the prompt ends at {end}, not before the context, which starts at {start} (the last "
                         f"{len(context)} rows the model reads); a prompt is earlier history: pass rows that end "
                         f"before {start}, or shorten X so that its last rows start after the prompt")


# ------------------------------------------------------------------------------------------ fitted AutoTimes
def _fitted_forecast(forecaster, prompt, X, horizon) -> pd.DataFrame:
    forecaster._check_fitted()
    network = forecaster.network_
    if not hasattr(network, "growing_forecast"):
        raise TypeError(f"in-context forecasting needs an AutoTimes forecaster, not {forecaster.model_.name!r}")
    horizon = forecaster.horizon if horizon is None else horizon
    check_positive_int("horizon", horizon)
    if prompt is not None:
        _check_prompt_rows(len(prompt), network.token_len)
    if len(forecaster.series_ids_) != 1:
        raise ValueError("in-context forecasting serves one series (a wide fit); this forecaster has "
                         f"{len(forecaster.series_ids_)}")
    contexts, numbers, calendar, _ = forecaster._contexts(X, None)
    n_future = -(-horizon // network.token_len) * network.token_len
    context = forecaster._encode(contexts, numbers, calendar, extra=n_future)
    lookback = forecaster.lookback
    x, x_mark = context.values[:lookback], None if context.marks is None else context.marks[:lookback]
    if prompt is not None:
        shown_series = forecaster._read(prompt, "prompt", min_rows=1, rows_needed_for="one token").series[0]
        _check_prompt_rows(len(shown_series), network.token_len)
        _check_before(shown_series, contexts[0], calendar)
        shown = forecaster._encode([shown_series], numbers, calendar)
        x = torch.cat([shown.values, x])
        if x_mark is not None:
            x_mark = torch.cat([shown.marks, x_mark])
    future_mark = None if context.marks is None else context.marks[None, lookback:]
    scaled = network.growing_forecast(x[None], None if x_mark is None else x_mark[None], future_mark,
                                      horizon)[0].double().cpu().numpy()
    target = forecaster._target_scaler(numbers[0])
    future = calendar.external(calendar.future(contexts[0].index[-1], horizon), set_freq=True)
    return pd.DataFrame(scaled * target.scale_ + target.mean_, index=future, columns=forecaster.columns_)


# ------------------------------------------------------------------------------- the pretrained, zero-shot
def _zero_shot_forecast(forecaster, prompt, X, horizon) -> pd.DataFrame:
    token = int(forecaster.model_.token_len)
    minimum = forecaster._min_context()
    horizon = forecaster.horizon if horizon is None else horizon
    check_positive_int("horizon", horizon)
    if X is None:
        raise ValueError("a zero-shot forecaster has no data of its own: pass the series to forecast as X "
                         "(in_context_forecast(model, prompt, X=df)); the prompt goes in front of X's last rows")
    if prompt is not None:
        _check_prompt_rows(len(prompt), token)
    # With a prompt the context may be one token: prompt and context together make the model's input.
    panel = forecaster._read_any(X, "X", min_rows=token if prompt is not None else minimum,
                                 rows_needed_for=f"one token of {token} steps after the prompt" if prompt is not None
                                 else f"the shortest context the pretrained model reads: {minimum // token} tokens "
                                      f"of {token} steps; or pass a prompt")
    if len(panel.series) != 1:
        raise ValueError(f"X has {len(panel.series)} series; in-context forecasting serves one series at a time: "
                         f"pass one series' rows (e.g. X[X[{panel.layout.id_col!r}] == some_id]) with its own prompt")
    targets = list(panel.roles.targets)
    if len(targets) != 1:
        raise ValueError(f"X has {len(targets)} columns {targets}; in-context forecasting with the pretrained "
                         f"forecaster serves one column at a time: pass X[[{targets[0]!r}]] and its prompt "
                         f"prompt[[{targets[0]!r}]]")
    series = panel.series[0]
    n_context = forecaster._context_rows(len(series))  # the rows predict reads; the read ensured the minimum
    context = series.tail_from(len(series) - n_context)
    if prompt is not None:
        shown = forecaster._read_any(prompt, "prompt", min_rows=1, rows_needed_for="one token")
        if len(shown.series) != 1 or list(shown.roles.columns) != list(panel.roles.columns):
            got = list(shown.roles.columns) if len(shown.series) == 1 else f"{len(shown.series)} series"
            raise ValueError(f"the prompt has {got}, X has the column {targets}: a prompt is earlier rows of the "
                             f"same column; pass prompt[[{targets[0]!r}]] (rename it to {targets[0]!r} if it "
                             "comes from another series)")
        _check_same_step(shown, panel)
        earlier = shown.series[0]
        _check_prompt_rows(len(earlier), token)
        if len(earlier) + n_context < minimum:
            raise ValueError(f"the prompt ({len(earlier)} rows) and the context ({n_context} rows) hold fewer than "
                             f"the {minimum // token} tokens of {token} steps the pretrained model reads; give more "
                             "rows to either")
        _check_before(earlier, context, panel.calendar)
        # prompt and context as one input (its index has a gap: the zero-shot network reads no marks)
        context = SeriesData(series.id, earlier.index.append(context.index),
                             np.concatenate([earlier.values, context.values]))
    return forecaster._forecast_contexts([context], panel, horizon)


def _check_same_step(prompt: Panel, data: Panel) -> None:
    """The prompt steps like X (the same dates follow its last row, and the same kind of time)."""
    given, wanted = prompt.calendar, data.calendar
    at = prompt.series[0].index[-1]
    same_kind = (given.tz is None) == (wanted.tz is None) and (given.period_freq is None) == (wanted.period_freq is None)
    if not same_kind or not next_steps(at, given.offset, 3).equals(next_steps(at, wanted.offset, 3)):
        raise ValueError(f"the prompt steps by {describe_freq(given.freq)} ({given.describe_kind()}) but X by "
                         f"{describe_freq(wanted.freq)} ({wanted.describe_kind()}); a prompt is earlier rows of the "
                         "same series: take it from the same frame as X")
