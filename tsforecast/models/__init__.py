"""Model families: one file per network with its hyperparameter spec; ``registry`` maps names to specs."""
from .ar import AR
from .arnet import ARNet
from .autotimes import AutoTimes
from .base import Dims, ModelSpec
from .naive import Naive
from .timellm import TimeLLM
from .registry import MODELS, get_model_class, list_models, resolve_model

__all__ = ["AR", "ARNet", "AutoTimes", "Dims", "MODELS", "ModelSpec", "Naive", "TimeLLM", "get_model_class", "list_models", "resolve_model"]
