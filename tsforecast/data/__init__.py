"""Data: bundled datasets, protocol splits, index-based windows, scaling and calendar features."""
from .datasets import DATASETS, list_datasets, load_dataset, published_results
from .splits import Split, protocol_split, split_borders
from .timefeatures import time_features
from .windows import Windows

__all__ = [
    "DATASETS",
    "Split",
    "Windows",
    "list_datasets",
    "load_dataset",
    "protocol_split",
    "published_results",
    "split_borders",
    "time_features",
]
