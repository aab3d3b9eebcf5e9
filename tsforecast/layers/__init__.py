"""Shared network blocks that models compose."""
from .autoregressive import ChannelwiseLinear, ChannelwiseMLP, lag_matrix
from .instance_norm import InstanceNorm
from .companion_ssm import ClosedLoopCompanionSSM, CompanionSSM, PreprocessingSSM
from .mamba import BidirectionalMambaLayer, MambaMixer, selective_scan

__all__ = ["ChannelwiseLinear", "ChannelwiseMLP", "InstanceNorm", "lag_matrix",
           "BidirectionalMambaLayer", "ClosedLoopCompanionSSM", "CompanionSSM", "MambaMixer", "PreprocessingSSM",
           "selective_scan"]
