"""The one training loop every gradient-trained model uses.

Adam on the MSE of the network's ``output_len``-step forecast, an epoch-wise learning-rate schedule,
early stopping on the validation MSE with the best weights restored (a tie with the best so far counts
as an improvement, as in the reference; only what training changes is copied, :func:`restorable_state`),
one quiet-able tqdm bar.

Short series: every epoch gets at least ``MIN_STEPS_PER_EPOCH`` (16) optimizer steps. The default
settings (LTSF reference, family ``training_defaults``) were set on data of thousands of windows, where
a batch is a small share of an epoch; on a few hundred rows a batch of 32 or 512 would be the whole
epoch and training would stop after ``max_epochs`` steps, far from the optimum (AR-Net on 171
quarterly windows at batch 512: one step per epoch, AR coefficients summing to 0.47 where least
squares gives 1.00). Since the learning-rate schedules and patience count epochs, the invariant kept
is the number of updates per epoch: a batch size that came from the defaults (``cap_batch``) is
lowered to ``max(1, windows // 16)``, so an epoch has at least 16 steps (all windows one by one when
there are fewer than 16). 16 is the fewest steps per epoch any family default was validated with
(AR-Net on ETTh1: 8,544 windows / 512 = 17 batches), so the cap never binds on the benchmark data: it
binds below 16 x batch windows (8,192 at batch 512, 512 at 32), and the smallest benchmark training
split has 7,825 windows at batch 32 (ETTh1, horizon 720), 8,544 at AR-Net's 512. An explicit ``batch_size`` is kept as given, with a warning when it leaves fewer steps.
:class:`TrainingResult` records the batch size and steps actually used.
"""
from __future__ import annotations

import math
import time
import warnings
from dataclasses import dataclass, field

import torch
from torch import nn

from .data.windows import Batch, Windows
from .losses import masked_mse
from .metrics import ErrorAccumulator
from .precision import autocast, precision_label

LR_SCHEDULES = ("halving", "constant", "cosine")

#: the fewest optimizer steps per epoch a default batch size may give (see the module docstring)
MIN_STEPS_PER_EPOCH = 16


def progress_bar(**kwargs):
    """tqdm's notebook-or-terminal bar, imported only when shown (importing tqdm.auto in a notebook
    without ipywidgets warns, which a silent fit should not do)."""
    if kwargs.get("disable"):
        from tqdm import tqdm
    else:
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
    #: ``batch_size`` came from the defaults and may be lowered so an epoch has at least
    #: ``MIN_STEPS_PER_EPOCH`` steps; False: an explicit batch size, kept (with a warning when it gives fewer)
    cap_batch: bool = False
    #: compute precision of the forward passes (:mod:`tsforecast.precision`): "fp32", "bf16" (autocast;
    #: parameters, gradients and losses stay fp32) or "auto" (bf16 where the device has bf16 units)
    precision: str = "fp32"


@dataclass
class TrainingResult:
    #: the settings actually used: training windows, batch size (after the short-series cap),
    #: optimizer steps per epoch and in all
    n_windows: int = 0
    batch_size: int = 0
    steps_per_epoch: int = 0
    steps: int = 0
    epochs: int = 0
    best_epoch: int = 0
    train_loss: list[float] = field(default_factory=list)
    val_loss: list[float] = field(default_factory=list)
    #: wall time of each epoch: its training steps plus its validation pass
    epoch_seconds: list[float] = field(default_factory=list)
    #: the validation pass's share of each epoch
    val_seconds: list[float] = field(default_factory=list)
    seconds: float = 0.0
    #: the precision actually used: "fp32" or "bf16", with the LLM's own when it differs ("fp32+llm-bf16";
    #: :func:`tsforecast.precision.precision_label`)
    precision: str = "fp32"


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


