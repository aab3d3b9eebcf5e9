"""Train-split standardization with sklearn's StandardScaler, and its exact (de)serialization."""
from __future__ import annotations

import numpy as np
from sklearn.preprocessing import StandardScaler


def fit_scaler(train_values: np.ndarray, columns=None) -> StandardScaler:
    """Fit on the training rows only (population std, as the protocol does); constant columns get scale 1.

    sklearn's statistics square the values, so a column of 1e200 overflows (its variance is inf and
    it is taken as constant) and one of 1e-200 underflows (taken as constant too). They are computed
    here on each column divided by a power of two near its largest |value|: exact, so ordinary data
    gets sklearn's figures bit for bit, and any finite magnitude its true mean and scale.
    ``columns`` (names) only serve the error for values too near float64's limit to standardize.
    """
    values = np.asarray(train_values, dtype=np.float64)
    if np.isnan(values).any():
        return _fit_observed(values, columns)
    peak = np.max(np.abs(values), axis=0)
    unit = np.exp2(np.floor(np.log2(np.where(peak > 0, peak, 1.0))))
    scaler = StandardScaler().fit(values / unit)
    # sklearn set the scale of (near) constant columns to 1, leaving var_ as computed.
    constant = scaler.scale_ != np.sqrt(scaler.var_)
    mean = scaler.mean_ * unit
    identical = (values == values[:1]).all(axis=0)
    mean[identical] = values[0, identical]  # exactly, so a constant column scales to exactly 0
    # A near-constant column keeps scale 1 unless its rounding residue is larger (a level of 1e200):
    # its scaled values then stay within +-1 instead of reaching 1e184.
    with np.errstate(over="ignore"):  # values near float64's limit: reported below
        residue = np.max(np.abs(values - mean), axis=0)
    with np.errstate(over="ignore"):  # var_ of 1e200 is inf (it only serves sklearn's partial_fit)
        scaler.var_ = scaler.var_ * unit * unit  # not unit**2: 0 * inf would be NaN
    scaler.mean_ = mean
    scaler.scale_ = np.where(constant, np.maximum(1.0, residue), scaler.scale_ * unit)

    with np.errstate(over="ignore", invalid="ignore"):
        finite = np.isfinite(scaler.transform(values)).all(axis=0) & np.isfinite(residue)
    if not finite.all():
        j = int(np.flatnonzero(~finite)[0])
        name = repr(columns[j]) if columns is not None else f"{j} (0-based)"
        divisor = f"1e{int(np.floor(np.log10(peak[j])))}"
        fix = f"df[{columns[j]!r}] = df[{columns[j]!r}] / {divisor}" if columns is not None else f"divide it by {divisor}"
        raise ValueError(f"column {name} has values up to {peak[j]:.3g}, too near float64's limit "
                         f"({np.finfo(np.float64).max:.3g}) to standardize (value - mean overflows); "
                         f"rescale it, e.g. {fix}")
    return scaler


def _fit_observed(values: np.ndarray, columns) -> StandardScaler:
    """Each column's statistics on its observed (non-NaN) rows, as :func:`fit_scaler` computes them."""
    parts = []
    for j in range(values.shape[1]):
        column = values[:, j]
        column = column[~np.isnan(column)]
        if not len(column):
            name = repr(columns[j]) if columns is not None else f"{j} (0-based)"
            raise ValueError(f"column {name} has no observed value in the training rows, so it cannot be scaled; "
                             "drop it, give more rows, or fill it")
        parts.append(fit_scaler(column[:, None], None if columns is None else [columns[j]]))
    scaler = StandardScaler()
    scaler.mean_ = np.array([p.mean_[0] for p in parts])
    scaler.scale_ = np.array([p.scale_[0] for p in parts])
    scaler.var_ = np.array([p.var_[0] for p in parts])
    scaler.n_samples_seen_ = int(np.sum(~np.isnan(values), axis=0).max())
    scaler.n_features_in_ = values.shape[1]
    return scaler


def scaler_state(scaler: StandardScaler) -> dict:
    return {
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "var": scaler.var_.tolist(),
        "n_samples_seen": int(np.max(scaler.n_samples_seen_)),
    }


def scaler_from_state(state: dict) -> StandardScaler:
    scaler = StandardScaler()
    scaler.mean_ = np.asarray(state["mean"], dtype=np.float64)
    scaler.scale_ = np.asarray(state["scale"], dtype=np.float64)
    scaler.var_ = np.asarray(state["var"], dtype=np.float64)
    scaler.n_samples_seen_ = state["n_samples_seen"]
    scaler.n_features_in_ = len(scaler.mean_)
    return scaler
