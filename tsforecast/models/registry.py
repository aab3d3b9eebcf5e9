"""Model names -> spec classes. Adding a model: one file in this folder plus one line below."""
from __future__ import annotations

from .ar import AR
from .arnet import ARNet
from .autoformer import Autoformer
from .autotimes import AutoTimes
from .base import ModelSpec
from .informer import Informer
from .itransformer import ITransformer
from .naive import Naive
from .seasonal_naive import SeasonalNaive
from .smamba import SMamba
from .spacetime import SpaceTime
from .timellm import TimeLLM

MODELS: dict[str, type[ModelSpec]] = {
    "naive": Naive,
    "snaive": SeasonalNaive,
    "ar": AR,
    "arnet": ARNet,
    "itransformer": ITransformer,
    "autoformer": Autoformer,
    "informer": Informer,
    "smamba": SMamba,
    "spacetime": SpaceTime,
    "autotimes": AutoTimes,
    "timellm": TimeLLM,
}


def list_models() -> list[str]:
    return sorted(MODELS)


def get_model_class(name: str) -> type[ModelSpec]:
    key = str(name).lower()
    if key not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(list_models())}")
    return MODELS[key]


def build_spec(name: str, params: dict | None = None) -> ModelSpec:
    """The spec of registry model ``name`` with ``params``; unknown params name the valid ones."""
    spec_class = get_model_class(name)
    params = dict(params or {})
    valid = spec_class._get_param_names()
    unknown = sorted(set(params) - set(valid))
    if unknown:
        raise ValueError(f"model {spec_class.name!r} has no parameter(s) {unknown}; its parameters are {valid or 'none'}")
    return spec_class(**params)


def resolve_model(model) -> ModelSpec:
    """A registry name, a spec class or a spec instance -> a spec instance (instances are not copied)."""
    if isinstance(model, str):
        return get_model_class(model)()
    if isinstance(model, type) and issubclass(model, ModelSpec):
        return model()
    if isinstance(model, ModelSpec):
        return model
    raise TypeError(
        f"model must be a registry name ({', '.join(list_models())}) or a ModelSpec such as ARNet(ar_reg=1.0), "
        f"got {type(model).__name__}"
    )
