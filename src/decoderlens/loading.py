"""Loading a model and its tokenizer or processor by Hub name or local folder, refusing unsupported or broken
ones early with a message that says what to do."""

from __future__ import annotations

import difflib
import re
from pathlib import Path
from typing import Any

import torch
from transformers import (
    AutoConfig,
    AutoModelForImageTextToText,
    AutoModelForSeq2SeqLM,
    AutoModelForSpeechSeq2Seq,
    AutoProcessor,
    AutoTokenizer,
    PreTrainedModel,
)

from decoderlens.architectures import decoder_config, resolve_architecture
from decoderlens.errors import InputError
from decoderlens.hub import hub_options, offline_hint
from decoderlens.inputs import get_tokenizer
from decoderlens.settings import check_choice, check_device
from decoderlens.shipped import resolve_model_name

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "float16": torch.float16, "fp16": torch.float16,
          "bfloat16": torch.bfloat16, "bf16": torch.bfloat16}
AUTO_CLASSES = {"text": AutoModelForSeq2SeqLM, "speech": AutoModelForSpeechSeq2Seq,
                "vision": AutoModelForImageTextToText}
HUB_NAME = re.compile(r"^[A-Za-z0-9][\w.-]*(/[\w.-]+)?$")
TOKENIZER_FILES = ("tokenizer.json", "tokenizer_config.json", "vocab.json", "vocab.txt", "spiece.model",
                   "sentencepiece.bpe.model", "source.spm", "merges.txt", "vocab-src.json")


def resolve_device(device: str) -> torch.device:
    """``auto`` picks CUDA when available, else CPU."""
    check_device(device)
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device.startswith("cuda") and not torch.cuda.is_available():
        raise InputError("device 'cuda' was requested but no CUDA GPU is available: use --device cpu")
    if device == "mps" and not torch.backends.mps.is_available():
        raise InputError("device 'mps' was requested but this machine has no Apple GPU: use --device cpu")
    return torch.device(device)


def resolve_dtype(dtype: str, device: torch.device) -> torch.dtype:
    """``auto`` is float32 on CPU and bfloat16 on GPUs that support it."""
    if dtype == "auto":
        if device.type == "cuda" and torch.cuda.is_bf16_supported():
            return torch.bfloat16
        return torch.float32
    check_choice("dtype", dtype, ("auto", *DTYPES))
    return DTYPES[dtype]


def local_folder(name_or_path: str) -> Path | None:
    """The local model folder ``name_or_path`` names (checked), or ``None`` for a Hub name.

    A path that cannot be a Hub name (``./x``, ``/x``, ``a/b/c``) or whose parent folder exists here is local:
    if it is missing, that is said at once instead of asking the Hub.
    """
    path = Path(name_or_path).expanduser()
    if path.exists():
        if not path.is_dir():
            raise InputError(f"{name_or_path} is a file, not a model folder: give the folder that holds config.json")
        if not (path / "config.json").is_file():
            raise InputError(f"folder {name_or_path} has no config.json: give a folder written by save_pretrained "
                             "(config.json, the weights and the tokenizer files)")
        return path
    parent = path.parent
    if not HUB_NAME.match(name_or_path) or ".." in name_or_path or (str(parent) != "." and parent.is_dir()):
        raise InputError(f"no such folder: {name_or_path}" + _did_you_mean(path))
    near = _did_you_mean(path)
    if near:
        raise InputError(f"no such folder: {name_or_path}{near} (Hub names look like org/name)")
    return None


def _did_you_mean(path: Path) -> str:
    folder = path.parent if path.parent.is_dir() else None
    if folder is None:
        return ""
    names = [p.name for p in folder.iterdir() if p.is_dir() and (p / "config.json").is_file()]
    match = difflib.get_close_matches(path.name, names, n=1, cutoff=0.8)
    return f"; did you mean {folder / match[0]}?" if match else ""


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return text.splitlines()[0] if text else type(err).__name__


def load_model_and_processor(
    name_or_path: str, *, device: str = "auto", dtype: str = "auto", device_map: str | dict[str, Any] | None = None,
    **kwargs: Any,
) -> tuple[PreTrainedModel, Any]:
    """Load the model (in eval mode, on ``device``) and its tokenizer or processor.

    ``device_map`` (e.g. ``"auto"``) spreads a model too large for one GPU over all visible GPUs (and CPU
    memory) through accelerate, in place of ``device``. A shipped model's short name (``logic``) is accepted.
    """
    name_or_path = resolve_model_name(name_or_path)
    folder = local_folder(name_or_path)
    torch_device = resolve_device(device)
    torch_dtype = resolve_dtype(dtype, torch_device)
    if folder is None:
        kwargs = {**hub_options(name_or_path), **kwargs}
    try:
        config = AutoConfig.from_pretrained(name_or_path, **kwargs)
    except (OSError, ValueError, KeyError) as err:
        where = "the folder" if folder else "the Hub (is the name right?)" + offline_hint(name_or_path)
        raise InputError(f"cannot read the config of {name_or_path} from {where}: {_first_line(err)}") from None
    spec, _ = resolve_architecture(config)  # refuse before downloading weights
    if folder is not None and not any((folder / name).exists() for name in TOKENIZER_FILES):
        raise InputError(f"folder {name_or_path} has no tokenizer files ({', '.join(TOKENIZER_FILES[:3])}, ...): "
                         "save the tokenizer or processor next to the model (tokenizer.save_pretrained(folder))")
    placement: dict[str, Any] = {} if device_map is None else {"device_map": device_map}
    try:
        model = AUTO_CLASSES[spec.modality].from_pretrained(name_or_path, dtype=torch_dtype, **placement, **kwargs)
        processor = (AutoTokenizer if spec.modality == "text" else AutoProcessor).from_pretrained(name_or_path,
                                                                                                   **kwargs)
    except InputError:
        raise
    except Exception as err:  # safetensors, torch and the Hub client raise many kinds for a damaged or missing file
        raise InputError(f"cannot load {name_or_path}: {_first_line(err)}; the weights or tokenizer files may be "
                         "damaged or incomplete: download or save the model again") from None
    if device_map is None:
        model.to(torch_device)
    model.eval()
    check_vocabulary(model, processor, name_or_path)
    return model, processor


def check_vocabulary(model: PreTrainedModel, processor: Any, name: str) -> None:
    """Refuse a tokenizer whose ids the model's embeddings do not cover (it belongs to another model)."""
    tokenizer = get_tokenizer(processor)
    size = getattr(decoder_config(model.config), "vocab_size", None)
    if tokenizer is None or not isinstance(size, int) or not hasattr(tokenizer, "__len__"):
        return
    if len(tokenizer) > size:
        raise InputError(f"the tokenizer of {name} has {len(tokenizer):,} tokens but the model only {size:,}: "
                         "the tokenizer belongs to another model; save the model's own tokenizer with it")
