"""Shared network blocks that models compose."""
from .autoregressive import ChannelwiseLinear, ChannelwiseMLP, lag_matrix
from .instance_norm import InstanceNorm

__all__ = ["ChannelwiseLinear", "ChannelwiseMLP", "InstanceNorm", "lag_matrix"]
