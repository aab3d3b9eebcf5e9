"""Classic autoregression AR(p) per channel, with future-known covariates ARX(p), fitted by ordinary
least squares as one global model over every series of a panel."""
from __future__ import annotations

import numpy as np
import torch
from torch import nn

from ..layers.autoregressive import ChannelwiseLinear, FutureCovariateTerm, sliding_lags
from .base import Dims, ModelSpec


def lag_order(order: int | None, dims: Dims, model: str) -> int:
    """The AR order to use (``None``: the lookback), checked against the lookback."""
    order = dims.lookback if order is None else order
    if isinstance(order, bool) or not isinstance(order, (int, np.integer)) or order <= 0:
        raise ValueError(f"{model} order must be a positive integer, got {order!r}")
    if order > dims.lookback:
        raise ValueError(f"{model} order {order} exceeds lookback {dims.lookback}; raise lookback or lower order")
    return int(order)


class LinearAR(nn.Module):
    """One-step linear AR per channel: ``y_t = c + sum_k phi_k y_{t-k} (+ sum_j beta_j f_{t,j})``, the last
    term (ARX) only when built with ``n_exog`` future covariates, read from ``y_mark``."""

    output_len = 1

    def __init__(self, n_channels: int, order: int, n_exog: int = 0):
        super().__init__()
        self.order = order
        self.n_exog = n_exog
        self.linear = ChannelwiseLinear(n_channels, order)
        # Registered only when used, so a model without covariates keeps its state_dict (saved models load).
        if n_exog:
            self.exog = FutureCovariateTerm(n_channels, n_exog)

    def forward(self, x: torch.Tensor, x_mark=None, y_mark=None) -> torch.Tensor:
        out = self.linear(x)
        if self.n_exog:
            out = out + self.exog(y_mark)
        return out.unsqueeze(1)

    def coefficients(self) -> tuple[np.ndarray, np.ndarray]:
        return self.linear.weight.detach().cpu().double().numpy(), self.linear.bias.detach().cpu().double().numpy()

    def exog_coefficients(self) -> np.ndarray:
        """The future covariates' weights ``(C, n_exog)`` on the scaled data (``(C, 0)`` without covariates)."""
        if not self.n_exog:
            return np.zeros((self.linear.weight.shape[0], 0))
        return self.exog.weight.detach().cpu().double().numpy()


def _as_series_list(values, name: str) -> list[np.ndarray]:
    # A bare 2-D array is one series (the wide path); a panel is a list of them.
    items = [values] if isinstance(values, np.ndarray) else list(values)
    out = [np.asarray(v, dtype=float) for v in items]
    for i, v in enumerate(out):
        if v.ndim != 2:
            raise ValueError(f"{name}[{i}] must be a 2-D (rows, columns) array, got shape {v.shape}")
    return out


def _usable_targets(series: list[np.ndarray], covariates: list[np.ndarray] | None, order: int) -> np.ndarray:
    """``(n_channels, order + 1)``: ``[c, q]`` is how many targets of channel ``c`` an AR(q) can use, those
    with the target, its ``q`` lags and the covariates observed (not NaN), over all series."""
    usable = np.zeros((series[0].shape[1], order + 1), dtype=np.int64)
    for i, values in enumerate(series):
        steps = np.arange(len(values))[:, None]
        # length of the run of observed values ending at each row: usable for AR(q) when >= q + 1
        last_missing = np.maximum.accumulate(np.where(np.isnan(values), steps, -1), axis=0)
        run = steps - last_missing
        cov_ok = np.ones(len(values), dtype=bool) if covariates is None else ~np.isnan(covariates[i]).any(axis=1)
        for c in range(values.shape[1]):
            counts = np.bincount(np.minimum(run[cov_ok, c], order + 1), minlength=order + 2)
            usable[c] += counts[::-1].cumsum()[::-1][1:]  # [q]: rows with run >= q + 1
    return usable


