"""Encoder access: run the encoder once, and turn its hidden states into per-layer encoder outputs, stacked for
the decoder through a lens. (The decoder's own layers are in ``decoder_head``, tracing's hooks in ``trace``.)"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Any

import torch
from transformers import PreTrainedModel
from transformers.modeling_outputs import BaseModelOutput
from transformers.utils import ModelOutput

from decoderlens.architectures import ArchitectureSpec, EncoderLayout, resolve_architecture
from decoderlens.errors import LayerSelectionError
from decoderlens.lenses import RAW, Lens
from decoderlens.settings import FinalNorm

ENCODER_INPUT_NAMES = ("input_ids", "attention_mask", "input_features", "input_values", "pixel_values",
                       "token_type_ids")


@dataclass
class EncodedBatch:
    """The encoder's states for one batch: ``hidden_states[l]`` for l = 0..L, batch-major."""

    hidden_states: list[torch.Tensor]
    final_output: torch.Tensor
    attention_mask: torch.Tensor | None
    """The mask the model's forward expects next to ``encoder_outputs`` (``None`` when it takes none)."""
    output_type: type[ModelOutput] = BaseModelOutput
    """The encoder's own output class (mixture-of-experts models read extra fields from it)."""
    input_ids: torch.Tensor | None = None
    """The encoder's input token ids (text models), for generation rules that look at the source."""

    def as_encoder_outputs(self, states: torch.Tensor) -> ModelOutput:
        """A fresh encoder-output object holding ``states`` (``generate`` mutates it during beam search)."""
        return self.output_type(last_hidden_state=states)

    @property
    def batch_size(self) -> int:
        return self.final_output.shape[0]


@dataclass
class StackedRows:
    """Encoder states stacked along the batch dimension, with each row's encoder mask and source ids."""

    states: torch.Tensor
    mask: torch.Tensor | None = None
    input_ids: torch.Tensor | None = None

    def __len__(self) -> int:
        return self.states.shape[0]

    def part(self, rows: slice | torch.Tensor) -> StackedRows:
        """Rows ``rows`` (a slice, or a tensor of row indices)."""
        def take(tensor: torch.Tensor) -> torch.Tensor:
            return tensor[rows] if isinstance(rows, slice) else tensor.index_select(0, rows)

        return StackedRows(take(self.states), None if self.mask is None else take(self.mask),
                           None if self.input_ids is None else take(self.input_ids))


def _encoder_width(config: Any) -> int:
    inner = getattr(config, "encoder", None) or config
    for name in ("d_model", "hidden_size"):
        value = getattr(inner, name, None)
        if isinstance(value, int):
            return value
    raise ValueError("cannot tell the encoder's width from its config")


def module_at(root: torch.nn.Module, path: str) -> Any:
    """The submodule (or attribute) at a dotted ``path`` below ``root``."""
    obj: Any = root
    for part in path.split("."):
        obj = getattr(obj, part)
    return obj


