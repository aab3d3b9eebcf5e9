"""Textual timestamps embedded by the LLM (AutoTimes' position embeddings), cached on disk.

Each time step ``t`` becomes the text ``"This is Time Series from {t} to {t + (token_len - 1) * freq}"``
(pandas' ``YYYY-MM-DD HH:MM:SS``), run through the frozen LLM body; the last token's final hidden
state is its embedding. The texts depend only on the timestamps, so embeddings are stored per
timestamp in one file per (LLM, layers, template, token length, step) under the user cache
(:func:`timestamp_cache_dir`): a dataset is embedded once, later fits
and forecasts only embed timestamps never seen before (e.g. the future steps of a new forecast).
"""
from __future__ import annotations

import hashlib
import json
import os
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file, save_file
from torch import nn

from ..precision import llm_precision
from .backbone import adapters_disabled, cache_dir, llm_autocast

TEMPLATE = "This is Time Series from {start} to {end}"
#: how many texts were embedded by the LLM and how many cache files were read, in this process
stats = {"embedded": 0, "files_read": 0}
_memory: dict[str, tuple[np.ndarray, torch.Tensor]] = {}


def timestamp_texts(index: pd.DatetimeIndex, freq: str, token_len: int, template: str = TEMPLATE) -> list[str]:
    ends = index + (token_len - 1) * pd.tseries.frequencies.to_offset(freq)
    return [template.format(start=str(s), end=str(e)) for s, e in zip(index, ends)]


def timestamp_cache_dir() -> Path:
    """``$TSFORECAST_TIMESTAMP_CACHE_DIR``, else ``timestamps/`` in the tsforecast user cache."""
    return Path(os.environ.get("TSFORECAST_TIMESTAMP_CACHE_DIR") or cache_dir() / "timestamps")


def _cache_file(key: dict) -> Path:
    digest = hashlib.sha1(json.dumps(key, sort_keys=True).encode()).hexdigest()[:16]
    return timestamp_cache_dir() / f"{digest}.safetensors"


def _load(path: Path, key: str) -> tuple[np.ndarray, torch.Tensor]:
    if key in _memory:
        return _memory[key]
    if path.is_file():
        try:
            tensors = load_file(str(path))
            entry = (tensors["stamps"].numpy(), tensors["embeddings"])
            stats["files_read"] += 1
        except Exception:  # noqa: BLE001 - a corrupt cache is rebuilt, never trusted
            entry = (np.zeros(0, dtype=np.int64), None)
    else:
        entry = (np.zeros(0, dtype=np.int64), None)
    _memory[key] = entry
    return entry


def _save(path: Path, stamps: np.ndarray, embeddings: torch.Tensor) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    os.close(fd)
    try:
        save_file({"stamps": torch.from_numpy(stamps), "embeddings": embeddings.contiguous()}, tmp)
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


@torch.no_grad()
def _embed_texts(body: nn.Module, tokenizer, texts: list[str], device: torch.device, llm_dtype: str,
                 batch_size: int, progress: bool) -> torch.Tensor:
    from ..training import progress_bar

    tokenizer.padding_side = "right"
    out = []
    bar = progress_bar(total=len(texts), desc="embedding textual timestamps", unit="text", disable=not progress)
    with adapters_disabled(body):
        for begin in range(0, len(texts), batch_size):
            batch = tokenizer(texts[begin:begin + batch_size], return_tensors="pt", padding=True)
            ids, mask = batch["input_ids"].to(device), batch["attention_mask"].to(device)
            with llm_autocast(device, llm_dtype):
                hidden = body(input_ids=ids, attention_mask=mask).last_hidden_state
            last = mask.sum(dim=1) - 1  # right padding: the last real token of each text
            out.append(hidden[torch.arange(len(ids), device=device), last].float().cpu())
            bar.update(len(ids))
    bar.close()
    stats["embedded"] += len(texts)
    return torch.cat(out)


def embed_timestamps(body: nn.Module, tokenizer, llm_reference: dict, index: pd.DatetimeIndex, freq: str,
                     token_len: int, template: str = TEMPLATE, device: torch.device | str = "cpu",
                     llm_dtype: str = "auto", batch_size: int = 512, progress: bool | None = None) -> torch.Tensor:
    """``(len(index), hidden)`` float32 embeddings on ``device``, from the cache where possible.

    ``progress`` (default: when more than 1000 texts are new) shows a bar while embedding.
    """
    device = torch.device(device)
    key = {"llm": llm_reference, "template": template, "token_len": int(token_len),
           "freq": pd.tseries.frequencies.to_offset(freq).freqstr, "precision": llm_precision(device, llm_dtype)}
    path = _cache_file(key)
    memory_key = str(path)
    stamps, embeddings = _load(path, memory_key)
    wanted = np.asarray(index.as_unit("ns").asi8, dtype=np.int64)
    unique = np.unique(wanted)
    missing = unique[~np.isin(unique, stamps)]
    if len(missing):
        texts = timestamp_texts(pd.DatetimeIndex(missing.astype("datetime64[ns]")), freq, token_len, template)
        new = _embed_texts(body, tokenizer, texts, device, llm_dtype, batch_size,
                           len(texts) > 1000 if progress is None else progress)
        stamps = np.concatenate([stamps, missing])
        embeddings = new if embeddings is None else torch.cat([embeddings, new])
        order = np.argsort(stamps, kind="stable")
        stamps, embeddings = stamps[order], embeddings[torch.from_numpy(order)]
        _memory[memory_key] = (stamps, embeddings)
        _save(path, stamps, embeddings)
    positions = torch.from_numpy(np.searchsorted(stamps, wanted))
    return embeddings[positions].to(device)
