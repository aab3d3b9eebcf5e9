"""AutoTimes' in-context forecasting: time-series prompt tokens prepended to the look-back."""
from __future__ import annotations

import pandas as pd
import torch


@torch.no_grad()
def in_context_forecast(forecaster, prompt: pd.DataFrame, X: pd.DataFrame | None = None,
                        horizon: int | None = None) -> pd.DataFrame:
    """Forecast ``horizon`` steps after ``X`` (default: the fitted history) with ``prompt`` as context.

    ``prompt``: earlier rows of the same channels (e.g. the same season a year before), a multiple of
    the model's ``token_len`` long; its tokens go in front of the look-back's, carrying their own
    timestamps, and are normalized together with the look-back (as in the paper). The forecast uses
    the KV-cached growing context. Needs a fitted AutoTimes forecaster.
    """
    forecaster._check_fitted()
    network = forecaster.network_
    if not hasattr(network, "growing_forecast"):
        raise TypeError(f"in-context forecasting needs an AutoTimes forecaster, not {forecaster.model_.name!r}")
    horizon = forecaster.horizon if horizon is None else horizon
    if len(prompt) == 0 or len(prompt) % network.token_len:
        raise ValueError(f"the prompt must be a positive multiple of token_len={network.token_len} rows, got {len(prompt)}")
    prompt = forecaster._check_input(prompt, min_rows=1, what="prompt", rows_needed_for="one token")
    values, index, calendar, _ = forecaster._context(X, what="context")
    n_future = -(-horizon // network.token_len) * network.token_len
    context = forecaster._prepare(values, index, future_steps=n_future, calendar=calendar)
    shown = forecaster._prepare(prompt.values, prompt.index, calendar=prompt.calendar)
    x = torch.cat([shown.values, context.values])[None]
    x_mark = future_mark = None
    if context.marks is not None:
        x_mark = torch.cat([shown.marks, context.marks[:forecaster.lookback]])[None]
        future_mark = context.marks[None, forecaster.lookback:]
    scaled = network.growing_forecast(x, x_mark, future_mark, horizon)[0]
    forecast = forecaster.scaler_.inverse_transform(scaled.double().cpu().numpy())
    future = calendar.external(calendar.future(index[-1], horizon), set_freq=True)
    return pd.DataFrame(forecast, index=future, columns=forecaster.columns_)
