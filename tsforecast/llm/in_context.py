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
    if len(forecaster.series_ids_) != 1:
        raise ValueError("in-context forecasting serves one series (a wide fit); this forecaster has "
                         f"{len(forecaster.series_ids_)}")
    prompt = forecaster._read(prompt, "prompt", min_rows=1, rows_needed_for="one token").series[0]
    contexts, numbers, calendar, _ = forecaster._contexts(X, None)
    n_future = -(-horizon // network.token_len) * network.token_len
    context = forecaster._encode(contexts, numbers, calendar, extra=n_future)
    shown = forecaster._encode([prompt], numbers, calendar)
    lookback = forecaster.lookback
    x = torch.cat([shown.values, context.values[:lookback]])[None]
    x_mark = future_mark = None
    if context.marks is not None:
        x_mark = torch.cat([shown.marks, context.marks[:lookback]])[None]
        future_mark = context.marks[None, lookback:]
    scaled = network.growing_forecast(x, x_mark, future_mark, horizon)[0].double().cpu().numpy()
    target = forecaster._target_scaler(numbers[0])
    future = calendar.external(calendar.future(contexts[0].index[-1], horizon), set_freq=True)
    return pd.DataFrame(scaled * target.scale_ + target.mean_, index=future, columns=forecaster.columns_)
