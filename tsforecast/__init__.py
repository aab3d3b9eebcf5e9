"""tsforecast: long-horizon time series forecasting behind one sklearn-style API."""
from .data import list_datasets, load_dataset, protocol_split, published_results
from .forecaster import Forecaster
from .models import (AR, ARNet, Autoformer, AutoTimes, Informer, ITransformer, ModelSpec, Naive, SeasonalNaive, SMamba,
                     SpaceTime, TimeLLM, list_models)
from .plotting import plot_forecast
# the function shadows the module's name on the package: import the module's contents with
# `from tsforecast.pretrained import ...`
from .pretrained import PretrainedForecaster, list_pretrained, pretrained

__version__ = "0.1.0"

__all__ = [
    "AR",
    "ARNet",
    "AutoTimes",
    "Autoformer",
    "Forecaster",
    "ITransformer",
    "Informer",
    "ModelSpec",
    "Naive",
    "PretrainedForecaster",
    "SMamba",
    "SeasonalNaive",
    "SpaceTime",
    "TimeLLM",
    "__version__",
    "list_datasets",
    "list_models",
    "list_pretrained",
    "load_dataset",
    "plot_forecast",
    "pretrained",
    "protocol_split",
    "published_results",
]
