"""MSE and MAE as the LTSF protocol defines them: one global mean over windows x horizon x channels."""
from __future__ import annotations

import numpy as np
import torch


def mse(y_true, y_pred) -> float:
    return float(np.mean((np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64)) ** 2))


def mae(y_true, y_pred) -> float:
    return float(np.mean(np.abs(np.asarray(y_true, dtype=np.float64) - np.asarray(y_pred, dtype=np.float64))))


class ErrorAccumulator:
    """Streams batches of forecasts into the global MSE / MAE without keeping them.

    Sums are float64 tensors on the forecasts' device, read once in ``result()``: no per-batch
    device synchronization.
    """

    def __init__(self):
        self.squared = None
        self.absolute = None
        self.count = 0
        self.windows = 0

    def update(self, y_true: torch.Tensor, y_pred: torch.Tensor) -> None:
        err = y_pred.detach().double() - y_true.detach().double()
        squared, absolute = err.square().sum(), err.abs().sum()
        self.squared = squared if self.squared is None else self.squared + squared
        self.absolute = absolute if self.absolute is None else self.absolute + absolute
        self.count += err.numel()
        self.windows += err.shape[0]

    def result(self) -> dict:
        if self.count == 0:
            raise ValueError("no forecast windows to score")
        return {"mse": float(self.squared) / self.count, "mae": float(self.absolute) / self.count,
                "n_windows": self.windows}
