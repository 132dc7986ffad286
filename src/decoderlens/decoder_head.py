"""The decoder read layer by layer (the 2-D lens): its blocks, and the final norm, output scaling, head and logits
bias that turn any of its intermediate states into logits (a logit lens inside the decoder)."""

from __future__ import annotations

import torch
from transformers import PreTrainedModel

from decoderlens.adapter import module_at
from decoderlens.architectures import DecoderLayout, resolve_decoder


class DecoderHead:
    """Where a model's decoder keeps its blocks, final norm and output head; built only for mapped decoders."""

    def __init__(self, model: PreTrainedModel) -> None:
        self.model = model
        self.layout: DecoderLayout = resolve_decoder(model.config)  # refuses unmapped decoders

    @property
    def num_layers(self) -> int:
        """D: the decoder's number of blocks."""
        return len(module_at(self.model.get_decoder(), self.layout.layers))

    def logits(self, hidden: torch.Tensor) -> torch.Tensor:
        """Logits of an intermediate decoder state, as if the decoder stopped there: its final norm (pre-LN
        decoders), the output scaling some configs ask for, the output head and the final logits bias."""
        layout = self.layout
        if layout.final_norm is not None:
            hidden = module_at(self.model.get_decoder(), layout.final_norm)(hidden)
        config = self.model.config
        if layout.output_scale is not None and getattr(config, layout.output_scale, False):
            hidden = hidden * (config.d_model**-0.5)
        head = self.model.get_output_embeddings() if layout.head is None else module_at(self.model, layout.head)
        logits = head(hidden)
        bias = getattr(self.model, "final_logits_bias", None)
        return logits if bias is None else logits + bias.to(logits.dtype)
