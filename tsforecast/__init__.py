"""tsforecast: long-horizon time series forecasting behind one sklearn-style API."""
from .data import list_datasets, load_dataset, protocol_split, published_results
from .forecaster import Forecaster
from .models import AR, ARNet, ModelSpec, Naive, SMamba, SpaceTime, list_models

__version__ = "0.1.0"

__all__ = [
    "AR",
    "ARNet",
    "Forecaster",
    "ModelSpec",
    "Naive",
    "SMamba",
    "SpaceTime",
    "__version__",
    "list_datasets",
    "list_models",
    "load_dataset",
    "protocol_split",
    "published_results",
]
