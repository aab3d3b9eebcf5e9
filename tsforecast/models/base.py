"""The one contract every model family follows.

A model is two small pieces in one file:

* a **spec** (subclass of :class:`ModelSpec`): an sklearn estimator holding only the family's
  hyperparameters, so ``Forecaster(model=Spec(...))`` exposes them as nested params
  (``model__d_model``) to ``get_params``, ``clone`` and ``GridSearchCV``;
* a **network** (``torch.nn.Module``) built by ``spec.build(dims)`` with the uniform signature::

      forward(x, x_mark, y_mark) -> (B, output_len, C)

  ``x`` is the scaled look-back window ``(B, lookback, C)``; ``x_mark``/``y_mark`` are the calendar
  features of the look-back and of the ``output_len`` steps to forecast (``None`` when the spec says
  ``uses_time_features = False`` and there are no future covariates). ``output_len`` is an attribute of
  the network: how many steps one call produces. Longer horizons go through
  :func:`tsforecast.rollout.autoregressive_forecast`. The output has ``dims.targets`` channels, or
  ``n_channels`` (the past-covariate channels are then dropped by the shared code).

Covariates (``Forecaster(future_covariates=..., past_covariates=...)``) reach every network one way:
past covariates are the last ``dims.n_past_covariates`` channels of ``x``; future-known covariates are
the last ``dims.n_future_covariates`` columns of ``x_mark``/``y_mark`` (after any calendar features).
A family declares what it uses (``supports_future_covariates``, ``supports_past_covariates``); a role
it does not support is an error at fit, never silently ignored.

Optional network methods the shared machinery uses when present:

* ``regularization(progress) -> Tensor``: a penalty added to the training loss (``progress`` is the
  fraction of training done, for warm-ups);
* ``coefficients() -> (coef (C, order), intercept (C,))``: linear AR weights on the scaled data;
* ``training_loss(x, x_mark, y, y_mark, observed=None) -> Tensor``: the training objective, replacing
  the default MSE of ``forward`` against ``y`` (e.g. next-token loss on every position); validation and
  test always score ``forward``'s forecast by MSE, so every model is judged alike. ``observed`` is None
  when every value is observed, else a bool tensor ``(B, lookback + output_len, targets)`` over
  ``cat(x[..., :targets], y)``: the loss must average over observed positions only (``Forecaster(missing="mask")``;
  missing look-back values arrive filled by the shared rule, :mod:`tsforecast.data.panel`);
* ``rollout(x, x_mark, future_mark, horizon) -> (B, horizon, C)``: the network's own multi-step
  forecast (e.g. a KV-cached decoder), used instead of the shared sliding-window rollout;
* ``time_marks(index, freq) -> Tensor (T, F)``: the per-step marks the network receives as
  ``x_mark``/``y_mark`` for a DatetimeIndex (``freq`` is the data's step), instead of the calendar
  features (e.g. LLM-embedded textual timestamps);
* ``train_stride`` (int attribute): use every ``train_stride``-th training window only (a budget knob);
* ``trainable_state_dict() -> dict``: the weights to save; the others (a frozen pretrained LLM) are
  rebuilt by ``spec.build`` from the spec's reference to them, so a saved model stays small.

Everything else (windows, scaling, the training loop, rollout, persistence) is shared.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from sklearn.base import BaseEstimator
from torch import nn


@dataclass(frozen=True)
class Dims:
    """What a network needs to know about the data and task to build itself."""

    n_channels: int
    lookback: int
    horizon: int
    n_time_features: int
    #: the data's seasonal period in steps (the Forecaster's ``season_length``, else from the data's step)
    season_length: int = 1
    #: how many of the ``n_channels`` input channels are forecast targets (the first ones; None: all).
    #: The others are past covariates (:attr:`ModelSpec.supports_past_covariates`): observed in the
    #: look-back, never forecast or scored; a network may output them, the shared code ignores them.
    n_targets: int | None = None
    #: how many of the ``n_time_features`` mark columns are future-known covariates (the LAST ones,
    #: scaled per series like the targets): ``x_mark`` holds their look-back values and ``y_mark`` their
    #: values at the forecast steps (:attr:`ModelSpec.supports_future_covariates`)
    n_future_covariates: int = 0

    @property
    def targets(self) -> int:
        """Number of forecast channels (``n_targets``, else ``n_channels``)."""
        return self.n_channels if self.n_targets is None else self.n_targets

    @property
    def n_past_covariates(self) -> int:
        return self.n_channels - self.targets


class ModelSpec(BaseEstimator):
    """Base class of the hyperparameter objects of every model family."""

    #: registry name (``Forecaster(model="...")``)
    name: ClassVar[str] = ""
    #: model name in ``published_results.csv``, for the benchmark report (None: not published)
    published_name: ClassVar[str | None] = None
    #: whether the network reads ``x_mark``/``y_mark``
    uses_time_features: ClassVar[bool] = False
    #: "gradient" (the shared training loop), "closed_form" (``fit_closed_form``) or "none"
    fit_mode: ClassVar[str] = "gradient"
    #: this family's training settings (reference scripts), used where the Forecaster's are None
    training_defaults: ClassVar[dict] = {}
    #: training does not depend on the horizon (fixed output_len, rollout for any horizon): a
    #: benchmark sweep fits one model per dataset and scores it at every horizon
    one_model_for_all_horizons: ClassVar[bool] = False
    #: the network uses future-known covariates (the last ``dims.n_future_covariates`` mark columns,
    #: over the look-back and the forecast steps); False: ``future_covariates`` is an error at fit
    supports_future_covariates: ClassVar[bool] = False
    #: the network mixes channels, so past covariates given as extra input channels inform the targets'
    #: forecasts; False (channel-independent networks): ``past_covariates`` is an error at fit
    supports_past_covariates: ClassVar[bool] = False

    def build(self, dims: Dims) -> nn.Module:
        raise NotImplementedError

    def fit_closed_form(self, network: nn.Module, train_values: list[np.ndarray],
                        future_covariates: list[np.ndarray] | None = None) -> None:
        """Set the network's weights from the scaled training series (fit_mode "closed_form"): one
        ``(T_i, n_channels)`` array per series of a panel (a wide frame is one series; NaN marks a missing
        value, ``Forecaster(missing="mask")``), and with future covariates one ``(T_i, n_future_covariates)``
        array per series on the same rows. One global model is fitted on every series' rows."""
        raise NotImplementedError(f"{type(self).__name__} has no closed-form fit")

    def check(self, dims: Dims) -> None:
        """Raise ValueError for hyperparameters that cannot work with these dims (before any training)."""

    @classmethod
    def reference_config(cls, dataset: str, horizon: int) -> dict:
        """The reference scripts' settings for a benchmark dataset and horizon, as
        ``{"params": {...model hyperparameters}, "training": {...Forecaster training settings}}``.

        ``tsforecast bench`` applies them under whatever the user sets explicitly; the Forecaster's
        own defaults are unaffected. Families whose reference scripts vary per dataset override this.
        """
        return {"params": {}, "training": {}}

    @classmethod
    def test_params(cls) -> dict:
        """A tiny configuration for fast tests (:func:`tsforecast.testing.check_forecaster`)."""
        return {}


def check_encoder_decoder(spec: ModelSpec, dims: Dims) -> None:
    """Checks shared by the encoder-decoder forecasters (Informer, Autoformer)."""
    name = spec.name
    if not 0 <= spec.label_len <= dims.lookback:
        raise ValueError(f"{name}: label_len={spec.label_len} must be between 0 and lookback={dims.lookback} "
                         "(the decoder's start token is the end of the look-back window)")
    if spec.d_model % spec.n_heads:
        raise ValueError(f"{name}: d_model={spec.d_model} is not divisible by n_heads={spec.n_heads}")
    for key in ("e_layers", "d_layers", "factor"):
        if getattr(spec, key) < 1:
            raise ValueError(f"{name}: {key} must be >= 1, got {getattr(spec, key)}")