def effective_batch_size(batch_size: int, n_windows: int, cap: bool) -> int:
    """The batch size training uses on ``n_windows`` windows: at most ``n_windows // 16`` (at least 1)
    when ``cap`` (a default batch size), else ``batch_size`` (warning when an epoch then has < 16 steps)."""
    capped = max(1, n_windows // MIN_STEPS_PER_EPOCH)
    if cap:
        return min(batch_size, capped)
    steps = math.ceil(n_windows / batch_size)
    if steps < MIN_STEPS_PER_EPOCH and batch_size > capped:
        warnings.warn(f"batch_size={batch_size} gives {steps} optimizer step(s) per epoch on {n_windows} training "
                      f"windows, which may stop training far from the optimum; batch_size={capped} gives "
                      f"{math.ceil(n_windows / capped)} (batch_size=None caps the default batch likewise)",
                      UserWarning, stacklevel=4)
    return batch_size


def restorable_state(network: nn.Module) -> dict[str, torch.Tensor]:
    """A copy of what training can change in ``network``, to restore the best epoch: its
    ``trainable_state_dict()`` when it has one (the LLM models: their adapters and heads), else every
    parameter that requires a gradient and every buffer (running statistics). Frozen parameters are
    never updated, so they are not copied: for AutoTimes on the default LLM that was the whole
    SmolLM2 body, 540 MB per improvement (tests/test_llm_ablations.py computes the bytes)."""
    trainable = getattr(network, "trainable_state_dict", None)
    if trainable is not None:
        state = trainable()
    else:
        frozen = {name for name, p in network.named_parameters(remove_duplicate=False) if not p.requires_grad}
        state = {k: v for k, v in network.state_dict().items() if k not in frozen}
    return {k: v.detach().clone() for k, v in state.items()}


def target_forecast(network: nn.Module, batch: Batch) -> torch.Tensor:
    """The network's forecast of the batch's targets (the first channels: a network may also output its
    past-covariate channels, which are never scored)."""
    forecast = network(batch.x, batch.x_mark, batch.y_mark).float()  # a bf16 autocast output, scored in fp32
    return forecast if forecast.shape[-1] == batch.y.shape[-1] else forecast[..., :batch.y.shape[-1]]


def batch_loss(network: nn.Module, batch: Batch) -> torch.Tensor:
    """The training objective on one batch: the network's ``training_loss`` when it has one, else the MSE
    of its forecast; over observed targets only (``batch.y_observed``; None: all observed)."""
    custom_loss = getattr(network, "training_loss", None)
    if custom_loss is not None:
        if batch.y_observed is None:
            return custom_loss(batch.x, batch.x_mark, batch.y, batch.y_mark)
        observed = torch.cat([batch.x_observed, batch.y_observed], dim=1)
        return custom_loss(batch.x, batch.x_mark, batch.y, batch.y_mark, observed=observed)
    return masked_mse(target_forecast(network, batch), batch.y, batch.y_observed)


@torch.no_grad()
def evaluate_loss(network: nn.Module, windows: Windows, batch_size: int, precision: str = "fp32") -> float:
    """Global MSE over all windows' observed targets (the protocol's metric, not a mean of per-batch means)."""
    was_training = network.training
    network.eval()
    acc = ErrorAccumulator()
    for batch in windows.batches(batch_size):
        with autocast(batch.x.device, precision):
            forecast = target_forecast(network, batch)
        acc.update(batch.y, forecast, mask=batch.y_observed)
    network.train(was_training)
    return acc.result()["mse"]


def train(network: nn.Module, train_windows: Windows, val_windows: Windows | None, config: TrainingConfig,
          generator: torch.Generator) -> TrainingResult:
    """Train ``network`` in place; on return it holds the weights of the best validation epoch."""
    if len(train_windows) == 0:
        raise ValueError("no training windows: the training data is shorter than lookback + output length")
    optimizer = torch.optim.Adam(network.parameters(), lr=config.learning_rate)
    batch_size = effective_batch_size(config.batch_size, len(train_windows), config.cap_batch)
    n_batches = train_windows.n_batches(batch_size)
    device = next(network.parameters()).device
    result = TrainingResult(n_windows=len(train_windows), batch_size=batch_size, steps_per_epoch=n_batches,
                            precision=precision_label(network, device, config.precision))
    best_loss, best_state, bad_epochs = math.inf, None, 0
    total_steps = config.max_epochs * n_batches
    start = time.perf_counter()
    bar = progress_bar(total=config.max_epochs, desc=f"training {type(network).__name__}", unit="epoch",
               disable=config.verbose <= 0, leave=config.verbose > 1)
    for epoch in range(config.max_epochs):
        for group in optimizer.param_groups:
            group["lr"] = config.learning_rate * lr_factor(config.lr_schedule, epoch, config.max_epochs)
        epoch_start = time.perf_counter()
        network.train()
        loss_sum, seen = torch.zeros((), dtype=torch.float64, device=device), 0
        for step, batch in enumerate(train_windows.batches(batch_size, shuffle=True, generator=generator)):
            with autocast(device, config.precision):  # the forward pass only; backward follows its dtypes
                loss = batch_loss(network, batch)
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
        result.steps += step + 1
        result.train_loss.append(float(loss_sum) / seen)
        result.epochs = epoch + 1
        val_start = time.perf_counter()
        if val_windows is not None and len(val_windows) > 0:
            val_loss = evaluate_loss(network, val_windows,
                                     config.eval_batch_size or default_eval_batch_size(val_windows.values.device),
                                     config.precision)
            result.val_loss.append(val_loss)
            # A tie counts as an improvement (weights saved, patience reset), as in Time-Series-Library's
            # EarlyStopping: it counts a bad epoch only when -val_loss < -best_loss + delta (delta 0).
            # A NaN loss is a bad epoch here (the reference would save the NaN weights).
            improved = val_loss <= best_loss
        else:
            val_loss, improved = math.nan, True
        result.val_seconds.append(time.perf_counter() - val_start)
        result.epoch_seconds.append(time.perf_counter() - epoch_start)
        bar.set_postfix(train=f"{result.train_loss[-1]:.4f}", val=f"{val_loss:.4f}")
        bar.update(1)
        if improved:
            best_loss, bad_epochs, result.best_epoch = val_loss, 0, epoch + 1
            best_state = restorable_state(network)
        else:
            bad_epochs += 1
            if bad_epochs >= config.patience:
                break
    bar.close()
    if best_state is not None:
        network.load_state_dict(best_state, strict=False)  # the frozen rest was never changed
    network.eval()
    result.seconds = time.perf_counter() - start
    return result
