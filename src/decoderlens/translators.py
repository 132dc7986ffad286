"""Affine translators per encoder layer: ``T_l(h) = h + A_l h + b_l``, applied where the raw lens hands layer
``l``'s state to the decoder. They start at zero (an untrained translator is the raw lens) and save as a Hugging
Face-style folder (``translators.safetensors``, ``config.json``, a model card) that names the model they belong to.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch
from huggingface_hub import PyTorchModelHubMixin
from safetensors.torch import load_file, save_file

from decoderlens.errors import InputError

HUB_ID = re.compile(r"[A-Za-z0-9][\w.-]*/[\w.-]+")
"""What a Hub repository id looks like (``org/name``); any other name that is no folder here is refused at once."""
WEIGHTS = "translators.safetensors"
CONFIG = "config.json"
CARD = "README.md"


def _weights_hash(module: torch.nn.Module, seed: bytes = b"") -> Any:
    """A running SHA-256 over ``seed`` and a module's weights, by name, as float32."""
    digest = hashlib.sha256(seed)
    for name, tensor in sorted(module.state_dict().items()):
        digest.update(name.encode())
        digest.update(tensor.detach().to("cpu", torch.float32).contiguous().numpy().tobytes())
    return digest


def model_fingerprint(model: Any, encoder: torch.nn.Module) -> str:
    """A hash of the model's config and its encoder's weights: translators are refused for any other model."""
    return str(_weights_hash(encoder, json.dumps(model.config.to_dict(), sort_keys=True, default=str).encode())
               .hexdigest()[:16])


class Translators(torch.nn.Module, PyTorchModelHubMixin):  # type: ignore[misc]
    """One affine map per encoder layer 0..L-1 (the top layer is never translated); full rank, or low rank
    ``A_l = U_l V_l^T`` where ``rank`` is given."""

    def __init__(self, num_layers: int, d_model: int, rank: int | None = None, info: dict[str, Any] | None = None,
                 seed: int = 0) -> None:
        super().__init__()
        self.num_layers, self.d_model, self.rank = num_layers, d_model, rank
        self.info: dict[str, Any] = dict(info or {})
        """What the translators were trained for and how: model, model hash, objective, data, steps, results."""
        self.bias = torch.nn.Parameter(torch.zeros(num_layers, d_model))
        if rank is None:
            self.weight = torch.nn.Parameter(torch.zeros(num_layers, d_model, d_model))
        else:
            generator = torch.Generator().manual_seed(seed)
            self.up = torch.nn.Parameter(torch.randn(num_layers, d_model, rank, generator=generator) * d_model**-0.5)
            self.down = torch.nn.Parameter(torch.zeros(num_layers, d_model, rank))

    def matrix(self, layer: int) -> torch.Tensor:
        """``A_l`` (d_model x d_model)."""
        return self.weight[layer] if self.rank is None else self.up[layer] @ self.down[layer].T

    def forward(self, layer: int, hidden: torch.Tensor) -> torch.Tensor:
        """``T_l(h) = h + A_l h + b_l``."""
        matrix = self.matrix(layer).to(hidden.dtype)
        return hidden + hidden @ matrix.T + self.bias[layer].to(hidden.dtype)

    def fingerprint(self) -> str:
        """A hash of the translators' own weights (names a tuned lens in results)."""
        return str(_weights_hash(self).hexdigest()[:12])

    def config_dict(self) -> dict[str, Any]:
        return {"num_encoder_layers": self.num_layers, "d_model": self.d_model, "rank": self.rank, **self.info}

    def _save_pretrained(self, save_directory: Path) -> None:
        """Write the folder atomically: a half-written folder never replaces a good one."""
        save_directory = Path(save_directory)
        save_directory.parent.mkdir(parents=True, exist_ok=True)
        scratch = Path(tempfile.mkdtemp(dir=save_directory.parent, prefix=f".{save_directory.name}."))
        try:
            save_file({k: v.detach().contiguous().cpu() for k, v in self.state_dict().items()}, str(scratch / WEIGHTS))
            (scratch / CARD).write_text(model_card(self.config_dict()), encoding="utf-8")
            (scratch / CONFIG).write_text(json.dumps(self.config_dict(), indent=2, ensure_ascii=False))
            save_directory.mkdir(parents=True, exist_ok=True)
            for name in (WEIGHTS, CARD, CONFIG):  # each file replaced whole; weights first, the config last
                (scratch / name).replace(save_directory / name)
        finally:
            shutil.rmtree(scratch, ignore_errors=True)

    @classmethod
    def load(cls, source: str | Path) -> Translators:
        """Translators from a folder written by ``save_pretrained`` (or a Hub id), every file checked: a missing,
        damaged or foreign file is refused with one line naming it."""
        return cls._from_pretrained(model_id=str(source), revision=None, cache_dir=None, force_download=False,
                                    local_files_only=False, token=None)

    @classmethod
    def _from_pretrained(cls, *, model_id: str, revision: str | None, cache_dir: str | Path | None,
                         force_download: bool, local_files_only: bool, token: str | bool | None,
                         **model_kwargs: Any) -> Translators:
        folder = Path(model_id).expanduser()
        if folder.is_dir():
            weights, config = folder / WEIGHTS, folder / CONFIG
            if not weights.is_file() or not config.is_file():
                raise InputError(f"{model_id} holds no translators ({WEIGHTS} and {CONFIG}): train them with "
                                 "`decoderlens tune MODEL DATA --out DIR`")
        elif folder.exists() or not HUB_ID.fullmatch(model_id):
            raise InputError(f"no translators folder {model_id!r}: give the folder `decoderlens tune --out` wrote "
                             "(or a Hub id such as org/name)")
        else:
            from huggingface_hub import hf_hub_download

            try:
                weights, config = (Path(hf_hub_download(model_id, name, revision=revision, cache_dir=cache_dir,
                                                        force_download=force_download, token=token,
                                                        local_files_only=local_files_only))
                                   for name in (WEIGHTS, CONFIG))
            except Exception as err:  # the Hub client raises many kinds
                raise InputError(f"no translators folder {model_id!r} here or on the Hub ({err})") from None
        try:
            info = json.loads(config.read_text(encoding="utf-8"))
            layers, width, rank = int(info.pop("num_encoder_layers")), int(info.pop("d_model")), info.pop("rank")
            if layers < 1 or width < 1 or (rank is not None and (not isinstance(rank, int) or rank < 1)):
                raise ValueError("layers, width and rank must be positive")
        except (OSError, UnicodeDecodeError, ValueError, KeyError, TypeError, AttributeError) as err:
            raise InputError(f"{config} is not a translators config ({type(err).__name__}: {err}): restore it, or "
                             "train the translators again with decoderlens tune") from None
        try:
            state = load_file(str(weights))
        except Exception as err:  # safetensors raises its own kinds for truncated or foreign files
            raise InputError(f"{weights} is damaged or not a safetensors file ({err}): restore it, or train the "
                             "translators again with decoderlens tune") from None
        translators = cls(layers, width, rank, info)
        try:
            translators.load_state_dict(state)
        except RuntimeError as err:
            first = str(err).strip().splitlines()[-1].strip()
            raise InputError(f"the weights in {weights} do not match its {CONFIG} ({first}): restore the folder, or "
                             "train the translators again with decoderlens tune") from None
        if not all(torch.isfinite(t).all() for t in state.values()):
            raise InputError(f"{weights} holds NaN or infinite weights: train the translators again (a lower --lr)")
        return translators


