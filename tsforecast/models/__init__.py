"""Model families: one file per network with its hyperparameter spec; ``registry`` maps names to specs."""
from .ar import AR
from .arnet import ARNet
from .autoformer import Autoformer
from .autotimes import AutoTimes
from .base import Dims, ModelSpec
from .informer import Informer
from .itransformer import ITransformer
from .naive import Naive
from .seasonal_naive import SeasonalNaive
from .smamba import SMamba
from .spacetime import SpaceTime
from .timellm import TimeLLM
from .registry import MODELS, get_model_class, list_models, resolve_model

__all__ = ["AR", "ARNet", "AutoTimes", "Autoformer", "Dims", "ITransformer", "Informer", "MODELS", "ModelSpec", "Naive",
           "SMamba", "SeasonalNaive", "SpaceTime", "TimeLLM", "get_model_class", "list_models", "resolve_model"]
