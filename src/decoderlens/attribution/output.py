"""The typed result of an attribution call: per input, its source positions, and per layer, every readout token
with one score per source position."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from decoderlens.positions import SourcePosition
from decoderlens.results import Result, by_layer


@dataclass
class TokenAttribution:
    """One token a layer reads out (or of the teacher-forced target) and how much each source position gave it."""

    token: str
    token_id: int
    logprob: float
    """The token's log-probability at this layer (teacher-forced)."""
    attribution: list[float]
    """One score per source position: how much the state there raises the token's log-probability."""
    completeness_gap: float | None = None
    """Integrated gradients: the sum of the scores minus the change in log-probability from the baseline."""

    def to_dict(self) -> dict[str, Any]:
        data = {"token": self.token, "token_id": self.token_id, "logprob": self.logprob,
                "attribution": self.attribution}
        if self.completeness_gap is not None:
            data["completeness_gap"] = self.completeness_gap
        return data


@dataclass
class LayerAttribution:
    """The readout of encoder layer ``layer`` (or the target read from it), token by token."""

    layer: int
    text: str
    tokens: list[TokenAttribution]

    def totals(self) -> list[float]:
        """Per source position: the sum of its scores over the layer's tokens."""
        return [sum(values) for values in zip(*(t.attribution for t in self.tokens), strict=True)] \
            if self.tokens else []


@dataclass
class ExampleAttribution:
    """One input: its source positions and each selected layer's attributed tokens."""

    input: str
    source: list[SourcePosition]
    layers: list[LayerAttribution]

    def layer(self, layer: int) -> LayerAttribution:
        """The attribution of ``layer``; raises ``KeyError`` if it was not selected."""
        return by_layer(self.layers, layer)

    def to_dict(self) -> dict[str, Any]:
        """The example's part of the documented JSON."""
        return {"input": self.input, "source": [p.to_dict() for p in self.source],
                "layers": [{"layer": la.layer, "text": la.text, "tokens": [t.to_dict() for t in la.tokens]}
                           for la in self.layers]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExampleAttribution:
        """Rebuild from ``to_dict`` output."""
        return cls(data["input"],
                   [SourcePosition(p["position"], p["label"], p.get("start"), p.get("end")) for p in data["source"]],
                   [LayerAttribution(la["layer"], la["text"], [TokenAttribution(
                       t["token"], t["token_id"], t["logprob"], t["attribution"], t.get("completeness_gap"))
                       for t in la["tokens"]]) for la in data["layers"]])


@dataclass
class AttributionOutput(Result):
    """Per-layer attribution of readouts to source positions (``DecoderLens.attribute``)."""

    model: str
    method: str
    examples: list[ExampleAttribution]
    target: str = "readout"
    """``readout``: each layer's own greedy readout; ``target``: the given target, teacher-forced at every layer."""
    settings: dict[str, Any] = field(default_factory=dict)

    def __iter__(self) -> Any:
        return iter(self.examples)

    def __len__(self) -> int:
        return len(self.examples)

    def __getitem__(self, index: int) -> ExampleAttribution:
        return self.examples[index]

    def to_dict(self) -> dict[str, Any]:
        """The documented JSON: model, method, and per example its source and layers (speech positions carry
        ``start``/``end`` in seconds)."""
        return {"model": self.model, "method": self.method, "target": self.target, "settings": self.settings,
                "examples": [example.to_dict() for example in self.examples]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> AttributionOutput:
        return cls(data["model"], data["method"], [ExampleAttribution.from_dict(ex) for ex in data["examples"]],
                   data.get("target", "readout"), data.get("settings", {}))

    def to_records(self) -> list[dict[str, Any]]:
        """One row per example, layer, token and source position."""
        return [{"example": e, "layer": la.layer, "token_index": k, "token": t.token, "logprob": t.logprob,
                 "position": p.position, "label": p.label, "attribution": value}
                for e, ex in enumerate(self.examples) for la in ex.layers for k, t in enumerate(la.tokens)
                for p, value in zip(ex.source, t.attribution, strict=True)]
