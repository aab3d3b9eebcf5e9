"""Shared network blocks that models compose."""
from .attention import AttentionLayer, FullAttention, ProbSparseAttention
from .autocorrelation import AutoCorrelation
from .autoregressive import ChannelwiseLinear, ChannelwiseMLP, lag_matrix
from .companion_ssm import ClosedLoopCompanionSSM, CompanionSSM, PreprocessingSSM
from .decomposition import MovingAverage, SeasonalLayerNorm, SeriesDecomposition
from .embedding import DataEmbedding, InvertedEmbedding
from .encoder import Decoder, DecoderLayer, Encoder, EncoderLayer
from .instance_norm import InstanceNorm
from .mamba import BidirectionalMambaLayer, MambaMixer, selective_scan

__all__ = ["AttentionLayer", "AutoCorrelation", "BidirectionalMambaLayer", "ChannelwiseLinear", "ChannelwiseMLP",
           "ClosedLoopCompanionSSM", "CompanionSSM", "DataEmbedding", "Decoder", "DecoderLayer", "Encoder", "EncoderLayer",
           "FullAttention", "InstanceNorm", "InvertedEmbedding", "MambaMixer", "MovingAverage", "PreprocessingSSM",
           "ProbSparseAttention", "SeasonalLayerNorm", "SeriesDecomposition", "lag_matrix", "selective_scan"]
