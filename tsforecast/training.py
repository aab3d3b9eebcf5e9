"""The one training loop every gradient-trained model uses.

Adam on the MSE of the network's ``output_len``-step forecast, an epoch-wise learning-rate schedule,
early stopping on the validation MSE with the best weights restored, one quiet-able tqdm bar.
"""
from __future__ import annotations

import copy
import math
import time
from dataclasses import dataclass, field

import torch
from torch import nn

from .data.windows import Windows
from .metrics import ErrorAccumulator

LR_SCHEDULES = ("halving", "constant", "cosine")


def progress_bar(**kwargs):
    """tqdm's notebook-or-terminal bar, imported only when shown (importing tqdm.auto in a notebook
    without ipywidgets warns, which a silent fit should not do)."""
    if kwargs.get("disable"):
        from tqdm import tqdm
    else:
        import warnings

        from tqdm import TqdmExperimentalWarning, TqdmWarning

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", TqdmWarning)
            warnings.simplefilter("ignore", TqdmExperimentalWarning)
            from tqdm.auto import tqdm
    return tqdm(**kwargs)


@dataclass
class TrainingConfig:
    max_epochs: int = 10
    batch_size: int = 32
    learning_rate: float = 1e-4
    patience: int = 3
    #: "halving": Time-Series-Library's ``type1`` (lr for epochs 1-2, then halved every epoch);
    #: "constant"; "cosine": cosine decay to 0 over ``max_epochs``
    lr_schedule: str = "halving"
    #: batch size of the validation pass; None: :func:`default_eval_batch_size` for the network's device
    eval_batch_size: int | None = None
    verbose: int = 0


@dataclass
class TrainingResult:
    epochs: int = 0
    best_epoch: int = 0
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    #: wall time of each epoch: its training steps plus its validation pass
    epoch_seconds: list[float] = field(default_factory=list)
    #: the validation pass's share of each epoch
    val_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0


def default_eval_batch_size(device: torch.device) -> int:
    """Windows per no-grad forward pass. GPUs want large batches; on CPUs a batch beyond a few hundred
    windows falls out of cache and gets slower per window (iTransformer, ETTh1 test set, 2 cores:
    0.77 s at 1024, 0.55 s at 128-256, 0.71 s at 32)."""
    return 1024 if torch.device(device).type == "cuda" else 256


def lr_factor(schedule: str, epoch: int, max_epochs: int) -> float:
    """Multiplier of the base learning rate during ``epoch`` (0-based)."""
    if schedule == "halving":
        return 0.5 ** max(0, epoch - 1)
    if schedule == "constant":
        return 1.0
    if schedule == "cosine":
        return 0.5 * (1.0 + math.cos(math.pi * epoch / max_epochs))
    raise ValueError(f"unknown lr_schedule {schedule!r}; choose one of {LR_SCHEDULES}")


@torch.no_grad()
def evaluate_loss(network: nn.Module, windows: Windows, batch_size: int) -> float:
    """Global MSE over all windows (the protocol's metric, not a mean of per-batch means)."""
    was_training = network.training
    network.eval()
    acc = ErrorAccumulator()
    for batch in windows.batches(batch_size):
        acc.update(batch.y, network(batch.x, batch.x_mark, batch.y_mark))
    network.train(was_training)
    return acc.result()["mse"]


def train(network: nn.Module, train_windows: Windows, val_windows: Windows | None, config: TrainingConfig,
          generator: torch.Generator) -> TrainingResult:
    """Train ``network`` in place; on return it holds the weights of the best validation epoch."""
    if len(train_windows) == 0:
        raise ValueError("no training windows: the training data is shorter than lookback + output length")
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    result = TrainingResult()
    best_loss, best_state, bad_epochs = math.inf, None, 0
    n_batches = train_windows.n_batches(config.batch_size)
    total_steps = config.max_epochs * n_batches
    start = time.perf_counter()
    bar = progress_bar(total=config.max_epochs, desc=f"training {type(network).__name__}", unit="epoch",
               disable=config.verbose <= 0, leave=config.verbose > 1)
    for epoch in range(config.max_epochs):
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * lr_factor(config.lr_schedule, epoch, config.max_epochs)
        epoch_start = time.perf_counter()
        network.train()
        loss_sum, seen = torch.zeros((), dtype=torch.float64, device=next(network.parameters()).device), 0
        custom_loss = getattr(network, "training_loss", None)
        for step, batch in enumerate(train_windows.batches(config.batch_size, shuffle=True, generator=generator)):
            if custom_loss is not None:
                loss = custom_loss(batch.x, batch.x_mark, batch.y, batch.y_mark)
            else:
                loss = torch.nn.functional.mse_loss(network(batch.x, batch.x_mark, batch.y_mark), batch.y)
            fit_loss = loss.detach()  # no .item(): a device sync per step would stall GPU training
            penalty = getattr(network, "regularization", None)
            if penalty is not None:
                extra = penalty((epoch * n_batches + step) / total_steps)
                if extra is not None:
                    loss = loss + extra
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            loss_sum += fit_loss * len(batch.x)
            seen += len(batch.x)
        result.train_loss.append(float(loss_sum) / seen)
        result.epochs = epoch + 1
        val_start = time.perf_counter()
        if val_windows is not None and len(val_windows) > 0:
            val_loss = evaluate_loss(network, val_windows,
                                     config.eval_batch_size or default_eval_batch_size(val_windows.values.device))
            result.val_loss.append(val_loss)
            improved = val_loss < best_loss  # ties are no improvement, as in the reference EarlyStopping
        else:
            val_loss, improved = math.nan, True
        result.val_seconds.append(time.perf_counter() - val_start)
        result.epoch_seconds.append(time.perf_counter() - epoch_start)
        bar.set_postfix(train=f"{result.train_loss[-1]:.4f}", val=f"{val_loss:.4f}")
        bar.update(1)
        if improved:
            best_loss, bad_epochs, result.best_epoch = val_loss, 0, epoch + 1
            best_state = copy.deepcopy(network.state_dict())
        else:
            bad_epochs += 1
            if bad_epochs >= config.patience:
                break
    bar.close()
    if best_state is not None:
        network.load_state_dict(best_state)
    network.eval()
    result.seconds = time.perf_counter() - start
    return result