class ModelAdapter:
    """Family-specific access to an encoder-decoder model, driven by its ``ArchitectureSpec``."""

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model
        self.spec: ArchitectureSpec
        self.layout: EncoderLayout
        self.spec, self.layout = resolve_architecture(model.config)
        self.encoder: torch.nn.Module = model.get_encoder()
        self._encoder_params = set(inspect.signature(self.encoder.forward).parameters)

    @property
    def num_layers(self) -> int:
        """Number of encoder blocks L (readable layers are 0..L)."""
        return len(self.blocks)

    @property
    def encoder_width(self) -> int:
        """The width of the encoder's states (what translators map)."""
        return _encoder_width(self.model.config)

    @property
    def blocks(self) -> torch.nn.ModuleList:
        """The encoder's block list."""
        return module_at(self.encoder, self.layout.layers)  # type: ignore[no-any-return]

    @property
    def final_norm(self) -> torch.nn.Module | None:
        """The norm the encoder applies after its last block (``None`` for post-LN encoders)."""
        return None if self.layout.final_norm is None else module_at(self.encoder, self.layout.final_norm)

    def encoder_inputs(self, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """The subset of processor outputs that the encoder's forward accepts."""
        return {k: v for k, v in batch.items() if k in ENCODER_INPUT_NAMES and k in self._encoder_params}

    def decoder_mask(self, batch: dict[str, torch.Tensor]) -> torch.Tensor | None:
        """The encoder mask to pass with ``encoder_outputs`` (input-level: models downsample it)."""
        return batch.get("attention_mask") if self.spec.encoder_mask else None

    def state_mask(self, mask: torch.Tensor | None, length: int) -> torch.Tensor | None:
        """An encoder mask at the resolution of the encoder's ``length`` states: as it is where they agree, else
        cut down by the model's own output lengths (speech front ends that downsample), else ``None`` (every
        position counts)."""
        if mask is None or mask.shape[1] == length:
            return mask
        owners = [self.encoder, *self.encoder.modules(), self.model]
        lengths: Any = next((m._get_feat_extract_output_lengths for m in owners
                        if hasattr(m, "_get_feat_extract_output_lengths")), None)
        if lengths is None:
            return None
        kept = lengths(mask.sum(-1))
        return (torch.arange(length, device=mask.device)[None] < kept[:, None]).to(mask.dtype)

    @torch.no_grad()
    def encode(self, batch: dict[str, torch.Tensor]) -> EncodedBatch:
        """Run the encoder once with hidden states; pads and global tokens are stripped per layer."""
        out = self.encoder(**self.encoder_inputs(batch), output_hidden_states=True, return_dict=True)
        final = out.last_hidden_state
        states = []
        for state in out.hidden_states:
            if isinstance(state, tuple):  # (local, global) token states: the decoder reads the local ones
                state = state[0]
            states.append(state[:, : final.shape[1]])
        if len(states) != self.num_layers + 1:
            raise RuntimeError(f"expected {self.num_layers + 1} hidden states, got {len(states)}")
        return EncodedBatch(states, final, self.decoder_mask(batch), type(out), batch.get("input_ids"))

    @staticmethod
    def merge(parts: list[EncodedBatch]) -> EncodedBatch:
        """Join separately encoded inputs: states are zero-padded in time, masks padded with zeros."""
        if len(parts) == 1:
            return parts[0]

        def pad_time(tensors: list[torch.Tensor]) -> torch.Tensor:
            width = max(t.shape[1] for t in tensors)
            return torch.cat([torch.nn.functional.pad(t, (0, 0) * (t.dim() - 2) + (0, width - t.shape[1]))
                              for t in tensors])

        masks = [p.attention_mask for p in parts]
        mask = None if any(m is None for m in masks) else pad_time(masks)  # type: ignore[arg-type]
        ids = [p.input_ids for p in parts]
        input_ids = None if any(i is None for i in ids) else pad_time(ids)  # type: ignore[arg-type]
        states = [pad_time([p.hidden_states[i] for p in parts]) for i in range(len(parts[0].hidden_states))]
        return EncodedBatch(states, pad_time([p.final_output for p in parts]), mask, parts[0].output_type, input_ids)

    @torch.no_grad()
    def layer_state(self, encoded: EncodedBatch, layer: int, final_norm: FinalNorm = "auto") -> torch.Tensor:
        """Encoder output "as if the encoder stopped after ``layer`` blocks" (the true output at L)."""
        if not 0 <= layer <= self.num_layers:
            raise LayerSelectionError(f"layer {layer} is out of range 0..{self.num_layers}")
        if layer == self.num_layers:
            return encoded.final_output
        state = encoded.hidden_states[layer]
        norm = self.final_norm
        return norm(state) if final_norm == "auto" and norm is not None else state

    def stack(self, encoded: EncodedBatch, layers: list[int], final_norm: FinalNorm = "auto",
              device: torch.device | None = None, lens: Lens = RAW) -> StackedRows:
        """Layer-major stacking: row ``i * B + b`` is example ``b`` read from ``layers[i]`` through ``lens``; masks
        and source ids repeat (never ``repeat_interleave``)."""
        parts = []
        for layer in layers:
            state = self.layer_state(encoded, layer, final_norm).to(device or encoded.final_output.device)
            parts.append(lens.transform(layer, state))
        states = torch.cat(parts)
        mask = None if encoded.attention_mask is None else encoded.attention_mask.repeat(len(layers), 1)
        ids = None if encoded.input_ids is None else encoded.input_ids.repeat(len(layers), 1)
        return StackedRows(states, mask, ids)
