"""The Forecaster's parameters, declared as scikit-learn constraints, and their check.

``PARAMETER_CONSTRAINTS`` is ``Forecaster._parameter_constraints``: scikit-learn's declarative
validation (``sklearn.utils._param_validation``), one list of accepted kinds per ``__init__``
parameter. :func:`validate_params` runs it at the start of ``fit`` and raises sklearn's
``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``) that names the parameter, what it
accepts and the value given, followed by a hint how to fix it where sklearn's wording alone is not
enough, e.g.::

    The 'random_state' parameter of Forecaster must be an int in the range [0, 4294967295] or None.
    Got 'abc' instead. Pass an int seed such as random_state=0 ...
"""
from __future__ import annotations

from numbers import Integral, Real

import numpy as np
import pandas as pd
from sklearn.utils._param_validation import (
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    validate_parameter_constraints,
)

from .data.panel import MISSING
from .data.timefeatures import feature_names
from .intervals import INTERVAL_METHODS
from .models.base import ModelSpec
from .models.registry import list_models
from .precision import PRECISIONS
from .training import LR_SCHEDULES


class _Interval(Interval):
    """sklearn's Interval, except that a bool is not a number here (True would pass as lookback=1)."""

    def is_satisfied_by(self, val):
        return not isinstance(val, (bool, np.bool_)) and super().is_satisfied_by(val)


class _Satisfies(Options):
    """A constraint given by a test and the words for it. sklearn's ``make_constraint`` takes only its
    own constraint classes, so this rides on ``Options`` (whose set of options it leaves empty)."""

    def __init__(self, test, description: str):
        super().__init__(object, set())
        self.test, self.description = test, description

    def is_satisfied_by(self, val):
        return bool(self.test(val))

    def __str__(self):
        return self.description


def _has_calendar_features(value) -> bool:
    if not isinstance(value, str) or value == "auto":
        return False
    try:
        feature_names(value)
    except ValueError:  # not a pandas frequency, or one without a calendar feature set
        return False
    return True


def _is_labels(value) -> bool:
    if isinstance(value, (str, int)) and not isinstance(value, bool):
        return True
    return isinstance(value, (list, tuple)) and all(isinstance(v, (str, int)) and not isinstance(v, bool) for v in value)


_POSITIVE_INT = _Interval(Integral, 1, None, closed="left")
_FREQ_EXAMPLES = "'h', '15min', 'D', 'B', 'W-SUN', 'MS', 'ME', 'QS', 'YS'"

PARAMETER_CONSTRAINTS: dict[str, list] = {
    "model": [
        _Satisfies(lambda v: isinstance(v, str), f"a registry name ({', '.join(list_models())})"),
        _Satisfies(lambda v: isinstance(v, ModelSpec), "a ModelSpec such as ARNet(ar_reg=1.0)"),
        _Satisfies(lambda v: isinstance(v, type) and issubclass(v, ModelSpec), "a ModelSpec subclass"),
    ],
    "lookback": [_POSITIVE_INT],
    "horizon": [_POSITIVE_INT],
    "max_epochs": [_POSITIVE_INT, None],
    "batch_size": [_POSITIVE_INT, None],
    "learning_rate": [_Interval(Real, 0, None, closed="neither"), None],
    "patience": [_POSITIVE_INT, None],
    "lr_schedule": [StrOptions(set(LR_SCHEDULES)), None],
    "validation_fraction": [_Interval(Real, 0, 1, closed="left")],
    # Whether a freq string is a pandas frequency that fits the timestamps is checked with the data.
    "freq": [str, _Satisfies(lambda v: isinstance(v, pd.offsets.BaseOffset), "a pandas offset such as pd.offsets.MonthEnd()"),
             None],
    "time_features": [
        StrOptions({"auto"}),
        _Satisfies(_has_calendar_features, f"a pandas frequency with calendar features (e.g. {_FREQ_EXAMPLES})"),
        None,
        Options(bool, {False}),
    ],
    "season_length": [_POSITIVE_INT, None],
    "interval_method": [StrOptions(set(INTERVAL_METHODS))],
    "id_col": [_Satisfies(lambda v: isinstance(v, (str, int)) and not isinstance(v, bool), "a column name")],
    "time_col": [_Satisfies(lambda v: isinstance(v, (str, int)) and not isinstance(v, bool), "a column name")],
    "target_cols": [_Satisfies(_is_labels, "a column name or a list of column names"), None],
    "future_covariates": [_Satisfies(_is_labels, "a column name or a list of column names"), None],
    "past_covariates": [_Satisfies(_is_labels, "a column name or a list of column names"), None],
    "missing": [StrOptions(set(MISSING))],
    # Only an int: fit seeds torch from it (int(random_state)); a numpy RandomState or Generator
    # would have to be consumed to draw a seed, so repeated fits would silently differ.
    "random_state": [_Interval(Integral, 0, 2**32 - 1, closed="both"), None],
    "device": [str],  # which names torch and this machine accept is checked by resolve_device
    "precision": [StrOptions(set(PRECISIONS))],
    "verbose": ["verbose"],
}

# Appended to sklearn's message: what to pass instead, where the constraint alone does not say it.
PARAMETER_HINTS = {
    "model": "Pass e.g. model='arnet' or model=ARNet(ar_reg=1.0) (tsforecast.list_models() lists the names).",
    "random_state": "Pass an int seed such as random_state=0, or None for a fresh seed per fit "
                    "(a numpy RandomState or Generator is not supported).",
    "freq": "Pass e.g. freq='h' or freq='MS', or None to infer the step from the timestamps.",
    "time_features": "Use time_features='auto' (from the data's step), a frequency such as 'h', or None for none.",
    "lr_schedule": "None takes the model family's default.",
    "precision": "precision='fp32' is the default; 'auto' takes bf16 autocast where the device has bf16 units "
                 "(CUDA, or a CPU with AMX or AVX512-BF16), 'bf16' forces it.",
    "missing": "missing='raise' rejects NaN values and gaps; missing='mask' leaves them out of every loss and metric.",
    "future_covariates": "Pass the column names, e.g. future_covariates=['price', 'holiday'].",
    "past_covariates": "Pass the column names, e.g. past_covariates=['visits'].",
}


def validate_params(estimator) -> None:
    """``estimator``'s params against its ``_parameter_constraints``; the first invalid one raises
    sklearn's ``InvalidParameterError`` with sklearn's message plus the hint above."""
    params = estimator.get_params(deep=False)
    caller = type(estimator).__name__
    for name, constraints in estimator._parameter_constraints.items():
        try:
            validate_parameter_constraints({name: constraints}, {name: params[name]}, caller_name=caller)
        except InvalidParameterError as err:
            hint = PARAMETER_HINTS.get(name)
            raise InvalidParameterError(f"{err} {hint}" if hint else str(err)) from None


def check_training_settings(settings: dict, source: str) -> None:
    """Training settings after merging a model family's defaults (``source`` says whose), against the
    Forecaster's constraints for them (where None, "use the default", is no longer a value)."""
    for name, value in settings.items():
        constraints = [c for c in PARAMETER_CONSTRAINTS[name] if c is not None]
        try:
            validate_parameter_constraints({name: constraints}, {name: value}, caller_name=source)
        except InvalidParameterError as err:
            raise InvalidParameterError(str(err)) from None
