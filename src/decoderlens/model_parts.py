"""A loaded model and what every analysis needs of it: processor, tokenizer, encoder adapter, input preparer and
the decoding plan. Analyses take these parts, never the ``DecoderLens`` front, so they import only downward."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from transformers import PreTrainedModel

from decoderlens.adapter import ModelAdapter
from decoderlens.decoding import DecodingPlan, plan_decoding
from decoderlens.inputs import InputPreparer, get_tokenizer
from decoderlens.layers import LayerSpec, select_layers
from decoderlens.settings import GenerationSettings, RuntimeSettings


@dataclass
class ModelParts:
    """One encoder-decoder model in evaluation mode, with its processor and the adapters built for it."""

    model: PreTrainedModel
    processor: Any
    name: str
    adapter: ModelAdapter = field(init=False)
    tokenizer: Any = field(init=False)
    prepare: InputPreparer = field(init=False)

    def __post_init__(self) -> None:
        self.adapter = ModelAdapter(self.model)
        self.model.eval()
        self.tokenizer = get_tokenizer(self.processor)
        self.prepare = InputPreparer(self.adapter.spec, self.processor, self.model.config)

    @property
    def num_layers(self) -> int:
        """L: the encoder's number of blocks; readable layers are 0..L."""
        return self.adapter.num_layers

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def select(self, layers: LayerSpec) -> list[int]:
        """The layers a selection names, checked against this encoder."""
        return select_layers(layers, self.num_layers)

    def plan(self, generation: GenerationSettings, runtime: RuntimeSettings | None = None,
             **extra: Any) -> DecodingPlan:
        """The decoding plan of ``generation`` for this model (prompt, forced tokens, length, strategy);
        ``extra``: further ``generate`` options."""
        return plan_decoding(self.model, self.adapter.spec, self.processor, runtime=runtime,
                             max_new_tokens=generation.max_new_tokens, num_beams=generation.num_beams,
                             tgt_lang=generation.tgt_lang, language=generation.language, task=generation.task,
                             **extra)

    def prepared(self, items: list[Any], truncation: bool = False) -> dict[str, torch.Tensor]:
        """Encoder inputs of ``items`` on the model's device."""
        return {k: v.to(self.device) for k, v in self.prepare(items, truncation=truncation).items()}