def model_card(config: dict[str, Any]) -> str:
    """The card of a translators folder: what they translate, how they were trained, what they reached."""
    raw, tuned = config.get("val_kl_raw") or [], config.get("val_kl_tuned") or []
    control = " (control: targets shuffled across examples)" if config.get("control") else ""
    data = (f"{config.get('data')}; {config.get('train_examples')} training and {config.get('val_examples')} "
            "validation examples")
    steps = (f"{config.get('steps')}, {config.get('step_batch')} examples a step, learning rate {config.get('lr')}, "
             f"seed {config.get('seed')}")
    rows = "\n".join(f"| {layer} | {r:.4f} | {t:.4f} |" for layer, (r, t) in enumerate(zip(raw, tuned, strict=False)))
    return f"""---
library_name: decoderlens
tags: [decoderlens, tuned-lens]
---
# Tuned DecoderLens translators for `{config.get("model")}`

One affine translator per encoder layer 0..{int(config.get("num_encoder_layers", 0)) - 1}
(`T_l(h) = h + A_l h + b_l`, {"full rank" if config.get("rank") is None else f"rank {config.get('rank')}"},
d_model {config.get("d_model")}), applied where DecoderLens hands layer `l`'s state to the unchanged decoder.
The top layer is never translated.

- model hash: `{config.get("model_hash")}` (translators are refused for any other model)
- objective: {config.get("objective")}{control}
- data: {data}
- steps: {steps}
- training time: {float(config.get("seconds", 0.0)):.0f} s

Load with `decoderlens.DecoderLens.from_pretrained(MODEL, translators=FOLDER)` or `--translators FOLDER`.

## Validation KL(top || layer), per decoder position

| layer | raw lens | tuned |
|---|---|---|
{rows}
"""
