"""LLM reprogramming: the frozen LLM backbone and its cached textual-timestamp embeddings."""
from .backbone import (ABLATIONS, DEFAULT_LLM, Backbone, BackboneError, BackboneMismatchError, check_backbone,
                       load_backbone, parameter_counts)

__all__ = ["ABLATIONS", "DEFAULT_LLM", "Backbone", "BackboneError", "BackboneMismatchError", "check_backbone",
           "load_backbone", "parameter_counts"]