class AR(ModelSpec):
    """AR(``order``) per channel with an intercept, fitted by OLS (conditional MLE), as statsmodels'
    ``AutoReg(series, lags=order, trend="c")``: on the same series the coefficients are equal.

    With future-known covariates (``Forecaster(future_covariates=[...])``) it is ARX: each covariate's
    value at the forecast step is a contemporaneous regressor, ``y_t = c + sum_k phi_k y_{t-k} +
    sum_j beta_j f_{t,j}``, equal to ``AutoReg(series, lags=order, trend="c", exog=covariates)``.
    Past-only covariates are not supported: a driver observed only up to the forecast origin would be a
    lagged regressor, which this AR does not offer (use itransformer, autoformer, informer or smamba).

    One global model is fitted on the rows of every series of a panel (per channel). A missing value
    (NaN) removes every row it touches: as the target, as one of its lags, or as a covariate. Forecasts
    beyond one step are recursive (the shared rollout), as ``AutoRegResults.forecast``.

    Parameters
    ----------
    order : int or None
        Number of lags; ``None`` uses the Forecaster's ``lookback``.
    """

    name = "ar"
    fit_mode = "closed_form"
    supports_future_covariates = True

    def __init__(self, order: int | None = None):
        self.order = order

    def check(self, dims: Dims) -> None:
        lag_order(self.order, dims, "AR")

    def build(self, dims: Dims) -> nn.Module:
        return LinearAR(dims.n_channels, lag_order(self.order, dims, "AR"), dims.n_future_covariates)

    def fit_closed_form(self, network: LinearAR, train_values: list[np.ndarray],
                        future_covariates: list[np.ndarray] | None = None) -> None:
        order, n_exog = network.order, network.n_exog
        series = _as_series_list(train_values, "train_values")
        n_channels = series[0].shape[1]
        covariates = None
        if n_exog:
            if future_covariates is None:
                raise ValueError(f"this AR was built with {n_exog} future covariates; pass their values "
                                 "(future_covariates, one (rows, covariates) array per series)")
            covariates = _as_series_list(future_covariates, "future_covariates")
            if len(covariates) != len(series) or any(
                    f.shape != (len(v), n_exog) for f, v in zip(covariates, series)):
                raise ValueError(f"future_covariates must be one (rows, {n_exog}) array per series, on the series' "
                                 f"rows: got shapes {[f.shape for f in covariates]} for series of "
                                 f"{[len(v) for v in series]} rows")
        elif future_covariates is not None and any(np.asarray(f).size for f in future_covariates):
            raise ValueError("future_covariates given to an AR built without them; build it with "
                             "Dims(n_future_covariates=...)")
        self._check_rows(series, covariates, order, n_exog)

        weight = np.empty((n_channels, order))
        bias = np.empty(n_channels)
        exog = np.empty((n_channels, n_exog))
        for c in range(n_channels):
            designs, targets = [], []
            for i, values in enumerate(series):
                if len(values) <= order:  # too short for one target: contributes no row
                    continue
                lags, target = sliding_lags(values[:, c], order)
                columns = [np.ones((len(target), 1)), lags]
                if n_exog:
                    columns.append(covariates[i][order:])
                designs.append(np.hstack(columns))
                targets.append(target)
            # One series: the design as is (bit-identical to the single-series fit the benchmarks used).
            design = designs[0] if len(designs) == 1 else np.vstack(designs)
            target = targets[0] if len(targets) == 1 else np.concatenate(targets)
            missing = np.isnan(target) | np.isnan(design).any(axis=1)
            if missing.any():
                design, target = design[~missing], target[~missing]
            # A singular design (a constant channel) is fine: lstsq returns the minimum-norm solution.
            # inf values (e.g. from a variance that overflowed) make LAPACK's SVD fail instead.
            # (Huge finite values do not fail: the intercept's column falls under lstsq's rcond and is dropped.)
            try:
                with np.errstate(over="ignore", invalid="ignore"):
                    solution, *_ = np.linalg.lstsq(design, target, rcond=None)
            except np.linalg.LinAlgError as err:
                column = np.concatenate([v[:, c] for v in series])
                n_bad = int(np.isinf(column).sum())
                n_bad_cov = 0 if covariates is None else int(sum(np.isinf(f).sum() for f in covariates))
                if n_bad:
                    found = f"{n_bad} NaN/inf values"
                elif n_bad_cov:
                    found = f"{n_bad_cov} inf values in its future covariates"
                else:
                    found = f"values up to {np.nanmax(np.abs(column)):.3g}"
                raise ValueError(
                    f"AR least squares failed on channel {c} (0-based) ({err}): it has {found}; fit on finite, "
                    "standardized values (Forecaster.fit standardizes the data)"
                ) from None
            bias[c], weight[c], exog[c] = solution[0], solution[1:order + 1], solution[order + 1:]
        with torch.no_grad():
            network.linear.weight.copy_(torch.from_numpy(weight))
            network.linear.bias.copy_(torch.from_numpy(bias))
            if n_exog:
                network.exog.weight.copy_(torch.from_numpy(exog))

    @staticmethod
    def _check_rows(series: list[np.ndarray], covariates: list[np.ndarray] | None, order: int, n_exog: int) -> None:
        """Raise a ValueError naming a working fix unless every channel has a determined least-squares fit."""
        unknowns = order + 1 + n_exog  # lags, intercept, covariates
        per_channel = _usable_targets(series, covariates, order)
        usable = per_channel.min(axis=0)  # the channel with the fewest, per order
        if usable[order] >= unknowns:
            return
        channel = int(per_channel[:, order].argmin())
        with_cov = f" + {n_exog} future covariate{'s' if n_exog > 1 else ''}" if n_exog else ""
        # The largest lower order that is determined: the fix the message offers (None: none is).
        fit_order = next((q for q in range(order - 1, 0, -1) if usable[q] >= q + 1 + n_exog), None)
        lower = f" or lower the order (lookback, or AR(order=...)) to at most {fit_order}" if fit_order else ""
        fewer = " or fewer future covariates" if n_exog else ""
        complete = len(series) == 1 and not np.isnan(series[0]).any() and (
            covariates is None or not np.isnan(covariates[0]).any())
        if complete:  # one gap-free series: count its rows
            raise ValueError(
                f"AR({order}) needs at least {order + unknowns} training rows for a determined least-squares fit "
                f"({order} lags + an intercept{with_cov}, from at least {unknowns} targets), got {len(series[0])}; "
                f"give more rows{fewer}{lower}")
        observed = " and its covariates" if n_exog else ""
        raise ValueError(
            f"AR({order}) needs at least {unknowns} usable targets for a determined least-squares fit ({order} lags + "
            f"an intercept{with_cov}); a target is usable when it, its {order} lags{observed} "
            f"are observed (not NaN): channel {channel} (0-based) has {usable[order]} over {len(series)} series of "
            f"{sum(len(v) for v in series)} rows; give more (or more complete) rows{fewer}{lower}")
