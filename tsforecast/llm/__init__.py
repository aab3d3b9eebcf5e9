"""LLM reprogramming: the frozen LLM backbone and its cached textual-timestamp embeddings."""
from .backbone import DEFAULT_LLM, Backbone, BackboneError, load_backbone

__all__ = ["DEFAULT_LLM", "Backbone", "BackboneError", "load_backbone"]
